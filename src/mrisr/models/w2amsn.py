"""W²AMSN: wide weighted attention multi-scale network (Wang et al., TCSVT 2021).

Single-contrast SR, the model spec (docs/model-zoo.md) §2. No public code exists; this follows the
spec's reading of the paper. The second-layer width of each block (``ms_out``) is configurable
because the paper's parameter counts cannot be reproduced (§2.6):

* **narrow reading** (default, ``ms_out = a``): S₂/W₂ map 8a→a, as Table IV's "32-128-32".
* **literal reading** (``ms_out = 8a``): S₂/W₂ map 8a→8a, as Eq. 10's superscripts.

Neither matches Table II (11.67M / 5.93M); the zoo marks both "not matched".
"""

from __future__ import annotations

import torch
from torch import nn

from mrisr.models.blocks import Upsampler, conv


class NCAB(nn.Module):
    """Non-reduction channel attention (Eq. 5–6): ``softmax_C(GAP(C₁ᵘ(x))) ⊙ C₁ˡ(x) + x``.

    Both 1×1 convs keep all ``channels`` (no reduction, unlike RCAN's CA), and the attention
    vector is a softmax over channels, so it sums to 1 — hence the residual add, which the paper
    says restores the response the normalisation weakens.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.upper = conv(channels, channels, 1)  # C₁ᵘ: feeds the attention weights
        self.lower = conv(channels, channels, 1)  # C₁ˡ: the features that get re-weighted

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights ``w_a``: x [B, C, H, W] → [B, C, 1, 1], summing to 1 over C."""
        return torch.softmax(self.upper(x).mean(dim=(2, 3), keepdim=True), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W] → [B, C, H, W]."""
        return self.weights(x) * self.lower(x) + x


class W2AMSB(nn.Module):
    """Wide weighted attention multi-scale block (§2.3, Eq. 9–13).

    x [B, a, H, W] → S₁ = ReLU(conv3×3 a→4a), W₁ = ReLU(conv5×5 a→4a) (channel widening);
    S₂ = conv3×3 8a→m on cat(S₁, W₁), W₂ = conv5×5 8a→m on cat(W₁, S₁) (interaction, no
    activation); S₃ = NCAB_S(S₂), W₃ = NCAB_W(W₂); out = conv1×1 2m→a on cat(λ₁S₃, λ₂W₃) + x,
    with m = ``ms_out`` (``None`` → a, the narrow reading; 8a is the literal reading).

    Args:
        width: a, the block's input/output channels.
        ms_out: m, the width of the second (multi-scale interaction) layer.
        shared_ncab: one NCAB for both branches (Eq. 11 reuses the symbol F_A); default separate.
        learn_lambda: λ₁, λ₂ learnable (init 1); ``False`` fixes them at 1 (the paper's
            "unweighted" ablation) as non-persistent buffers, so they are not parameters.
    """

    def __init__(
        self,
        width: int = 32,
        ms_out: int | None = None,
        shared_ncab: bool = False,
        learn_lambda: bool = True,
    ) -> None:
        super().__init__()
        a = width
        m = a if ms_out is None else ms_out
        self.s1 = conv(a, 4 * a, 3)
        self.w1 = conv(a, 4 * a, 5)
        self.s2 = conv(8 * a, m, 3)
        self.w2 = conv(8 * a, m, 5)
        self.relu = nn.ReLU(inplace=True)
        self.ncab_s = NCAB(m)
        # Sharing reuses the same module object: parameters() deduplicates it, so the count
        # drops by one NCAB(m).
        self.ncab_w = self.ncab_s if shared_ncab else NCAB(m)
        self.fuse = conv(2 * m, a, 1)
        if learn_lambda:
            self.lambda1 = nn.Parameter(torch.ones(()))
            self.lambda2 = nn.Parameter(torch.ones(()))
        else:
            # Non-persistent: a fixed-λ model's state_dict has no λ, so loading a learned-λ
            # checkpoint into it fails loudly instead of silently un-fixing them.
            self.register_buffer("lambda1", torch.ones(()), persistent=False)
            self.register_buffer("lambda2", torch.ones(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, a, H, W] → [B, a, H, W]."""
        s1 = self.relu(self.s1(x))  # [B, 4a, H, W]
        w1 = self.relu(self.w1(x))  # [B, 4a, H, W]
        s2 = self.s2(torch.cat([s1, w1], dim=1))  # [B, m, H, W]
        w2 = self.w2(torch.cat([w1, s1], dim=1))  # [B, m, H, W]
        s3 = self.ncab_s(s2)
        w3 = self.ncab_w(w2)
        fused = self.fuse(torch.cat([self.lambda1 * s3, self.lambda2 * w3], dim=1))  # [B, a, H, W]
        return fused + x  # local skip connection (Eq. 13)


class W2AMSN(nn.Module):
    """W²AMSN (§2.2): SFE → t × W²AMSB → concat → global NCAB → C₁ᵍ + x_S → Up(s) → conv.

    lr [B, 1, h, w] → x_S = x₀ [B, a, h, w] (conv3×3 1→a, conv1×1 a→a, conv3×3 a→a, no
    activations) → x₁ … x_t [B, a, h, w] → x_c = cat(x₀ … x_t) [B, (t+1)a, h, w] → NCAB((t+1)a)
    → conv1×1 (t+1)a→a, + x_S (global residual) → Up(s, a) [B, a, s·h, s·w] → conv3×3 a→1
    → sr [B, 1, s·h, s·w].

    Args:
        scale: 2, 3 or 4 (any 2ⁿ or 3 that the EDSR upsampler supports).
        n_blocks: t (20 for W²AMSN, 8 for W²AMSN-S).
        width: a (32).
        ms_out: second-layer width of each block; ``None`` → a (narrow), 8a is the literal reading.
        shared_ncab, learn_lambda: see :class:`W2AMSB`.
        in_channels, out_channels: image channels (1 for MRI magnitude).
    """

    def __init__(
        self,
        scale: int,
        n_blocks: int = 20,
        width: int = 32,
        ms_out: int | None = 32,
        shared_ncab: bool = False,
        learn_lambda: bool = True,
        in_channels: int = 1,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
        a = width
        self.scale = scale
        self.sfe = nn.Sequential(conv(in_channels, a, 3), conv(a, a, 1), conv(a, a, 3))
        self.blocks = nn.ModuleList(
            W2AMSB(a, ms_out, shared_ncab=shared_ncab, learn_lambda=learn_lambda)
            for _ in range(n_blocks)
        )
        cat_channels = (n_blocks + 1) * a
        self.global_attention = NCAB(cat_channels)
        self.global_fuse = conv(cat_channels, a, 1)  # C₁ᵍ
        self.upsample = Upsampler(scale, a)
        self.tail = conv(a, out_channels, 3)

    def forward(self, lr: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """lr [B, C_in, h, w] → sr [B, C_out, s·h, s·w]. Single-contrast: ``guide`` must be None."""
        if guide is not None:
            raise ValueError("W2AMSN is a single-contrast model; it takes no guide image")
        x_s = self.sfe(lr)  # x₀ = x_S, [B, a, h, w]
        feats = [x_s]
        for block in self.blocks:
            feats.append(block(feats[-1]))
        x_a = self.global_attention(torch.cat(feats, dim=1))  # [B, (t+1)a, h, w]
        x = self.global_fuse(x_a) + x_s  # global residual connection (Eq. 8)
        return self.tail(self.upsample(x))

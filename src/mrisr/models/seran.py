"""SERAN: squeeze-and-excitation reasoning attention network (single-contrast MRI SR).

Spec: the model spec (docs/model-zoo.md) §1 — an EDSR backbone (40 × RB(64)) with one SERAB applied
to the body output (after the body's closing conv) right before the long-skip addition. No official
code exists; the SERAB below follows spec §1.3 step by step (paper Eq. 1–7)."""

from __future__ import annotations

import torch
from torch import nn

from mrisr.models.blocks import conv, reject_guide
from mrisr.models.edsr import EDSR


class SERAB(nn.Module):
    """Squeeze-and-excitation reasoning attention block (spec §1.3).

    For E [B, C, H, W] with N = H·W and P primitives:

    1. gather: M = softmax_N(θ(E)) [B, P, N]; V = E·Mᵀ [B, C, P]  (Eq. 1–2)
    2. reasoning over primitives (Eq. 3–4): R = φ(Vᵀ)·ψ(Vᵀ)ᵀ / P [B, P, P];
       U = W_r(W_g(R·Vᵀ)) [B, P, C]; V ← σ(Uᵀ) ⊙ V + V
    3. distribute: D = softmax_P(ρ(E)) [B, P, N]; Z = V·D [B, C, N] → [B, C, H, W]  (Eq. 5–6)
    4. O = E + α·Z  (Eq. 7), α fixed.

    Params at C = 64, P = 64, C′ = 16: 18,720. All maps are per sample (batched matmuls), so
    samples in a batch never mix even though every position sees every other one.
    """

    def __init__(
        self, channels: int, n_primitives: int = 64, embed: int = 16, alpha: float = 0.01
    ) -> None:
        super().__init__()
        self.theta = conv(channels, n_primitives, 1)  # gather attention logits
        self.rho = conv(channels, n_primitives, 1)  # distribute attention logits
        self.phi = nn.Linear(channels, embed)  # the paper's W_φ embedding
        self.psi = nn.Linear(channels, embed)  # the paper's W_ϕ embedding
        self.w_g = nn.Linear(channels, channels)  # GCN weight (C×C, §3.3)
        self.w_r = nn.Linear(channels, channels)  # residual weight; no nonlinearity between
        self.n_primitives = n_primitives
        # The paper fixes α = 0.01 (§4.2); a plain float keeps it out of the parameter count
        # and the state dict (it is an init argument, stored with the checkpoint's init_args).
        self.alpha = float(alpha)

    def forward_with_maps(self, e: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """E [B, C, H, W] → (O [B, C, H, W], maps).

        maps: ``M`` [B, P, N] (rows sum to 1 over N), ``V`` [B, C, P] (raw primitives),
        ``V_enh`` [B, C, P] (after reasoning), ``D`` [B, P, N] (columns sum to 1 over P),
        ``Z`` [B, C, H, W].
        """
        b, c, h, w = e.shape
        e_flat = e.reshape(b, c, h * w)  # [B, C, N]
        m = torch.softmax(self.theta(e).reshape(b, -1, h * w), dim=-1)  # [B, P, N], over N
        v = torch.bmm(e_flat, m.transpose(1, 2))  # [B, C, P]

        vt = v.transpose(1, 2)  # [B, P, C]: one row per primitive (graph node)
        # Affinity normalised by the node count, as in VSRN's Rs_GCN (R / N).
        r = torch.bmm(self.phi(vt), self.psi(vt).transpose(1, 2)) / self.n_primitives  # [B,P,P]
        u = self.w_r(self.w_g(torch.bmm(r, vt)))  # [B, P, C]
        v_enh = torch.sigmoid(u.transpose(1, 2)) * v + v  # [B, C, P]

        d = torch.softmax(self.rho(e).reshape(b, -1, h * w), dim=1)  # [B, P, N], over P
        z = torch.bmm(v_enh, d).reshape(b, c, h, w)  # [B, C, H, W]
        out = e + self.alpha * z
        return out, {"M": m, "V": v, "V_enh": v_enh, "D": d, "Z": z}

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        """E [B, C, H, W] → O [B, C, H, W]."""
        return self.forward_with_maps(e)[0]


class SERAN(EDSR):
    """EDSR backbone + one SERAB before the long skip (spec §1.2).

    head conv 1→C → body (``n_resblocks`` × RB + conv C→C) → SERAB → (+ head) → Up(s) → conv C→1.
    Reuses :class:`EDSR`'s ``head``/``body``/``tail``, so the parameter count is EDSR-40's plus
    the SERAB's 18,720 (3,158,817 / 3,343,457 / 3,306,529 at ×2/×3/×4).
    Initialisation: PyTorch defaults, as EDSR (the paper states none).
    """

    def __init__(
        self,
        scale: int,
        n_resblocks: int = 40,
        n_feats: int = 64,
        n_primitives: int = 64,
        embed: int = 16,
        alpha: float = 0.01,
        res_scale: float = 1.0,
        in_channels: int = 1,
        out_channels: int = 1,
    ) -> None:
        super().__init__(scale, n_resblocks, n_feats, res_scale, in_channels, out_channels)
        self.serab = SERAB(n_feats, n_primitives, embed, alpha)

    def forward(self, lr: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """lr [B, in, h, w] → SR [B, out, s·h, s·w]. ``guide`` must be None (single contrast)."""
        reject_guide(type(self).__name__, guide)
        x = self.head(lr)
        # "insert SEAB before the element-wise adding of the long skip connection" (§4.2).
        return self.tail(self.serab(self.body(x)) + x)

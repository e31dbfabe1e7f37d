"""FA-GAN (fused attentive GAN): generator with local feature fusion blocks and a global feature
fusion block after upsampling, and the SRGAN-style discriminator with spectral normalisation.

Spec: the model spec (docs/model-zoo.md) §4 (the FA-GAN paper). Sizes at
×4 with 16 LFFBs: generator 17,076,886 parameters, discriminator 5,210,561.

- :class:`LFFB`: three scale extractors (3×3, 5×5, 7×7; conv → ReLU → conv → conv), each fused
  with the previous fused branch by concatenation and a 1×1 conv (the block input starts the
  chain), plus the block residual.
- :class:`GFFB`: channel attention (GAP → FC C→C/r → ReLU → FC → sigmoid) and SAGAN
  self-attention (f, g: 1×1 C→C/8, h, v: 1×1 C→C, no 1/√d, ``γ`` initialised to 0), combined
  by the sign-safe weighted fusion ``(|αR|·αR + |βY|·βY) / (|αR| + |βY| + ε)`` (α = β = ½) or
  the direct one ``αR + βY``.
- :func:`self_attention`: the attention of full HR slices (65,536 positions at 256×256)
  without the N×N map: ``scaled_dot_product_attention`` with the keys zero-padded to the value
  width so that the fused (flash) kernel runs on CPU and GPU, or query blocks of ``chunk``
  rows at a time.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mrisr.models.blocks import conv, reject_guide

Fusion = Literal["weighted", "direct"]
Body = Literal["lffb", "resblock"]


# ----------------------------------------------------------------------------- attention


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``softmax(q kᵀ) v`` with the whole ``[B, N, N]`` map (q, k: [B, N, d]; v: [B, N, e]).
    The reference for tests and the benchmark; needs 4·N² bytes per image in float32."""
    return torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v


def self_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mode: Literal["auto", "chunked", "sdpa", "naive"] = "auto",
    chunk: int = 1024,
) -> torch.Tensor:
    """``softmax(q kᵀ) v`` (scale 1, as SAGAN) without materialising the N×N map.

    ``sdpa`` (what ``auto`` picks) calls ``F.scaled_dot_product_attention(scale=1)``, the fused
    flash kernel on CPU and GPU. That kernel needs the query/key width to equal the value width;
    SAGAN's are C/8 and C, and with unequal widths PyTorch silently falls back to the full map
    (2.3 GB at 16,384 positions on CPU). So q and k are zero-padded to the value width: the dot
    products are unchanged and the map is never built. ``chunked`` computes ``chunk`` query
    rows at a time with plain matrix products (peak extra memory ``chunk × N`` floats).
    """
    if mode == "auto":
        mode = "sdpa"
    if mode == "naive":
        return naive_attention(q, k, v)
    if mode == "sdpa":
        e = v.shape[-1]
        if q.shape[-1] < e:  # zeros add nothing to q·k
            q = F.pad(q, (0, e - q.shape[-1]))
            k = F.pad(k, (0, e - k.shape[-1]))
        # The fused kernel also needs each row contiguous; a transposed [B, C, N] view would
        # silently take the full-map path too.
        q, k, v = (t.unsqueeze(1).contiguous() for t in (q, k, v))
        return F.scaled_dot_product_attention(q, k, v, scale=1.0).squeeze(1)
    if mode != "chunked":
        raise ValueError(f"attention mode must be auto, chunked, sdpa or naive, not {mode!r}")
    kt = k.transpose(1, 2)
    out = q.new_empty(q.shape[0], q.shape[1], v.shape[-1])
    for s in range(0, q.shape[1], chunk):
        out[:, s : s + chunk] = torch.softmax(q[:, s : s + chunk] @ kt, dim=-1) @ v
    return out


class ChannelAttention(nn.Module):
    """GAP → Linear C→C/r → ReLU → Linear C/r→C → sigmoid; returns ``x ⊙ weights``."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(x.mean((2, 3)))
        return x * w[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN self-attention: ``Y = γ·v(Σ_i softmax_i(f(x_i)ᵀ g(x_j)) h(x_i)) + X``."""

    def __init__(self, channels: int, mode: str = "auto", chunk: int = 1024) -> None:
        super().__init__()
        self.f = nn.Conv2d(channels, channels // 8, 1)  # keys (positions i)
        self.g = nn.Conv2d(channels, channels // 8, 1)  # queries (positions j)
        self.h = nn.Conv2d(channels, channels, 1)  # values
        self.v = nn.Conv2d(channels, channels, 1)  # output projection
        self.gamma = nn.Parameter(torch.zeros(1))
        self.mode, self.chunk = mode, chunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        q = self.g(x).flatten(2).transpose(1, 2)  # [B, N, C/8]
        k = self.f(x).flatten(2).transpose(1, 2)
        val = self.h(x).flatten(2).transpose(1, 2)  # [B, N, C]
        o = self_attention(q, k, val, self.mode, self.chunk)  # type: ignore[arg-type]
        o = o.transpose(1, 2).reshape(b, c, hh, ww)
        return self.gamma * self.v(o) + x


class GFFB(nn.Module):
    """Global feature fusion: CA and/or SA of the HR features, fused (weighted or direct).

    With one branch only (ablations) the output is that branch; with none, the input.
    """

    def __init__(
        self,
        channels: int = 64,
        ca: bool = True,
        sa: bool = True,
        fusion: Fusion = "weighted",
        reduction: int = 16,
        alpha: float = 0.5,
        beta: float = 0.5,
        attention: str = "auto",
        chunk: int = 1024,
    ) -> None:
        super().__init__()
        if fusion not in ("weighted", "direct"):
            raise ValueError(f"fusion must be 'weighted' or 'direct', not {fusion!r}")
        self.ca = ChannelAttention(channels, reduction) if ca else None
        self.sa = SelfAttention(channels, attention, chunk) if sa else None
        self.fusion, self.alpha, self.beta, self.eps = fusion, alpha, beta, 1e-6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ca is None and self.sa is None:
            return x
        if self.sa is None:
            return self.ca(x)  # type: ignore[misc]
        if self.ca is None:
            return self.sa(x)
        r, y = self.alpha * self.ca(x), self.beta * self.sa(x)
        if self.fusion == "direct":
            return r + y
        ar, ay = r.abs(), y.abs()
        return (ar * r + ay * y) / (ar + ay + self.eps)


# ----------------------------------------------------------------------------- generator


class LFFB(nn.Module):
    """Local feature fusion block (Eq. 4–7): F₀ = x, F_k = 1×1([C_{s_k}(x), F_{k−1}]),
    out = F₃ + x, with C_s = conv s×s → ReLU → conv s×s → conv s×s for s = 3, 5, 7."""

    def __init__(self, channels: int = 64, kernels: tuple[int, ...] = (3, 5, 7)) -> None:
        super().__init__()
        self.extract = nn.ModuleList(
            nn.Sequential(
                conv(channels, channels, s),
                nn.ReLU(inplace=True),
                conv(channels, channels, s),
                conv(channels, channels, s),
            )
            for s in kernels
        )
        self.fuse = nn.ModuleList(conv(2 * channels, channels, 1) for _ in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x
        for extract, fuse in zip(self.extract, self.fuse, strict=True):
            f = fuse(torch.cat([extract(x), f], dim=1))
        return f + x


class SRResBlock(nn.Module):
    """SRGAN residual block: conv → BN → PReLU → conv → BN, plus the input."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels),
            nn.BatchNorm2d(channels),
            nn.PReLU(channels),
            conv(channels, channels),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FAGANGenerator(nn.Module):
    """FA-GAN generator (spec §4.2); ``body="resblock"`` without CA/SA is SRGAN's SRResNet.

    head conv9×9 + PReLU → ``n_blocks`` × (LFFB | SRGAN residual block) → conv3×3 (+ BN for
    the SRGAN body) + global skip → log₂ s × [conv3×3 C→4C, PixelShuffle(2), PReLU] → GFFB (at
    HR resolution) → conv9×9 C→1.
    """

    def __init__(
        self,
        scale: int = 4,
        n_blocks: int = 16,
        n_feats: int = 64,
        body: Body = "lffb",
        ca: bool = True,
        sa: bool = True,
        fusion: Fusion = "weighted",
        reduction: int = 16,
        attention: str = "auto",
        attention_chunk: int = 1024,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"FA-GAN upsamples by 2, 4 or 8, not {scale}")
        if body not in ("lffb", "resblock"):
            raise ValueError(f"body must be 'lffb' or 'resblock', not {body!r}")
        self.scale = scale
        c = n_feats
        self.head = nn.Sequential(nn.Conv2d(in_channels, c, 9, padding=4), nn.PReLU(c))
        block = LFFB if body == "lffb" else SRResBlock
        self.body = nn.Sequential(*(block(c) for _ in range(n_blocks)))
        tail: list[nn.Module] = [conv(c, c)]
        if body == "resblock":
            tail.append(nn.BatchNorm2d(c))
        self.body_tail = nn.Sequential(*tail)
        up: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            up += [conv(c, 4 * c), nn.PixelShuffle(2), nn.PReLU(c)]
        self.upsample = nn.Sequential(*up)
        self.gffb = GFFB(c, ca, sa, fusion, reduction, attention=attention, chunk=attention_chunk)
        self.out = nn.Conv2d(c, in_channels, 9, padding=4)

    def forward(self, x: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        reject_guide("FA-GAN", guide)
        h = self.head(x)
        h = self.body_tail(self.body(h)) + h
        return self.out(self.gffb(self.upsample(h)))


# ----------------------------------------------------------------------------- discriminator

_D_LAYERS = ((64, 1), (64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2))


class FAGANDiscriminator(nn.Module):
    """SRGAN discriminator (spec §4.5): 8 × [conv3×3, LeakyReLU 0.2] with strides 1, 2, ...,
    global average pool, 1×1 conv 512→1024, LeakyReLU, 1×1 conv 1024→1 (a logit per image).

    ``norm="spectral"`` (FA-GAN) puts spectral normalisation on every weight layer;
    ``norm="batch"`` is SRGAN's (BN after every conv but the first); ``"none"`` neither — the
    switch for the paper's stability comparison. 5,210,561 parameters with ``spectral``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        norm: Literal["spectral", "batch", "none"] = "spectral",
        slope: float = 0.2,
    ) -> None:
        super().__init__()
        if norm not in ("spectral", "batch", "none"):
            raise ValueError(f"norm must be 'spectral', 'batch' or 'none', not {norm!r}")
        sn = nn.utils.parametrizations.spectral_norm if norm == "spectral" else (lambda m: m)
        layers: list[nn.Module] = []
        cin = in_channels
        for i, (cout, stride) in enumerate(_D_LAYERS):
            layers.append(sn(nn.Conv2d(cin, cout, 3, stride, 1)))
            if norm == "batch" and i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(slope, inplace=True))
            cin = cout
        layers += [
            nn.AdaptiveAvgPool2d(1),
            sn(nn.Conv2d(cin, 1024, 1)),
            nn.LeakyReLU(slope, inplace=True),
            sn(nn.Conv2d(1024, 1, 1)),
        ]
        self.net = nn.Sequential(*layers)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)  # [B, 1] logits

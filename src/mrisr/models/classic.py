"""Classic CNN baselines that work on the bicubic-upsampled image: SRCNN and VDSR.

Both take the LR image (the zoo's common interface) and upsample it inside ``forward`` with
mrisr's MATLAB-compatible bicubic :func:`~mrisr.degrade.resample.imresize` — the interpolation
both papers used (MATLAB) — so no separate pre-processing step can drift from training.
Initialisation: PyTorch defaults (Kaiming-uniform, a = √5) rather than the papers' Gaussian /
He-normal schemes; the architecture, not the init, is what the zoo pins down.
"""

from __future__ import annotations

import torch
from torch import nn

from mrisr.degrade.resample import imresize
from mrisr.models.blocks import conv, reject_guide


def _check_scale(scale: int) -> None:
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")


class SRCNN(nn.Module):
    """SRCNN (Dong et al., TPAMI 2016): conv f1 1→n1, ReLU, conv f2 n1→n2, ReLU, conv f3 n2→1.

    'same' zero padding (odd kernels, padding k//2) keeps the upsampled size, unlike the
    original's valid convolutions. Params with biases at 9-1-5, 64/32: 8,129.
    """

    def __init__(
        self,
        scale: int,
        n1: int = 64,
        n2: int = 32,
        f1: int = 9,
        f2: int = 1,
        f3: int = 5,
        channels: int = 1,
    ) -> None:
        super().__init__()
        _check_scale(scale)
        self.scale = int(scale)
        self.body = nn.Sequential(
            conv(channels, n1, f1),
            nn.ReLU(inplace=True),
            conv(n1, n2, f2),
            nn.ReLU(inplace=True),
            conv(n2, channels, f3),
        )

    def forward(self, lr: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """lr [B, C, h, w] → SR [B, C, s·h, s·w]. ``guide`` must be None (single contrast)."""
        reject_guide(type(self).__name__, guide)
        return self.body(imresize(lr, scale=self.scale))


class VDSR(nn.Module):
    """VDSR (Kim et al., CVPR 2016): ``depth`` 3×3 convs with ReLU between, global residual.

    conv 1→F + ReLU, (depth − 2) × [conv F→F + ReLU], conv F→1; output = bicubic(lr) + residual.
    Params with biases at depth 20, F = 64: 665,921.
    """

    def __init__(self, scale: int, depth: int = 20, n_feats: int = 64, channels: int = 1) -> None:
        super().__init__()
        _check_scale(scale)
        if depth < 2:
            raise ValueError(f"VDSR needs depth >= 2, got {depth}")
        self.scale = int(scale)
        layers: list[nn.Module] = [conv(channels, n_feats), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [conv(n_feats, n_feats), nn.ReLU(inplace=True)]
        layers.append(conv(n_feats, channels))
        self.body = nn.Sequential(*layers)

    def forward(self, lr: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """lr [B, C, h, w] → SR [B, C, s·h, s·w]. ``guide`` must be None (single contrast)."""
        reject_guide(type(self).__name__, guide)
        up = imresize(lr, scale=self.scale)
        return up + self.body(up)

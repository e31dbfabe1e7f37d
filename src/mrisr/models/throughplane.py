"""Through-plane refinement network: restores ONE axis (dim −2) of an image whose rows were
acquired as thick slices and put back on the fine grid by cubic B-spline interpolation.

SMORE / ECLARE learn the slice direction of a thick-slice scan from its own in-plane slices;
they upsample with a sub-pixel layer along one axis. mrisr works on the true grid instead: the
input is the B-spline interpolation of the acquired slices at their real positions (any ratio
``k``, gaps included: :mod:`mrisr.degrade.through_plane`), and the network predicts the
residual, so an untrained network returns the B-spline baseline exactly (the tail starts at
zero) and every trained step can only add detail. EDSR residual blocks, no normalisation;
anisotropic 5×3 kernels would also do, but 3×3 keeps the network usable in both orthogonal
planes. ``scale`` is 1: input and output share the grid.
"""

from __future__ import annotations

import torch
from torch import nn

from mrisr.models.blocks import ResBlock, conv, reject_guide


class ThroughPlaneNet(nn.Module):
    """``x [B, 1, H, W]`` (B-spline along H) → ``x + body(x)``; ``scale`` must be 1."""

    def __init__(self, scale: int = 1, n_blocks: int = 8, n_feats: int = 32) -> None:
        super().__init__()
        if scale != 1:
            raise ValueError("ThroughPlaneNet works on the output grid: scale must be 1")
        self.scale = 1
        self.head = conv(1, n_feats)
        self.body = nn.Sequential(*[ResBlock(n_feats, res_scale=0.1) for _ in range(n_blocks)])
        self.tail = conv(n_feats, 1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        reject_guide("ThroughPlaneNet", guide)
        f = self.head(x)
        return x + self.tail(self.body(f) + f)

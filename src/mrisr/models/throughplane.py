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
    """``x [B, 1, H, W]`` (B-spline along H) → ``x + body(x)``; ``scale`` must be 1.

    ``unshuffle = 2`` runs the body on 2 × 2 blocks of pixels (space-to-depth, as FFDNet does):
    four times the features and twice the receptive field for the cost of the full-resolution
    body; odd sizes are reflect-padded and cropped back."""

    def __init__(
        self, scale: int = 1, n_blocks: int = 8, n_feats: int = 32, unshuffle: int = 1
    ) -> None:
        super().__init__()
        if scale != 1:
            raise ValueError("ThroughPlaneNet works on the output grid: scale must be 1")
        if unshuffle not in (1, 2):
            raise ValueError(f"unshuffle must be 1 or 2, got {unshuffle}")
        self.scale, self.unshuffle = 1, unshuffle
        c = unshuffle * unshuffle
        self.head = conv(c, n_feats)
        self.body = nn.Sequential(*[ResBlock(n_feats, res_scale=0.1) for _ in range(n_blocks)])
        self.tail = conv(n_feats, c)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        reject_guide("ThroughPlaneNet", guide)
        u = self.unshuffle
        if u == 1:
            f = self.head(x)
            return x + self.tail(self.body(f) + f)
        h, w = x.shape[-2:]
        ph, pw = (-h) % u, (-w) % u
        xp = nn.functional.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        f = self.head(nn.functional.pixel_unshuffle(xp, u))
        r = nn.functional.pixel_shuffle(self.tail(self.body(f) + f), u)
        return x + r[..., :h, :w]

"""EDSR (Lim et al., CVPRW 2017) for single-channel MRI, without MeanShift.

Spec: the model spec (docs/model-zoo.md) §0 (ResBlock, upsampler) and §1.2 (the 40-block backbone
SERAN builds on). The grey-input count of the 16×64 baseline at ×2 is 1,367,553, which only comes
out without the RGB MeanShift layers — so none are used here."""

from __future__ import annotations

import torch
from torch import nn

from mrisr.models.blocks import ResBlock, Upsampler, conv, reject_guide


class EDSR(nn.Module):
    """head conv → ``n_resblocks`` × ResBlock + conv → (+ head) → upsampler → output conv.

    Args:
        scale: upscaling factor (2ⁿ or 3; the EDSR sub-pixel upsampler).
        n_resblocks: residual blocks in the body.
        n_feats: feature channels C.
        res_scale: residual scaling inside each block (1.0 for 64 channels, as in EDSR).
        in_channels / out_channels: image channels (1 for magnitude MRI).

    The parts are public (``head``, ``body``, ``tail``) so that SERAN can reuse them.
    Initialisation: PyTorch's default (Kaiming-uniform, a = √5) — the same as EDSR-PyTorch, which
    does not re-initialise its layers either.
    """

    def __init__(
        self,
        scale: int,
        n_resblocks: int = 16,
        n_feats: int = 64,
        res_scale: float = 1.0,
        in_channels: int = 1,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.head = conv(in_channels, n_feats)
        # The body ends with its own conv before the long skip (EDSR's ``m_body``).
        self.body = nn.Sequential(
            *[ResBlock(n_feats, res_scale) for _ in range(n_resblocks)], conv(n_feats, n_feats)
        )
        self.tail = nn.Sequential(Upsampler(scale, n_feats), conv(n_feats, out_channels))

    def forward(self, lr: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """lr [B, in, h, w] → SR [B, out, s·h, s·w]. ``guide`` must be None (single contrast)."""
        reject_guide(type(self).__name__, guide)
        x = self.head(lr)
        return self.tail(self.body(x) + x)

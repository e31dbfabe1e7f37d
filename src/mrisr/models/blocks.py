"""Building blocks shared by several networks (EDSR residual block, sub-pixel upsampler)."""

from __future__ import annotations

import math

import torch
from torch import nn


def conv(cin: int, cout: int, k: int = 3, bias: bool = True) -> nn.Conv2d:
    """``Conv2d(cin, cout, k, stride 1, padding k//2)`` — the spec's "conv k×k A→B"."""
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)


class ResBlock(nn.Module):
    """EDSR residual block without BN: ``x + res_scale·conv(ReLU(conv(x)))``."""

    def __init__(self, channels: int, res_scale: float = 1.0, k: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, k), nn.ReLU(inplace=True), conv(channels, channels, k)
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


class Upsampler(nn.Sequential):
    """EDSR sub-pixel upsampler: s = 2ⁿ → n × [conv C→4C, PixelShuffle(2)]; s = 3 →
    [conv C→9C, PixelShuffle(3)]. No activation."""

    def __init__(self, scale: int, channels: int) -> None:
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [conv(channels, 4 * channels), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [conv(channels, 9 * channels), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"sub-pixel upsampler supports 2^n and 3, not {scale}")
        super().__init__(*layers)


def reject_guide(model_name: str, guide: torch.Tensor | None) -> None:
    """Raise if a single-contrast network is handed a guide image (it would be silently unused)."""
    if guide is not None:
        raise ValueError(f"{model_name} is single-contrast; it takes no guide")

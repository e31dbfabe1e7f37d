"""Bicubic downsampling as in the SERAN / W²AMSN / FA-GAN protocol (MATLAB ``imresize``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mrisr.degrade.base import AxisMap, Degradation, Degraded, check_divisible
from mrisr.degrade.resample import apply_separable, imresize, imresize_matrix

__all__ = ["Bicubic", "bicubic_downsample", "imresize"]


def bicubic_downsample(x: torch.Tensor, scale: int, antialias: bool = True) -> torch.Tensor:
    """MATLAB ``imresize(x, 1/scale, 'bicubic')`` of ``x`` [..., H, W]; H, W divisible by scale."""
    h, w = x.shape[-2:]
    check_divisible((h, w), (scale, scale), "bicubic")
    return apply_separable(
        x, imresize_matrix(h, h // scale, antialias), imresize_matrix(w, w // scale, antialias)
    )


@dataclass(frozen=True)
class Bicubic(Degradation):
    """Bicubic (Keys, a = −0.5) downsampling by an integer ``scale`` with MATLAB's antialiasing."""

    scale: int = 2
    antialias: bool = True

    method = "bicubic"
    integer_scale = True

    def apply(self, x, spacing=(1.0, 1.0), generator=None) -> Degraded:
        y = bicubic_downsample(x, self.scale, self.antialias)
        m = AxisMap(float(self.scale), (self.scale - 1) / 2)
        return Degraded(y, self.params(), (m, m))

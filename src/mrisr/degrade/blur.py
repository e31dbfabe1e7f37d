"""Gaussian blur followed by decimation (σ in pixels, or the FWHM of the PSF in mm)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mrisr.degrade.base import AxisMap, Degradation, Degraded, check_divisible
from mrisr.degrade.resample import apply_separable, gaussian_matrix
from mrisr.errors import ConfigError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548


def gaussian_downsample(
    x: torch.Tensor, scale: int, sigma: tuple[float, float], truncate: float = 4.0
) -> torch.Tensor:
    """Blur ``x`` [..., H, W] with a Gaussian of ``sigma`` = (σ_H, σ_W) pixels and keep one
    sample per ``scale``×``scale`` block, taken at the block centre (exactly, by evaluating the
    kernel there, so even scales need no half-pixel interpolation)."""
    h, w = x.shape[-2:]
    check_divisible((h, w), (scale, scale), "gaussian")
    return apply_separable(
        x,
        gaussian_matrix(h, scale, float(sigma[0]), truncate),
        gaussian_matrix(w, scale, float(sigma[1]), truncate),
    )


@dataclass(frozen=True)
class Gaussian(Degradation):
    """Gaussian PSF + decimation by ``scale``.

    Give ``sigma`` (pixels of the input) or ``fwhm_mm`` (the PSF's full width at half maximum
    in mm, converted per axis with the pixel spacing). With neither, the FWHM equals the output
    pixel size (``scale`` input pixels), a PSF about as wide as the new voxel.
    """

    scale: int = 2
    sigma: float | None = None
    fwhm_mm: float | None = None
    truncate: float = 4.0

    method = "gaussian"
    integer_scale = True

    def sigmas(self, spacing: tuple[float, float]) -> tuple[float, float]:
        if self.sigma is not None and self.fwhm_mm is not None:
            raise ConfigError("gaussian: give sigma (pixels) or fwhm_mm (mm), not both")
        if self.sigma is not None:
            if self.sigma < 0:
                raise ConfigError(f"gaussian: sigma must be >= 0 pixels, got {self.sigma}")
            return (float(self.sigma), float(self.sigma))
        if self.fwhm_mm is not None:
            if self.fwhm_mm <= 0:
                raise ConfigError(f"gaussian: fwhm_mm must be > 0, got {self.fwhm_mm}")
            return tuple(self.fwhm_mm / FWHM_PER_SIGMA / s for s in spacing)  # type: ignore
        s = self.scale / FWHM_PER_SIGMA
        return (s, s)

    def apply(self, x, spacing=(1.0, 1.0), generator=None) -> Degraded:
        sig = self.sigmas(spacing)
        y = gaussian_downsample(x, self.scale, sig, self.truncate)
        params = self.params()
        params["sigma_px"] = [float(s) for s in sig]
        params["fwhm_mm_used"] = [
            float(s * FWHM_PER_SIGMA * d) for s, d in zip(sig, spacing, strict=True)
        ]
        m = AxisMap(float(self.scale), (self.scale - 1) / 2)
        return Degraded(y, params, (m, m))

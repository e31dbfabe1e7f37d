"""Rician noise: the magnitude of a complex image with Gaussian noise in both channels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mrisr.degrade.base import Degradation, Degraded
from mrisr.errors import ConfigError


def foreground_mean(x: torch.Tensor, fraction: float = 0.1) -> float:
    """Mean of the voxels above ``fraction`` × the 99th percentile of ``x`` (the signal level
    used to turn an SNR into a noise σ; robust to a few bright voxels)."""
    flat = x.detach().reshape(-1).float()
    if flat.numel() > 2_000_000:  # quantile has an input-size limit; a strided sample is enough
        flat = flat[:: flat.numel() // 1_000_000 + 1]
    p99 = torch.quantile(flat, 0.99)
    fg = flat[flat > fraction * p99]
    return float(fg.mean()) if fg.numel() else float(flat.abs().mean())


def rician_noise(
    x: torch.Tensor, sigma: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``sqrt((x + n₁)² + n₂²)`` with n₁, n₂ ~ N(0, σ²) drawn from ``generator``."""
    n1 = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    n2 = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return torch.sqrt((x + sigma * n1) ** 2 + (sigma * n2) ** 2)


def _finite(v: object) -> bool:
    try:
        return math.isfinite(float(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Rician(Degradation):
    """Rician noise at a requested SNR = (mean foreground signal) / σ.

    The foreground mean is measured over everything passed in one call (a whole volume through
    the volume layer), so every slice of a volume gets the same σ. Give ``sigma`` instead to set
    the noise level in intensity units.
    """

    snr: float | None = 30.0
    sigma: float | None = None

    method = "rician"

    def __post_init__(self) -> None:
        # Checked when the step is made, before any scan is read: SNR NaN wrote all-NaN volumes.
        if self.sigma is not None:
            if not (_finite(self.sigma) and float(self.sigma) >= 0):
                raise ConfigError(f"rician: sigma must be a finite number >= 0, got {self.sigma}")
        elif not (_finite(self.snr) and float(self.snr) > 0):  # type: ignore[arg-type]
            raise ConfigError(f"rician: snr must be a finite number > 0, got {self.snr}")

    def apply(self, x, spacing=(1.0, 1.0), generator=None) -> Degraded:
        params = self.params()
        if self.sigma is not None:
            sigma = float(self.sigma)
        else:
            assert self.snr is not None
            signal = foreground_mean(x)
            sigma = signal / float(self.snr)
            params["signal_mean"] = signal
        if sigma < 0:
            raise ConfigError(f"rician: sigma must be >= 0, got {sigma}")
        params["sigma_used"] = sigma
        return Degraded(rician_noise(x, sigma, generator), params)

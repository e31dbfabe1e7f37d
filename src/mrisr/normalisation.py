"""Intensity normalisation a model expects, fitted once per volume and inverted on output."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mrisr.errors import ConfigError

_MODES = ("percentile", "max", "zscore", "none")


@dataclass(frozen=True)
class Normalisation:
    """The intensity mapping a model expects; stats are computed once per volume.

    ``apply`` is ``(x − offset) / scale`` and ``invert`` its inverse, with ``fit`` choosing
    offset and scale by ``mode``: "percentile" (``p_low``, ``p_high − p_low`` from the volume's
    ``low``/``high`` percentiles), "max" (0, max |x|), "zscore" (mean, std) or "none" (0, 1).
    ``clip`` clamps the normalised values to [0, 1] in "percentile" and "max" modes and to
    [−6, 6] in "zscore" mode (the fastMRI / SANet transform), so ``invert`` is exact only
    inside that range; it is ignored by "none". It is
    off by default: at inference, clipping at the 99.5th percentile would flatten the brightest
    structures (vessels, fat, CSF on T2) of every scan the model sees.
    """

    mode: str = "percentile"
    low: float = 0.0
    high: float = 99.5
    clip: bool = False

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ConfigError(
                f"unknown normalisation mode '{self.mode}'; use one of {', '.join(_MODES)}"
            )
        if self.mode == "percentile" and not 0.0 <= self.low < self.high <= 100.0:
            raise ConfigError(
                f"normalisation percentiles need 0 <= low < high <= 100, got {self.low}, "
                f"{self.high}"
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Normalisation:
        """Build from a ``config.json`` entry; unknown keys raise :class:`ConfigError`."""
        unknown = sorted(set(d) - {"mode", "low", "high", "clip"})
        if unknown:
            raise ConfigError(f"unknown normalisation keys: {', '.join(unknown)}")
        return cls(**d)

    def fit(self, volume_data: np.ndarray | torch.Tensor) -> dict[str, float]:
        """Stats of one volume: ``{"offset": o, "scale": s}`` (plain floats, JSON-ready)."""
        if isinstance(volume_data, torch.Tensor):
            volume_data = volume_data.detach().cpu().numpy()
        x = np.asarray(volume_data, dtype=np.float64)
        x = x[np.isfinite(x)]
        if self.mode == "none" or x.size == 0:
            offset, scale = 0.0, 1.0
        elif self.mode == "percentile":
            offset, top = np.percentile(x, [self.low, self.high])
            scale = top - offset
        elif self.mode == "max":
            offset, scale = 0.0, np.abs(x).max()
        else:
            offset, scale = x.mean(), x.std()
        # A constant volume has no range; keep it finite rather than dividing by zero.
        if not scale > 0:
            scale = 1.0
        return {"offset": float(offset), "scale": float(scale)}

    def apply(self, x: Any, stats: Mapping[str, float]) -> Any:
        """Normalise an array or tensor with stats from :meth:`fit`."""
        y = (x - stats["offset"]) / stats["scale"]
        if self.clip and self.mode in ("percentile", "max"):
            y = y.clip(0.0, 1.0)
        elif self.clip and self.mode == "zscore":
            y = y.clip(-6.0, 6.0)
        return y

    def invert(self, y: Any, stats: Mapping[str, float]) -> Any:
        """Map a network output back to the volume's intensities."""
        return y * stats["scale"] + stats["offset"]

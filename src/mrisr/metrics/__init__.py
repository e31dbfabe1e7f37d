"""Reference metrics (PSNR, SSIM, NMSE per image and per volume), paired statistics,
no-reference quality (MSCN / BRISQUE features, NIQE) and the acquired resolution of a scan
(:mod:`mrisr.metrics.spectrum`).

The names below are imported on first use: ``import mrisr.metrics.spectrum`` (numpy / scipy)
does not load torch; the reference metrics do. See :mod:`mrisr.metrics.reference` and
:mod:`mrisr.metrics.noref` for the exact definitions.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "brisque_features": "noref",
    "mscn": "noref",
    "niqe": "noref",
    "niqe_volume": "noref",
    "evaluate_volume": "scores",
    "nmse": "reference",
    "psnr": "reference",
    "ssim": "reference",
    "paired_slices": "stats",
    "paired_tests": "stats",
    "acquired_resolution": "acquired",
    "effective_resolution": "spectrum",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"mrisr.metrics.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'mrisr.metrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))

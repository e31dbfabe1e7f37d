"""Reference metrics (PSNR, SSIM, NMSE per image and per volume), paired statistics and
no-reference quality (MSCN / BRISQUE features, NIQE).

Importing this package loads torch (``mrisr`` itself stays light and imports it lazily).
See :mod:`mrisr.metrics.reference` and :mod:`mrisr.metrics.noref` for the exact definitions.
"""

from __future__ import annotations

from mrisr.metrics.noref import brisque_features, mscn, niqe, niqe_volume
from mrisr.metrics.reference import evaluate_volume, nmse, psnr, ssim
from mrisr.metrics.stats import paired_tests

__all__ = [
    "brisque_features",
    "evaluate_volume",
    "mscn",
    "niqe",
    "niqe_volume",
    "nmse",
    "paired_tests",
    "psnr",
    "ssim",
]

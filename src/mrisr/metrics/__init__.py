"""Reference metrics (PSNR, SSIM, NMSE per image and per volume) and paired statistics.

Importing this package loads torch (``mrisr`` itself stays light and imports it lazily).
See :mod:`mrisr.metrics.reference` for the exact definitions.
"""

from __future__ import annotations

from mrisr.metrics.reference import evaluate_volume, nmse, psnr, ssim
from mrisr.metrics.stats import paired_tests

__all__ = ["evaluate_volume", "nmse", "paired_tests", "psnr", "ssim"]

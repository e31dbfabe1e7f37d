"""Densities of MSCN coefficients and paired products (the data of the paper's Fig. 5).

The figure itself is drawn by :func:`mrisr.report.figures.mscn_histogram_plot` (matplotlib);
this module is numpy only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from mrisr.errors import InputError
from mrisr.metrics.noref.coefficients import (
    FOREGROUND,
    ORIENTATIONS,
    _check_fg,
    _scale,
    paired_products,
    to_byte_scale,
)

#: Panels of :func:`mscn_histograms` and their value ranges (outside values still count in
#: the total, so each density integrates to the fraction of samples inside the range).
HISTOGRAM_RANGES = {"mscn": (-3.0, 3.0), **{o: (-1.5, 1.5) for o in ORIENTATIONS}}


def mscn_histograms(
    images: Iterable[Any],
    window: Any = "auto",
    foreground: float = FOREGROUND,
    bins: int = 121,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Densities of the foreground MSCN coefficients and of their paired products (scale 1),
    pooled over ``images`` (e.g. all scored slices of one volume, pre-scaled with
    ``window=None``) → ``{panel: (bin centres, density)}`` for the panels of
    :data:`HISTOGRAM_RANGES`. The curves of the paper's Fig. 5."""
    _check_fg(foreground)
    counts = {k: np.zeros(bins) for k in HISTOGRAM_RANGES}
    totals = dict.fromkeys(HISTOGRAM_RANGES, 0)
    for img in images:
        s = _scale(to_byte_scale(img, window), foreground)
        values = {"mscn": s.coeffs[s.fg], **paired_products(s.coeffs, s.fg)}
        for k, v in values.items():
            counts[k] += np.histogram(v, bins=bins, range=HISTOGRAM_RANGES[k])[0]
            totals[k] += v.size
    if totals["mscn"] == 0:
        raise InputError("no foreground pixel in the images: nothing to histogram")
    out = {}
    for k, (lo, hi) in HISTOGRAM_RANGES.items():
        width = (hi - lo) / bins
        centres = lo + width * (np.arange(bins) + 0.5)
        out[k] = (centres, counts[k] / (max(totals[k], 1) * width))
    return out

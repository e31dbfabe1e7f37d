"""The [0, 255] intensity window, MSCN coefficients, paired products and the foreground mask.

Intensity scale
    BRISQUE and NIQE were designed for 8-bit photographs: the constant ``C = 1`` of the MSCN
    denominator assumes intensities on a 0–255 scale, and MR scans come in arbitrary units.
    Every function of :mod:`mrisr.metrics.noref` therefore maps its input linearly to
    [0, 255] first and clips to that range. ``window="auto"`` (the default) maps the image's
    own minimum to 0 and its 99.5th percentile to 255 (the window :mod:`mrisr.metrics.fid`
    uses), ``window=(lo, hi)`` uses the given window (the volume functions pass one window per
    volume, shared by its slices) and ``window=None`` takes the intensities as they are
    (already 0–255). So a scan's numbers do not depend on its raw units: multiplying a scan
    by 10 changes nothing.

MSCN (mean subtracted contrast normalised) coefficients
    ``Î = (I − μ) / (σ + C)`` with the local mean ``μ = Σ w_kl I_kl`` and the local standard
    deviation ``σ = sqrt(Σ w_kl (I_kl − μ)²)`` over a 7×7 window (k, l = −3..3) of Gaussian
    weights (σ = 1 pixel, normalised to sum 1); borders replicate the edge pixels (MATLAB
    ``imfilter(..., 'replicate')``, as the BRISQUE release does). Paired products of
    neighbouring coefficients, in four orientations: horizontal ``Î(m, n) Î(m, n+1)``,
    vertical ``Î(m, n) Î(m+1, n)``, main diagonal ``D(m, n) = Î(m, n) Î(m−1, n−1)`` and off
    diagonal ``Î(m, n) Î(m−1, n+1)``; only pairs inside the image are formed (no wrap-around).

Foreground
    MR slices are mostly background (zero or noise) where every statistic is degenerate. The
    statistics use only *foreground* coefficients: pixels whose local mean μ exceeds
    ``foreground`` (default 5 %) of the 0–255 scale, eroded by the window radius (3 pixels)
    so that the head/background edge — a contrast no SR method is responsible for — is left
    out. A pair counts when both of its pixels are foreground.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from mrisr.errors import ConfigError, InputError

MSCN_SIGMA = 1.0
MSCN_RADIUS = 3  # 7×7 window, k, l = −3..3
MSCN_C = 1.0
FOREGROUND = 0.05  # of the 0–255 scale, on the local mean

ORIENTATIONS = ("horizontal", "vertical", "diagonal", "off_diagonal")


# ----------------------------------------------------------------------------- intensities


def _as_image(img: Any, name: str = "image") -> np.ndarray:
    a = np.asarray(img)
    if a.dtype.kind not in "biuf":
        raise InputError(f"{name} has dtype {a.dtype}; pass a real-valued (magnitude) image")
    a = a.astype(np.float64)
    if a.ndim == 3 and 1 in a.shape:
        a = a.reshape([n for n in a.shape if n != 1] or [1])
    if a.ndim != 2:
        raise ConfigError(f"{name} must be a 2-D slice [H, W]; got shape {a.shape}")
    if min(a.shape) < 2 * MSCN_RADIUS + 1:
        raise ConfigError(f"{name} is {a.shape[0]}×{a.shape[1]}; at least 7×7 pixels are needed")
    if not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return a


def _window_of(a: np.ndarray, window: Any) -> tuple[float, float] | None:
    if window is None:
        return None
    if isinstance(window, str):
        if window != "auto":
            raise ConfigError(f"window must be 'auto', (lo, hi) or None; got {window!r}")
        from mrisr.metrics.fid import intensity_window

        return intensity_window(a)
    try:
        lo, hi = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ConfigError(f"window must be 'auto', (lo, hi) or None; got {window!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ConfigError(f"window (lo, hi) needs finite lo < hi; got {window!r}")
    return lo, hi


def to_byte_scale(img: Any, window: Any = "auto") -> np.ndarray:
    """``img`` mapped linearly to [0, 255] (float64, clipped) — see the module doc.

    ``window``: ``"auto"`` = (image minimum, 99.5th percentile), ``(lo, hi)``, or ``None`` to
    keep the intensities as they are.
    """
    a = _as_image(img)
    w = _window_of(a, window)
    if w is None:
        return a
    lo, hi = w
    return np.clip((a - lo) * (255.0 / (hi - lo)), 0.0, 255.0)


# ----------------------------------------------------------------------------- MSCN


@lru_cache(maxsize=8)
def _gauss(sigma: float, radius: int) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()  # the 2-D window is the outer product: also sums to 1


def _local_stats(x: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Local Gaussian-weighted mean and standard deviation (Eq. 5–6), replicated borders."""
    from scipy.ndimage import correlate1d

    g = _gauss(float(sigma), MSCN_RADIUS)

    def smooth(v: np.ndarray) -> np.ndarray:
        return correlate1d(correlate1d(v, g, axis=0, mode="nearest"), g, axis=1, mode="nearest")

    mu = smooth(x)
    # Σ w (I − μ)² = Σ w I² − μ² because the weights sum to one.
    var = np.clip(smooth(x * x) - mu * mu, 0.0, None)
    return mu, np.sqrt(var)


def _mscn_parts(x: np.ndarray, sigma: float, c: float) -> tuple[np.ndarray, ...]:
    mu, sd = _local_stats(x, sigma)
    return (x - mu) / (sd + c), mu, sd


def mscn(
    img: Any, sigma: float = MSCN_SIGMA, C: float = MSCN_C, window: Any = "auto"
) -> np.ndarray:
    """MSCN coefficients ``(I − μ) / (σ + C)`` of a 2-D image (Eq. 4–6), float64 ``[H, W]``.

    ``μ`` and ``σ`` are the local mean and standard deviation over a 7×7 Gaussian window
    (``sigma`` in pixels, weights normalised), computed after mapping the image to [0, 255]
    with ``window`` (see :func:`to_byte_scale`). A constant image gives zeros.
    """
    if not (sigma > 0 and C > 0):
        raise ConfigError(f"sigma and C must be positive; got sigma={sigma}, C={C}")
    return _mscn_parts(to_byte_scale(img, window), sigma, C)[0]


_SHIFTS = {  # orientation: (rows of the first factor, rows of the second), same for columns
    "horizontal": ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
    "vertical": ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    # D(m, n) = Î(m, n) Î(m − 1, n − 1)
    "diagonal": ((slice(1, None), slice(1, None)), (slice(None, -1), slice(None, -1))),
    # Î(m, n) Î(m − 1, n + 1)
    "off_diagonal": ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None))),
}


def paired_products(coeffs: Any, mask: Any = None) -> dict[str, np.ndarray]:
    """Products of neighbouring MSCN coefficients in the four orientations.

    Without ``mask``: ``{orientation: 2-D map}`` over the pairs that lie inside the image
    (``[H, W − 1]`` horizontal, ``[H − 1, W]`` vertical, ``[H − 1, W − 1]`` diagonals). With
    a boolean ``mask [H, W]``: ``{orientation: 1-D array}`` of the pairs whose two pixels are
    both in the mask.
    """
    m = np.asarray(coeffs, dtype=np.float64)
    if m.ndim != 2 or min(m.shape) < 2:
        raise ConfigError(f"coefficients must be a 2-D map of at least 2×2; got {m.shape}")
    out = {}
    for name, (a, b) in _SHIFTS.items():
        p = m[a] * m[b]
        if mask is not None:
            k = np.asarray(mask, dtype=bool)
            if k.shape != m.shape:
                raise ConfigError(f"mask shape {k.shape} differs from coefficients {m.shape}")
            p = p[k[a] & k[b]]
        out[name] = p
    return out


# ----------------------------------------------------------------------------- foreground


@dataclass
class _Scale:
    """MSCN coefficients, local σ and the foreground mask of one scale of one image."""

    coeffs: np.ndarray
    sd: np.ndarray
    fg: np.ndarray


def _scale(x: np.ndarray, foreground: float) -> _Scale:
    """MSCN coefficients, local σ and eroded foreground of a [0, 255] image (see the doc)."""
    from scipy.ndimage import binary_erosion

    coeffs, mu, sd = _mscn_parts(x, MSCN_SIGMA, MSCN_C)
    fg = mu > foreground * 255.0
    if foreground > 0:
        fg = binary_erosion(fg, np.ones((2 * MSCN_RADIUS + 1,) * 2, bool), border_value=1)
    return _Scale(coeffs, sd, fg)


def _check_fg(foreground: float) -> None:
    if not 0 <= foreground < 1:
        raise ConfigError(f"foreground must be in [0, 1); got {foreground}")

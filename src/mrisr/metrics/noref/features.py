"""GGD / AGGD fits of MSCN statistics and the 36 BRISQUE features.

Fits (Mittal, Moorthy & Bovik 2012, moment matching)
    GGD: shape α from ``ρ(α) = Γ(2/α)² / (Γ(1/α) Γ(3/α)) = E[|x|]² / E[x²]``, looked up on
    the grid α = 0.2, 0.201, …, 10; variance ``E[x²]``. AGGD: left / right variances
    ``σl² = E[x² | x < 0]``, ``σr² = E[x² | x > 0]``, ``γ = σl / σr``,
    ``R = ρ̂ (γ³ + 1)(γ + 1) / (γ² + 1)²`` matched against ``ρ(ν)`` for the shape ν, and
    the mean ``η = (βr − βl) Γ(2/ν) / Γ(1/ν)`` with ``β = σ sqrt(Γ(1/ν) / Γ(3/ν))``.

BRISQUE features (:func:`brisque_features`, 36 numbers)
    Per scale: GGD shape and variance of the MSCN coefficients (2), then for each of the four
    orientations the AGGD shape, mean, left variance and right variance of the paired
    products (16). Scale 2 is the image halved by MATLAB's ``imresize(I, 0.5)`` (bicubic with
    antialiasing: a blur, then every second sample;
    :func:`mrisr.degrade.resample.imresize_matrix`), as BRISQUE and NIQE do. These features
    are mrisr's MR variant (foreground only, replicated borders). The BRISQUE *score* is an
    SVR trained on human opinion scores of photographs (none exist for MR): the standard
    score with the published LIVE model, on MATLAB's definition of the features, is
    :func:`mrisr.metrics.noref.standard.brisque`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from mrisr.errors import ConfigError, InputError
from mrisr.interp import imresize_matrix
from mrisr.metrics.noref.coefficients import (
    FOREGROUND,
    ORIENTATIONS,
    _check_fg,
    _Scale,
    _scale,
    paired_products,
    to_byte_scale,
)

_SCALE_NAMES = ["mscn_shape", "mscn_var"] + [
    f"{o}_{p}" for o in ORIENTATIONS for p in ("shape", "mean", "var_left", "var_right")
]
#: Names of the 36 BRISQUE / NIQE features, in order (``s1_`` full size, ``s2_`` halved).
FEATURE_NAMES = tuple(f"s{s}_{n}" for s in (1, 2) for n in _SCALE_NAMES)


# ----------------------------------------------------------------------------- fits


@lru_cache(maxsize=1)
def _rho_grid() -> tuple[np.ndarray, np.ndarray]:
    from scipy.special import gammaln

    alpha = np.round(np.arange(200, 10001) * 1e-3, 3)  # 0.2, 0.201, ..., 10
    rho = np.exp(2 * gammaln(2 / alpha) - gammaln(1 / alpha) - gammaln(3 / alpha))
    return alpha, rho


def _shape_for(r: float) -> float:
    alpha, rho = _rho_grid()
    return float(alpha[np.argmin(np.abs(rho - r))])


def _samples(x: Any, name: str) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64).ravel()
    if v.size < 2:
        raise ConfigError(f"a {name} fit needs at least 2 samples; got {v.size}")
    if not np.isfinite(v).all():
        raise InputError(f"{name} samples contain NaN or infinite values")
    return v


def ggd_fit(x: Any) -> tuple[float, float]:
    """Zero-mean generalised Gaussian fit by moment matching → ``(shape α, variance σ²)``.

    α = 2 is a Gaussian, α = 1 a Laplacian. Raises ConfigError for all-zero samples.
    """
    v = _samples(x, "GGD")
    m2 = float(np.mean(v * v))
    if m2 == 0:
        raise ConfigError("cannot fit a GGD to all-zero samples (a flat image)")
    r = float(np.mean(np.abs(v))) ** 2 / m2
    return _shape_for(r), m2


def aggd_fit(x: Any) -> tuple[float, float, float, float]:
    """Asymmetric generalised Gaussian fit → ``(shape ν, mean η, left var σl², right var σr²)``.

    ``σl²`` / ``σr²`` are the mean squares of the negative / positive samples (0 when a side
    has none). Raises ConfigError for all-zero samples.
    """
    from scipy.special import gammaln

    v = _samples(x, "AGGD")
    neg, pos = v[v < 0], v[v > 0]
    var_l = float(np.mean(neg * neg)) if neg.size else 0.0
    var_r = float(np.mean(pos * pos)) if pos.size else 0.0
    m2 = float(np.mean(v * v))
    if m2 == 0:
        raise ConfigError("cannot fit an AGGD to all-zero samples (a flat image)")
    sl, sr = math.sqrt(var_l), math.sqrt(var_r)
    r = float(np.mean(np.abs(v))) ** 2 / m2
    if sr > 0:
        g = sl / sr
        r_norm = r * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    else:  # no positive sample: the limit γ → ∞ of the correction
        r_norm = r
    nu = _shape_for(r_norm)
    k = math.exp(0.5 * (gammaln(1 / nu) - gammaln(3 / nu)))  # β = σ k
    eta = (sr - sl) * k * math.exp(gammaln(2 / nu) - gammaln(1 / nu))
    return nu, float(eta), var_l, var_r


# ----------------------------------------------------------------------------- features


def _halve(x: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(x, 0.5)`` (bicubic, antialiased): ``[ceil(h/2), ceil(w/2)]``."""
    h, w = x.shape
    rows = imresize_matrix(h, (h + 1) // 2, True, 0.5)
    return rows @ x @ imresize_matrix(w, (w + 1) // 2, True, 0.5).T


def _scales(x: np.ndarray, foreground: float) -> tuple[_Scale, _Scale]:
    """Both scales of a [0, 255] image: as it is and halved."""
    return _scale(x, foreground), _scale(_halve(x), foreground)


def _features_of(coeffs: np.ndarray, fg: np.ndarray) -> list[float]:
    """The 18 features of one scale from the foreground coefficients of a region."""
    alpha, var = ggd_fit(coeffs[fg])
    out = [alpha, var]
    for p in paired_products(coeffs, fg).values():
        out.extend(aggd_fit(p))
    return out


def brisque_features(img: Any, window: Any = "auto", foreground: float = FOREGROUND) -> np.ndarray:
    """The 36 BRISQUE features of a 2-D image (names in :data:`FEATURE_NAMES`), float64.

    Computed over the foreground pixels (see :mod:`mrisr.metrics.noref.coefficients`;
    ``foreground=0`` uses every pixel). Raises InputError when the image has too few
    foreground pixels at either scale.
    """
    _check_fg(foreground)
    s1, s2 = _scales(to_byte_scale(img, window), foreground)
    feats = []
    for s in (s1, s2):
        if int(s.fg.sum()) < 16:
            raise InputError(
                "the image has almost no foreground (local mean above "
                f"{foreground:.0%} of the window); pass a slice with tissue in it"
            )
        try:
            feats += _features_of(s.coeffs, s.fg)
        except ConfigError:
            raise InputError("the image is flat in its foreground: no MSCN statistics") from None
    return np.asarray(feats, dtype=np.float64)

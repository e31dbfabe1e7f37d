"""No-reference image quality of MR slices: MSCN statistics, BRISQUE features and NIQE.

No ground truth is needed: these measures describe how "natural" the local statistics of an
image are, so they can score an SR result of a real scan for which no HR acquisition exists.

Intensity scale
    BRISQUE and NIQE were designed for 8-bit photographs: the constant ``C = 1`` of the MSCN
    denominator assumes intensities on a 0–255 scale, and MR scans come in arbitrary units.
    Every function here therefore maps its input linearly to [0, 255] first and clips to
    that range. ``window="auto"`` (the default) maps the image's own minimum to 0 and its
    99.5th percentile to 255 (the window :mod:`mrisr.metrics.fid` uses), ``window=(lo, hi)``
    uses the given window (the volume functions pass one window per volume, shared by its
    slices) and ``window=None`` takes the intensities as they are (already 0–255). So a
    scan's numbers do not depend on its raw units: multiplying a scan by 10 changes nothing.

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
    antialiasing: a blur, then every second sample), as BRISQUE and NIQE do. The BRISQUE
    *score* is an SVR trained on human opinion scores, which mrisr does not have for MR (the
    paper's 900 DMOS-labelled images are not public); mrisr reports the features and NIQE.

NIQE (Mittal, Soundararajan & Bovik 2013; opinion-free)
    The image is cut into non-overlapping ``patch_size`` × ``patch_size`` patches (a centred
    grid; default 32 px: the original's 96 px patches cover about a fifth of a 512-px
    photograph, 32 px a sixth of a 192–256 px MR slice). A patch is used when at least
    ``min_foreground`` (50 %) of its pixels are foreground; its 36 features are computed
    from its coefficients at both scales (the half-size patch at the same place at scale 2).
    A multivariate Gaussian (ν₁, Σ₁) fitted to the patches of *pristine* HR MR slices (only
    the sharpest patches of each slice: mean local σ above 0.75 of that slice's maximum, as
    in the original) is compared with the Gaussian (ν₂, Σ₂) of the test image's patches:
    ``NIQE = sqrt((ν₁ − ν₂)ᵀ ((Σ₁ + Σ₂) / 2)⁺ (ν₁ − ν₂))`` with the Moore–Penrose
    pseudo-inverse. Lower is better. The pristine model shipped with mrisr
    (``niqe_mr_pristine.json``, made by ``scripts/fit_niqe.py``) records which scans and
    slices it was fitted on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.errors import ConfigError, InputError

MSCN_SIGMA = 1.0
MSCN_RADIUS = 3  # 7×7 window, k, l = −3..3
MSCN_C = 1.0
FOREGROUND = 0.05  # of the 0–255 scale, on the local mean
NIQE_PATCH = 32
NIQE_MIN_FOREGROUND = 0.5
NIQE_SHARPNESS = 0.75
PRISTINE_FILE = Path(__file__).resolve().parent / "niqe_mr_pristine.json"

ORIENTATIONS = ("horizontal", "vertical", "diagonal", "off_diagonal")
_SCALE_NAMES = ["mscn_shape", "mscn_var"] + [
    f"{o}_{p}" for o in ORIENTATIONS for p in ("shape", "mean", "var_left", "var_right")
]
#: Names of the 36 BRISQUE / NIQE features, in order (``s1_`` full size, ``s2_`` halved).
FEATURE_NAMES = tuple(f"s{s}_{n}" for s in (1, 2) for n in _SCALE_NAMES)

__all__ = [
    "FEATURE_NAMES",
    "HISTOGRAM_RANGES",
    "NiqeModel",
    "aggd_fit",
    "brisque_features",
    "fit_niqe_model",
    "ggd_fit",
    "load_niqe_model",
    "mscn",
    "mscn_histograms",
    "niqe",
    "niqe_distance",
    "niqe_features",
    "niqe_model_from_patches",
    "niqe_volume",
    "paired_products",
    "pristine_patches",
    "to_byte_scale",
]


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


@lru_cache(maxsize=32)
def _halve_matrix(n: int) -> np.ndarray:
    """MATLAB ``imresize(·, 0.5)`` (bicubic, antialiased) along one axis: ``[ceil(n/2), n]``.

    Output sample j sits at input coordinate 2j + 0.5; the Keys cubic (a = −0.5) is stretched
    by 2 (taps at distances ±0.25 … ±3.25 → 8 taps) and out-of-range taps are mirrored.
    """
    n_out = (n + 1) // 2
    u = 2.0 * np.arange(n_out) + 0.5
    idx = np.floor(u)[:, None] + np.arange(-3, 5)[None, :]
    d = np.abs(u[:, None] - idx) / 2.0
    a = -0.5
    w = np.where(
        d <= 1,
        (a + 2) * d**3 - (a + 3) * d**2 + 1,
        np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0),
    )
    w /= w.sum(axis=1, keepdims=True)
    period = 2 * n
    j = np.mod(idx.astype(np.int64), period)
    j = np.where(j < n, j, period - 1 - j)
    mat = np.zeros((n_out, n))
    np.add.at(mat, (np.repeat(np.arange(n_out), idx.shape[1]), j.ravel()), w.ravel())
    return mat


def _halve(x: np.ndarray) -> np.ndarray:
    return _halve_matrix(x.shape[0]) @ x @ _halve_matrix(x.shape[1]).T


@dataclass
class _Scale:
    """MSCN coefficients, local σ and the foreground mask of one scale of one image."""

    coeffs: np.ndarray
    sd: np.ndarray
    fg: np.ndarray


def _scale(x: np.ndarray, foreground: float) -> _Scale:
    from scipy.ndimage import binary_erosion

    coeffs, mu, sd = _mscn_parts(x, MSCN_SIGMA, MSCN_C)
    fg = mu > foreground * 255.0
    if foreground > 0:
        fg = binary_erosion(fg, np.ones((2 * MSCN_RADIUS + 1,) * 2, bool), border_value=1)
    return _Scale(coeffs, sd, fg)


def _scales(x: np.ndarray, foreground: float) -> tuple[_Scale, _Scale]:
    return _scale(x, foreground), _scale(_halve(x), foreground)


def _features_of(coeffs: np.ndarray, fg: np.ndarray) -> list[float]:
    """The 18 features of one scale from the foreground coefficients of a region."""
    alpha, var = ggd_fit(coeffs[fg])
    out = [alpha, var]
    for p in paired_products(coeffs, fg).values():
        out.extend(aggd_fit(p))
    return out


def _check_fg(foreground: float) -> None:
    if not 0 <= foreground < 1:
        raise ConfigError(f"foreground must be in [0, 1); got {foreground}")


def brisque_features(img: Any, window: Any = "auto", foreground: float = FOREGROUND) -> np.ndarray:
    """The 36 BRISQUE features of a 2-D image (names in :data:`FEATURE_NAMES`), float64.

    Computed over the foreground pixels (see the module doc; ``foreground=0`` uses every
    pixel). Raises InputError when the image has too few foreground pixels at either scale.
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


def niqe_features(
    img: Any,
    patch_size: int = NIQE_PATCH,
    window: Any = "auto",
    foreground: float = FOREGROUND,
    min_foreground: float = NIQE_MIN_FOREGROUND,
) -> tuple[np.ndarray, np.ndarray]:
    """36 features of every usable patch of a 2-D image → ``(features [n, 36], sharpness [n])``.

    Patches tile a centred grid of ``patch_size`` (even) squares; a patch is used when at
    least ``min_foreground`` of its pixels are foreground and its statistics are defined.
    ``sharpness`` is the mean local σ (0–255 scale) over the patch's foreground pixels.
    """
    if isinstance(patch_size, bool) or int(patch_size) != patch_size or patch_size < 8:
        raise ConfigError(f"patch_size must be an even whole number ≥ 8; got {patch_size!r}")
    p = int(patch_size)
    if p % 2:
        raise ConfigError(f"patch_size must be even (halved at scale 2); got {p}")
    if not 0 < min_foreground <= 1:
        raise ConfigError(f"min_foreground must be in (0, 1]; got {min_foreground}")
    _check_fg(foreground)
    x = to_byte_scale(img, window)
    s1, s2 = _scales(x, foreground)
    h, w = x.shape
    r0, c0 = (h % p) // 2 // 2 * 2, (w % p) // 2 // 2 * 2  # even offsets: scale 2 aligns
    feats, sharp = [], []
    q = p // 2
    for r in range(r0, h - p + 1, p):
        for c in range(c0, w - p + 1, p):
            fg1 = s1.fg[r : r + p, c : c + p]
            fg2 = s2.fg[r // 2 : r // 2 + q, c // 2 : c // 2 + q]
            if fg1.mean() < min_foreground or fg2.mean() < min_foreground:
                continue
            try:
                f = _features_of(s1.coeffs[r : r + p, c : c + p], fg1)
                f += _features_of(s2.coeffs[r // 2 : r // 2 + q, c // 2 : c // 2 + q], fg2)
            except ConfigError:  # a flat patch: no statistics
                continue
            if not np.isfinite(f).all():
                continue
            feats.append(f)
            sharp.append(float(s1.sd[r : r + p, c : c + p][fg1].mean()))
    return np.asarray(feats, dtype=np.float64).reshape(-1, 36), np.asarray(sharp)


# ----------------------------------------------------------------------------- NIQE model


@dataclass(frozen=True)
class NiqeModel:
    """Multivariate Gaussian of pristine patch features (``mean [36]``, ``cov [36, 36]``)."""

    mean: np.ndarray
    cov: np.ndarray
    patch_size: int = NIQE_PATCH
    foreground: float = FOREGROUND
    min_foreground: float = NIQE_MIN_FOREGROUND
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "mrisr-niqe-model/1",
            "feature_names": list(FEATURE_NAMES),
            "patch_size": self.patch_size,
            "foreground": self.foreground,
            "min_foreground": self.min_foreground,
            "mscn": {"sigma": MSCN_SIGMA, "radius": MSCN_RADIUS, "C": MSCN_C},
            "mean": [float(v) for v in self.mean],
            "cov": [[float(v) for v in row] for row in self.cov],
            "meta": self.meta,
        }


def pristine_patches(
    img: Any,
    patch_size: int = NIQE_PATCH,
    sharpness: float = NIQE_SHARPNESS,
    window: Any = "auto",
    foreground: float = FOREGROUND,
    min_foreground: float = NIQE_MIN_FOREGROUND,
) -> np.ndarray:
    """Features ``[n, 36]`` of the sharpest patches of one pristine slice: those whose
    sharpness exceeds ``sharpness`` × the slice's largest (NIQE's rule; 0 keeps all)."""
    if not 0 <= sharpness < 1:
        raise ConfigError(f"sharpness must be in [0, 1); got {sharpness}")
    f, s = niqe_features(img, patch_size, window, foreground, min_foreground)
    return f[s > sharpness * s.max()] if (len(f) and sharpness > 0) else f


def niqe_model_from_patches(
    features: Any,
    patch_size: int = NIQE_PATCH,
    foreground: float = FOREGROUND,
    min_foreground: float = NIQE_MIN_FOREGROUND,
    meta: dict | None = None,
) -> NiqeModel:
    """The Gaussian (mean, covariance with n − 1) of pristine patch features ``[n, 36]``;
    ``meta["n_patches"]`` is filled in."""
    f = np.asarray(features, dtype=np.float64).reshape(-1, 36)
    if len(f) < 2 * f.shape[1]:
        raise InputError(
            f"only {len(f)} pristine patches; at least {2 * f.shape[1]} are needed to fit "
            "the 36-d Gaussian (give more or larger slices)"
        )
    info = dict(meta or {})
    info["n_patches"] = len(f)
    cov = np.cov(f, rowvar=False)
    return NiqeModel(f.mean(0), cov, int(patch_size), foreground, min_foreground, info)


def fit_niqe_model(
    images: Iterable[Any],
    patch_size: int = NIQE_PATCH,
    sharpness: float = NIQE_SHARPNESS,
    window: Any = "auto",
    foreground: float = FOREGROUND,
    min_foreground: float = NIQE_MIN_FOREGROUND,
    meta: dict | None = None,
) -> NiqeModel:
    """Fit the pristine Gaussian to the sharpest patches of ``images`` (2-D slices; see
    :func:`pristine_patches`). ``window`` applies to every image (``"auto"``: each its own;
    pass slices already scaled with a volume's window and ``window=None`` to share it)."""
    rows = [
        pristine_patches(img, patch_size, sharpness, window, foreground, min_foreground)
        for img in images
    ]
    feats = np.concatenate(rows) if rows else np.zeros((0, 36))
    info = dict(meta or {})
    info.update({"n_images": sum(len(r) > 0 for r in rows), "sharpness": sharpness})
    return niqe_model_from_patches(feats, patch_size, foreground, min_foreground, info)


def load_niqe_model(path: str | Path | None = None) -> NiqeModel:
    """The pristine NIQE model from a JSON file (default: the one shipped with mrisr)."""
    p = Path(path) if path is not None else PRISTINE_FILE
    fix = "reinstall mrisr or refit it with scripts/fit_niqe.py" if path is None else "refit it"
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"NIQE model '{p}' does not exist; {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"NIQE model '{p}' cannot be read ({exc}); {fix}") from None
    try:
        if d["format"] != "mrisr-niqe-model/1":
            raise ValueError(f"format {d['format']!r}")
        mean = np.asarray(d["mean"], dtype=np.float64)
        cov = np.asarray(d["cov"], dtype=np.float64)
        if mean.shape != (36,) or cov.shape != (36, 36):
            raise ValueError(f"mean {mean.shape}, cov {cov.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
            raise ValueError("non-finite values")
        m = d["mscn"]
        if (m["sigma"], m["radius"], m["C"]) != (MSCN_SIGMA, MSCN_RADIUS, MSCN_C):
            raise ValueError(f"fitted with other MSCN settings {m}")
        model = NiqeModel(
            mean,
            cov,
            int(d["patch_size"]),
            float(d["foreground"]),
            float(d["min_foreground"]),
            dict(d.get("meta", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"NIQE model '{p}' is not a valid mrisr NIQE model ({exc}); {fix}"
        ) from None
    return model


def niqe_distance(model: NiqeModel, features: np.ndarray) -> float:
    """NIQE of a set of patch features ``[n ≥ 2, 36]`` against ``model``."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != 36 or f.shape[0] < 2:
        raise ConfigError(f"NIQE needs features of at least 2 patches [n, 36]; got {f.shape}")
    d = model.mean - f.mean(0)
    s = (model.cov + np.cov(f, rowvar=False)) / 2
    return float(math.sqrt(max(float(d @ np.linalg.pinv(s, hermitian=True) @ d), 0.0)))


def niqe(img: Any, model: NiqeModel | None = None, window: Any = "auto") -> float:
    """NIQE of a 2-D image (lower is better), with the shipped pristine MR model by default.

    Raises InputError when fewer than 2 patches of the image are usable.
    """
    model = load_niqe_model() if model is None else model
    f, _ = niqe_features(img, model.patch_size, window, model.foreground, model.min_foreground)
    if len(f) < 2:
        raise InputError(
            f"only {len(f)} usable {model.patch_size}×{model.patch_size} patch(es) in the "
            f"image; NIQE needs 2 (at least {model.min_foreground:.0%} foreground each)"
        )
    return niqe_distance(model, f)


# ----------------------------------------------------------------------------- histograms

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


# ----------------------------------------------------------------------------- volumes


def niqe_volume(
    data: Any,
    axis: int = -1,
    model: NiqeModel | None = None,
    window: Sequence[float] | str | None = "auto",
) -> dict[str, Any]:
    """NIQE and BRISQUE features of a 3-D volume, per slice along ``axis`` and per volume.

    One intensity window for the whole volume (``"auto"``: its minimum and 99.5th
    percentile). A slice is scored when it has at least 2 usable patches; others (mostly
    background) are listed in ``skipped``. Returns plain floats::

        {"volume": {"niqe" (all scored slices' patches pooled), "niqe_mean_slices",
                    "mscn_shape", "mscn_var" (means over the scored slices), "n_slices",
                    "n_patches", "n_skipped", "window", "brisque_mean": {name: mean}},
         "slices": [{"index", "niqe", "n_patches", "mscn_shape", "mscn_var"}, ...],
         "skipped": [{"index", "reason"}, ...]}
    """
    v = np.asarray(data)
    if v.ndim != 3:
        raise ConfigError(f"niqe_volume needs a 3-D volume; got shape {v.shape}")
    if not -3 <= axis <= 2:
        raise ConfigError(f"axis must be 0, 1 or 2 (or -1..-3); got {axis}")
    model = load_niqe_model() if model is None else model
    v = np.moveaxis(v, axis % 3, 0)
    win = _window_of(v, window)
    slices, skipped, pooled, brisque = [], [], [], []
    for i in range(v.shape[0]):
        x = to_byte_scale(v[i], win)
        f, _ = niqe_features(x, model.patch_size, None, model.foreground, model.min_foreground)
        if len(f) < 2:
            skipped.append(
                {"index": i, "reason": f"{len(f)} usable patches (2 needed): mostly background"}
            )
            continue
        b = brisque_features(x, None, model.foreground)
        pooled.append(f)
        brisque.append(b)
        slices.append(
            {
                "index": i,
                "niqe": niqe_distance(model, f),
                "n_patches": len(f),
                "mscn_shape": float(b[0]),
                "mscn_var": float(b[1]),
            }
        )
    if not slices:
        raise InputError(
            f"no slice has 2 usable {model.patch_size}×{model.patch_size} patches (at least "
            f"{model.min_foreground:.0%} foreground each); is the volume mostly background?"
        )
    allf, bm = np.concatenate(pooled), np.mean(brisque, axis=0)
    volume = {
        "niqe": niqe_distance(model, allf),
        "niqe_mean_slices": float(np.mean([s["niqe"] for s in slices])),
        "mscn_shape": float(bm[0]),
        "mscn_var": float(bm[1]),
        "n_slices": len(slices),
        "n_patches": len(allf),
        "n_skipped": len(skipped),
        "window": None if win is None else [float(win[0]), float(win[1])],
        "brisque_mean": {n: float(x) for n, x in zip(FEATURE_NAMES, bm, strict=True)},
    }
    return {"volume": volume, "slices": slices, "skipped": skipped}

"""Standard BRISQUE and NIQE: MATLAB's definitions with the published natural-image models.

These are the scores papers report (their numbers are comparable with these), next to mrisr's
own MR-fitted NIQE (:func:`mrisr.metrics.noref.niqe`, reported as ``niqe_mr``). numpy / scipy
only. The models are package data in ``models/`` (see ``models/NOTICE.md``), read as text /
JSON, never unpickled (:mod:`~mrisr.metrics.noref.standard_models`). Lower is better.

Input: 8-bit luminance
    MATLAB's ``brisque()`` / ``niqe()`` see an 8-bit grey image as doubles in [0, 255]
    (colour images go through ``rgb2gray``). :func:`to_luminance` does the same: an
    ``[H, W, 3]`` image is converted with MATLAB's ``rgb2gray`` weights, the values are mapped
    to [0, 255] with ``window`` and rounded to whole grey levels as an 8-bit export would
    (BasicSR rounds "for being consistent with MATLAB's result"). The half-size scale is not
    rounded again (the reference code resizes doubles).

MR slices: the window
    An MR scan has arbitrary units, and the MSCN constant ``C = 1`` assumes a 0-255 scale, so
    the scores depend on how the scan is mapped to grey levels. :func:`mr_window` (the
    ``window="mr"`` of every function here) maps 0 to grey 0 and the *volume's* 99.5th
    percentile to 255, clipping above and below: one window per scan, shared by its slices,
    as a radiologist's display or an 8-bit PNG export of the scan would use. 0 rather than the
    minimum because MR magnitude is non-negative: the negative undershoot of an interpolated
    or SR result is then clipped (as on export) instead of shifting its whole grey scale away
    from its input's. The 99.5th percentile lets the brightest 0.5 % (fat, vessels, flow
    artefacts) saturate instead of squeezing the tissue into a few grey levels; it is the
    upper end mrisr's MR NIQE and FID use too.

BRISQUE (Mittal, Moorthy & Bovik 2012; the authors' ``brisque_feature.m`` / ``brisquescore``)
    At two scales (the image, then MATLAB ``imresize(I, 0.5)``: bicubic, antialiased, via
    :func:`mrisr.interp.imresize_matrix`): MSCN coefficients ``(I - mu) / (sigma + 1)`` with a
    7×7 Gaussian window (sigma 7/6, ``filter2(..., 'same')``: zero padding), the GGD shape and
    variance of the coefficients, and for the four ``circshift`` neighbours (0 1; 1 0; 1 1;
    -1 1) the AGGD shape, mean and left / right variances of the products: 36 features. Shapes
    come from the grid 0.2:0.001:10 as in MATLAB. Features are scaled to [-1, 1] with the
    range file (``svm-scale``) and scored with the epsilon-SVR:
    ``sum_i coef_i exp(-gamma ||x - sv_i||^2) - rho``. (The MATLAB release writes the features
    with 6 decimals for ``svm-predict``; the scores here use them unrounded.)

NIQE (Mittal, Soundararajan & Bovik 2013; BasicSR ``calculate_niqe`` = the authors'
``computequality.m``)
    The image is cropped at the bottom / right to whole 96×96 blocks; MSCN with the model's
    7×7 window and replicated borders (``imfilter(..., 'replicate')``); per block, 18 AGGD
    features of the coefficients and of the ``circshift`` products within the block (0 1; 1 0;
    1 1; 1 -1), at full size (96×96) and half size (48×48 blocks of the imresized image).
    The test image's Gaussian: ``nanmean`` of the block features and the covariance of the
    blocks without NaN (a constant block has NaN features). ``NIQE = sqrt(d' pinv((S_pris +
    S_img) / 2) d)``. Every block is used: the sharpness threshold 0.75 selects blocks only
    when the pristine model is fitted (``estimatemodelparam.m``), which the shipped
    parameters already include; ``computequality.m`` and BasicSR select nothing at test time.
    One departure from BasicSR, following MATLAB: with a single usable block MATLAB's
    ``nancov`` is 0 (one observation) and the score is defined, where ``np.cov`` gives NaN.

Precision and checks
    Everything is float64, as in the authors' MATLAB release. MATLAB's own ``niqe`` evidently
    works in single precision: on BasicSR's ``baboon.png`` it gives 5.72957, this module
    5.72996 (BasicSR's float32 code gives MATLAB's value, its float64 run this one).
    ``tests/test_standard_iqa.py`` checks both scores against pyiqa, BasicSR, libsvm and the
    ``brisque`` package on MR slices and photographs, and states the tolerances.

Volumes (:func:`standard_volume`)
    Slices along ``axis`` with signal (at least 10 % of the pixels above 5 % of the window)
    are scored; the volume's score is the mean over its scored slices. NIQE needs a slice of
    at least 96×96; smaller scans get ``None`` and a note.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from mrisr.errors import ConfigError, InputError
from mrisr.interp import imresize_matrix
from mrisr.metrics.noref.standard_models import MODEL_DIR as MODEL_DIR
from mrisr.metrics.noref.standard_models import (
    BrisqueModel,
    load_brisque_model,
    load_niqe_params,
)

NIQE_BLOCK = 96
MR_PERCENTILE = 99.5
SIGNAL_LEVEL = 0.05  # of the window: a pixel with signal
SIGNAL_FRACTION = 0.10  # of a slice's pixels: a slice with signal
_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)  # MATLAB rgb2gray
_BRISQUE_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
_NIQE_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


# ----------------------------------------------------------------------------- grey levels


def mr_window(volume: Any, percentile: float = MR_PERCENTILE) -> tuple[float, float]:
    """``(0, p99.5)`` of a scan (or slice): the grey-level window of MR magnitude images."""
    v = np.asarray(volume, dtype=np.float64)
    if v.size == 0 or not np.isfinite(v).all():
        raise InputError("the scan is empty or contains NaN / infinite values")
    hi = float(np.percentile(v, percentile))
    if hi <= 0:
        raise InputError(
            f"the scan's {percentile}th percentile is {hi:g} (not above 0): it is not a "
            "magnitude image; give the grey-level window as window=(lo, hi)"
        )
    return 0.0, hi


def _window(a: np.ndarray, window: Any) -> tuple[float, float] | None:
    if window is None:
        return None
    if isinstance(window, str):
        if window != "mr":
            raise ConfigError(f"window must be 'mr', (lo, hi) or None; got {window!r}")
        return mr_window(a)
    try:
        lo, hi = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ConfigError(f"window must be 'mr', (lo, hi) or None; got {window!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ConfigError(f"window (lo, hi) needs finite lo < hi; got {window!r}")
    return lo, hi


def to_luminance(img: Any, window: Any = None) -> np.ndarray:
    """The 8-bit luminance MATLAB's brisque / niqe see: float64 whole numbers in [0, 255].

    ``img``: ``[H, W]`` or ``[H, W, 3]`` (RGB, MATLAB ``rgb2gray``). ``window``: ``None``
    takes the values as grey levels (they must lie in [0, 255], e.g. a uint8 image),
    ``"mr"`` maps with :func:`mr_window` of this image, ``(lo, hi)`` maps lo → 0, hi → 255;
    mapped values are clipped. Rounded half up, as MATLAB's conversion to uint8.
    """
    a = np.asarray(img)
    if a.dtype.kind not in "biuf":
        raise InputError(f"the image has dtype {a.dtype}; pass a real-valued image")
    a = a.astype(np.float64)
    if a.ndim == 3 and a.shape[-1] == 3:
        a = a @ np.asarray(_RGB2GRAY)
    if a.ndim != 2:
        raise ConfigError(f"the image must be [H, W] or [H, W, 3]; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError("the image contains NaN or infinite values")
    w = _window(a, window)
    if w is None:
        if a.size and (a.min() < 0 or a.max() > 255):
            raise InputError(
                f"the image's values span [{a.min():g}, {a.max():g}], not grey levels 0-255; "
                "pass window='mr' (an MR slice) or window=(lo, hi)"
            )
    else:
        lo, hi = w
        a = np.clip((a - lo) * (255.0 / (hi - lo)), 0.0, 255.0)
    return np.floor(a + 0.5)


# ----------------------------------------------------------------------------- statistics


@lru_cache(maxsize=1)
def _brisque_window() -> np.ndarray:
    """``fspecial('gaussian', 7, 7/6)`` normalised to sum 1."""
    x = np.arange(-3, 4, dtype=np.float64)
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * (7 / 6) ** 2))
    return g / g.sum()


def _mscn(x: np.ndarray, window: np.ndarray, mode: str) -> np.ndarray:
    from scipy.ndimage import correlate

    mu = correlate(x, window, mode=mode, cval=0.0)
    sigma = np.sqrt(np.abs(correlate(x * x, window, mode=mode, cval=0.0) - mu * mu))
    return (x - mu) / (sigma + 1.0)


def _halve(x: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(x, 0.5)``: bicubic, antialiased, ``ceil`` of half the size."""
    h, w = x.shape
    rows = imresize_matrix(h, (h + 1) // 2, True, 0.5)
    return rows @ x @ imresize_matrix(w, (w + 1) // 2, True, 0.5).T


@lru_cache(maxsize=1)
def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``gam = 0.2:0.001:10`` and MATLAB's two ratio tables over it."""
    from scipy.special import gamma

    gam = np.arange(0.2, 10.001, 0.001)
    ggd = gamma(1 / gam) * gamma(3 / gam) / gamma(2 / gam) ** 2  # estimateggdparam
    aggd = gamma(2 / gam) ** 2 / (gamma(1 / gam) * gamma(3 / gam))  # estimateaggdparam
    return gam, ggd, aggd


def _msq(v: np.ndarray) -> float:
    """``mean(v.^2)``: NaN for no samples, as in MATLAB."""
    return float(np.mean(v * v)) if v.size else math.nan


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan  # 0/0 is NaN in MATLAB, not an error


def _ggd(v: np.ndarray) -> tuple[float, float]:
    """``estimateggdparam`` → (shape, variance). An undefined ratio (NaN) gives the first
    grid value, as MATLAB's ``min`` does over all-NaN."""
    gam, ggd, _ = _grid()
    m2 = _msq(v)
    rho = _ratio(m2, float(np.mean(np.abs(v))) ** 2)
    with np.errstate(invalid="ignore"):
        return float(gam[np.argmin(np.abs(rho - ggd))]), m2


def _aggd(v: np.ndarray) -> tuple[float, float, float]:
    """``estimateaggdparam`` → (shape, left std, right std); NaN stds when a side is empty."""
    gam, _, aggd = _grid()
    left, right = math.sqrt(_msq(v[v < 0])), math.sqrt(_msq(v[v > 0]))
    g = _ratio(left, right)
    rhat = _ratio(float(np.mean(np.abs(v))) ** 2, _msq(v))
    rnorm = rhat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    with np.errstate(invalid="ignore"):
        return float(gam[np.argmin((aggd - rnorm) ** 2)]), left, right


def _gamma_ratios(alpha: float) -> tuple[float, float]:
    """``(gamma(2/a) / gamma(1/a), sqrt(gamma(1/a) / gamma(3/a)))``."""
    from scipy.special import gamma

    return gamma(2 / alpha) / gamma(1 / alpha), math.sqrt(gamma(1 / alpha) / gamma(3 / alpha))


# ----------------------------------------------------------------------------- BRISQUE


def brisque_features(img: Any, window: Any = None) -> np.ndarray:
    """The 36 BRISQUE features of ``brisque_feature.m`` (float64; see the module doc)."""
    x = to_luminance(img, window)
    if min(x.shape) < 8:
        raise ConfigError(f"BRISQUE needs an image of at least 8×8 pixels; got {x.shape}")
    feats: list[float] = []
    for scale in (1, 2):
        m = _mscn(x, _brisque_window(), "constant")
        feats.extend(_ggd(m.ravel()))
        for shift in _BRISQUE_SHIFTS:
            alpha, left, right = _aggd((m * np.roll(m, shift, axis=(0, 1))).ravel())
            r21, k = _gamma_ratios(alpha)
            feats += [alpha, (right - left) * r21 * k, left**2, right**2]
        if scale == 1:
            x = _halve(x)
    return np.asarray(feats, dtype=np.float64)


def brisque_from_features(features: Any, model: BrisqueModel | None = None) -> float:
    """The SVR's score of 36 BRISQUE features (scaled with the model's range first)."""
    model = load_brisque_model() if model is None else model
    f = np.asarray(features, dtype=np.float64).ravel()
    if f.shape != (36,):
        raise ConfigError(f"BRISQUE needs 36 features; got {f.shape}")
    if not np.isfinite(f).all():
        raise InputError("the image is flat: its BRISQUE features are undefined")
    span = model.feature_max - model.feature_min
    # svm-scale leaves out a feature whose range is a single value: 0 in the sparse input
    scaled = np.where(span > 0, -1 + 2 * (f - model.feature_min) / np.where(span > 0, span, 1), 0)
    d2 = ((model.sv - scaled) ** 2).sum(axis=1)
    return float(model.coef @ np.exp(-model.gamma * d2) - model.rho)


def brisque(img: Any, window: Any = None) -> float:
    """Standard BRISQUE of a 2-D image with the LIVE model (lower is better; about 0-100).

    ``window``: see :func:`to_luminance` (``"mr"`` for an MR slice on its own; a scan's
    slices should share one window: :func:`standard_volume`). Raises InputError for a flat
    image.
    """
    return brisque_from_features(brisque_features(img, window))


# ----------------------------------------------------------------------------- NIQE


def _niqe_block(m: np.ndarray) -> list[float]:
    """``computefeature.m``: 18 features of the MSCN coefficients of one block."""
    alpha, left, right = _aggd(m.ravel())
    _, k = _gamma_ratios(alpha)
    feats = [alpha, (left * k + right * k) / 2]
    for shift in _NIQE_SHIFTS:
        alpha, left, right = _aggd((m * np.roll(m, shift, axis=(0, 1))).ravel())
        r21, k = _gamma_ratios(alpha)
        feats += [alpha, (right * k - left * k) * r21, left * k, right * k]
    return feats


def niqe_features(img: Any, window: Any = None) -> np.ndarray:
    """Features ``[n_blocks, 36]`` of the 96×96 blocks of an image (NaN where undefined)."""
    x = to_luminance(img, window)
    nh, nw = x.shape[0] // NIQE_BLOCK, x.shape[1] // NIQE_BLOCK
    if nh == 0 or nw == 0:
        raise InputError(
            f"NIQE needs an image of at least {NIQE_BLOCK}×{NIQE_BLOCK} pixels; got {x.shape}"
        )
    x = x[: nh * NIQE_BLOCK, : nw * NIQE_BLOCK]
    _, _, win = load_niqe_params()
    cols = []
    for scale in (1, 2):
        m, b = _mscn(x, win, "nearest"), NIQE_BLOCK // scale
        blocks = [m[i * b : (i + 1) * b, j * b : (j + 1) * b] for i in range(nh) for j in range(nw)]
        cols.append(np.asarray([_niqe_block(blk) for blk in blocks]))
        if scale == 1:
            x = _halve(x)
    return np.hstack(cols)


def niqe_from_features(features: Any) -> float:
    """NIQE of block features ``[n, 36]`` against the pristine model (NaN when undefined)."""
    mu_p, cov_p, _ = load_niqe_params()
    f = np.asarray(features, dtype=np.float64).reshape(-1, 36)
    complete = f[~np.isnan(f).any(axis=1)]
    if len(complete) == 0:
        return math.nan
    # nanmean per feature; nancov over the complete blocks (one block: 0, as MATLAB's cov)
    mu = np.array([c[~np.isnan(c)].mean() for c in f.T])
    cov = np.cov(complete, rowvar=False) if len(complete) > 1 else np.zeros((36, 36))
    d = mu_p - mu
    q = float(d @ np.linalg.pinv((cov_p + cov) / 2) @ d)
    return math.sqrt(max(q, 0.0))


def niqe(img: Any, window: Any = None) -> float:
    """Standard NIQE of a 2-D image with MATLAB's default pristine model (lower is better).

    ``window``: see :func:`to_luminance`. Raises InputError for an image smaller than
    96×96 or one with no block of defined statistics (flat).
    """
    q = niqe_from_features(niqe_features(img, window))
    if not math.isfinite(q):
        raise InputError("the image is flat: no 96×96 block has defined NIQE statistics")
    return q


# ----------------------------------------------------------------------------- volumes


def standard_volume(data: Any, axis: int = -1, window: Any = "mr") -> dict[str, Any]:
    """Standard BRISQUE and NIQE of the slices of a 3-D scan along ``axis``.

    One window for the whole scan (``"mr"``: :func:`mr_window` of the volume; or
    ``(lo, hi)``). Slices with signal (see the module doc) are scored; the volume's scores
    are the means over the slices scored. Returns plain floats (``None`` where nothing could
    be scored)::

        {"volume": {"brisque", "niqe", "n_brisque", "n_niqe", "window", "notes": [...]},
         "slices": [{"index", "brisque", "niqe"}, ...],
         "skipped": [{"index", "reason"}, ...]}
    """
    v = np.asarray(data)
    if v.ndim != 3:
        raise ConfigError(f"standard_volume needs a 3-D volume; got shape {v.shape}")
    if not -3 <= axis <= 2:
        raise ConfigError(f"axis must be 0, 1 or 2 (or -1..-3); got {axis}")
    v = np.moveaxis(v, axis % 3, 0)
    win = _window(v, window)
    slices, skipped, notes = [], [], []
    small = min(v.shape[1:]) < NIQE_BLOCK
    if small:
        notes.append(f"niqe: slices of {v.shape[1]}×{v.shape[2]} have no 96×96 block")
    for i in range(v.shape[0]):
        x = to_luminance(v[i], win)
        frac = float(np.mean(x > SIGNAL_LEVEL * 255))
        if frac < SIGNAL_FRACTION:
            skipped.append({"index": i, "reason": f"background: {frac:.0%} of pixels with signal"})
            continue
        row: dict[str, Any] = {"index": i, "brisque": None, "niqe": None}
        try:
            row["brisque"] = brisque(x)
        except InputError:
            pass
        if not small:
            q = niqe_from_features(niqe_features(x))
            row["niqe"] = q if math.isfinite(q) else None
        if row["brisque"] is None and row["niqe"] is None:
            skipped.append({"index": i, "reason": "flat: no defined statistics"})
            continue
        slices.append(row)
    volume: dict[str, Any] = {"window": None if win is None else [float(win[0]), float(win[1])]}
    for key in ("brisque", "niqe"):
        got = [s[key] for s in slices if s[key] is not None]
        volume[key] = float(np.mean(got)) if got else None
        volume[f"n_{key}"] = len(got)
    if not slices:
        notes.append("no slice with signal")
    volume["notes"] = notes
    return {"volume": volume, "slices": slices, "skipped": skipped}

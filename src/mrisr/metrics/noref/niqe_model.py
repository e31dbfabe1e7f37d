"""NIQE: patch features, the pristine MR model (fit, load, save) and the NIQE distance.

NIQE (Mittal, Soundararajan & Bovik 2013; opinion-free)
    The image is cut into non-overlapping ``patch_size`` × ``patch_size`` patches (a centred
    grid; default 32 px: the original's 96 px patches cover about a fifth of a 512-px
    photograph, 32 px a sixth of a 192–256 px MR slice). A patch is used when at least
    ``min_foreground`` (50 %) of its pixels are foreground; its 36 features
    (:mod:`mrisr.metrics.noref.features`) are computed from its coefficients at both scales
    (the half-size patch at the same place at scale 2). A multivariate Gaussian (ν₁, Σ₁)
    fitted to the patches of *pristine* HR MR slices (only the sharpest patches of each
    slice: mean local σ above 0.75 of that slice's maximum, as in the original) is compared
    with the Gaussian (ν₂, Σ₂) of the test image's patches:
    ``NIQE = sqrt((ν₁ − ν₂)ᵀ ((Σ₁ + Σ₂) / 2)⁺ (ν₁ − ν₂))`` with the Moore–Penrose
    pseudo-inverse. Lower is better. The pristine model shipped with mrisr
    (``src/mrisr/metrics/niqe_mr_pristine.json``, package data, made by
    ``scripts/fit_niqe.py``) records which scans and slices it was fitted on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.errors import ConfigError, InputError
from mrisr.metrics.noref.coefficients import (
    FOREGROUND,
    MSCN_C,
    MSCN_RADIUS,
    MSCN_SIGMA,
    _check_fg,
    to_byte_scale,
)
from mrisr.metrics.noref.features import FEATURE_NAMES, _features_of, _scales

NIQE_PATCH = 32
NIQE_MIN_FOREGROUND = 0.5
NIQE_SHARPNESS = 0.75
#: The shipped pristine model: package data of :mod:`mrisr.metrics` (next to this package).
PRISTINE_FILE = Path(__file__).resolve().parent.parent / "niqe_mr_pristine.json"


# ----------------------------------------------------------------------------- patches


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

"""Fréchet distance between two Gaussians fitted to feature sets (the FID formula).

``d² = ‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2 Tr((Σ₁ Σ₂)^½)``

The trace of the matrix square root is computed without ``scipy.linalg.sqrtm`` of the
non-symmetric product Σ₁Σ₂ (which can return complex parts and NaNs for near-singular
covariances, e.g. fewer samples than feature dimensions): with A = Σ₁^½ (symmetric, from an
eigendecomposition), Σ₁Σ₂ is similar to the symmetric positive semi-definite A Σ₂ A, so
``Tr((Σ₁Σ₂)^½) = Σ √λᵢ(A Σ₂ A)`` with the eigenvalues clipped at 0. Everything runs in
float64.

FID of MR slices (:func:`fid_against_reference`, ``mrisr eval --fid``): every slice is mapped
to [0, 1] with one window taken from the reference volume (its minimum and 99.5th
percentile), repeated to three channels (the usual FID practice for grey images), resized to
299×299 and passed through the FID InceptionV3 (:mod:`mrisr.models.inception`, weights from
the user); the 2048-d pool features of the two slice sets give the two Gaussians.
"""

from __future__ import annotations

import numpy as np

from mrisr.errors import ConfigError


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``n − 1`` normalisation) of ``features [n, d]``, float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ConfigError(f"features must be [n ≥ 2, d], got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ConfigError("features contain NaN or Inf")
    return f.mean(0), np.cov(f, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂) (squared, as FID reports it)."""
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    s1, s2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ConfigError(
            f"shapes do not agree: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}"
        )
    a = _psd_sqrt(s1)
    m = a @ s2 @ a
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)


def frechet_distance_of_features(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`frechet_distance` of the Gaussians fitted to two feature sets ``[n, d]``."""
    return frechet_distance(*feature_stats(a), *feature_stats(b))


# ----------------------------------------------------------------------------- FID of slices


def intensity_window(ref: np.ndarray, high: float = 99.5) -> tuple[float, float]:
    """``(min, p99.5)`` of a reference volume: the [0, 1] window every set is mapped with."""
    r = np.asarray(ref, dtype=np.float64)
    lo, hi = float(r.min()), float(np.percentile(r, high))
    return lo, (hi if hi > lo else lo + 1.0)


def slice_features(
    volume: np.ndarray,
    net: object,
    axis: int,
    window: tuple[float, float],
    indices: list[int] | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> np.ndarray:
    """2048-d FID features ``[n, 2048]`` of the slices of ``volume`` along ``axis``.

    Each slice is mapped to [0, 1] with ``window`` (``(lo, hi)``, clipped) — the same window
    for every set compared, so intensities stay comparable — then goes through ``net``
    (:class:`~mrisr.models.inception.FIDInceptionV3`: grey → 3 channels, 299×299).
    """
    import torch

    lo, hi = window
    v = np.moveaxis(np.asarray(volume, dtype=np.float32), axis, 0)
    idx = list(range(v.shape[0])) if indices is None else indices
    out = []
    with torch.no_grad():
        for i in range(0, len(idx), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(v[idx[i : i + batch_size]]))
            x = ((x - lo) / (hi - lo)).clamp_(0, 1)[:, None].to(device)
            out.append(net(x).double().cpu().numpy())  # type: ignore[operator]
    return np.concatenate(out) if out else np.zeros((0, 2048))


def fid_against_reference(
    ref: np.ndarray,
    results: dict[str, np.ndarray],
    weights: object,
    axis: int,
    device: str = "cpu",
) -> dict[str, dict[str, float | int]]:
    """FID between the reference's slices and each result's slices (same slice indices).

    Slices whose reference is blank (constant) are left out of both sets. Returns
    ``{name: {"fid": d², "n": slices}}``. With fewer slices than 2048 feature dimensions the
    covariances are rank-deficient: the distance is still defined (see the module doc) but
    biased upwards, so compare FIDs only at equal ``n``. ``weights``: the FID Inception file,
    or a loaded :class:`~mrisr.models.inception.FIDInceptionV3`.
    """
    from mrisr.models.inception import FIDInceptionV3, load_fid_inception

    net = weights if isinstance(weights, FIDInceptionV3) else load_fid_inception(str(weights))
    net = net.to(device)
    window = intensity_window(ref)
    r = np.moveaxis(np.asarray(ref), axis, 0)
    keep = [i for i in range(r.shape[0]) if np.ptp(r[i]) > 0]
    if len(keep) < 2:
        raise ConfigError("FID needs at least 2 non-blank reference slices")
    f_ref = slice_features(ref, net, axis, window, keep, device=device)
    out: dict[str, dict[str, float | int]] = {}
    for name, vol in results.items():
        f = slice_features(vol, net, axis, window, keep, device=device)
        out[name] = {"fid": frechet_distance_of_features(f_ref, f), "n": len(keep)}
    return out

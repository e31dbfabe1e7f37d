"""Fréchet distance between two Gaussians fitted to feature sets (the FID formula).

``d² = ‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2 Tr((Σ₁ Σ₂)^½)``

The trace of the matrix square root is computed without ``scipy.linalg.sqrtm`` of the
non-symmetric product Σ₁Σ₂ (which can return complex parts and NaNs for near-singular
covariances, e.g. fewer samples than feature dimensions): with A = Σ₁^½ (symmetric, from an
eigendecomposition), Σ₁Σ₂ is similar to the symmetric positive semi-definite A Σ₂ A, so
``Tr((Σ₁Σ₂)^½) = Σ √λᵢ(A Σ₂ A)`` with the eigenvalues clipped at 0. Everything runs in
float64. The features themselves (InceptionV3 pool features for FID) come from elsewhere.
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

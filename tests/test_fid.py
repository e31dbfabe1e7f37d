"""Fréchet distance: closed-form Gaussians, agreement with the textbook sqrtm formula, and
stability on singular covariances."""

from __future__ import annotations

import numpy as np
import pytest

from mrisr.errors import ConfigError
from mrisr.metrics.fid import feature_stats, frechet_distance, frechet_distance_of_features


def test_closed_form_for_diagonal_and_scaled_covariances() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, abs=1e-10)
    # Σ₂ = c²Σ₁ (any SPD Σ₁): d² = ‖Δμ‖² + (1 − c)² Tr Σ₁.
    q = rng.normal(size=(6, 6))
    s = q @ q.T + 0.1 * np.eye(6)
    c = 1.7
    assert frechet_distance(mu1[:1].repeat(6), s, mu1[:1].repeat(6), c**2 * s) == pytest.approx(
        (1 - c) ** 2 * np.trace(s), rel=1e-9
    )
    assert frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0, abs=1e-9)


def test_matches_the_sqrtm_formula_on_random_covariances() -> None:
    from scipy import linalg

    rng = np.random.default_rng(1)
    for _ in range(3):
        x, y = rng.normal(size=(400, 20)), rng.normal(size=(300, 20)) @ rng.normal(size=(20, 20))
        m1, s1 = feature_stats(x)
        m2, s2 = feature_stats(y)
        ref = ((m1 - m2) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
        assert frechet_distance(m1, s1, m2, s2) == pytest.approx(ref, rel=1e-8)


def test_singular_covariances_stay_finite_and_non_negative() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 64)), rng.normal(size=(10, 64)) + 0.5  # n < d: rank 9
    d = frechet_distance_of_features(a, b)
    assert np.isfinite(d) and d > 0
    # Identical rank-deficient sets: zero up to rounding of the 55 zero eigenvalues (whose
    # square roots amplify float64 noise), tiny against the total variance.
    tr = np.trace(np.cov(a, rowvar=False))
    assert abs(frechet_distance_of_features(a, a)) < 1e-7 * tr
    with pytest.raises(ConfigError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ConfigError, match="NaN"):
        feature_stats(np.full((3, 2), np.nan))

"""The through-plane acquisition operator A of a thick-slice scan, its inverse-problem helpers,
and the grid the restored volume lives on.

Geometry (in units of the output voxel ``d``; ``k = S / d`` with ``S`` the slice spacing, any
real number > 1): ``m`` acquired slices become ``n = round(m·k)`` output samples covering the
same field of view, and acquired slice ``j`` is centred on output index
``p_j = c + (j − (m − 1)/2)·k`` with ``c = (n − 1)/2`` — the convention of
:func:`mrisr.degrade.thickslice.slice_profile_matrix`, so simulated and real scans agree. Each
slice integrates the object over a profile ``h`` (``rect`` of width FWHM, ``gaussian`` of that
FWHM, or a sampled 1-D profile learned from the scan), mirrored at the borders; rows of A sum to
one. ``A`` maps an output line (n) to the acquired slices (m); data consistency is
``A·x = y``, and the projection onto that set, ``x + Aᵀ(AAᵀ)⁻¹(y − A·x)``, is exact and cheap
because A is 1-D (an m × m solve, shared by every line).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mrisr.errors import ConfigError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def output_grid(m: int, k: float) -> tuple[int, np.ndarray]:
    """``(n, positions)``: the output sample count and the output index of every acquired slice."""
    if m < 1:
        raise ConfigError("the slice axis has no slice")
    if not (math.isfinite(k) and k > 0):
        raise ConfigError(f"the through-plane ratio k must be a finite number > 0, got {k}")
    n = max(1, int(round(m * k)))
    c = (n - 1) / 2
    return n, c + (np.arange(m) - (m - 1) / 2) * k


def _weights(kind: str | np.ndarray, fwhm: float, idx: np.ndarray, p: float) -> np.ndarray:
    if isinstance(kind, np.ndarray):  # a sampled profile, centred on its middle sample
        h = np.asarray(kind, dtype=np.float64)
        centre = (h.size - 1) / 2
        return np.interp(idx - p + centre, np.arange(h.size), h, left=0.0, right=0.0)
    if kind == "rect":  # overlap of voxel [i − ½, i + ½] with the slab [p − w/2, p + w/2]
        half = fwhm / 2
        return np.clip(np.minimum(idx + 0.5, p + half) - np.maximum(idx - 0.5, p - half), 0, None)
    if kind == "gaussian":
        sigma = fwhm / FWHM_PER_SIGMA
        return np.exp(-0.5 * ((idx - p) / sigma) ** 2)
    raise ConfigError(f"profile must be 'rect', 'gaussian' or a sampled 1-D array, not {kind!r}")


def operator(
    n: int, positions: Sequence[float], profile: str | np.ndarray, fwhm: float = 0.0
) -> np.ndarray:
    """A (m × n): acquired slice ``j`` = the profile centred on output index ``positions[j]``
    (``fwhm`` in output voxels for ``rect`` / ``gaussian``; a sampled profile is in output
    voxels already), mirrored at the borders, each row summing to one."""
    pos = np.asarray(positions, dtype=np.float64)
    if isinstance(profile, str) and not (math.isfinite(fwhm) and fwhm > 0):
        raise ConfigError(f"the slice profile's FWHM must be > 0 voxels, got {fwhm}")
    if isinstance(profile, np.ndarray):
        reach = profile.size // 2 + 2
    else:  # ThickSlice's reach: a Gaussian is cut at 3 half-widths
        reach = int(math.ceil(fwhm / 2 * (3 if profile == "gaussian" else 1) + 1))
    mat = np.zeros((pos.size, n))
    for j, p in enumerate(pos):
        idx = np.arange(int(math.floor(p)) - reach, int(math.ceil(p)) + reach + 1)
        w = _weights(profile, fwhm, idx, p)
        folded = np.mod(idx, 2 * n)
        folded = np.where(folded < n, folded, 2 * n - 1 - folded)
        np.add.at(mat[j], folded, w)
        total = mat[j].sum()
        if not total > 0:
            raise ConfigError(f"the slice profile gives slice {j} no weight")
        mat[j] /= total
    return mat


def apply_along(a: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    """``A`` applied along ``axis`` of ``x`` (any number of dims)."""
    moved = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    return np.moveaxis(moved @ a.T, -1, axis)


def residual(a: np.ndarray, x: np.ndarray, y: np.ndarray, axis: int) -> float:
    """Relative data-consistency residual ``‖A·x − y‖ / ‖y‖`` along ``axis``."""
    y = np.asarray(y, dtype=np.float64)
    den = float(np.linalg.norm(y))
    return float(np.linalg.norm(apply_along(a, x, axis) - y)) / (den if den > 0 else 1.0)


def project(a: np.ndarray, x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    """The nearest volume to ``x`` (least squares) that reproduces the acquired slices:
    ``x + Aᵀ(AAᵀ)⁻¹(y − A·x)`` along ``axis``, in float64."""
    gram = a @ a.T
    try:
        chol = np.linalg.cholesky(gram)
    except np.linalg.LinAlgError:  # rank-deficient A (slices closer than the profile): lstsq
        chol = None
    xm = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    r = np.moveaxis(np.asarray(y, dtype=np.float64), axis, -1) - xm @ a.T  # [..., m]
    flat = r.reshape(-1, r.shape[-1]).T  # m × lines
    if chol is not None:
        z = np.linalg.solve(chol.T, np.linalg.solve(chol, flat))
    else:
        z = np.linalg.lstsq(gram, flat, rcond=None)[0]
    corr = (a.T @ z).T.reshape(*r.shape[:-1], a.shape[1])
    return np.moveaxis(xm + corr, -1, axis)


def spline_to_grid(y: np.ndarray, positions: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Cubic B-spline interpolation of the acquired slices ``y`` (at output indices
    ``positions`` along ``axis``) onto output samples 0 … n−1; constant beyond the end slices.
    With fewer than four slices: linear (two or three), or the slice itself (one)."""
    from scipy.interpolate import make_interp_spline

    y = np.asarray(y, dtype=np.float64)
    m = y.shape[axis]
    at = np.clip(np.arange(n, dtype=np.float64), positions[0], positions[-1])
    if m == 1:
        return np.repeat(y, n, axis=axis)
    spl = make_interp_spline(positions, y, k=min(3, m - 1), axis=axis)
    return spl(at)

"""Separable resampling matrices in numpy: MATLAB ``imresize`` (bicubic, antialiased when
shrinking) and Gaussian blur-and-decimate. ``M @ x`` resamples the first axis of ``x``.

A leaf module without torch: the degradations (:mod:`mrisr.degrade.resample` applies these
matrices to tensors), the networks that upsample inside ``forward`` and the no-reference
metrics (NIQE's half-size scale) all use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np


def cubic_kernel(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys cubic convolution kernel (MATLAB ``imresize`` uses a = −0.5), support [−2, 2]."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = ((a + 2) * ax3 - (a + 3) * ax2 + 1) * (ax <= 1)
    far = (a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a) * ((ax > 1) & (ax <= 2))
    return near + far


def _symmetric_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Fold 0-based indices into [0, n) by half-sample symmetric reflection (MATLAB 'symmetric')."""
    period = 2 * n
    m = np.mod(idx, period)
    return np.where(m < n, m, period - 1 - m)


def _weights_to_matrix(u: np.ndarray, n_in: int, kernel: Callable, width: float) -> np.ndarray:
    """Dense (out × in) matrix from sample positions ``u`` (0-based input coordinates)."""
    left = np.floor(u - width / 2).astype(np.int64)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    mat = np.zeros((u.shape[0], n_in), dtype=np.float64)
    rows = np.repeat(np.arange(u.shape[0]), taps)
    np.add.at(mat, (rows, _symmetric_index(idx, n_in).ravel()), w.ravel())
    return mat


@lru_cache(maxsize=64)
def imresize_matrix(
    n_in: int,
    n_out: int,
    antialias: bool = True,
    scale: float | None = None,
    offset: float | None = None,
) -> np.ndarray:
    """MATLAB ``imresize(..., 'bicubic')`` along one axis as an (n_out × n_in) float64 matrix.

    Follows MATLAB's ``contributions``: output pixel ``x`` (1-based) maps to input coordinate
    ``u = x/scale + 0.5·(1 − 1/scale)``, with ``scale`` the *requested* factor (MATLAB's rule when
    a scale is given; ``n_out/n_in`` when only a size is); when shrinking with antialiasing the
    kernel is stretched by ``1/scale``; weights are normalised to sum to one and out-of-range taps
    are mirrored (half-sample symmetric padding).

    ``offset`` generalises the grid for upsampling by ``s = scale``: input sample ``i`` lies at
    output index ``offset + s·i`` (MATLAB's block-centred grid is ``offset = (s − 1)/2``).
    Use it to interpolate an LR image back onto its HR grid where the LR samples really are.
    """
    scale = n_out / n_in if scale is None else float(scale)
    if scale < 1 and antialias:
        width = 4.0 / scale

        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * cubic_kernel(scale * x)
    else:
        width = 4.0
        kernel = cubic_kernel
    x = np.arange(n_out, dtype=np.float64)  # 0-based output indices
    if offset is None:
        u = (x + 0.5) / scale - 0.5  # MATLAB: x/scale + 0.5(1 − 1/scale), 1-based
    else:
        u = (x - offset) / scale
    return _weights_to_matrix(u, n_in, kernel, width)


@lru_cache(maxsize=64)
def gaussian_matrix(n_in: int, factor: int, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Gaussian blur (σ in input pixels) sampled at block centres of an integer decimation.

    Output ``j`` is ``Σ_i g(i − u_j) x_i`` with ``u_j = factor·j + (factor − 1)/2`` and ``g`` a
    normalised Gaussian truncated at ``truncate·σ``, mirrored at the borders. For ``factor = 1``
    this is a plain Gaussian filter with symmetric boundaries.
    """
    n_out = n_in // factor
    u = factor * np.arange(n_out, dtype=np.float64) + (factor - 1) / 2
    if sigma <= 0:
        # No blur: nearest sample for odd factors, mean of the two central samples for even ones.
        def kernel(x: np.ndarray) -> np.ndarray:
            return (np.abs(x) <= 0.5 + 1e-9).astype(np.float64)

        return _weights_to_matrix(u, n_in, kernel, 2.0)
    width = 2 * truncate * sigma

    def kernel(x: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * (x / sigma) ** 2) * (np.abs(x) <= truncate * sigma)

    return _weights_to_matrix(u, n_in, kernel, width)

"""Separable linear resampling: MATLAB-compatible bicubic ``imresize`` and Gaussian decimation.

Both are linear and separable, so each axis is one dense matrix ``W`` (out × in) and a batch of
images ``x[..., H, W]`` becomes ``Wh @ x @ Ww.T``. Building the matrix once per axis makes the
operation exact (no intermediate rounding), batched on any device, and trivially differentiable.

Geometry: output sample ``j`` (0-based) of an integer downsampling by ``s`` sits at input
coordinate ``s·j + (s − 1)/2`` — the centre of the block of ``s`` input pixels it summarises —
for both methods, so the field of view is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch


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


def apply_separable(x: torch.Tensor, mat_h: np.ndarray, mat_w: np.ndarray) -> torch.Tensor:
    """``mat_h @ x @ mat_w.T`` over the last two dims of ``x`` ([..., H, W] → [..., h, w])."""
    dtype = x.dtype if x.is_floating_point() else torch.float32
    wh = torch.as_tensor(mat_h, dtype=dtype, device=x.device)
    ww = torch.as_tensor(mat_w, dtype=dtype, device=x.device)
    return torch.matmul(torch.matmul(wh, x.to(dtype)), ww.transpose(0, 1))


def imresize(
    x: torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """MATLAB-compatible bicubic resize of ``x`` [..., H, W] (float) by ``scale`` or to ``size``.

    ``scale`` < 1 shrinks (e.g. 0.5 for ×2 downsampling); the output size is
    ``ceil(H·scale) × ceil(W·scale)`` and, as in MATLAB, the weights follow the requested scale
    (not the rounded size ratio). Values are not clipped.
    """
    h, w = x.shape[-2:]
    if size is None:
        if scale is None:
            raise ValueError("give scale or size")
        size = (int(math.ceil(h * scale - 1e-9)), int(math.ceil(w * scale - 1e-9)))
    return apply_separable(
        x,
        imresize_matrix(h, size[0], antialias, scale),
        imresize_matrix(w, size[1], antialias, scale),
    )


def bicubic_to_grid(
    x: torch.Tensor, scale: int, offsets: tuple[float, float], size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Bicubic interpolation of an LR image [..., h, w] onto the HR grid where LR sample ``j``
    lies at HR index ``offsets[a] + scale·j`` (the degradation's :class:`AxisMap`). With
    ``offsets = ((s−1)/2, (s−1)/2)`` this is MATLAB ``imresize(x, s)``."""
    h, w = x.shape[-2:]
    size = size or (h * scale, w * scale)
    return apply_separable(
        x,
        imresize_matrix(h, size[0], True, float(scale), float(offsets[0])),
        imresize_matrix(w, size[1], True, float(scale), float(offsets[1])),
    )

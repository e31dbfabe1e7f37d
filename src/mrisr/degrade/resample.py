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

import numpy as np
import torch

from mrisr.interp import cubic_kernel, gaussian_matrix, imresize_matrix  # noqa: F401 - re-exported


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

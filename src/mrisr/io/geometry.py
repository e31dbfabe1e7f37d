"""Voxel-grid geometry: choosing the slice axis, and affines of resampled or cropped grids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mrisr.errors import ConfigError


def slice_axis_for(zooms: Sequence[float], shape: Sequence[int] | None = None) -> int:
    """The through-plane axis: the one with the coarsest spacing.

    Ties (isotropic voxels) go to the last axis, the usual slice axis of NIfTI files; a singleton
    axis (a 2-D image stored as H×W×1) always wins, since there is nothing in-plane about it.
    """
    if shape is not None:
        singles = [i for i, n in enumerate(shape) if n == 1]
        if singles:
            return singles[-1]
    z = np.asarray(zooms, dtype=float)
    coarsest = np.flatnonzero(np.isclose(z, z.max(), rtol=1e-3))
    return int(coarsest[-1])


def resolve_axis(axis: int | None, zooms: Sequence[float], shape: Sequence[int]) -> int:
    """Validate a user-given slice axis (negative allowed) or choose one."""
    if axis is None:
        return slice_axis_for(zooms, shape)
    if not -3 <= axis <= 2:
        raise ConfigError(f"--axis must be 0, 1 or 2 (the slice axis of a 3-D volume), got {axis}")
    return axis % 3


def grid_affine(affine: np.ndarray, maps: Mapping[int, tuple[float, float]]) -> np.ndarray:
    """Affine of a new grid whose index ``j`` along array axis ``a`` sits at old index
    ``offset + factor·j`` (``maps[a] = (factor, offset)``); other axes unchanged.

    The orientation (direction cosines) is kept exactly; only the zooms and the origin change.
    """
    t = np.eye(4)
    for a, (factor, offset) in maps.items():
        t[a, a] = factor
        t[a, 3] = offset
    return np.asarray(affine, dtype=float) @ t


def crop_to_multiple(
    data: np.ndarray, affine: np.ndarray, axes: Sequence[int], factor: int
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[int, int]]]:
    """Centrally crop ``axes`` of ``data`` to a multiple of ``factor``; return the cropped data,
    its affine, and ``{axis: (start, stop)}`` for the axes that changed."""
    slices = [slice(None)] * data.ndim
    maps: dict[int, tuple[float, float]] = {}
    crops: dict[int, tuple[int, int]] = {}
    for a in axes:
        n = data.shape[a]
        keep = (n // factor) * factor
        if keep == 0:
            raise ConfigError(f"axis {a} has {n} voxels, fewer than the scale {factor}")
        if keep != n:
            start = (n - keep) // 2
            slices[a] = slice(start, start + keep)
            maps[a] = (1.0, float(start))
            crops[a] = (start, start + keep)
    return data[tuple(slices)], grid_affine(affine, maps), crops

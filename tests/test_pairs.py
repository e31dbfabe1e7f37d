"""Guide onto target grid (multi-contrast pairs): resampling through the two affines, the
coverage and alignment report, and the refusal of pairs that do not overlap."""

from __future__ import annotations

import numpy as np
import pytest

from mrisr.data.pairs import alignment, pair_guide, resample_to_grid
from mrisr.errors import InputError
from mrisr.io.volume import Volume


def _phantom(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A smooth object defined in scanner mm, sampled at the voxel centres of a grid."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    xyz = idx @ affine[:3, :3].T + affine[:3, 3]
    r2 = ((xyz - np.array([2.0, -3.0, 1.0])) ** 2 / np.array([18.0, 14.0, 11.0]) ** 2).sum(-1)
    return (100 * np.exp(-2 * r2) + 20 * np.sin(xyz[..., 0] / 4)).astype(np.float32)


def _rot(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])


def _grid(zooms, deg, shape):
    a = np.eye(4)
    a[:3, :3] = _rot(deg) @ np.diag(zooms)
    a[:3, 3] = -(a[:3, :3] @ (np.array(shape) - 1)) / 2  # centred on the origin
    return a


def test_guide_on_another_grid_lands_on_the_target_grid() -> None:
    t_shape, g_shape = (40, 44, 24), (36, 72, 76)
    ta, ga = _grid((1.0, 1.0, 1.5), 0, t_shape), _grid((1.4, 0.7, 0.6), 12, g_shape)
    target = Volume(_phantom(ta, t_shape), ta)
    guide = Volume(_phantom(ga, g_shape), ga)
    on, rep = pair_guide(target, guide)
    assert on.shape == target.shape and np.array_equal(on.affine, target.affine)
    fg = target.data > 30
    err = np.abs(on.data - target.data)[fg].mean() / target.data[fg].mean()
    assert err < 0.02  # trilinear error of a smooth object
    assert rep["overlap"] == 1.0 and not rep["same_grid"] and rep["ncc"] > 0.99
    assert rep["guide_zooms_mm"] == [1.4, 0.7, 0.6]
    vals, covered = resample_to_grid(guide.data, ga, ta, t_shape)
    assert covered.all() and np.array_equal(vals, on.data)
    same, rep_same = pair_guide(target, target)  # same grid: passed through untouched
    assert rep_same["same_grid"] and np.array_equal(same.data, target.data)


def test_misalignment_lowers_nmi_and_no_overlap_is_refused() -> None:
    t_shape = (40, 44, 24)
    ta = _grid((1.0, 1.0, 1.5), 0, t_shape)
    target = Volume(_phantom(ta, t_shape), ta)
    inverted = Volume(200 - target.data, ta)  # another "contrast": intensities inverted
    shifted = ta.copy()
    shifted[0, 3] += 5  # guide header 5 mm off (the subject moved)
    guide = Volume(_phantom(ta, t_shape), shifted)
    mask = np.ones(t_shape, bool)
    aligned = alignment(target.data, inverted.data, mask)
    assert aligned["ncc"] < -0.99 and aligned["nmi"] > 1.5  # NMI does not care about the sign
    _, off = pair_guide(target, guide, min_overlap=0.5)
    assert off["nmi"] < aligned["nmi"] and off["overlap"] < 1.0
    far = ta.copy()
    far[:3, 3] += 200
    with pytest.raises(InputError, match=r"covers 0% of the target's foreground"):
        pair_guide(target, Volume(target.data, far))

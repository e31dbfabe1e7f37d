"""Voxel-grid geometry: choosing the slice axis, and affines of resampled or cropped grids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mrisr.errors import ConfigError

#: Spacings within this relative tolerance count as equal ("shared") when choosing the plane.
SHARED_RTOL = 0.01
#: A 2-D model is refused across in-plane axes whose spacings differ by more than this ratio
#: (unless forced): it was trained on square pixels, and e.g. 0.88 × 5 mm is not a plane of them.
MAX_IN_PLANE_RATIO = 1.4


@dataclass(frozen=True)
class PlaneChoice:
    """Which two array axes form the image plane, and why.

    ``rule``: ``given`` (an explicit axis), ``singleton`` (a 2-D image stored H×W×1),
    ``shared spacing`` (exactly two axes share a spacing), ``isotropic`` (all three do: the
    last axis is the slice axis, NIfTI's usual layout) or ``closest spacings`` (no two axes
    share one: the pair with the most similar spacings). ``ambiguous`` says why the choice
    could be wrong (None when it cannot); ``ratio`` is the in-plane spacing ratio (≥ 1).
    """

    slice_axis: int
    in_plane: tuple[int, int]
    rule: str
    ambiguous: str | None
    ratio: float
    zooms: tuple[float, float, float]

    def describe(self) -> str:
        """E.g. ``in-plane axes 0,1 (1.875 x 1.875 mm, shared spacing), slice axis 2``."""
        a, b = self.in_plane
        za, zb = self.zooms[a], self.zooms[b]
        return (
            f"in-plane axes {a},{b} ({za:.4g} x {zb:.4g} mm, {self.rule}), "
            f"slice axis {self.slice_axis}"
        )

    def record(self) -> dict:
        return {
            "slice_axis": self.slice_axis,
            "in_plane_axes": list(self.in_plane),
            "in_plane_zooms_mm": [round(self.zooms[a], 6) for a in self.in_plane],
            "rule": self.rule,
            "ambiguous": self.ambiguous,
        }


def _ratio(za: float, zb: float) -> float:
    lo, hi = sorted((za, zb))
    return hi / lo if lo > 0 else float("inf")


def choose_plane(
    zooms: Sequence[float], shape: Sequence[int] | None = None, axis: int | None = None
) -> PlaneChoice:
    """Choose the image plane of a volume: the two axes that share a spacing.

    The slice axis is the one whose spacing differs from the other two — not simply the
    coarsest: after an in-plane ×2 degradation of a 0.94×0.94×1.25 mm scan the in-plane
    spacing (1.875 mm) is coarser than the slices (1.25 mm), and "coarsest" would pick an
    in-plane axis. ``axis`` (a user's or a sidecar's slice axis) overrides the choice; a
    singleton axis (H×W×1) always is the slice axis.
    """
    z = tuple(float(v) for v in zooms)
    if len(z) != 3:
        raise ConfigError(f"a 3-D volume has three voxel sizes, got {len(z)}")

    def make(k: int, rule: str, ambiguous: str | None) -> PlaneChoice:
        a, b = (i for i in range(3) if i != k)
        return PlaneChoice(k, (a, b), rule, ambiguous, _ratio(z[a], z[b]), z)  # type: ignore[arg-type]

    if axis is not None:
        return make(resolve_axis(axis, z, shape or (2, 2, 2)), "given", None)
    if shape is not None:
        singles = [i for i, n in enumerate(shape) if n == 1]
        if singles:
            return make(singles[-1], "singleton", None)
    pairs = {k: _ratio(*(z[i] for i in range(3) if i != k)) for k in range(3)}
    shared = [k for k, r in pairs.items() if r <= 1 + SHARED_RTOL]
    if len(shared) == 3:
        return make(
            2,
            "isotropic",
            "isotropic voxels: every plane is as good; the last axis was taken as the slice "
            "axis (pass --axis to choose)",
        )
    if len(shared) == 1:
        return make(shared[0], "shared spacing", None)
    ranked = sorted(pairs.values())
    close = [k for k, r in pairs.items() if r <= ranked[0] * (1 + SHARED_RTOL)]
    k = max(close, key=lambda c: (z[c], c))  # of equally good planes, the coarsest slice axis
    a, b = (i for i in range(3) if i != k)
    clear = len(close) == 1 and ranked[1] > 1.2 * ranked[0]
    return make(
        k,
        "closest spacings",
        None
        if clear
        else f"no two axes share a spacing ({z[0]:.4g}, {z[1]:.4g}, {z[2]:.4g} mm) and no "
        f"plane is clearly the image plane; took axes {a},{b} (pass --axis to choose)",
    )


def slice_axis_for(zooms: Sequence[float], shape: Sequence[int] | None = None) -> int:
    """The through-plane axis: the one whose spacing differs from the other two
    (:func:`choose_plane`); a singleton axis (a 2-D image stored as H×W×1) always wins."""
    return choose_plane(zooms, shape).slice_axis


def check_plane(choice: PlaneChoice, force: bool = False) -> None:
    """Refuse a 2-D model run across axes of very different spacing, unless ``force``."""
    if force or choice.ratio <= MAX_IN_PLANE_RATIO:
        return
    a, b = choice.in_plane
    z = choice.zooms
    good = choose_plane(z)
    hint = (
        f"the plane of axes {good.in_plane[0]},{good.in_plane[1]} is --axis {good.slice_axis}"
        if good.ratio <= MAX_IN_PLANE_RATIO and good.slice_axis != choice.slice_axis
        else "no plane of this volume has square pixels"
    )
    raise ConfigError(
        f"in-plane axes {a},{b} have spacings {z[a]:.4g} and {z[b]:.4g} mm "
        f"(ratio {choice.ratio:.2f} > {MAX_IN_PLANE_RATIO}): an in-plane model would run across "
        f"a through-plane direction; {hint} (or pass --force-plane to run anyway)"
    )


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
            raise ConfigError(
                f"axis {a} has {n} voxels, fewer than {factor} (the multiple it must be cropped "
                "to); use a larger image or a smaller scale"
            )
        if keep != n:
            start = (n - keep) // 2
            slices[a] = slice(start, start + keep)
            maps[a] = (1.0, float(start))
            crops[a] = (start, start + keep)
    return data[tuple(slices)], grid_affine(affine, maps), crops


@dataclass(frozen=True)
class GridPlacement:
    """Where a grid (``shape``, ``affine``) lies on a reference grid.

    ``start``: the reference index nearest to the grid's voxel 0 (``index_offset`` is the exact,
    fractional one). ``same_axes``: same spacing and orientation (the direction vectors agree
    to within the tolerance over the grid's extent). ``on_lattice``: every voxel centre is a
    reference voxel centre (within the tolerance), i.e. the grid is the reference grid shifted
    by the whole voxels ``start``. ``inside``: the grid's box lies within the reference's.
    ``shift_mm``: the largest distance of a corner voxel from the reference voxel it is
    placed on (``start`` + its index).
    """

    start: tuple[int, int, int]
    shape: tuple[int, int, int]
    ref_shape: tuple[int, int, int]
    index_offset: tuple[float, float, float]
    same_axes: bool
    on_lattice: bool
    inside: bool
    shift_mm: float

    @property
    def same(self) -> bool:
        """The reference grid itself."""
        return self.on_lattice and self.start == (0, 0, 0) and self.shape == self.ref_shape

    @property
    def sub_box(self) -> bool:
        """An integer-voxel crop of the reference grid (the reference itself included)."""
        return self.on_lattice and self.inside

    def box(self) -> tuple[slice, slice, slice]:
        """The reference's slices that this grid covers (meaningful when ``sub_box``)."""
        return tuple(slice(a, a + n) for a, n in zip(self.start, self.shape, strict=True))  # type: ignore[return-value]

    def describe_box(self) -> str:
        """E.g. ``[2:146, 0:96, 0:6]``."""
        pairs = zip(self.start, self.shape, strict=True)
        return "[" + ", ".join(f"{a}:{a + n}" for a, n in pairs) + "]"


def place_on_grid(
    shape: Sequence[int],
    affine: np.ndarray,
    ref_shape: Sequence[int],
    ref_affine: np.ndarray,
    tol_voxels: float = 0.1,
) -> GridPlacement:
    """Locate the grid ``(shape, affine)`` on the reference grid ``(ref_shape, ref_affine)``.

    Positions are compared in scanner space at the grid's eight corner voxels, within
    ``tol_voxels`` of the reference's smallest voxel size (the rule of ``mrisr eval``: for the
    reference's own shape and ``start`` 0 this is the comparison of the two affines' corners).
    """
    shp = tuple(int(n) for n in shape)
    ref_shp = tuple(int(n) for n in ref_shape)
    if len(shp) != 3 or len(ref_shp) != 3:
        raise ConfigError(f"grids must be 3-D; got shapes {shp} and {ref_shp}")
    a = np.asarray(affine, dtype=float)
    b = np.asarray(ref_affine, dtype=float)
    tol = tol_voxels * float(np.sqrt((b[:3, :3] ** 2).sum(axis=0)).min())
    offset = (np.linalg.inv(b) @ a)[:3, 3]
    start = tuple(int(v) for v in np.round(offset))
    corners = np.array([[i, j, k, 1.0] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    corners[:, :3] *= np.asarray(shp, float) - 1
    placed = corners.copy()
    placed[:, :3] += start
    shift = float(np.abs((corners @ a.T - placed @ b.T)[:, :3]).max())
    lin = corners[:, :3]
    axes_err = float(np.abs(lin @ a[:3, :3].T - lin @ b[:3, :3].T).max())
    inside = all(s >= 0 and s + n <= m for s, n, m in zip(start, shp, ref_shp, strict=True))
    return GridPlacement(
        start=start,  # type: ignore[arg-type]
        shape=shp,  # type: ignore[arg-type]
        ref_shape=ref_shp,  # type: ignore[arg-type]
        index_offset=tuple(float(v) for v in offset),  # type: ignore[arg-type]
        same_axes=axes_err <= tol,
        on_lattice=shift <= tol,
        inside=inside,
        shift_mm=shift,
    )


def check_same_grid(
    shape: Sequence[int],
    affine: np.ndarray,
    ref_shape: Sequence[int],
    ref_affine: np.ndarray,
    what: str,
    tol_voxels: float = 0.1,
) -> None:
    """Voxel-wise comparison needs the same grid: the same shape and the same voxel positions
    in scanner space (within ``tol_voxels`` of the reference's smallest voxel). One-line
    ConfigError naming ``what`` otherwise."""
    shp, ref_shp = tuple(int(n) for n in shape), tuple(int(n) for n in ref_shape)
    if shp != ref_shp:
        raise ConfigError(
            f"{what} has shape {shp} but the reference has {ref_shp}; compare images on the "
            "reference grid (same scale and crop)"
        )
    a, b = np.asarray(affine, float), np.asarray(ref_affine, float)
    corners = np.array([[i, j, k, 1.0] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    corners[:, :3] *= np.asarray(ref_shp, float) - 1
    shift = float(np.abs((corners @ a.T - corners @ b.T)[:, :3]).max())
    if shift > tol_voxels * float(np.sqrt((b[:3, :3] ** 2).sum(axis=0)).min()):
        raise ConfigError(
            f"{what} has the reference's shape but lies up to {shift:.2f} mm away from its grid "
            "(the affines differ); voxel-wise scores would compare misaligned voxels"
        )

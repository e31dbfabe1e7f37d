"""Through-plane protocol facts: slice spacing, slice thickness, gap or overlap, and the ratio k.

A thick-slice scan images slabs ``thickness`` mm thick every ``spacing`` mm; the through-plane
super-resolution factor is ``k = spacing / in-plane spacing``. Spacing comes from the grid (for
DICOM, the spacing measured between slice positions); thickness from the user, else from the
DICOM header's SliceThickness (NIfTI and MGH do not carry it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mrisr.errors import ConfigError

#: A gap or overlap within this fraction of the slice spacing counts as contiguous.
CONTIGUOUS_RTOL = 0.01


def _positive(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def through_plane_facts(
    zooms: Sequence[float],
    slice_axis: int,
    meta: Mapping[str, Any],
    thickness_mm: float | None = None,
) -> dict[str, Any]:
    """JSON-able facts about the slices of a volume with voxel sizes ``zooms`` (mm).

    Args:
        zooms: the three voxel sizes in mm.
        slice_axis: the array axis across the slices (e.g. ``choose_plane(...).slice_axis``).
        meta: the loader's ``Volume.meta``; DICOM's ``slice_spacing`` (measured along the slice
            normal) and ``slice_thickness`` apply when ``slice_axis`` is 2, the stacking axis.
        thickness_mm: the slice thickness a user gives; it overrides the header's.

    Returns:
        ``slice_axis``; ``in_plane_mm`` (the two in-plane spacings); ``slice_spacing_mm``;
        ``slice_thickness_mm`` (None: unknown) and ``thickness_source`` (``"user"``,
        ``"header"`` or None); ``k`` = spacing / mean in-plane spacing (3 decimals); ``gap_mm``
        = spacing − thickness (positive: a gap between slabs, negative: an overlap, None:
        unknown); ``kind`` (``"gap"``, ``"overlap"``, ``"contiguous"`` when |gap| ≤ 1 % of the
        spacing, or ``"unknown"``) and a one-line ``summary``.

    Raises:
        ConfigError: a bad slice axis or zooms, or a user thickness that is not a positive
            number.
    """
    z, slice_axis = [float(v) for v in zooms], int(slice_axis)
    if len(z) != 3 or slice_axis not in (0, 1, 2):
        raise ConfigError(f"need three voxel sizes and a slice axis 0-2, got {z} and {slice_axis}")
    in_plane = [round(z[a], 6) for a in range(3) if a != slice_axis]  # 6: float32 noise
    stacked = slice_axis == 2 and meta.get("format") == "dicom"
    spacing = round((_positive(meta.get("slice_spacing")) if stacked else None) or z[slice_axis], 6)
    if thickness_mm is not None:
        thickness, source = _positive(thickness_mm), "user"
        if thickness is None:
            raise ConfigError(
                f"the slice thickness must be a positive number of mm, got {thickness_mm}"
            )
    else:
        thickness = _positive(meta.get("slice_thickness")) if stacked else None
        source = "header" if thickness is not None else None
    mean_in = sum(in_plane) / 2
    k = round(spacing / mean_in, 3) if mean_in > 0 else None
    gap = None if thickness is None else spacing - thickness
    if gap is None:
        kind, slab = "unknown", "thickness unknown"
    else:
        kind = (
            "contiguous"
            if abs(gap) <= CONTIGUOUS_RTOL * spacing
            else ("gap" if gap > 0 else "overlap")
        )
        detail = kind if kind == "contiguous" else f"{abs(gap):.3g} mm {kind}"
        slab = f"{thickness:.3g} mm thick ({detail})"
    plane = " x ".join(f"{v:.3g}" for v in in_plane)
    ratio = "unknown" if k is None else f"{k:.3g}"
    return {
        "slice_axis": slice_axis,
        "in_plane_mm": in_plane,
        "slice_spacing_mm": spacing,
        "slice_thickness_mm": None if thickness is None else round(thickness, 6),
        "thickness_source": source,
        "k": k,
        "gap_mm": None if gap is None else round(gap, 6),
        "kind": kind,
        "summary": f"slices every {spacing:.3g} mm, {slab} on a {plane} mm plane: k = {ratio}",
    }

"""``load_volume``: one entry point for every supported format, with input validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrisr.errors import InputError
from mrisr.io.formats import format_of
from mrisr.io.volume import Volume


def detect_format(path: Path) -> str:
    """The name of ``path``'s format in :data:`mrisr.io.formats.FORMATS`: a folder is DICOM,
    then the extension, then magic bytes (:func:`~mrisr.io.formats.format_of`)."""
    return format_of(path).name


def load_volume(
    path: str | Path,
    volume_index: int | None = None,
    nonfinite: str = "error",
    allow_empty: bool = False,
) -> Volume:
    """Read a scan as a float32 :class:`Volume` (data, 4×4 affine, metadata, original dtype).

    Args:
        path: NIfTI/MGZ file, DICOM folder (one series) or file, fastMRI ``.h5``, PNG or NPY.
        volume_index: which volume of a 4-D NIfTI to read (required for 4-D files).
        nonfinite: ``"error"`` (default) rejects NaN/Inf voxels; ``"zero"`` replaces them by 0
            and records how many in ``meta["nonfinite_replaced"]``.
        allow_empty: accept an all-zero volume (rejected by default: nothing to super-resolve).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input '{path}' does not exist")
    fmt = format_of(path)
    reader = fmt.load_reader()
    vol = reader(path, volume_index) if fmt.volume_index else reader(path)
    return validate(vol, nonfinite=nonfinite, allow_empty=allow_empty)


def validate(vol: Volume, nonfinite: str = "error", allow_empty: bool = False) -> Volume:
    """Reject (or repair, when asked) data that would silently poison every later step."""
    where = vol.meta.get("path", "input")
    bad = ~np.isfinite(vol.data)
    n_bad = int(bad.sum())
    if n_bad:
        if nonfinite == "zero":
            vol.data[bad] = 0.0
            vol.meta["nonfinite_replaced"] = n_bad
        else:
            raise InputError(
                f"'{where}' has {n_bad} NaN/Inf voxels (mrisr reads them as stored and does "
                "not guess a value); write the scan again with them replaced (e.g. by 0), or "
                "in Python read it with mrisr.load_volume(path, nonfinite='zero')"
            )
    if not np.isfinite(vol.affine).all() or abs(np.linalg.det(vol.affine[:3, :3])) < 1e-12:
        raise InputError(f"'{where}' has a singular or non-finite affine; its header is broken")
    if not allow_empty and not np.any(vol.data):
        raise InputError(f"'{where}' is all zero; there is no image to work on")
    return vol

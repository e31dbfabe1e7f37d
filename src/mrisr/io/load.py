"""``load_volume``: one entry point for every supported format, with input validation.

Bad input is a one-line :class:`~mrisr.errors.InputError` naming the file, never a traceback and
never a silently accepted damaged file: every reader checks its header before reading or
allocating the data, verifies compressed input over the whole stream (gzip CRC-32 and length,
PNG chunk CRCs) and refuses a file shorter than its header declares.

Geometry policy: mrisr does not invent geometry. A file whose voxel size, position or
orientation is missing or unusable (DICOM without PixelSpacing, ImagePositionPatient /
ImageOrientationPatient or, for one slice, a slice thickness; NIfTI without sform whose pixdim is
0, negative or NaN; MGH with goodRASFlag 0; fastMRI h5 without an ISMRMRD field of view) is
refused with the missing tag or field named, unless the caller passes
``load_volume(path, assume_geometry=True)``: then it is read with the documented default
(1 mm, identity orientation, origin 0) and each assumption is listed, as a sentence, in
``vol.meta["assumed_geometry"]``. PNG and NPY slices carry no geometry by design and are always
1 mm with identity orientation (an aligned, not scanner, space: ``meta["nifti_code"] == 2``).
"""

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
    assume_geometry: bool = False,
) -> Volume:
    """Read a scan as a float32 :class:`Volume` (data, 4×4 affine, metadata, original dtype).

    Args:
        path: NIfTI/MGZ file, DICOM folder (one series) or file, fastMRI ``.h5``, PNG or NPY.
        volume_index: which volume of a 4-D NIfTI to read (required for 4-D files).
        nonfinite: ``"error"`` (default) rejects NaN/Inf voxels; ``"zero"`` replaces them by 0
            and records how many in ``meta["nonfinite_replaced"]``.
        allow_empty: accept an all-zero volume (rejected by default: nothing to super-resolve).
        assume_geometry: read a file whose voxel size, position or orientation is missing with
            a default (1 mm, identity orientation, origin 0) instead of refusing it; what was
            assumed is listed in ``meta["assumed_geometry"]`` (see the module docstring).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input '{path}' does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"'{path}' is empty (0 bytes); the copy is incomplete or failed")
    fmt = format_of(path)
    reader = fmt.load_reader()
    if fmt.volume_index:
        vol = reader(path, volume_index, assume_geometry=assume_geometry)
    else:
        vol = reader(path, assume_geometry=assume_geometry)
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

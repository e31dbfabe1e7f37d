"""``load_volume``: one entry point for every supported format, with input validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrisr.errors import InputError
from mrisr.io.volume import Volume


def detect_format(path: Path) -> str:
    """The reader for ``path``: by folder, extension, then magic bytes."""
    name = path.name.lower()
    if path.is_dir():
        return "dicom"
    if name.endswith((".nii", ".nii.gz", ".mgz", ".mgh")):
        return "nifti"
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    if name.endswith(".png"):
        return "png"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(".dcm") or name.endswith(".ima"):
        return "dicom"
    with path.open("rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM":
        return "dicom"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "h5"
    raise InputError(
        f"cannot tell the format of '{path}'; mrisr reads .nii/.nii.gz/.mgz, DICOM (folder or "
        f"file), fastMRI .h5, .png and .npy"
    )


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
    fmt = detect_format(path)
    if fmt == "nifti":
        from mrisr.io.nifti import load_nifti

        vol = load_nifti(path, volume_index)
    elif fmt == "dicom":
        from mrisr.io.dicom import load_dicom

        vol = load_dicom(path)
    elif fmt == "h5":
        from mrisr.io.kspace_h5 import load_kspace_h5

        vol = load_kspace_h5(path)
    elif fmt == "png":
        from mrisr.io.image2d import load_png

        vol = load_png(path)
    else:
        from mrisr.io.image2d import load_npy

        vol = load_npy(path)
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
                f"'{where}' has {n_bad} NaN/Inf voxels; fix the file or pass --nonfinite zero "
                f"to replace them by 0"
            )
    if not np.isfinite(vol.affine).all() or abs(np.linalg.det(vol.affine[:3, :3])) < 1e-12:
        raise InputError(f"'{where}' has a singular or non-finite affine; its header is broken")
    if not allow_empty and not np.any(vol.data):
        raise InputError(f"'{where}' is all zero; there is no image to work on")
    return vol

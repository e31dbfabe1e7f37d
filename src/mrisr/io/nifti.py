"""NIfTI-1/2 and FreeSurfer MGH/MGZ reading (nibabel) and atomic NIfTI writing."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from mrisr.errors import ConfigError, InputError
from mrisr.io.atomic import atomic_outputs
from mrisr.io.formats import writable_suffixes
from mrisr.io.volume import Volume

NIFTI_SUFFIXES = writable_suffixes()  # (".nii", ".nii.gz"): the only format mrisr writes


def check_nifti_output(path: str | Path, overwrite: bool = False) -> Path:
    """Check, before any work, that ``path`` is a writable NIfTI output name (.nii / .nii.gz)
    and that its JSON sidecar ``path.json`` may be written too."""
    from mrisr.io.atomic import check_writable

    p = Path(path)
    if not str(p).endswith(NIFTI_SUFFIXES):
        raise ConfigError(
            f"output '{p}' must end with .nii or .nii.gz (mrisr writes volumes as NIfTI)"
        )
    check_writable(p, overwrite)
    check_writable(p.with_name(p.name + ".json"), overwrite)
    return p


def load_nifti(path: str | Path, volume_index: int | None = None) -> Volume:
    """Read a 3-D NIfTI or MGZ file (any orientation) as a float32 :class:`Volume`.

    A 4-D file needs ``volume_index`` (which 3-D volume of the series to take); trailing
    singleton dimensions are dropped; a 2-D file becomes H×W×1.
    """
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    try:
        img = nib.load(str(path))
        shape = img.shape
        if len(shape) > 3:
            # Singleton trailing dims (x, y, z, 1) are common and harmless.
            while len(shape) > 3 and shape[-1] == 1:
                shape = shape[:-1]
        if len(shape) == 4:
            if volume_index is None:
                raise InputError(
                    f"'{path}' is 4-D with {shape[3]} volumes; choose one with "
                    f"--volume-index N (0..{shape[3] - 1})"
                )
            if not -shape[3] <= volume_index < shape[3]:
                raise InputError(
                    f"--volume-index {volume_index} is out of range for '{path}' "
                    f"({shape[3]} volumes)"
                )
            data = np.asarray(img.dataobj[..., volume_index], dtype=np.float32)
        elif len(shape) > 4:
            raise InputError(f"'{path}' has {len(shape)} dimensions {shape}; mrisr reads 3-D/4-D")
        else:
            data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    except InputError:
        raise
    except (ImageFileError, OSError, EOFError, zlib.error, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read '{path}' ({reason}); the file is corrupt, truncated or not NIfTI/MGZ"
        ) from exc
    if data.ndim == 2:
        data = data[:, :, None]
    hdr = img.header
    is_nifti = isinstance(img, nib.Nifti1Image | nib.Nifti2Image)
    meta: dict = {"format": "nifti" if is_nifti else "mgz", "path": str(path)}
    if is_nifti:
        meta["qform_code"] = int(hdr["qform_code"])
        meta["sform_code"] = int(hdr["sform_code"])
        units = hdr.get_xyzt_units()
        meta["xyzt_units"] = [units[0], units[1]]
        descrip = hdr["descrip"].tobytes().rstrip(b"\0").decode("latin-1")
        if descrip:
            meta["descrip"] = descrip
    return Volume(
        data=data,
        affine=img.affine,
        meta=meta,
        orig_dtype=img.get_data_dtype(),
        header=hdr if is_nifti else None,
    )


def to_nifti_image(volume: Volume, dtype: np.dtype | str = np.float32):
    """A nibabel Nifti1Image of ``volume`` keeping the source header's codes, units and intent."""
    import nibabel as nib

    dtype = np.dtype(dtype)
    data = volume.data
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        data = np.clip(np.rint(data), info.min, info.max)
    data = data.astype(dtype)
    src = volume.header
    header = src.copy() if isinstance(src, nib.Nifti1Header) else None
    img = nib.Nifti1Image(data, volume.affine, header=header)
    hdr = img.header
    # Keep the source's coordinate-system codes; a source without codes (DICOM, MGZ, PNG) is in
    # scanner space (code 1) unless it said otherwise.
    default_code = int(volume.meta.get("nifti_code", 1))
    qcode = int(volume.meta.get("qform_code", 0)) or default_code
    scode = int(volume.meta.get("sform_code", 0)) or default_code
    img.set_sform(volume.affine, code=scode)
    img.set_qform(volume.affine, code=qcode)
    units = volume.meta.get("xyzt_units")
    if not units or units[0] == "unknown":
        units = ["mm", units[1] if units else "sec"]
    hdr.set_xyzt_units(*units)
    hdr.set_data_dtype(dtype)
    hdr.set_slope_inter(None, None) if dtype.kind == "f" else hdr.set_slope_inter(1.0, 0.0)
    hdr["cal_min"], hdr["cal_max"] = 0, 0
    return img


def save_nifti(
    volume: Volume, path: str | Path, overwrite: bool = False, dtype: np.dtype | str = np.float32
) -> Path:
    """Write ``volume`` as NIfTI (``.nii`` or ``.nii.gz``) atomically; refuse to overwrite unless
    ``overwrite``. The source header's qform/sform codes, orientation and units are kept."""
    path = Path(path)
    if not str(path).endswith(NIFTI_SUFFIXES):
        raise ConfigError(f"output '{path}' must end with .nii or .nii.gz")
    import nibabel as nib

    img = to_nifti_image(volume, dtype)
    with atomic_outputs([path], overwrite=overwrite) as (tmp,):
        nib.save(img, str(tmp))
    return path

"""NIfTI-1/2 and FreeSurfer MGH/MGZ reading (nibabel) and atomic NIfTI writing.

Reading checks, in this order, so that a damaged file is an error and never an image:

1. the name matches the content: ``.nii.gz``/``.mgz`` must be gzip, ``.nii``/``.mgh`` not;
2. the header alone, read raw (before nibabel's silent "fixes"), before any data is read or
   allocated: NIfTI ``sizeof_hdr`` and magic, ``dim[0]`` of 1 to 7, every dimension at least 1,
   a real scalar datatype (complex, RGB and RGBA are refused), ``vox_offset`` past the header,
   known qform/sform codes, a size within :data:`~mrisr.io.formats.MAX_VOXELS`; MGH version 1, a
   known type, dimensions at least 1;
3. geometry (below);
4. the whole file: a gzip file is decompressed once to its end in a streaming pass that keeps
   nothing (:func:`~mrisr.io.formats.verify_gzip`: CRC-32 and ISIZE of every member, no trailing
   bytes but zero padding), and the (decompressed) file must hold ``vox_offset`` plus the data
   bytes the header declares (a truncated file is an error, also where nibabel would memory-map);
5. nibabel reads the data; any nibabel error is a one-line :class:`InputError`.

Geometry policy: mrisr does not invent a voxel size or an orientation. A NIfTI without an sform
(``sform_code`` 0) takes its voxel size from ``pixdim[1..3]``; a pixdim that is 0, negative or
not finite there is refused, naming the field. An MGH file with ``goodRASFlag`` 0 (no orientation
stored; nibabel would substitute FreeSurfer's coronal 1 mm default) or a ``delta`` that is not
positive is refused too. With ``assume_geometry=True`` the file is read as nibabel reads it, with
1 mm for each unusable voxel size, and every assumption is listed in
``meta["assumed_geometry"]``. A NIfTI with valid pixdims but neither qform nor sform ("method 1")
is read with nibabel's default orientation and says so in ``meta["geometry"]``.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.errors import ConfigError, InputError
from mrisr.io.atomic import atomic_outputs
from mrisr.io.formats import (
    ASSUME_HINT,
    check_declared_size,
    human_bytes,
    is_gzip,
    quiet,
    verify_gzip,
    writable_suffixes,
)
from mrisr.io.volume import Volume

NIFTI_SUFFIXES = writable_suffixes()  # (".nii", ".nii.gz"): the only format mrisr writes
MGH_DATA_OFFSET = 284
#: The MGH footer after the data, when present, starts with 5 floats (TR, flip, TE, TI, FoV).
MGH_FOOTER = 20
#: MGH type codes → stored dtype (big-endian), as FreeSurfer and nibabel define them.
MGH_TYPES = {0: ">u1", 1: ">i4", 3: ">f4", 4: ">i2", 10: ">u2"}
#: Bytes a gzip file may decompress to beyond its header's image data (MGH tags, extensions).
GZIP_SLACK = 1 << 26


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


@dataclass
class _Plan:
    """What the raw header says, checked: where the data are and what was assumed."""

    offset: int
    nbytes: int
    bad_zooms: list[int] = field(default_factory=list)  # pixdim / delta indices set to 1 mm
    assumed: list[str] = field(default_factory=list)
    geometry: str | None = None


def _check_name(path: Path, gz: bool) -> None:
    low = path.name.lower()
    compressed_name = low.endswith((".gz", ".mgz"))
    if gz and not compressed_name:
        hint = "name it .nii.gz" if low.endswith(".nii") else "name it .mgz"
        raise InputError(f"'{path}' is gzip-compressed but named as uncompressed; {hint}")
    if not gz and compressed_name:
        hint = "name it .nii" if low.endswith(".nii.gz") else "name it .mgh"
        raise InputError(
            f"'{path}' is not gzip-compressed (no gzip signature) although its name says so; "
            f"the file is damaged, or it is uncompressed and should be named so ({hint})"
        )


def _read_head(path: Path, gz: bool, n: int = 544) -> bytes:
    """The first ``n`` bytes of the (decompressed) file."""
    try:
        with gzip.open(path, "rb") if gz else path.open("rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        if gz:
            verify_gzip(path)  # raises with the precise reason
        raise InputError(f"cannot read the header of '{path}' ({exc})") from None


def _zoom_problem(path: Path, names: list[str], what: str, assume: bool, plan: _Plan) -> None:
    if not names:
        return
    fields = ", ".join(names)
    if not assume:
        raise InputError(
            f"'{path}' has no usable voxel size: {fields} {what}; "
            + ASSUME_HINT.format(what="1 mm voxels")
        )
    plan.assumed.append(f"{fields} {what}: 1 mm assumed")


def _nifti_plan(path: Path, head: bytes, assume: bool) -> _Plan:
    import nibabel as nib
    from nibabel.nifti1 import data_type_codes, xform_codes

    if len(head) < 348:
        raise InputError(
            f"'{path}' is truncated: {len(head)} bytes, shorter than a NIfTI header (348)"
        )
    sizes = {e: struct.unpack(e + "i", head[:4])[0] for e in "<>"}
    endian = next((e for e, v in sizes.items() if v in (348, 540)), None)
    if endian is None:
        raise InputError(
            f"cannot read '{path}' as NIfTI (sizeof_hdr is {sizes['<']}, expected 348 or 540): "
            "the header is corrupt or the file has another format"
        )
    size = sizes[endian]
    if len(head) < size:
        raise InputError(f"'{path}' is truncated inside its {size}-byte NIfTI-2 header")
    hdr = (nib.Nifti1Header if size == 348 else nib.Nifti2Header)(
        head[:size], endianness=endian, check=False
    )
    magic = bytes(hdr["magic"].item())
    if magic[:3] in (b"ni1", b"ni2"):
        raise InputError(f"'{path}' is the header of a .hdr/.img pair, not a single-file NIfTI")
    if magic[:3] not in (b"n+1", b"n+2"):
        raise InputError(f"'{path}' has no NIfTI magic (found {magic!r}): the header is corrupt")
    dim = [int(v) for v in hdr["dim"]]
    if not 1 <= dim[0] <= 7:
        raise InputError(
            f"'{path}' has dim[0] = {dim[0]} (the number of dimensions, 1 to 7): the header is "
            "corrupt"
        )
    shape = tuple(dim[1 : dim[0] + 1])
    code = int(hdr["datatype"])
    if code not in data_type_codes.code:
        raise InputError(f"'{path}' has an unknown NIfTI datatype code {code}: corrupt header")
    dtype, label = np.dtype(data_type_codes.dtype[code]), data_type_codes.label[code]
    if dtype.kind == "c" or "complex" in label:
        raise InputError(
            f"'{path}' holds complex data ({label}); mrisr reads real-valued images: save the "
            "magnitude (e.g. numpy.abs of the data) as a real-valued NIfTI"
        )
    if label in ("RGB", "RGBA"):
        raise InputError(
            f"'{path}' is a colour image ({label}, datatype {code}); MR volumes are greyscale: "
            "convert it to one channel first"
        )
    if dtype.kind not in "biuf":
        raise InputError(f"'{path}' has NIfTI datatype '{label}' ({code}), which mrisr cannot read")
    nbytes = check_declared_size(path, shape, dtype.itemsize)
    vox = float(hdr["vox_offset"])
    if not np.isfinite(vox) or vox < size + 4 or vox != int(vox):
        raise InputError(
            f"'{path}' has vox_offset = {vox:g}, which is not past its {size}-byte header: the "
            "header is corrupt"
        )
    plan = _Plan(offset=int(vox), nbytes=nbytes)
    qcode, scode = int(hdr["qform_code"]), int(hdr["sform_code"])
    for name, c in (("qform_code", qcode), ("sform_code", scode)):
        if c not in set(xform_codes.value_set()):
            raise InputError(f"'{path}' has {name} = {c}, not a NIfTI code (0 to 5): bad header")
    if scode == 0:
        pixdim = [float(v) for v in hdr["pixdim"]]
        axes = range(1, 4) if qcode else range(1, min(dim[0], 3) + 1)
        plan.bad_zooms = [i for i in axes if not (np.isfinite(pixdim[i]) and pixdim[i] > 0)]
        names = [f"pixdim[{i}] = {pixdim[i]:g}" for i in plan.bad_zooms]
        _zoom_problem(path, names, "and no sform (sform_code 0)", assume, plan)
        if not qcode:
            plan.geometry = "no qform/sform: pixdim spacing with nibabel's default orientation"
    return plan


def _mgh_plan(path: Path, head: bytes, assume: bool) -> _Plan:
    if len(head) < 90:
        raise InputError(f"'{path}' is truncated: {len(head)} bytes, shorter than an MGH header")
    version, *dims, type_code, _dof = struct.unpack(">7i", head[:28])
    (ras_good,) = struct.unpack(">h", head[28:30])
    delta = struct.unpack(">3f", head[30:42])
    if version != 1:
        raise InputError(
            f"'{path}' is not an MGH file (version {version}, expected 1): the header is corrupt "
            "or the file has another format"
        )
    if type_code not in MGH_TYPES:
        raise InputError(f"'{path}' has an unknown MGH data type {type_code}: corrupt header")
    nbytes = check_declared_size(path, tuple(dims), np.dtype(MGH_TYPES[type_code]).itemsize)
    plan = _Plan(offset=MGH_DATA_OFFSET, nbytes=nbytes)
    if not ras_good:
        what = "FreeSurfer's default geometry (coronal, 1 mm voxels, centred)"
        if not assume:
            raise InputError(
                f"'{path}' stores no orientation (MGH goodRASFlag = 0); "
                + ASSUME_HINT.format(what=what)
            )
        plan.assumed.append(f"MGH goodRASFlag 0 (no orientation stored): {what} assumed")
    else:
        plan.bad_zooms = [i for i in range(3) if not (np.isfinite(delta[i]) and delta[i] > 0)]
        names = [f"delta[{i}] = {delta[i]:g}" for i in plan.bad_zooms]
        _zoom_problem(path, names, "(MGH voxel size)", assume, plan)
    return plan


def _check_length(path: Path, gz: bool, plan: _Plan, is_mgh: bool) -> dict[str, Any]:
    """The whole file: verified gzip stream, at least ``offset + nbytes`` bytes."""
    stored = plan.offset + plan.nbytes
    meta: dict[str, Any] = {}
    if gz:
        have, zeros = verify_gzip(path, max_out=stored + GZIP_SLACK)
        if zeros:
            meta["gzip_trailing_zero_bytes"] = zeros
    else:
        have = path.stat().st_size
    if is_mgh and 0 < have - stored < MGH_FOOTER:
        raise InputError(
            f"'{path}' is truncated: its optional MGH footer (TR, flip angle, TE, TI, FoV: "
            f"{MGH_FOOTER} bytes) is cut to {have - stored} bytes (the copy is incomplete)"
        )
    if have < stored:
        raise InputError(
            f"'{path}' is truncated: its header declares {human_bytes(plan.nbytes)} of image data "
            f"from byte {plan.offset} but the {'decompressed ' if gz else ''}file ends at byte "
            f"{have} (the copy is incomplete; re-export or re-download it)"
        )
    return meta


def load_nifti(
    path: str | Path, volume_index: int | None = None, *, assume_geometry: bool = False
) -> Volume:
    """Read a 3-D NIfTI or MGZ file (any orientation) as a float32 :class:`Volume`.

    A 4-D file needs ``volume_index`` (which 3-D volume of the series to take); trailing
    singleton dimensions are dropped; a 2-D file becomes H×W×1. The file is checked as the
    module docstring says; ``assume_geometry`` accepts a missing voxel size or orientation
    (recorded in ``meta["assumed_geometry"]``).
    """
    import nibabel as nib

    path = Path(path)
    gz = is_gzip(path)
    _check_name(path, gz)
    head = _read_head(path, gz)
    is_mgh = path.name.lower().endswith((".mgz", ".mgh"))
    plan = (_mgh_plan if is_mgh else _nifti_plan)(path, head, assume_geometry)
    extra = _check_length(path, gz, plan, is_mgh)
    try:
        with quiet("nibabel"):  # it logs the header "fixes" mrisr has refused already
            img = nib.load(str(path))
            shape = img.shape
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
                raise InputError(
                    f"'{path}' has {len(shape)} dimensions {shape}; mrisr reads 2-D/3-D/4-D"
                )
            elif len(shape) < 2:
                raise InputError(f"'{path}' is 1-D {shape}; mrisr reads 2-D/3-D/4-D images")
            else:
                data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
            hdr = img.header
            affine = img.affine
            if plan.bad_zooms:  # assume_geometry: 1 mm where the header has no voxel size
                hdr = hdr.copy()
                key = "delta" if is_mgh else "pixdim"
                zooms = np.array(hdr[key], dtype=np.float64)
                zooms[plan.bad_zooms] = 1.0
                hdr[key] = zooms
                affine = hdr.get_affine() if is_mgh else hdr.get_best_affine()
    except InputError:
        raise
    except Exception as exc:  # any nibabel error reading a checked file: still one line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read '{path}' ({type(exc).__name__}: {reason}); the file is corrupt, "
            "truncated or not NIfTI/MGZ"
        ) from exc
    if data.ndim == 2:
        data = data[:, :, None]
    is_nifti = isinstance(img, nib.Nifti1Image | nib.Nifti2Image)
    meta: dict = {"format": "nifti" if is_nifti else "mgz", "path": str(path), **extra}
    if is_nifti:
        meta["qform_code"] = int(hdr["qform_code"])
        meta["sform_code"] = int(hdr["sform_code"])
        units = hdr.get_xyzt_units()
        meta["xyzt_units"] = [units[0], units[1]]
        descrip = hdr["descrip"].tobytes().rstrip(b"\0").decode("latin-1")
        if descrip:
            meta["descrip"] = descrip
    if plan.geometry:
        meta["geometry"] = plan.geometry
    if plan.assumed:
        meta["assumed_geometry"] = list(plan.assumed)
    return Volume(
        data=data,
        affine=affine,
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

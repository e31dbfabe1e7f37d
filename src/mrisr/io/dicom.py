"""DICOM reading: a folder holding one series, a single-slice file or an enhanced multi-frame file.

Geometry follows the DICOM standard (patient LPS, mm) converted to the NIfTI RAS+ convention:
``data[i, j, k]`` has i = column index (along the row direction cosine), j = row index (along the
column direction cosine) and k = slice index sorted by position along the slice normal.
pydicom is imported lazily so that ``import mrisr`` stays light.

Integrity: pydicom reads a file cut short silently, so each file's last element must end inside
the file and native PixelData must hold Rows × Columns × frames × samples × bits / 8 bytes. In a
folder, a damaged slice (empty, shorter than the preamble, DICOM but unreadable) is an error
naming it; other files (README, DICOMDIR) are skipped and a gap error lists them.

Geometry policy: a series without PixelSpacing, without ImagePositionPatient /
ImageOrientationPatient, or a single slice without SpacingBetweenSlices/SliceThickness is
refused, naming the tag, unless ``assume_geometry=True``: then 1 mm, an identity (axial, LPS)
orientation with origin 0 and a 1 mm step are used where missing and listed in
``meta["assumed_geometry"]`` (``meta["geometry"]`` is :data:`MISSING_GEOMETRY` then).
``meta["slice_spacing"]`` is measured from the positions; the header's SpacingBetweenSlices is
``meta["spacing_between_slices"]``, noted in ``meta["notes"]`` if it differs by over 1 %.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.errors import InputError
from mrisr.io.dicom_geometry import LPS_TO_RAS as LPS_TO_RAS  # re-exported
from mrisr.io.dicom_geometry import dicom_affine, spacing_note
from mrisr.io.formats import ASSUME_HINT, check_declared_size, quiet
from mrisr.io.volume import Volume

MISSING_GEOMETRY = "missing: identity orientation assumed"
_IDENTITY_IOP = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
_UNDEFINED = 0xFFFFFFFF


@dataclass
class _Slice:
    """Geometry and rescale of one 2-D image (one file, or one frame of a multi-frame file)."""

    index: int  # position in the file list, or frame number: used to fetch the pixels
    number: int  # InstanceNumber or frame number: the order when positions are missing
    pos: np.ndarray | None  # ImagePositionPatient (3,), LPS mm, centre of the first voxel
    iop: np.ndarray | None  # ImageOrientationPatient (6,): row cosine, then column cosine
    spacing: tuple[float, float] | None  # PixelSpacing: (row spacing, column spacing) in mm
    slope: float = 1.0
    intercept: float = 0.0


def _floats(value: Any, n: int) -> np.ndarray | None:
    """``n`` finite numbers from a multi-valued tag, else None (absent or malformed)."""
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.isfinite(arr).all() else None


def _num(ds: Any, keyword: str) -> float | None:
    """A finite number from a single-valued tag, else None (absent, malformed, NaN or inf)."""
    value = getattr(ds, keyword, None) if ds is not None else None
    try:
        v = None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None
    return v if v is not None and np.isfinite(v) else None


def _make_slice(index: int, number: int, pos: Any, ori: Any, meas: Any, scale: Any) -> _Slice:
    """A :class:`_Slice` from the datasets holding position, orientation, spacing, rescale."""
    spacing = _floats(getattr(meas, "PixelSpacing", None), 2)
    return _Slice(
        index=index,
        number=number,
        pos=_floats(getattr(pos, "ImagePositionPatient", None), 3),
        iop=_floats(getattr(ori, "ImageOrientationPatient", None), 6),
        spacing=None if spacing is None or spacing.min() <= 0 else (spacing[0], spacing[1]),
        slope=_num(scale, "RescaleSlope") or 1.0,
        intercept=_num(scale, "RescaleIntercept") or 0.0,
    )


def _check_complete(ds: Any, path: Path) -> None:
    """Refuse a file whose last element runs past its end (pydicom keeps it, shortened)."""
    raw = ds.get_item(max(ds.keys())) if len(ds) else None
    tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
    size = path.stat().st_size
    if tell is not None and length is not None and length != _UNDEFINED and tell + length > size:
        raise InputError(
            f"'{path}' is truncated or corrupt: its element {raw.tag} declares {length} bytes "
            f"from byte {tell} but the file ends at byte {size} (copy it again)"
        )


def _read_header(path: Path, strict: bool) -> Any:
    """The dataset of ``path`` without pixels; ``None`` for a non-DICOM file unless ``strict``."""
    import pydicom

    try:
        with quiet("pydicom"):
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=False)
    except Exception as exc:  # pydicom raises many types (struct.error on a cut tag, ...)
        if not strict:
            return None
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read '{path}' as DICOM ({reason}); the file is corrupt, truncated or not DICOM"
        ) from exc
    _check_complete(ds, path)
    return ds


def _check_pixel_length(ds: Any, path: Path) -> None:
    """Native PixelData must hold every pixel the header declares."""
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if "PixelData" not in ds or ts is None or ts.is_compressed:
        return
    dims = [int(_num(ds, k) or 1) for k in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel")]
    bits = int(_num(ds, "BitsAllocated") or 0)
    want, have = (int(np.prod(dims, dtype=np.int64)) * bits + 7) // 8, len(ds.PixelData)
    if have < want:
        raise InputError(
            f"'{path}' is truncated: its PixelData holds {have} bytes, Rows × Columns × frames "
            f"× samples × bits / 8 = {' × '.join(map(str, dims))} × {bits} / 8 = {want}"
        )


def _pixels(path: Path) -> np.ndarray:
    """Stored pixel values of ``path``: shape (rows, cols) or (frames, rows, cols)."""
    import pydicom

    ds = None
    try:
        with quiet("pydicom"):
            ds = pydicom.dcmread(path, force=False)
            _check_complete(ds, path)
            _check_pixel_length(ds, path)
            arr = ds.pixel_array
    except InputError:
        raise
    except Exception as exc:  # pydicom raises many types when a decoder is missing or fails
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        reason = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(":")
        if ts is None or not ts.is_compressed:
            raise InputError(
                f"cannot read the pixel data of '{path}' ({reason}); the file is truncated or "
                f"corrupt"
            ) from exc
        raise InputError(
            f"cannot decode the pixel data of '{path}' (transfer syntax {ts.name} ({ts}): "
            f"{reason}); install a decoder with `pip install pylibjpeg pylibjpeg-libjpeg "
            f"pylibjpeg-openjpeg` or `pip install python-gdcm`, or convert it with dcm2niix"
        ) from exc
    if int(getattr(ds, "SamplesPerPixel", 1)) != 1:
        raise InputError(f"'{path}' is a colour image; mrisr reads greyscale images only")
    return arr


def _frames(file: Path, n_frames: int) -> np.ndarray:
    arr = _pixels(file)
    if arr.ndim != 3 or arr.shape[0] != n_frames:
        raise InputError(f"'{file}' declares {n_frames} frames but holds pixels {arr.shape}")
    return arr


def _group_item(ds: Any, frame: int, seq: str) -> Any:
    """First item of functional group ``seq`` for ``frame``: per-frame, else shared, else None."""
    per_frame = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    for items, i in ((per_frame, frame), (getattr(ds, "SharedFunctionalGroupsSequence", None), 0)):
        if items is not None and len(items) > i and seq in items[i] and len(items[i][seq].value):
            return items[i][seq].value[0]
    return None


def _frame_slices(ds: Any, n_frames: int) -> list[_Slice]:
    """Per-frame geometry and rescale of an enhanced multi-frame dataset."""
    slices = []
    for f in range(n_frames):
        pos = _group_item(ds, f, "PlanePositionSequence")
        ori = _group_item(ds, f, "PlaneOrientationSequence") or ds
        meas = _group_item(ds, f, "PixelMeasuresSequence") or ds
        pvt = _group_item(ds, f, "PixelValueTransformationSequence")
        scale = pvt if pvt is not None and "RescaleSlope" in pvt else ds
        slices.append(_make_slice(f, f, pos, ori, meas, scale))
    return slices


def _sort_and_measure(
    slices: list[_Slice], where: str, fallback_step: float, note: str = ""
) -> tuple[list[_Slice], np.ndarray, np.ndarray, float]:
    """Sort ``slices`` along the slice normal and check that they are evenly spaced.

    Returns (sorted slices, row/column cosines (6,), slice step vector (3,) in LPS mm, mean
    slice spacing along the normal in mm).
    """
    iop = slices[0].iop
    if any(not np.allclose(s.iop, iop, atol=1e-4) for s in slices):
        raise InputError(f"'{where}' mixes slice orientations; point at a folder with one stack")
    normal = np.cross(iop[:3], iop[3:])
    if len(slices) == 1:
        return slices, iop, normal * fallback_step, fallback_step
    proj = np.array([float(s.pos @ normal) for s in slices])
    order = np.argsort(proj, kind="stable")
    slices, proj = [slices[i] for i in order], proj[order]
    steps = np.diff(proj)
    if np.any(steps < 1e-3):
        raise InputError(
            f"'{where}' has two slices at the same position ({proj[int(np.argmin(steps))]:.3f} mm "
            f"along the slice normal); the folder may hold more than one series or echo"
        )
    ref = float(np.median(steps))  # robust to the gap being named below
    tol = max(0.01 * ref, 0.01)
    k = int(np.argmax(np.abs(steps - ref)))
    if abs(steps[k] - ref) > tol:
        raise InputError(
            f"'{where}' has an irregular gap of {steps[k]:.3f} mm between sorted slices {k} and "
            f"{k + 1} (at {proj[k]:.3f} and {proj[k + 1]:.3f} mm along the normal; the usual step "
            f"is {ref:.3f} mm): the series has missing or uneven slices{note}"
        )
    step = (slices[-1].pos - slices[0].pos) / (len(slices) - 1)
    line = slices[0].pos + np.outer(np.arange(len(slices)), step)
    if np.abs(np.array([s.pos for s in slices]) - line).max() > tol:
        raise InputError(
            f"'{where}' has slice positions that do not lie on one line; point at a folder with "
            f"one series/stack"
        )
    return slices, iop, step, float(steps.mean())


def _acquisition(ds: Any) -> dict[str, Any]:
    """The acquired in-plane matrix, when the header says it (AcquisitionMatrix, 0018,1310:
    frequency rows \\ frequency columns \\ phase rows \\ phase columns, two of them 0, with
    InPlanePhaseEncodingDirection ROW: phase encoded along a row, i.e. across the columns).

    ``acquired_matrix``: acquired samples along volume axes 0 (along a row, ``Columns``) and 1
    (down a column, ``Rows``), as dcm2niix's AcquisitionMatrixPE / ReconMatrixPE pair reads
    it; the reconstructed grid has ``Columns`` × ``Rows``. Empty when the header lacks either
    element or they do not make sense."""
    raw = getattr(ds, "AcquisitionMatrix", None)
    direction = str(getattr(ds, "InPlanePhaseEncodingDirection", "") or "").upper()
    try:
        vals = [int(v) for v in raw] if raw is not None else []
    except (TypeError, ValueError):
        return {}
    if len(vals) != 4 or direction not in ("ROW", "COL"):
        return {}
    freq, phase = max(vals[0], vals[1]), max(vals[2], vals[3])
    if freq <= 0 or phase <= 0:
        return {}
    along_row, down_col = (phase, freq) if direction == "ROW" else (freq, phase)
    return {
        "acquisition_matrix": vals,
        "phase_encoding_direction": direction,
        "acquired_matrix": [along_row, down_col],
    }


def _missing_geometry(
    slices: list[_Slice], have: list[bool], step_known: bool, where: Path, assume: bool
) -> list[str]:
    """Refuse missing geometry tags, naming them, unless ``assume``: then the assumptions."""
    problems = []  # (what is missing, what is assumed)
    if any(s.spacing is None for s in slices):
        problems.append(("PixelSpacing (0028,0030)", "PixelSpacing missing: 1 mm assumed"))
    tags = ["ImagePositionPatient (0020,0032)", "ImageOrientationPatient (0020,0037)"]
    absent = [any(s.pos is None for s in slices), any(s.iop is None for s in slices)]
    tags = [t for t, a in zip(tags, absent, strict=True) if a and not any(have)]
    if tags:
        short = "/".join(t.split()[0] for t in tags)
        what = "identity (axial, LPS) orientation and origin 0 assumed"
        problems.append((" or ".join(tags), f"{short} missing: {what}"))
    if (len(slices) == 1 or not any(have)) and not step_known:
        tag = "SpacingBetweenSlices (0018,0088) or SliceThickness (0018,0050)"
        problems.append((tag, "SpacingBetweenSlices/SliceThickness missing: 1 mm step assumed"))
    if problems and not assume:
        raise InputError(
            f"'{where}' has no usable {' and no '.join(p[0] for p in problems)}: its geometry is "
            "unknown; " + ASSUME_HINT.format(what="1 mm spacing and an identity orientation")
        )
    return [p[1] for p in problems]


def _build(
    ds: Any, slices: list, image: Callable, where: Path, n_files: int, assume: bool, note: str
) -> Volume:
    """Stack the 2-D images ``image(slice)`` (rows, cols) into a (cols, rows, K) Volume."""
    measures = _group_item(ds, 0, "PixelMeasuresSequence")
    thickness = _num(measures, "SliceThickness") or _num(ds, "SliceThickness")
    between = _num(measures, "SpacingBetweenSlices") or _num(ds, "SpacingBetweenSlices")
    have = [s.pos is not None and s.iop is not None for s in slices]
    known_step = next((v for v in (between, thickness) if v is not None and v > 0), None)
    if any(have) and not all(have):
        raise InputError(f"'{where}' has slices with and without ImagePositionPatient")
    assumed = _missing_geometry(slices, have, known_step is not None, where, assume)
    fallback = known_step or 1.0
    if all(have):
        slices, iop, step, spacing_k = _sort_and_measure(slices, str(where), fallback, note)
        origin = slices[0].pos
    elif not any(have):
        slices = sorted(slices, key=lambda s: s.number)
        iop, step, spacing_k = _IDENTITY_IOP, np.array([0.0, 0.0, fallback]), fallback
        origin = np.zeros(3)
    planes, shapes, dtype, rescaled = [], set(), None, False
    for s in slices:
        img = image(s)
        shapes.add(img.shape)
        if len(shapes) > 1 or img.ndim != 2:
            raise InputError(f"'{where}' mixes image sizes {sorted(shapes)}; use one series")
        dtype = img.dtype if dtype is None else np.promote_types(dtype, img.dtype)
        rescaled |= s.slope != 1.0 or s.intercept != 0.0
        planes.append((img.astype(np.float64) * s.slope + s.intercept).astype(np.float32).T)

    def text(keyword: str) -> str | None:
        return str(getattr(ds, keyword, "") or "") or None

    meta: dict[str, Any] = {
        "format": "dicom",
        "path": str(where),
        "series_uid": text("SeriesInstanceUID"),
        "series_description": text("SeriesDescription"),
        "modality": text("Modality"),
        "n_files": n_files,
        "slice_thickness": thickness,  # SliceThickness (0018,0050): the slab each slice images
        "slice_spacing": spacing_k,  # measured between positions (K = 1 or none: the step used)
        "spacing_between_slices": between,  # the header's (0018,0088), as written
        "manufacturer": text("Manufacturer"),
        "rescale_applied": bool(rescaled),
        "multiframe": int(getattr(ds, "NumberOfFrames", 1) or 1) > 1,
    }
    meta.update(_acquisition(ds))
    if not all(have):
        meta["geometry"] = MISSING_GEOMETRY
    if assumed:
        meta["assumed_geometry"] = assumed
    if differs := spacing_note(between, spacing_k if all(have) and len(slices) > 1 else None):
        meta["notes"] = [differs]
    affine = dicom_affine(iop, slices[0].spacing or (1.0, 1.0), step, origin)  # 1 mm: assumed above
    return Volume(np.stack(planes, axis=2), affine, meta, orig_dtype=dtype, header=None)


def _classify_unreadable(f: Path) -> None:
    """Raise if an unreadable file of a folder is a damaged slice, not some other file."""
    size = f.stat().st_size
    suffix = f.suffix.lower()  # a slice's name: .dcm/.ima, or digits and no or a numeric suffix
    numbered = (suffix == "" or suffix[1:].isdigit()) and any(c.isdigit() for c in f.name)
    slice_name = suffix in (".dcm", ".ima", ".dicom") or numbered
    if size == 0 and slice_name:
        raise InputError(
            f"'{f}' is empty (0 bytes): a slice file of this DICOM series is damaged or its copy "
            "failed; copy it again or remove it"
        )
    with f.open("rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM":
        _read_header(f, strict=True)  # raises the reason
    if size < 132 and slice_name and not head.decode("latin-1").strip().isprintable():
        raise InputError(f"'{f}' is truncated ({size} bytes): copy this DICOM slice again")


def _other_storage(ds: Any) -> bool:
    """A known non-image DICOM object (DICOMDIR, report, presentation state...), not a slice."""
    name = str(getattr(ds.file_meta.get("MediaStorageSOPClassUID"), "name", ""))
    return name.endswith("Storage") and "Image" not in name


def _series_headers(folder: Path) -> tuple[list[tuple[Path, Any]], list[str]]:
    """(file, header) of each DICOM image under ``folder`` (one series), and files skipped."""
    files = sorted(f for f in folder.rglob("*") if f.is_file() and not f.name.startswith("."))
    headers, skipped = [], []
    for f in files:
        ds = _read_header(f, strict=False)
        if ds is None:
            _classify_unreadable(f)
            skipped.append(f.name)
        elif "Rows" in ds:
            headers.append((f, ds))
        elif not _other_storage(ds):
            raise InputError(
                f"'{f}' is a DICOM image without Rows/Columns (or an unknown SOP class): the "
                "file is truncated or corrupt"
            )
        else:
            skipped.append(f.name)  # DICOMDIR, a report, a presentation state ...
    if not headers:
        raise InputError(f"no DICOM files found in '{folder}'; point at a folder of DICOM images")
    series: dict[str, list[Any]] = {}
    for _, ds in headers:
        series.setdefault(str(getattr(ds, "SeriesInstanceUID", "?")), []).append(ds)
    if len(series) > 1:
        names = "; ".join(
            f"'{getattr(v[0], 'SeriesDescription', '') or '?'}' ({len(v)} files)"
            for v in series.values()
        )
        raise InputError(
            f"'{folder}' holds {len(series)} DICOM series ({names}); point at a folder with one "
            f"series"
        )
    return headers, skipped


def load_dicom(path: str | Path, *, assume_geometry: bool = False) -> Volume:
    """Read one DICOM series (folder) or one DICOM file as a float32 :class:`Volume`.

    Args:
        path: a folder holding one series (any file names, searched recursively; non-DICOM
            files such as DICOMDIR or README are skipped), a single-slice file (K = 1) or an
            enhanced multi-frame file.
        assume_geometry: accept missing geometry with 1 mm / identity defaults, listed in
            ``meta["assumed_geometry"]`` (module docstring), instead of refusing it.

    Returns:
        Volume with data (columns, rows, slices) after RescaleSlope/Intercept, an affine mapping
        voxel indices to RAS+ mm whose third column is the measured slice step (for K = 1: the
        normal times SpacingBetweenSlices or SliceThickness), ``orig_dtype`` the stored pixel
        type, and ``meta`` describing the series.

    Raises:
        InputError: no DICOM, several series, missing/duplicate/uneven slices, mixed sizes or
            orientations, missing geometry, damaged files, undecodable pixel data.
    """
    path = Path(path)
    skipped: list[str] = []
    if path.is_dir():
        headers, skipped = _series_headers(path)
    else:
        headers = [(path, _read_header(path, strict=True))]
        if "Rows" not in headers[0][1]:
            raise InputError(
                f"'{path}' holds no DICOM image (no Rows/Columns): truncated, or not an image"
            )
    first = headers[0][1]
    n_frames = int(_num(first, "NumberOfFrames") or 1)
    dims = [int(_num(first, k) or 0) for k in ("Columns", "Rows")] + [n_frames * len(headers)]
    check_declared_size(path, tuple(dims), max(int(_num(first, "BitsAllocated") or 16) // 8, 1))
    note = f" (skipped as not DICOM images: {', '.join(skipped[:5])})" if skipped else ""
    if n_frames > 1:
        if len(headers) > 1:
            raise InputError(f"'{path}' holds {len(headers)} multi-frame files; point at one")
        file = headers[0][0]
        frames = functools.cache(lambda: _frames(file, n_frames))  # read after the header checks
        slices = _frame_slices(first, n_frames)
        return _build(first, slices, lambda s: frames()[s.index], path, 1, assume_geometry, note)
    slices = [
        _make_slice(i, int(_num(ds, "InstanceNumber") or i), ds, ds, ds, ds)
        for i, (_, ds) in enumerate(headers)
    ]
    image = lambda s: _pixels(headers[s.index][0])  # noqa: E731
    return _build(first, slices, image, path, len(headers), assume_geometry, note)

"""DICOM reading: a folder holding one series, a single-slice file or an enhanced multi-frame file.

Geometry follows the DICOM standard (patient LPS, mm) converted to the NIfTI RAS+ convention:
``data[i, j, k]`` has i = column index (along the row direction cosine), j = row index (along the
column direction cosine) and k = slice index sorted by position along the slice normal.
pydicom is imported lazily so that ``import mrisr`` stays light.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.errors import InputError
from mrisr.io.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
MISSING_GEOMETRY = "missing: identity orientation assumed"
_IDENTITY_IOP = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


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


def _floats(value: Any) -> np.ndarray | None:
    return None if value is None else np.asarray([float(v) for v in value], dtype=np.float64)


def _num(ds: Any, keyword: str) -> float | None:
    value = getattr(ds, keyword, None) if ds is not None else None
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _make_slice(index: int, number: int, pos: Any, ori: Any, meas: Any, scale: Any) -> _Slice:
    """A :class:`_Slice` from the datasets holding position, orientation, spacing, rescale."""
    spacing = _floats(getattr(meas, "PixelSpacing", None))
    return _Slice(
        index=index,
        number=number,
        pos=_floats(getattr(pos, "ImagePositionPatient", None)),
        iop=_floats(getattr(ori, "ImageOrientationPatient", None)),
        spacing=None if spacing is None or len(spacing) != 2 else (spacing[0], spacing[1]),
        slope=_num(scale, "RescaleSlope") or 1.0,
        intercept=_num(scale, "RescaleIntercept") or 0.0,
    )


def _read_header(path: Path, strict: bool) -> Any:
    """The dataset of ``path`` without pixels; ``None`` for a non-DICOM file unless ``strict``."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True, force=False)
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        if not strict:
            return None
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read '{path}' as DICOM ({reason}); the file is corrupt, truncated or not DICOM"
        ) from exc


def _pixels(path: Path) -> np.ndarray:
    """Stored pixel values of ``path``: shape (rows, cols) or (frames, rows, cols)."""
    import pydicom

    ds = None
    try:
        ds = pydicom.dcmread(path, force=False)
        arr = ds.pixel_array
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
    slices: list[_Slice], where: str, fallback_step: float
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
            f"is {ref:.3f} mm): the series has missing or uneven slices"
        )
    step = (slices[-1].pos - slices[0].pos) / (len(slices) - 1)
    line = slices[0].pos + np.outer(np.arange(len(slices)), step)
    if np.abs(np.array([s.pos for s in slices]) - line).max() > tol:
        raise InputError(
            f"'{where}' has slice positions that do not lie on one line; point at a folder with "
            f"one series/stack"
        )
    return slices, iop, step, float(steps.mean())


def _affine(
    iop: np.ndarray, spacing: tuple[float, float], step: np.ndarray, origin: np.ndarray
) -> np.ndarray:
    """4×4 voxel (column, row, slice) → RAS+ mm affine from DICOM LPS geometry (all in mm)."""
    aff = np.eye(4)
    aff[:3, 0] = iop[:3] * spacing[1]  # along a row: column spacing
    aff[:3, 1] = iop[3:] * spacing[0]  # down a column: row spacing
    aff[:3, 2] = step
    aff[:3, 3] = origin
    return LPS_TO_RAS @ aff


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


def _build(
    ds: Any, slices: list[_Slice], image: Callable[[_Slice], np.ndarray], where: Path, n_files: int
) -> Volume:
    """Stack the 2-D images ``image(slice)`` (rows, cols) into a (cols, rows, K) Volume."""
    measures = _group_item(ds, 0, "PixelMeasuresSequence")
    thickness = _num(measures, "SliceThickness") or _num(ds, "SliceThickness")
    between = _num(measures, "SpacingBetweenSlices") or _num(ds, "SpacingBetweenSlices")
    have = [s.pos is not None and s.iop is not None for s in slices]
    fallback = between or thickness or 1.0
    if all(have):
        slices, iop, step, spacing_k = _sort_and_measure(slices, str(where), fallback)
        origin = slices[0].pos
    elif not any(have):
        slices = sorted(slices, key=lambda s: s.number)
        iop, step, spacing_k = _IDENTITY_IOP, np.array([0.0, 0.0, fallback]), fallback
        origin = np.zeros(3)
    else:
        raise InputError(f"'{where}' has slices with and without ImagePositionPatient")
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
        "slice_thickness": thickness,
        "slice_spacing": spacing_k,
        "manufacturer": text("Manufacturer"),
        "rescale_applied": bool(rescaled),
        "multiframe": int(getattr(ds, "NumberOfFrames", 1) or 1) > 1,
    }
    meta.update(_acquisition(ds))
    if not all(have):
        meta["geometry"] = MISSING_GEOMETRY
        warnings.warn(
            f"'{where}' has no ImagePositionPatient/ImageOrientationPatient; the affine uses the "
            f"voxel spacing with an identity (axial, LPS) orientation and origin 0",
            stacklevel=3,
        )
    affine = _affine(iop, slices[0].spacing or (1.0, 1.0), step, origin)
    return Volume(np.stack(planes, axis=2), affine, meta, orig_dtype=dtype, header=None)


def _series_headers(folder: Path) -> list[tuple[Path, Any]]:
    """(file, header) of every DICOM image under ``folder``, checked to form one series."""
    files = sorted(f for f in folder.rglob("*") if f.is_file() and not f.name.startswith("."))
    headers = [(f, _read_header(f, strict=False)) for f in files]
    headers = [(f, ds) for f, ds in headers if ds is not None and "Rows" in ds]
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
    return headers


def load_dicom(path: str | Path) -> Volume:
    """Read one DICOM series (folder) or one DICOM file as a float32 :class:`Volume`.

    Args:
        path: a folder holding one series (any file names, searched recursively; non-DICOM
            files such as DICOMDIR or README are ignored), a single-slice file (K = 1) or an
            enhanced multi-frame file.

    Returns:
        Volume with data (columns, rows, slices) after RescaleSlope/Intercept, an affine mapping
        voxel indices to RAS+ mm whose third column is the measured slice step (for K = 1: the
        normal times SpacingBetweenSlices, SliceThickness or 1 mm), ``orig_dtype`` the stored
        pixel type, and ``meta`` describing the series. Files without any position/orientation
        get an identity orientation, ``meta["geometry"]`` and a warning.

    Raises:
        InputError: no DICOM, several series, missing/duplicate/uneven slices, mixed sizes or
            orientations, corrupt files, or pixel data that cannot be decoded.
    """
    path = Path(path)
    if path.is_dir():
        headers = _series_headers(path)
    else:
        headers = [(path, _read_header(path, strict=True))]
        if "Rows" not in headers[0][1]:
            raise InputError(
                f"'{path}' holds no DICOM image (no Rows/Columns): truncated, or not an image"
            )
    first = headers[0][1]
    if int(getattr(first, "NumberOfFrames", 1) or 1) > 1:
        if len(headers) > 1:
            raise InputError(f"'{path}' holds {len(headers)} multi-frame files; point at one")
        file, n_frames = headers[0][0], int(first.NumberOfFrames)
        arr = _pixels(file)
        if arr.shape[0] != n_frames or arr.ndim != 3:
            raise InputError(f"'{file}' declares {n_frames} frames but holds pixels {arr.shape}")
        return _build(first, _frame_slices(first, n_frames), lambda s: arr[s.index], path, 1)
    slices = [
        _make_slice(i, int(_num(ds, "InstanceNumber") or i), ds, ds, ds, ds)
        for i, (_, ds) in enumerate(headers)
    ]
    return _build(first, slices, lambda s: _pixels(headers[s.index][0]), path, len(headers))

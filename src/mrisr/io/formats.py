"""The one table of scan file formats: suffixes, reader, folder and write rules.

Every place that detects a format or expands a folder of scans asks this module (``load_volume``,
``mrisr upscale``'s inputs, the training recipes' data paths, the dataset protocols), so a
suffix added here is known everywhere. Readers are ``"module:function"`` strings imported on
first use (as in nnU-Net's reader registry): importing this module loads no I/O library.

Detection (:func:`format_of`): a folder is a DICOM series; otherwise the suffix decides
(case-insensitive, multi-part suffixes such as ``.nii.gz`` tried first); a file without a
known suffix is recognised by its magic bytes (``DICM`` at offset 128, the HDF5 signature at 0).

Integrity rules every reader shares (:func:`check_declared_size`, :func:`verify_gzip`): a header
is checked before any image data is read or allocated (no volume over :data:`MAX_VOXELS` voxels
per 3-D volume or :data:`MAX_DATA_BYTES` of stored data), and a gzip-compressed input is
decompressed once to its end, in a streaming pass that keeps nothing, so that every member's
CRC-32 and length (ISIZE) are checked: nibabel stops reading at the last voxel and never sees
the gzip trailer, so without this a damaged ``.nii.gz`` loaded with wrong voxels. Trailing zero
bytes after the last member are accepted (tape/block padding, as ``gzip`` and Python's gzip
module accept them; the data were verified); any other trailing byte is an error.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrisr.errors import InputError

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Format:
    """One readable format.

    ``volume``: one file is one scan, so a folder may hold several (False for DICOM: a file is
    a slice and the folder is the series). ``writable``: mrisr writes it (``save_volume``).
    ``volume_index``: the reader takes ``volume_index`` (4-D series). ``magic``: ``(offset,
    bytes)`` recognising a file whose name has no known suffix.
    """

    name: str
    title: str
    suffixes: tuple[str, ...]
    reader: str
    volume: bool = True
    writable: bool = False
    volume_index: bool = False
    magic: tuple[int, bytes] | None = None

    def load_reader(self) -> Callable[..., Any]:
        """The reader function (imported now)."""
        module, _, func = self.reader.partition(":")
        return getattr(importlib.import_module(module), func)


#: Magic bytes are tried in this order (DICOM before HDF5, as always).
FORMATS: tuple[Format, ...] = (
    Format("nifti", "NIfTI", (".nii", ".nii.gz"), "mrisr.io.nifti:load_nifti",
           writable=True, volume_index=True),
    Format("mgh", "FreeSurfer MGH", (".mgz", ".mgh"), "mrisr.io.nifti:load_nifti",
           volume_index=True),
    Format("dicom", "DICOM series folder or file", (".dcm", ".ima"), "mrisr.io.dicom:load_dicom",
           volume=False, magic=(128, b"DICM")),
    Format("h5", "fastMRI HDF5", (".h5", ".hdf5"), "mrisr.io.kspace_h5:load_kspace_h5",
           magic=(0, b"\x89HDF\r\n\x1a\n")),
    Format("png", "PNG slice", (".png",), "mrisr.io.image2d:load_png"),
    Format("npy", "NumPy slice", (".npy",), "mrisr.io.image2d:load_npy"),
)  # fmt: skip

BY_NAME: dict[str, Format] = {f.name: f for f in FORMATS}
#: A folder given as a scan is one DICOM series.
FOLDER_FORMAT = BY_NAME["dicom"]
#: (suffix, format), the longest suffix first (multi-part suffixes such as ``.nii.gz`` first).
_BY_SUFFIX = sorted(((s, f) for f in FORMATS for s in f.suffixes), key=lambda t: -len(t[0]))


def _name(path: PathLike) -> str:
    return Path(path).name


def split_suffix(path: PathLike) -> tuple[str, str]:
    """``(stem, suffix)`` of a file name by the table (``"a.nii.gz"`` → ``("a", ".nii.gz")``;
    case-insensitive; ``(name, "")`` when no format's suffix matches)."""
    name = _name(path)
    low = name.lower()
    for suffix, _ in _BY_SUFFIX:
        if low.endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    return name, ""


def suffix_format(path: PathLike) -> Format | None:
    """The format that the name's suffix says (case-insensitive), or None. Reads nothing."""
    low = _name(path).lower()
    return next((f for suffix, f in _BY_SUFFIX if low.endswith(suffix)), None)


def format_of(path: PathLike) -> Format:
    """The format of an existing file or folder: a folder is a DICOM series, then the suffix,
    then magic bytes. An unknown file is an :class:`InputError`."""
    p = Path(path)
    if p.is_dir():
        return FOLDER_FORMAT
    fmt = suffix_format(p)
    if fmt is not None:
        return fmt
    size = max(off + len(magic) for off, magic in (f.magic for f in FORMATS if f.magic))
    try:
        with p.open("rb") as fh:
            head = fh.read(size)
    except OSError as exc:
        raise InputError(f"cannot read '{p}' ({exc.strerror or exc})") from None
    for f in FORMATS:
        if f.magic and head[f.magic[0] : f.magic[0] + len(f.magic[1])] == f.magic[1]:
            return f
    raise InputError(f"cannot tell the format of '{p}'; mrisr reads {describe()}")


def describe() -> str:
    """``NIfTI (.nii/.nii.gz), ...``: the readable formats, for messages."""
    return ", ".join(f"{f.title} ({'/'.join(f.suffixes)})" for f in FORMATS)


def scan_suffixes() -> tuple[str, ...]:
    """Suffixes of the formats whose files are whole scans (what a folder of scans holds)."""
    return tuple(s for f in FORMATS if f.volume for s in f.suffixes)


def writable_suffixes() -> tuple[str, ...]:
    """Suffixes mrisr can write."""
    return tuple(s for f in FORMATS if f.writable for s in f.suffixes)


def is_scan_file(path: PathLike) -> bool:
    """A file that is one whole scan by its suffix (NIfTI, MGH, h5, PNG, NPY; not a DICOM
    slice, which is part of its folder's series)."""
    fmt = suffix_format(path)
    return fmt is not None and fmt.volume and Path(path).is_file()


def scan_files(folder: PathLike) -> list[Path]:
    """The scan files directly inside ``folder``, sorted (empty if none)."""
    return sorted(f for f in Path(folder).iterdir() if is_scan_file(f))


def expand_folder(path: PathLike) -> list[Path]:
    """A folder → its scan files (sorted); a folder without any is one DICOM series
    (``[path]``); a file stays ``[path]``."""
    p = Path(path)
    if not p.is_dir():
        return [p]
    return scan_files(p) or [p]


# --- integrity checks shared by the readers ------------------------------------------------------

#: Most voxels one 3-D volume may have (2**31: 8.6 GB as float32); a header declaring more is
#: refused before anything is allocated.
MAX_VOXELS = 2**31
#: Most bytes of stored image data one file may declare (all volumes of a 4-D series).
MAX_DATA_BYTES = 2**34
#: Bytes read and produced per step of :func:`verify_gzip` (small: it stays in the CPU cache).
GZIP_CHUNK = 1 << 16
GZIP_MAGIC = b"\x1f\x8b"
#: The hint every "geometry missing" error ends with.
ASSUME_HINT = (
    "mrisr does not invent geometry; fix the header, or pass --assume-geometry (Python: "
    "load_volume(path, assume_geometry=True)) to proceed with {what} (recorded in the output)"
)


@contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Silence Python warnings and the named loggers while a reader calls a library: a damaged
    file is reported by the reader's one-line error, not by the library's warnings on stderr
    (pydicom warns and logs about the VR of garbage; nibabel logs the header "fixes" it makes)."""
    logs = [logging.getLogger(name) for name in loggers]
    before = [log.disabled for log in logs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for log in logs:
            log.disabled = True
        try:
            yield
        finally:
            for log, disabled in zip(logs, before, strict=True):
                log.disabled = disabled


def human_bytes(n: float) -> str:
    """``17.0 MB``, ``8.6 GB``, ``3.5 TB`` (decimal units)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def check_declared_size(path: PathLike, shape: tuple[int, ...], itemsize: int) -> int:
    """Refuse, from a header alone, a shape no scan has: a dimension under 1, more than
    :data:`MAX_VOXELS` voxels in one 3-D volume, or more than :data:`MAX_DATA_BYTES` of data.
    Returns the number of stored data bytes. Exact integers: no overflow."""
    shape = tuple(int(s) for s in shape)
    if not shape or any(s < 1 for s in shape):
        raise InputError(
            f"'{path}' declares dimensions {shape}: every dimension must be at least 1 (the "
            "header is corrupt, or the file holds no image)"
        )
    voxels = math.prod(shape[:3])
    nbytes = math.prod(shape) * max(int(itemsize), 1)
    if voxels > MAX_VOXELS or nbytes > MAX_DATA_BYTES:
        raise InputError(
            f"'{path}' declares dimensions {shape} ({math.prod(shape):,} voxels, "
            f"{human_bytes(nbytes)} of data, {human_bytes(4 * voxels)} per volume as float32); "
            f"mrisr reads at most {MAX_VOXELS:,} voxels per volume and "
            f"{human_bytes(MAX_DATA_BYTES)} per file: the header is corrupt or the scan too large"
        )
    return nbytes


def is_gzip(path: PathLike) -> bool:
    """Whether the file starts with the gzip signature."""
    with Path(path).open("rb") as fh:
        return fh.read(2) == GZIP_MAGIC


_REDO = "the file was damaged; re-export or re-download it"
_ZLIB_REASONS = {
    "incorrect data check": "gzip CRC mismatch",
    "incorrect length check": "gzip length (ISIZE) mismatch",
    "header crc mismatch": "gzip header CRC mismatch",
}


def verify_gzip(path: PathLike, max_out: int | None = None) -> tuple[int, int]:
    """Decompress the whole gzip file ``path`` once, keeping nothing, and check it end to end.

    Every member's CRC-32 and ISIZE are checked (by zlib), a stream that ends early is
    truncated, and bytes after the last member must be zero padding. ``max_out`` bounds the
    decompressed size (a header that declares 17 MB cannot hide 100 GB of zeros).

    Returns:
        (decompressed bytes, trailing zero bytes). Raises :class:`InputError` naming the file
        and the problem.
    """
    pos = 0  # compressed bytes consumed (for messages)
    total = members = zeros = 0
    d: Any = zlib.decompressobj(31)
    data = b""
    with Path(path).open("rb") as fh:
        while True:
            if not data:
                data = fh.read(GZIP_CHUNK)
                if not data:
                    break
            if d is None:  # between members: zero padding, then only another member
                stripped = data.lstrip(b"\0")
                zeros += len(data) - len(stripped)
                pos += len(data) - len(stripped)
                data = stripped
                if not data:
                    continue
                if len(data) < 2:
                    data += fh.read(1)
                if data[:2] != GZIP_MAGIC:
                    rest = len(data) + sum(len(b) for b in iter(lambda: fh.read(1 << 20), b""))
                    raise InputError(
                        f"'{path}' is corrupt: {rest} byte(s) of non-gzip data follow the "
                        f"compressed stream at byte {pos} ({_REDO})"
                    )
                d, zeros = zlib.decompressobj(31), 0
            try:
                out = d.decompress(data, GZIP_CHUNK)
            except zlib.error as exc:
                msg = str(exc).split(": ", 1)[-1]
                reason = _ZLIB_REASONS.get(msg, f"the deflate stream is invalid (zlib: {msg})")
                raise InputError(f"'{path}' is corrupt: {reason} ({_REDO})") from None
            total += len(out)
            if max_out is not None and total > max_out:
                raise InputError(
                    f"'{path}' decompresses to more than {human_bytes(max_out)}, far more than "
                    "its header declares: the file is corrupt or not one scan"
                )
            if d.eof:
                pos += len(data) - len(d.unused_data)
                data, d, members = d.unused_data, None, members + 1
            else:
                pos += len(data) - len(d.unconsumed_tail)
                data = d.unconsumed_tail
        if d is not None:  # the input ended inside a member: zlib may still hold output
            if not members and not pos:
                raise InputError(f"'{path}' is empty (0 bytes of gzip data)")
            try:
                total += len(d.flush())
            except zlib.error as exc:  # pragma: no cover - flush reports no checks
                raise InputError(f"'{path}' is corrupt: {exc} ({_REDO})") from None
            if d.eof and not d.unused_data:
                return total, zeros
            raise InputError(
                f"'{path}' is truncated: the gzip stream ends before its end marker and checksum "
                "(the copy is incomplete; re-export or re-download it)"
            )
    return total, zeros

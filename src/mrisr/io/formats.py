"""The one table of scan file formats: suffixes, reader, folder and write rules.

Every place that detects a format or expands a folder of scans asks this module (``load_volume``,
``mrisr upscale``'s inputs, the training recipes' data paths, the dataset protocols), so a
suffix added here is known everywhere. Readers are ``"module:function"`` strings imported on
first use (as in nnU-Net's reader registry): importing this module loads no I/O library.

Detection (:func:`format_of`): a folder is a DICOM series; otherwise the suffix decides
(case-insensitive, multi-part suffixes such as ``.nii.gz`` tried first); a file without a
known suffix is recognised by its magic bytes (``DICM`` at offset 128, the HDF5 signature at 0).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
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
    with p.open("rb") as fh:
        head = fh.read(size)
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

"""Hostile input files: each is refused with ONE line naming the file (no traceback, exit 2 from
the CLI), never loaded as an image and never given invented geometry.

Every file is made in ``tmp_path`` from the shipped real crops (``tests/data``) or from
hand-made headers: damaged gzip streams (flipped deflate bytes, CRC, ISIZE, trailing garbage,
truncation), impossible NIfTI/MGH headers, DICOM files cut short or without geometry tags,
HDF5 structures that are not fastMRI data, PNG/NPY damage and bad blur kernels. Positive
controls check that the intact files still load with identical data.
"""

from __future__ import annotations

import gzip
import json
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mrisr.errors import MrisrError
from mrisr.io import load_volume
from tests.test_bad_input import run_cli

DATA = Path(__file__).resolve().parent / "data"
T2_GZ = DATA / "ixi002_t2_crop.nii.gz"
TRUNCATIONS = range(1, 9)


@dataclass(frozen=True)
class Case:
    """A hostile input: ``build(folder)`` writes it and returns the path to load; the error must
    match ``expect`` (its cause) and name ``names`` (default: the loaded path's name)."""

    id: str
    build: Callable[[Path], Path]
    expect: str
    names: str | None = None


CASES: list[Case] = []


def case(id: str, expect: str, names: str | None = None):
    def register(build: Callable[[Path], Path]) -> Callable[[Path], Path]:
        CASES.append(Case(id, build, expect, names))
        return build

    return register


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def flip(data: bytes, offset: int, mask: int = 0x10) -> bytes:
    b = bytearray(data)
    b[offset] ^= mask
    return bytes(b)


# --- the real materials ------------------------------------------------------------------------


@cache
def t2_gz() -> bytes:
    return T2_GZ.read_bytes()


@cache
def t2_nii() -> bytes:
    return gzip.decompress(t2_gz())


@cache
def t2_image() -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(T2_GZ)
    return np.asarray(img.dataobj), img.affine


@cache
def t2_stored() -> tuple[np.ndarray, float, float]:
    """The crop's stored int16 values and its scl_slope / scl_inter."""
    proxy = nib.load(T2_GZ).dataobj
    return np.asarray(proxy.get_unscaled()), float(proxy.slope), float(proxy.inter)


#: NIfTI-1 header fields: (byte offset, struct format).
NII_FIELDS = {
    "sizeof_hdr": (0, "<i"),
    "dim": (40, "<8h"),
    "datatype": (70, "<h"),
    "bitpix": (72, "<h"),
    "pixdim": (76, "<8f"),
    "vox_offset": (108, "<f"),
    "qform_code": (252, "<h"),
    "sform_code": (254, "<h"),
    "magic": (344, "4s"),
}


def nii_with(**fields) -> bytes:
    """The T2 crop as an uncompressed .nii with raw header fields overwritten."""
    b = bytearray(t2_nii())
    for name, value in fields.items():
        offset, fmt = NII_FIELDS[name]
        values = value if isinstance(value, list | tuple) else [value]
        struct.pack_into(fmt, b, offset, *values)
    return bytes(b)


def mgh_bytes(folder: Path) -> bytes:
    data, affine = t2_image()
    nib.save(nib.MGHImage(data.astype(np.float32), affine), folder / "good.mgh")
    return (folder / "good.mgh").read_bytes()


def mgh_with(folder: Path, **fields) -> bytes:
    b = bytearray(mgh_bytes(folder))
    layout = {"version": (0, ">i"), "dims": (4, ">4i"), "type": (20, ">i"),
              "goodRASFlag": (28, ">h"), "delta": (30, ">3f")}  # fmt: skip
    for name, value in fields.items():
        offset, fmt = layout[name]
        struct.pack_into(fmt, b, offset, *(value if isinstance(value, list | tuple) else [value]))
    return bytes(b)


# --- .nii.gz: the gzip stream ------------------------------------------------------------------

for _off in (200, 2_000, 20_000, 50_000, 79_000):  # inside the deflate body (79 732 bytes)
    case(f"niigz-flipped-byte-{_off}", r"is corrupt: (gzip CRC mismatch|the deflate stream)")(
        lambda d, o=_off: write(d, "t2.nii.gz", flip(t2_gz(), o))
    )
case("niigz-wrong-crc", "is corrupt: gzip CRC mismatch")(
    lambda d: write(d, "t2.nii.gz", flip(t2_gz(), len(t2_gz()) - 8, 0x01))
)
case("niigz-wrong-isize", r"is corrupt: gzip length \(ISIZE\) mismatch")(
    lambda d: write(d, "t2.nii.gz", flip(t2_gz(), len(t2_gz()) - 2, 0x01))
)
case("niigz-trailing-garbage", "non-gzip data follow")(
    lambda d: write(d, "t2.nii.gz", t2_gz() + b"garbage!")
)
case("niigz-zeros-then-garbage", "non-gzip data follow")(
    lambda d: write(d, "t2.nii.gz", t2_gz() + b"\0\0\0\0junk")
)
for _n in TRUNCATIONS:
    case(f"niigz-truncated-{_n}", "is truncated: the gzip stream ends")(
        lambda d, n=_n: write(d, "t2.nii.gz", t2_gz()[:-n])
    )
case("niigz-empty", r"is empty \(0 bytes\)")(lambda d: write(d, "t2.nii.gz", b""))
case("niigz-not-gzip", "not gzip-compressed")(lambda d: write(d, "t2.nii.gz", t2_nii()))
case("nii-but-gzip", "gzip-compressed but named")(lambda d: write(d, "t2.nii", t2_gz()))
case("niigz-of-text", "cannot read .* as NIfTI")(
    lambda d: write(d, "t2.nii.gz", gzip.compress(b"hello, this is not a scan\n" * 20))
)
case("niigz-header-only", r"is truncated: its header declares .* ends at byte 352")(
    lambda d: write(d, "t2.nii.gz", gzip.compress(t2_nii()[:352]))
)

# --- .nii: truncation and impossible headers ---------------------------------------------------

for _n in TRUNCATIONS:
    case(f"nii-truncated-{_n}", "is truncated: its header declares")(
        lambda d, n=_n: write(d, "t2.nii", t2_nii()[:-n])
    )
NII_HEADERS = {
    "negative-dim": ({"dim": [3, -96, 96, 6, 1, 1, 1, 1]}, "every dimension must be at least 1"),
    "zero-dim": ({"dim": [3, 96, 0, 6, 1, 1, 1, 1]}, "every dimension must be at least 1"),
    "dim0-is-0": ({"dim": [0, 96, 96, 6, 1, 1, 1, 1]}, r"dim\[0\] = 0"),
    "dim0-is-9": ({"dim": [9, 96, 96, 6, 1, 1, 1, 1]}, r"dim\[0\] = 9"),
    "terabytes": ({"dim": [3, 32767, 32767, 32767, 1, 1, 1, 1]}, r"declares dimensions .* TB"),
    "4d-terabytes": ({"dim": [4, 20000, 20000, 20000, 9, 1, 1, 1]}, "mrisr reads at most"),
    "4d-beyond-file": ({"dim": [4, 96, 96, 6, 30000, 1, 1, 1]}, "is truncated: its header"),
    "1d": ({"dim": [1, 96, 1, 1, 1, 1, 1, 1]}, "is 1-D"),
    "rgb24": ({"datatype": 128, "bitpix": 24}, r"colour image \(RGB, datatype 128\)"),
    "rgba32": ({"datatype": 2304, "bitpix": 32}, r"colour image \(RGBA"),
    "complex64": ({"datatype": 32, "bitpix": 64}, "holds complex data .*magnitude"),
    "complex128": ({"datatype": 1792, "bitpix": 128}, "holds complex data"),
    "datatype-unknown": ({"datatype": 9999}, "unknown NIfTI datatype code 9999"),
    "datatype-binary": ({"datatype": 1, "bitpix": 1}, "datatype 'binary'"),
    "vox-offset-0": ({"vox_offset": 0.0}, "vox_offset = 0"),
    "vox-offset-in-header": ({"vox_offset": 100.0}, "vox_offset = 100"),
    "vox-offset-nan": ({"vox_offset": float("nan")}, "vox_offset = nan"),
    "vox-offset-beyond-file": ({"vox_offset": 1e9}, "is truncated: its header"),
    "sizeof-hdr": ({"sizeof_hdr": 349}, "sizeof_hdr is 349"),
    "bad-magic": ({"magic": b"xyz\0"}, "no NIfTI magic"),
    "pair-magic": ({"magic": b"ni1\0"}, r"\.hdr/\.img pair"),
    "qform-code": ({"qform_code": 256}, "qform_code = 256"),
    "sform-code": ({"sform_code": -1}, "sform_code = -1"),
}
GEOMETRY_NII = {  # refused unless assume_geometry=True
    "pixdim-zero": {"pixdim": [1, 0, 0, 0, 1, 1, 1, 1], "qform_code": 0, "sform_code": 0},
    "pixdim-negative": {"pixdim": [1, -1, 0.9, 1.2, 1, 1, 1, 1], "qform_code": 0, "sform_code": 0},
    "pixdim-nan": {"pixdim": [1, float("nan"), 1, 1, 1, 1, 1, 1], "qform_code": 0, "sform_code": 0},
    "pixdim-zero-qform": {"pixdim": [-1, 0.94, 0.94, 0, 1, 1, 1, 1], "sform_code": 0},
}
for _name, (_fields, _expect) in NII_HEADERS.items():
    case(f"nii-{_name}", _expect)(lambda d, f=_fields: write(d, "t2.nii", nii_with(**f)))
case("niigz-terabytes", "mrisr reads at most")(
    lambda d: write(d, "t2.nii.gz", gzip.compress(nii_with(dim=[3, 32767, 32767, 32767] + [1] * 4)))
)
for _name, _fields in GEOMETRY_NII.items():
    case(f"nii-{_name}", r"no usable voxel size: pixdim\[\d\] = .*assume-geometry")(
        lambda d, f=_fields: write(d, "t2.nii", nii_with(**f))
    )

# --- .mgh / .mgz -------------------------------------------------------------------------------

for _n in TRUNCATIONS:
    case(f"mgh-truncated-{_n}", "is truncated")(
        lambda d, n=_n: write(d, "t2.mgh", mgh_bytes(d)[:-n])
    )
    case(f"mgz-truncated-{_n}", "is truncated: the gzip stream ends")(
        lambda d, n=_n: write(d, "t2.mgz", gzip.compress(mgh_bytes(d))[:-n])
    )
case("mgh-data-cut", "is truncated: its header declares")(
    lambda d: write(d, "t2.mgh", mgh_bytes(d)[:-1000])
)
case("mgz-not-gzip", "not gzip-compressed")(lambda d: write(d, "t2.mgz", mgh_bytes(d)))
case("mgz-holding-nifti", r"not an MGH file \(version")(
    lambda d: write(d, "t2.mgz", gzip.compress(t2_nii()))
)
case("mgz-wrong-crc", "gzip CRC mismatch")(
    lambda d: write(d, "t2.mgz", flip(gzip.compress(mgh_bytes(d)), -8, 0x01))
)
case("mgh-huge-dims", "mrisr reads at most")(
    lambda d: write(d, "t2.mgh", mgh_with(d, dims=[40000, 40000, 40000, 1]))
)
case("mgh-zero-dim", "every dimension must be at least 1")(
    lambda d: write(d, "t2.mgh", mgh_with(d, dims=[96, 0, 6, 1]))
)
case("mgh-unknown-type", "unknown MGH data type 7")(
    lambda d: write(d, "t2.mgh", mgh_with(d, type=7))
)
case("mgh-no-orientation", r"goodRASFlag = 0.*assume-geometry")(
    lambda d: write(d, "t2.mgh", mgh_with(d, goodRASFlag=0))
)
case("mgh-zero-delta", r"delta\[1\] = 0.*assume-geometry")(
    lambda d: write(d, "t2.mgh", mgh_with(d, delta=[0.94, 0.0, 1.2]))
)

# --- DICOM -------------------------------------------------------------------------------------


def dicom_slices(with_padding: bool = False) -> list:
    """The T2 crop as 6 classic MR slices (int16, LPS geometry from its affine)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    affine = t2_image()[1]
    data, slope, inter = t2_stored()
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    zooms = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    series = generate_uid()
    out = []
    for k in range(data.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.InstanceNumber = "MR", series, k + 1
        ds.ImagePositionPatient = [f"{v:.6f}" for v in lps[:3] @ [0, 0, k, 1]]
        ds.ImageOrientationPatient = [
            f"{v:.6f}" for v in (*lps[:3, 0] / zooms[0], *lps[:3, 1] / zooms[1])
        ]
        ds.PixelSpacing = [f"{zooms[1]:.6f}", f"{zooms[0]:.6f}"]
        ds.SliceThickness = f"{zooms[2]:.6f}"
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.14f}"[:16], f"{inter:.12f}"[:16]
        ds.PixelData = np.ascontiguousarray(data[:, :, k].T.astype("<i2")).tobytes()
        if with_padding:  # DataSetTrailingPadding after the pixels, as in pydicom's MR_small
            ds.add_new(0xFFFCFFFC, "OB", b"\0" * 126)
        out.append(ds)
    return out


def save(ds, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def series_folder(d: Path, edit: Callable | None = None) -> Path:
    """The 6-slice series in ``d/series``; ``edit(index, ds)`` changes slices before saving."""
    folder = d / "series"
    folder.mkdir()
    for i, ds in enumerate(dicom_slices()):
        if edit is not None:
            edit(i, ds)
        save(ds, folder / f"sl{i:02d}.dcm")
    return folder


@cache
def single_dcm_bytes() -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return save(dicom_slices(with_padding=True)[2], Path(tmp) / "x.dcm").read_bytes()


for _n in TRUNCATIONS:  # cut inside the trailing padding, which pydicom reads silently
    case(f"dcm-truncated-{_n}", "is truncated or corrupt: its element")(
        lambda d, n=_n: write(d, "slice.dcm", single_dcm_bytes()[:-n])
    )
case("dcm-cut-in-header-300", "(cannot read|truncated)")(
    lambda d: write(d, "slice.dcm", single_dcm_bytes()[:300])
)
case("dcm-cut-in-header-700", "(cannot read|truncated)")(
    lambda d: write(d, "slice.dcm", single_dcm_bytes()[:700])
)
case("dcm-cut-in-pixels", "truncated")(
    lambda d: write(d, "slice.dcm", single_dcm_bytes()[: len(single_dcm_bytes()) // 2])
)


def _dcm(d: Path, edit: Callable) -> Path:
    ds = dicom_slices()[2]
    edit(ds)
    return save(ds, d / "slice.dcm")


def _short_pixels(ds) -> None:
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]


def _huge(ds) -> None:
    ds.Rows = ds.Columns = 65535


def _colour(ds) -> None:
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = ds.PixelData * 3


def _drop(*keywords: str) -> Callable:
    def edit(*args) -> None:
        ds = args[-1]
        for kw in keywords:
            delattr(ds, kw)

    return edit


case("dcm-short-pixeldata", "is truncated: its PixelData holds 9216 bytes")(
    lambda d: _dcm(d, _short_pixels)
)
case("dcm-huge-rows-columns", "mrisr reads at most")(lambda d: _dcm(d, _huge))
case("dcm-colour", "colour image")(lambda d: _dcm(d, _colour))
case("dcm-no-pixelspacing", r"no usable PixelSpacing \(0028,0030\).*assume-geometry")(
    lambda d: _dcm(d, _drop("PixelSpacing"))
)
case("dcm-no-slicethickness", r"SpacingBetweenSlices .* or SliceThickness .*assume-geometry")(
    lambda d: _dcm(d, _drop("SliceThickness"))
)
case("dcm-series-no-pixelspacing", r"no usable PixelSpacing.*assume-geometry")(
    lambda d: series_folder(d, _drop("PixelSpacing"))
)
case("dcm-series-no-position", r"no usable ImagePositionPatient \(0020,0032\).*assume-geometry")(
    lambda d: series_folder(d, _drop("ImagePositionPatient"))
)
case("dcm-series-no-orientation", r"ImageOrientationPatient \(0020,0037\).*assume-geometry")(
    lambda d: series_folder(d, _drop("ImageOrientationPatient"))
)
case("dcm-series-no-geometry", r"Position.* or ImageOrientationPatient .*assume-geometry")(
    lambda d: series_folder(d, _drop("ImagePositionPatient", "ImageOrientationPatient"))
)
case("dcm-series-one-without-position", "slices with and without ImagePositionPatient")(
    lambda d: series_folder(d, lambda i, ds: i == 3 and delattr(ds, "ImagePositionPatient"))
)


def _damage_slice(d: Path, damage: Callable[[bytes], bytes]) -> Path:
    folder = series_folder(d)
    victim = folder / "sl03.dcm"
    victim.write_bytes(damage(victim.read_bytes()))
    return folder


DAMAGED_SLICES = {
    "empty": (lambda b: b"", r"sl03\.dcm' is empty \(0 bytes\)"),
    "tiny": (lambda b: b[:50], r"sl03\.dcm' is truncated \(50 bytes\)"),
    "garbage": (
        lambda b: b[:132] + b"\x02\x00garbage" * 10,
        r"sl03\.dcm' is a DICOM image without",
    ),
    "half": (lambda b: b[: len(b) // 2], r"sl03\.dcm' is truncated or corrupt"),
    "cut-4": (lambda b: b[:-4], r"sl03\.dcm' is truncated or corrupt"),
}
for _name, (_damage, _expect) in DAMAGED_SLICES.items():
    case(f"dcm-series-{_name}-slice", _expect, names="sl03.dcm")(
        lambda d, f=_damage: _damage_slice(d, f)
    )


def _missing_slice_with_notes(d: Path) -> Path:
    folder = series_folder(d)
    (folder / "sl03.dcm").unlink()
    (folder / "notes.txt").write_text("acquired on the old scanner\n")
    return folder


case("dcm-series-gap-names-skipped-files", r"irregular gap .*skipped as not DICOM.*notes\.txt")(
    _missing_slice_with_notes
)

# --- fastMRI HDF5 ------------------------------------------------------------------------------

XML = (
    "<ismrmrdHeader><encoding><{s}><matrixSize><x>64</x><y>64</y><z>1</z></matrixSize>"
    "<fieldOfView_mm><x>{f}</x><y>64.0</y><z>3.0</z></fieldOfView_mm></{s}></encoding>"
    "</ismrmrdHeader>"
)


@cache
def slices64() -> np.ndarray:
    return np.load(DATA / "ixi002_t2_slices.npy")[:, 64:128, 64:128].astype(np.float32)


def h5(d: Path, fill: Callable | None = None, header: bool = True, fov: float = 64.0) -> Path:
    import h5py

    path = d / "scan.h5"
    with h5py.File(path, "w") as f:
        if fill is None:
            f["reconstruction_rss"] = slices64()
        else:
            fill(f)
        if header:
            f["ismrmrd_header"] = XML.format(s="reconSpace", f=fov).encode()
    return path


@cache
def h5_bytes() -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return h5(Path(tmp)).read_bytes()


def _chunk_partly_written(f) -> None:
    ds = f.create_dataset("reconstruction_rss", (20, 64, 64), np.float32, chunks=(1, 64, 64))
    ds[0] = slices64()[0]


H5_CASES = {
    "kspace-group": (lambda f: f.create_group("kspace"), "'kspace' is an HDF5 group"),
    "recon-group": (lambda f: f.create_group("reconstruction_rss"), "is an HDF5 group"),
    "zero-slices": (
        lambda f: f.create_dataset("kspace", (0, 64, 64), np.complex64),
        r"has shape \(0, 64, 64\); it holds no image",
    ),
    "zero-coils": (
        lambda f: f.create_dataset("kspace", (3, 0, 64, 64), np.complex64),
        "it holds no image",
    ),
    "recon-1d": (
        lambda f: f.create_dataset("reconstruction_rss", data=np.ones(64, np.float32)),
        "must be 2-D or 3-D real data",
    ),
    "kspace-real": (
        lambda f: f.create_dataset("kspace", data=slices64()),
        "must be 3-D or 4-D complex data",
    ),
    "recon-complex": (
        lambda f: f.create_dataset("reconstruction_rss", data=slices64().astype(np.complex64)),
        "must be 2-D or 3-D real data",
    ),
    "kspace-petabytes": (
        lambda f: f.create_dataset("kspace", (10**6, 640, 368), np.complex64),
        "mrisr reads at most",
    ),
    "kspace-declared-not-written": (
        lambda f: f.create_dataset("kspace", (40, 640, 368), np.complex64),
        r"declares \(40, 640, 368\) complex64 .* stores only 0 bytes",
    ),
    "recon-chunks-missing": (_chunk_partly_written, "stores only .*never written"),
    "no-dataset": (lambda f: f.create_dataset("other", data=np.ones(3)), "neither a 'kspace'"),
}
for _name, (_fill, _expect) in H5_CASES.items():
    case(f"h5-{_name}", _expect)(lambda d, f=_fill: h5(d, f))
for _n in TRUNCATIONS:
    case(f"h5-truncated-{_n}", r"cannot read .* as HDF5 .*truncated")(
        lambda d, n=_n: write(d, "scan.h5", h5_bytes()[:-n])
    )
case("h5-garbage", r"cannot read .* as HDF5")(
    lambda d: write(d, "scan.h5", b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
)
case("h5-superblock-flipped", r"cannot read .*HDF5")(
    lambda d: write(d, "scan.h5", flip(h5_bytes(), 40, 0xFF))
)
case("h5-no-header", r"no usable field of view .*assume-geometry")(lambda d: h5(d, header=False))
case("h5-zero-fov", r"no usable field of view.*assume-geometry")(lambda d: h5(d, fov=0.0))

# --- PNG and NPY -------------------------------------------------------------------------------


@cache
def png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.load(DATA / "ixi002_t2_slices.npy")[0].astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


case("png-flipped-pixel-byte", "CRC mismatch in PNG chunk 'IDAT'")(
    lambda d: write(d, "s.png", flip(png_bytes(), 33 + 8 + 100))
)
for _n in TRUNCATIONS:
    case(f"png-truncated-{_n}", "is truncated")(lambda d, n=_n: write(d, "s.png", png_bytes()[:-n]))
case("png-trailing-garbage", "follow the PNG's IEND")(
    lambda d: write(d, "s.png", png_bytes() + b"garbage")
)
case("png-huge-ihdr", "mrisr reads at most")(
    lambda d: write(
        d,
        "s.png",
        png_bytes()[:8]
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0))
        + png_bytes()[33:],
    )
)
case("png-not-png", "not a PNG file")(lambda d: write(d, "s.png", b"GIF89a" + b"\0" * 100))


def npy(d: Path, arr: np.ndarray, pickle: bool = False) -> Path:
    np.save(d / "s.npy", arr, allow_pickle=pickle)
    return d / "s.npy"


def npy_header(shape: tuple, dtype: str = "<f4") -> bytes:
    """A valid .npy v1.0 header declaring ``shape`` followed by 64 bytes of data."""
    head = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    head += b" " * (-(len(head) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head + b"\0" * 64


case("npy-pickle", "holds Python objects .*never unpickles")(
    lambda d: npy(d, np.array([{"a": 1}, None], dtype=object), pickle=True)
)
case("npy-huge-shape", "mrisr reads at most")(
    lambda d: write(d, "s.npy", npy_header((100_000, 100_000, 1000)))
)
case("npy-truncated", "is truncated: its header declares")(
    lambda d: write(d, "s.npy", npy_header((64, 64)))
)
case("npy-trailing-bytes", "is corrupt: its header declares")(
    lambda d: write(d, "s.npy", npy_header((2, 2)))
)
case("npy-complex", "complex64 data; expected real")(
    lambda d: npy(d, slices64()[0].astype(np.complex64))
)
case("npy-1d", r"has shape \(64,\)")(lambda d: npy(d, slices64()[0, 0]))
case("npy-zero-size", "every dimension must be at least 1")(
    lambda d: npy(d, np.zeros((0, 64), np.float32))
)
case("npy-structured", "expected real numbers")(
    lambda d: npy(d, np.zeros((4, 4), dtype=[("a", "<f4"), ("b", "<f4")]))
)


# --- the tests ---------------------------------------------------------------------------------


def assert_one_line_naming(exc: BaseException, name: str) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg.strip() == msg, msg
    assert name in msg, msg
    return msg


def assert_cli_fails_cleanly(path: Path, *args: str) -> str:
    res = run_cli(*args) if args else run_cli("info", path)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("mrisr: error:"), res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    return lines[0]


def test_the_corpus_is_large_and_covers_every_reader() -> None:
    assert len(CASES) + len(KERNEL_CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    families = {c.id.split("-")[0] for c in CASES}
    assert {"niigz", "nii", "mgh", "mgz", "dcm", "h5", "png", "npy"} <= families


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_hostile_file_is_refused_in_one_line(c: Case, tmp_path: Path) -> None:
    path = c.build(tmp_path)
    name = c.names or path.name
    with pytest.raises(MrisrError) as info:
        load_volume(path)
    msg = assert_one_line_naming(info.value, name)
    assert re.search(c.expect, msg), msg
    line = assert_cli_fails_cleanly(path)
    assert name in line and re.search(c.expect, line), line


# --- positive controls -------------------------------------------------------------------------


def test_intact_files_load_with_identical_data(tmp_path: Path) -> None:
    data, affine = t2_image()
    ref = load_volume(T2_GZ)
    np.testing.assert_array_equal(ref.data, data.astype(np.float32))
    np.testing.assert_array_equal(ref.affine, affine)
    assert "assumed_geometry" not in ref.meta and "gzip_trailing_zero_bytes" not in ref.meta
    mgz = write(tmp_path, "t2.mgz", gzip.compress(mgh_bytes(tmp_path)))
    for path in (write(tmp_path, "t2.nii", t2_nii()), mgz, tmp_path / "good.mgh"):
        vol = load_volume(path)
        np.testing.assert_array_equal(vol.data, ref.data)
        np.testing.assert_allclose(vol.affine, affine, atol=1e-5)
    # a gzip file of two members is one stream (as gzip and Python read it)
    members = gzip.compress(t2_nii()[:5000]) + gzip.compress(t2_nii()[5000:])
    two = write(tmp_path, "two.nii.gz", members)
    np.testing.assert_array_equal(load_volume(two).data, ref.data)
    assert run_cli("info", T2_GZ).returncode == 0


def test_trailing_zero_padding_is_accepted_and_recorded(tmp_path: Path) -> None:
    """Policy: zero bytes after the last gzip member are block/tape padding (gzip and Python's
    gzip module accept them); the stream itself is verified, so the data are intact. Anything
    else after the stream is garbage and refused."""
    padded = write(tmp_path, "t2.nii.gz", t2_gz() + b"\0" * 512)
    vol = load_volume(padded)
    np.testing.assert_array_equal(vol.data, load_volume(T2_GZ).data)
    assert vol.meta["gzip_trailing_zero_bytes"] == 512


def canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    img = nib.as_closest_canonical(nib.Nifti1Image(data.astype(np.float32), affine))
    return np.asarray(img.dataobj), img.affine


def test_intact_dicom_series_and_single_file_load(tmp_path: Path) -> None:
    """The same voxels at the same world positions (DICOM slices are ordered along the normal)."""
    data, affine = t2_image()
    vol = load_volume(series_folder(tmp_path))
    (got, got_aff), (want, want_aff) = canonical(vol.data, vol.affine), canonical(data, affine)
    np.testing.assert_allclose(got, want, rtol=1e-6)  # stored int16 × RescaleSlope + Intercept
    np.testing.assert_allclose(got_aff, want_aff, atol=1e-4)
    assert "assumed_geometry" not in vol.meta and vol.meta["rescale_applied"]
    one = load_volume(write(tmp_path, "slice.dcm", single_dcm_bytes()))
    np.testing.assert_allclose(one.data[:, :, 0], data[:, :, 2], rtol=1e-6)
    # a README and a DICOMDIR-like file beside the slices are skipped, not errors
    (tmp_path / "series" / "README").write_text("not DICOM\n")
    (tmp_path / "series" / "LOCKFILE").write_bytes(b"")
    np.testing.assert_array_equal(load_volume(tmp_path / "series").data, vol.data)


def test_intact_h5_png_npy_load(tmp_path: Path) -> None:
    vol = load_volume(h5(tmp_path))
    np.testing.assert_array_equal(vol.data, np.moveaxis(slices64(), 0, -1))
    assert vol.zooms == pytest.approx((1.0, 1.0, 3.0))
    png = load_volume(write(tmp_path, "s.png", png_bytes()))
    want = np.load(DATA / "ixi002_t2_slices.npy")[0].astype(np.uint8).astype(np.float32)
    np.testing.assert_array_equal(png.data[:, :, 0], want)
    for arr in (slices64()[0], np.asfortranarray(slices64().transpose(1, 2, 0))):
        np.testing.assert_array_equal(load_volume(npy(tmp_path, arr)).data.squeeze(), arr)


GEOMETRY_CASES = [c for c in CASES if "assume-geometry" in c.expect]


@pytest.mark.parametrize("c", GEOMETRY_CASES, ids=[c.id for c in GEOMETRY_CASES])
def test_missing_geometry_loads_only_when_assumed_and_says_what(c: Case, tmp_path: Path) -> None:
    vol = load_volume(c.build(tmp_path), assume_geometry=True)
    assumed = vol.meta["assumed_geometry"]
    assert assumed and all(isinstance(a, str) and "assumed" in a for a in assumed)
    assert np.isfinite(vol.affine).all() and abs(np.linalg.det(vol.affine[:3, :3])) > 0
    json.dumps(vol.meta)


def test_assumed_geometry_is_exactly_what_was_missing(tmp_path: Path) -> None:
    vol = load_volume(_dcm(tmp_path, _drop("PixelSpacing")), assume_geometry=True)
    assert vol.meta["assumed_geometry"] == ["PixelSpacing missing: 1 mm assumed"]
    assert vol.zooms[:2] == pytest.approx((1.0, 1.0))
    nii = write(tmp_path, "t2.nii", nii_with(**GEOMETRY_NII["pixdim-zero"]))
    vol = load_volume(nii, assume_geometry=True)
    assert vol.meta["assumed_geometry"] == [
        "pixdim[1] = 0, pixdim[2] = 0, pixdim[3] = 0 and no sform (sform_code 0): 1 mm assumed"
    ]
    assert vol.zooms == pytest.approx((1.0, 1.0, 1.0))
    np.testing.assert_array_equal(vol.data, t2_image()[0].astype(np.float32))


# --- blur kernels (read_kernel, mrisr degrade --method kernel) ---------------------------------


def kernel(d: Path, k: np.ndarray, sidecar: str | None = None) -> Path:
    path = d / "k.npy"
    np.save(path, k, allow_pickle=k.dtype == object)
    if sidecar is not None:
        path.with_suffix(".json").write_text(sidecar)
    return path


def gauss13() -> np.ndarray:
    x = np.arange(13) - 6.5
    k = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / 2)
    return k / k.sum()


KERNEL_CASES = {
    "negative-sum": (lambda d: kernel(d, -gauss13()), "sums to -1; a blur kernel must have"),
    "zero-sum": (lambda d: kernel(d, gauss13() - gauss13().mean()), "must have a positive sum"),
    "nan": (lambda d: kernel(d, np.where(gauss13() > 0.01, np.nan, gauss13())), "NaN or Inf"),
    "inf": (lambda d: kernel(d, np.full((5, 5), np.inf)), "NaN or Inf"),
    "1d": (lambda d: kernel(d, np.ones(5)), "square 2-D array"),
    "3d": (lambda d: kernel(d, np.ones((3, 3, 3))), "square 2-D array"),
    "rectangular": (lambda d: kernel(d, np.ones((3, 5))), "square 2-D array"),
    "empty": (lambda d: kernel(d, np.ones((0, 0))), r"(square 2-D|readable)"),
    "huge-header": (lambda d: write(d, "k.npy", npy_header((5000, 5000))), "not a readable"),
    "too-wide": (lambda d: kernel(d, np.ones((1025, 1025), np.float16)), "1 to 1024 wide"),
    "zero-bytes": (lambda d: write(d, "k.npy", b""), "not a readable .npy"),
    "pickle": (lambda d: kernel(d, np.array([{"a": 1}], dtype=object)), "not a readable"),
    "complex": (lambda d: kernel(d, gauss13().astype(np.complex64)), "dtype complex64"),
    "sidecar-not-json": (lambda d: kernel(d, gauss13(), "{scale: 2"), "not valid JSON"),
    "sidecar-not-object": (lambda d: kernel(d, gauss13(), "[2]"), "must hold a JSON object"),
}


@pytest.mark.parametrize("name", list(KERNEL_CASES))
def test_bad_kernel_is_refused_in_one_line(name: str, tmp_path: Path) -> None:
    from mrisr.degrade.kernel import read_kernel

    build, expect = KERNEL_CASES[name]
    path = build(tmp_path)
    with pytest.raises(MrisrError) as info:
        read_kernel(path)
    name = "k.json" if name.startswith("sidecar") else path.name
    msg = assert_one_line_naming(info.value, name)
    assert re.search(expect, msg), msg
    out = tmp_path / "lr.nii.gz"
    line = assert_cli_fails_cleanly(
        path, "degrade", T2_GZ, out, "--method", "kernel", "--kernel", path, "--scale", "2"
    )
    assert name in line and not out.exists(), line


def test_even_kernels_are_read(tmp_path: Path) -> None:
    """Even sizes are valid: the DSGAN's kernel is 1 + Σ(k − 1) wide (e.g. 8 for layers [8, 1])
    and the centre offset handles them."""
    from mrisr.degrade.kernel import read_kernel

    k, meta = read_kernel(kernel(tmp_path, np.full((8, 8), 1 / 64), '{"scale": 2}'))
    assert k.shape == (8, 8) and meta == {"scale": 2}

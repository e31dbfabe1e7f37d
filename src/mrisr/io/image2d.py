"""2-D slices as PNG (8/16-bit grey) or NumPy ``.npy`` (2-D or 3-D arrays, never pickles).

Both are checked before any pixel is decoded: a PNG's chunk structure is walked and every
chunk's CRC-32 verified (PIL does not check the CRCs of the image data, so a flipped byte could
load as different pixels), it must end with IEND followed by nothing but zero padding, and its
IHDR size must be within :data:`~mrisr.io.formats.MAX_VOXELS`. A ``.npy`` header is parsed first
(object dtypes are refused, never unpickled; the declared shape is size-checked) and the file must
hold exactly the bytes the header declares. These formats carry no geometry: a slice is read with
1 mm pixels and identity orientation, an aligned (not scanner) space (``meta["nifti_code"] == 2``).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from mrisr.errors import InputError
from mrisr.io.formats import check_declared_size, quiet
from mrisr.io.volume import Volume

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_REDO = "the file was damaged; re-export or re-download it"


def check_png(path: Path) -> tuple[int, int]:
    """Walk the chunks of a PNG: signature, CRC-32 of every chunk, IHDR first, IEND last, only
    zero padding after it. Returns (width, height) from IHDR."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        if fh.read(8) != PNG_SIGNATURE:
            raise InputError(f"'{path}' is not a PNG file (no PNG signature)")
        pos, dims = 8, None
        while True:
            head = fh.read(8)
            if len(head) < 8:
                raise InputError(
                    f"'{path}' is truncated: it ends at byte {pos}, before its IEND chunk (the "
                    "copy is incomplete; re-export or re-download it)"
                )
            length, kind = struct.unpack(">I", head[:4])[0], head[4:]
            if pos + 12 + length > size:
                raise InputError(
                    f"'{path}' is truncated: chunk {kind.decode('latin-1')!r} at byte {pos} "
                    f"declares {length} "
                    f"bytes but the file ends at byte {size} (the copy is incomplete)"
                )
            body, crc = fh.read(length), fh.read(4)
            if zlib.crc32(body, zlib.crc32(kind)) != struct.unpack(">I", crc)[0]:
                raise InputError(
                    f"'{path}' is corrupt: CRC mismatch in PNG chunk {kind.decode('latin-1')!r} "
                    f"at byte {pos} ({_REDO})"
                )
            if dims is None:
                if kind != b"IHDR" or length < 8:
                    raise InputError(f"'{path}' is corrupt: its first chunk is not IHDR")
                dims = struct.unpack(">II", body[:8])
                check_declared_size(path, (dims[1], dims[0]), 1)
            pos += 12 + length
            if kind == b"IEND":
                break
        rest = fh.read()
    if rest.strip(b"\0"):
        raise InputError(
            f"'{path}' is corrupt: {len(rest)} byte(s) of data follow the PNG's IEND chunk at "
            f"byte {pos} ({_REDO})"
        )
    return dims


def load_png(path: str | Path, *, assume_geometry: bool = False) -> Volume:
    """A grey PNG as a H×W×1 volume (row index first), 1 mm pixels, identity orientation
    (``assume_geometry`` is accepted for a uniform reader signature: PNG has no geometry)."""
    from PIL import Image

    path = Path(path)
    check_png(path)
    try:
        with quiet("PIL"), Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("RGB", "RGBA"):
                rgb = np.asarray(im.convert("RGB"))
                if not (
                    np.array_equal(rgb[..., 0], rgb[..., 1])
                    and np.array_equal(rgb[..., 0], rgb[..., 2])
                ):
                    raise InputError(f"'{path}' is a colour image; MR slices must be greyscale")
                arr = rgb[..., 0]
            elif mode in ("LA", "P"):
                arr = np.asarray(im.convert("L"))
            else:
                arr = np.asarray(im)
    except InputError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBomb...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read '{path}' as PNG ({reason}); the file is corrupt or truncated"
        ) from exc
    if arr.ndim != 2:
        raise InputError(f"'{path}' has PNG mode {mode}; mrisr reads greyscale slices")
    return Volume(
        data=arr.astype(np.float32)[:, :, None],
        affine=np.eye(4),
        meta={"format": "png", "path": str(path), "mode": mode, "nifti_code": 2},
        orig_dtype=arr.dtype,
    )


def _npy_header(path: Path, fh) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from a .npy header, without reading the data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            return fmt.read_array_header_1_0(fh)
        if version == (2, 0):
            return fmt.read_array_header_2_0(fh)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read '{path}' as .npy ({reason})") from None
    raise InputError(f"'{path}' is a .npy version {version}, which mrisr does not read")


def load_npy(path: str | Path, *, assume_geometry: bool = False) -> Volume:
    """A ``.npy`` array (2-D → H×W×1, 3-D as is) with 1 mm voxels and identity orientation
    (``assume_geometry`` is accepted for a uniform reader signature: NPY has no geometry)."""
    path = Path(path)
    with path.open("rb") as fh:
        shape, fortran, dtype = _npy_header(path, fh)
        if dtype.hasobject:
            raise InputError(
                f"'{path}' holds Python objects ({dtype}); mrisr never unpickles: save real numbers"
            )
        if dtype.kind not in "biuf" or dtype.fields:
            raise InputError(f"'{path}' holds {dtype} data; expected real numbers")
        if len(shape) not in (2, 3):
            raise InputError(f"'{path}' has shape {shape}; expected a 2-D slice or a 3-D volume")
        nbytes = check_declared_size(path, shape, dtype.itemsize)
        offset = fh.tell()
        have = path.stat().st_size - offset
        if have != nbytes:
            what = "is truncated" if have < nbytes else "is corrupt"
            raise InputError(
                f"'{path}' {what}: its header declares {shape} {dtype} ({nbytes} bytes of data) "
                f"but the file holds {have} bytes after the header"
            )
        arr = np.fromfile(fh, dtype=dtype, count=int(np.prod(shape)))
    arr = arr.reshape(shape, order="F" if fortran else "C")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return Volume(
        data=arr.astype(np.float32),
        affine=np.eye(4),
        meta={"format": "npy", "path": str(path), "nifti_code": 2},
        orig_dtype=arr.dtype,
    )

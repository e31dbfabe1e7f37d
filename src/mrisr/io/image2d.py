"""2-D slices as PNG (8/16-bit grey) or NumPy ``.npy`` (2-D or 3-D arrays, never pickles)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrisr.errors import InputError
from mrisr.io.volume import Volume


def load_png(path: str | Path) -> Volume:
    """A grey PNG as a H×W×1 volume (row index first), 1 mm pixels, identity orientation."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
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
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(
            f"cannot read '{path}' as PNG ({exc}); the file is corrupt or truncated"
        ) from exc
    return Volume(
        data=arr.astype(np.float32)[:, :, None],
        affine=np.eye(4),
        meta={"format": "png", "path": str(path), "mode": mode, "nifti_code": 2},
        orig_dtype=arr.dtype,
    )


def load_npy(path: str | Path) -> Volume:
    """A ``.npy`` array (2-D → H×W×1, 3-D as is) with 1 mm voxels and identity orientation."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"cannot read '{path}' as .npy ({exc})") from exc
    if arr.dtype.kind not in "biuf":
        raise InputError(f"'{path}' holds {arr.dtype} data; expected real numbers")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise InputError(f"'{path}' has shape {arr.shape}; expected a 2-D slice or a 3-D volume")
    return Volume(
        data=arr.astype(np.float32),
        affine=np.eye(4),
        meta={"format": "npy", "path": str(path), "nifti_code": 2},
        orig_dtype=arr.dtype,
    )

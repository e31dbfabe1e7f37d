"""fastMRI-style HDF5 files: raw k-space (single- or multi-coil) or stored reconstructions.

Layout (fastMRI): ``kspace`` is complex [slices, kx, ky] (single-coil) or
[slices, coils, kx, ky] (multi-coil); ``reconstruction_rss`` / ``reconstruction_esc`` hold
magnitude images [slices, H, W]; ``ismrmrd_header`` is the ISMRMRD XML with the encoded and
reconstructed field of view. The returned volume is laid out (H, W, slices). fastMRI files carry no
patient position, so the affine is diagonal with the header's spacing and marked as an aligned,
not scanner, space.

Checks before any data are read: every HDF5 error (truncated or corrupt file) is a one-line
:class:`InputError`; the dataset used must be a dataset (not a group) of the fastMRI shape and
type, no dimension 0, within :data:`~mrisr.io.formats.MAX_VOXELS`, and must actually store its
data (an HDF5 dataset may declare a huge shape with nothing written: reading it would allocate
the whole declared size). A file without the ISMRMRD field of view has no voxel size: it is
refused unless ``assume_geometry=True`` (1 mm, listed in ``meta["assumed_geometry"]``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.errors import InputError
from mrisr.io.formats import ASSUME_HINT, check_declared_size, human_bytes
from mrisr.io.volume import Volume

RECON_PREFERENCE = ("reconstruction_rss", "reconstruction_esc")
#: Most a compressed dataset may shrink (deflate cannot exceed ~1032:1): beyond, chunks are missing.
MAX_RATIO = 1100
#: Largest ISMRMRD header read (the XML is a few kB).
MAX_XML_BYTES = 1 << 24


def kspace_to_image(kspace: np.ndarray) -> np.ndarray:
    """Centred orthonormal inverse FFT over the last two axes, then root-sum-of-squares over
    coils for a 4-D [slices, coils, kx, ky] array. Returns float32 [slices, kx, ky]."""
    import torch

    from mrisr.fourier import ifft2c

    k = torch.from_numpy(np.ascontiguousarray(kspace)).to(torch.complex64)
    img = ifft2c(k).abs()
    if img.ndim == 4:
        img = torch.sqrt((img**2).sum(dim=1))
    return img.numpy().astype(np.float32)


def _fov(xml: str, space: str) -> tuple[list[float], list[int]] | None:
    """(fieldOfView_mm [x, y, z], matrixSize [x, y, z]) of ``space`` in the ISMRMRD header."""
    block = re.search(rf"<{space}>(.*?)</{space}>", xml, re.S)
    if not block:
        return None
    try:
        fov = [
            float(
                re.search(rf"<fieldOfView_mm>.*?<{a}>([^<]+)</{a}>", block.group(1), re.S).group(1)
            )
            for a in "xyz"
        ]  # type: ignore[union-attr]
        mat = [
            int(re.search(rf"<matrixSize>.*?<{a}>([^<]+)</{a}>", block.group(1), re.S).group(1))
            for a in "xyz"
        ]  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        return None
    return fov, mat


def _dataset(path: Path, f: Any, name: str, ndims: tuple[int, ...], complex_: bool) -> Any:
    """``f[name]`` checked from its metadata alone: a dataset of ``ndims`` dimensions, none 0,
    real or complex as asked, within the size limits and with its data stored."""
    import h5py

    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise InputError(
            f"'{path}': '{name}' is an HDF5 {type(ds).__name__.lower()}, not a dataset"
        )
    shape, dtype = tuple(ds.shape or ()), ds.dtype
    want = "complex" if complex_ else "real"
    if len(shape) not in ndims or (dtype.kind == "c") != complex_ or dtype.kind not in "biufc":
        dims = " or ".join(f"{n}-D" for n in ndims)
        raise InputError(
            f"'{path}': '{name}' must be {dims} {want} data, got {dtype} {shape} (is it a "
            "fastMRI file?)"
        )
    if any(n < 1 for n in shape):
        raise InputError(f"'{path}': '{name}' has shape {shape}; it holds no image (a size 0)")
    nbytes = check_declared_size(path, shape, dtype.itemsize)
    stored = ds.id.get_storage_size()
    filtered = ds.id.get_create_plist().get_nfilters() > 0
    if stored == 0 or (stored < nbytes if not filtered else nbytes > MAX_RATIO * stored):
        raise InputError(
            f"'{path}': '{name}' declares {shape} {dtype} ({human_bytes(nbytes)}) but stores "
            f"only {human_bytes(stored)}: its data were never written or are missing"
        )
    return ds


def _xml(f: Any) -> str:
    """The ISMRMRD header text, or "" when absent or unusable."""
    import h5py

    obj = f.get("ismrmrd_header")
    if not isinstance(obj, h5py.Dataset) or obj.size != 1 or obj.nbytes > MAX_XML_BYTES:
        return ""
    xml = obj[()]
    if isinstance(xml, np.ndarray):
        xml = xml.item()
    return xml.decode("utf-8", "replace") if isinstance(xml, bytes) else str(xml)


def load_kspace_h5(
    path: str | Path, use_reconstruction: bool = True, *, assume_geometry: bool = False
) -> Volume:
    """Read a fastMRI-style file; a stored ``reconstruction_*`` wins unless
    ``use_reconstruction=False``, else the image is reconstructed from ``kspace``.
    ``assume_geometry`` reads a file without the ISMRMRD field of view with 1 mm voxels."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # h5py raises OSError, but also ValueError/RuntimeError/KeyError
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read '{path}' as HDF5 ({reason}); the file is corrupt or truncated"
        ) from exc
    try:
        with f:
            recons = [k for k in RECON_PREFERENCE if k in f] + sorted(
                k for k in f if k.startswith("reconstruction_") and k not in RECON_PREFERENCE
            )
            xml = _xml(f)
            attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
            if use_reconstruction and recons:
                source = recons[0]
                images = np.asarray(_dataset(path, f, source, (2, 3), False), dtype=np.float32)
                space = "reconSpace"
            elif "kspace" in f:
                source = "kspace"
                k = _dataset(path, f, "kspace", (3, 4), True)[()]
                space = "encodedSpace"
            else:
                raise InputError(
                    f"'{path}' has neither a 'kspace' nor a 'reconstruction_*' dataset "
                    f"(found: {sorted(f)}); is it a fastMRI file?"
                )
    except InputError:
        raise
    except Exception as exc:  # h5py/HDF5 errors reading a damaged file: still one line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read data from '{path}' ({type(exc).__name__}: {reason}); the file is "
            "corrupt or truncated"
        ) from exc
    geom = _fov(xml, space) if xml else None
    if geom and not all(np.isfinite(v) and v > 0 for v in geom[0]):
        geom = None
    meta: dict[str, Any] = {}
    if not geom and not assume_geometry:
        raise InputError(
            f"'{path}' has no usable field of view (ismrmrd_header {space} fieldOfView_mm): "
            "its voxel size is unknown; " + ASSUME_HINT.format(what="1 mm voxels")
        )
    if not geom:
        meta["assumed_geometry"] = [f"ismrmrd_header {space} fieldOfView_mm missing: 1 mm assumed"]
    if source == "kspace":  # outside the try: a reconstruction error is not a damaged file
        images = kspace_to_image(k)
    if images.ndim == 2:
        images = images[None]
    spacing = [1.0, 1.0, 1.0]
    if geom:
        fov, mat = geom
        # kx (rows) is the readout, encoded x; ky (columns) is encoded y; z is the slab.
        spacing = [fov[0] / images.shape[1], fov[1] / images.shape[2], fov[2] / max(mat[2], 1)]
    data = np.ascontiguousarray(np.moveaxis(images, 0, -1))
    meta = {
        "format": "fastmri-h5",
        "path": str(path),
        "source_dataset": source,
        "n_coils": int(k.shape[1]) if source == "kspace" and k.ndim == 4 else 1,
        "geometry": "header spacing" if geom else "missing: 1 mm assumed",
        "orientation": "unknown (fastMRI files carry no patient position)",
        "nifti_code": 2,
        **meta,
    }
    meta.update({f"attr_{k}": v for k, v in attrs.items() if isinstance(v, int | float | str)})
    return Volume(
        data=data, affine=np.diag([*spacing, 1.0]), meta=meta, orig_dtype=np.dtype(np.float32)
    )

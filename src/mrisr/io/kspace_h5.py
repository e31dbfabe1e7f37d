"""fastMRI-style HDF5 files: raw k-space (single- or multi-coil) or stored reconstructions.

Layout (fastMRI): ``kspace`` is complex [slices, kx, ky] (single-coil) or
[slices, coils, kx, ky] (multi-coil); ``reconstruction_rss`` / ``reconstruction_esc`` hold
magnitude images [slices, H, W]; ``ismrmrd_header`` is the ISMRMRD XML with the encoded and
reconstructed field of view. The returned volume is laid out (H, W, slices). fastMRI files carry no
patient position, so the affine is diagonal with the header's spacing (1 mm when absent) and
marked as an aligned, not scanner, space.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mrisr.errors import InputError
from mrisr.io.volume import Volume

RECON_PREFERENCE = ("reconstruction_rss", "reconstruction_esc")


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


def load_kspace_h5(path: str | Path, use_reconstruction: bool = True) -> Volume:
    """Read a fastMRI-style file; a stored ``reconstruction_*`` wins unless
    ``use_reconstruction=False``, else the image is reconstructed from ``kspace``."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(
            f"cannot read '{path}' as HDF5 ({exc}); the file is corrupt or truncated"
        ) from exc
    with f:
        recons = [k for k in RECON_PREFERENCE if k in f] + sorted(
            k for k in f if k.startswith("reconstruction_") and k not in RECON_PREFERENCE
        )
        xml = f["ismrmrd_header"][()] if "ismrmrd_header" in f else b""
        xml = xml.decode("utf-8", "replace") if isinstance(xml, bytes) else str(xml)
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        try:
            if use_reconstruction and recons:
                source = recons[0]
                images = np.asarray(f[source], dtype=np.float32)
                space = "reconSpace"
            elif "kspace" in f:
                source = "kspace"
                k = f["kspace"][()]
                if k.ndim not in (3, 4) or not np.iscomplexobj(k):
                    raise InputError(
                        f"'{path}': kspace must be complex [slices, kx, ky] or "
                        f"[slices, coils, kx, ky], got {k.dtype} {k.shape}"
                    )
                images = kspace_to_image(k)
                space = "encodedSpace"
            else:
                raise InputError(
                    f"'{path}' has neither a 'kspace' nor a 'reconstruction_*' dataset "
                    f"(found: {sorted(f)}); is it a fastMRI file?"
                )
        except OSError as exc:
            raise InputError(
                f"cannot read data from '{path}' ({exc}); the file is truncated"
            ) from exc
    if images.ndim == 2:
        images = images[None]
    spacing = [1.0, 1.0, 1.0]
    geom = _fov(xml, space) if xml else None
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
    }
    meta.update({f"attr_{k}": v for k, v in attrs.items() if isinstance(v, int | float | str)})
    return Volume(
        data=data, affine=np.diag([*spacing, 1.0]), meta=meta, orig_dtype=np.dtype(np.float32)
    )

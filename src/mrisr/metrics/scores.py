"""Scores of a 3-D result against its reference: PSNR, SSIM and NMSE per slice along the slice
axis and per volume (:func:`evaluate_volume`, what ``mrisr eval`` reports), in bounded memory.
The per-image definitions are in :mod:`mrisr.metrics.reference`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mrisr.errors import ConfigError, InputError
from mrisr.metrics.reference import (
    SSIM_RADIUS,
    _as_tensor,
    _check_finite,
    _check_shave,
    _data_range,
    _mask_tensor,
    _shave,
    nmse,
    psnr,
    ssim,
)

__all__ = ["evaluate_volume"]


_ZERO_REF = "reference is zero in the scored region"
_NO_MASK = "no mask voxel inside the SSIM border"


def _volume_parts(x: Any) -> tuple[Any, np.ndarray | None, tuple[float, ...] | None]:
    """An mrisr Volume (anything with ``data`` and ``affine``) → (data, affine, zooms)."""
    if (
        hasattr(x, "data")
        and hasattr(x, "affine")
        and not isinstance(x, (torch.Tensor, np.ndarray))
    ):
        aff = np.asarray(x.affine, dtype=float)
        return x.data, aff, tuple(float(z) for z in np.sqrt((aff[:3, :3] ** 2).sum(axis=0)))
    return x, None, None


def evaluate_volume(
    pred: Any,
    ref: Any,
    mask: Any = None,
    shave: int = 0,
    data_range: float | None = None,
    slice_axis: int | None = None,
    progress: Any = None,
    chunk_slices: int = 16,
) -> dict[str, Any]:
    """PSNR, SSIM and NMSE of a 3-D prediction against its reference, per volume and slice.

    ``pred`` / ``ref`` / ``mask``: arrays, tensors or mrisr Volumes (``load_volume``). Two
    Volumes must lie on the same grid (shape and affine). Slices are taken along
    ``slice_axis``; by default the rule of ``mrisr eval`` (the axis whose spacing differs
    from the other two, from the Volumes' headers; the last axis of plain arrays, whose
    spacing is unknown). ``shave`` crops the in-plane borders of every slice; ``mask`` (same
    shape as the volumes) restricts every metric to its voxels. ``data_range`` defaults to
    ``ref.max()`` over the whole volume, shared by all slices. The work is done
    ``chunk_slices`` slices at a time in float64 (memory stays a few chunks, whatever the
    volume); ``progress(n)`` is called after each chunk with its number of slices.

    Returns ``{"volume": {...}, "slices": [...], "skipped": [...]}`` with plain floats:

    - ``volume["psnr"]``: from the MSE over all scored voxels of the volume (not the mean of
      slice PSNRs; ``volume["psnr_mean_slices"]`` is that mean, over the scored slices);
    - ``volume["ssim"]``: mean of the scored slices' SSIMs (SSIM is a 2-D measure here);
    - ``volume["nmse"]``: over all scored voxels; ``data_range``, ``shave``, ``n_slices``
      (slices scored) and ``n_skipped``; ``slice_axis``: the axis used;
    - ``slices``: ``{"index", "psnr", "ssim", "nmse"}`` per scored slice (``index`` along
      ``slice_axis`` of the input);
    - ``skipped``: ``{"index", "reason"}`` for slices whose reference is entirely zero in the
      scored region (or which have no mask voxel there): their SSIM/NMSE are undefined, so
      they are left out of the per-slice numbers, though their voxels still count in the
      volume PSNR and NMSE.

    PSNR is ``inf`` where prediction and reference are identical (JSON writes ``Infinity``).
    Raises ConfigError on mismatched shapes or grids, InputError on NaN/inf values.
    """
    from mrisr.io.geometry import check_same_grid, resolve_axis

    pred, p_aff, p_zooms = _volume_parts(pred)
    ref, r_aff, r_zooms = _volume_parts(ref)
    mask, m_aff, _ = _volume_parts(mask)
    p, r = _as_tensor(pred, "prediction"), _as_tensor(ref, "reference")
    if p.shape != r.shape:
        raise ConfigError(
            f"prediction shape {tuple(p.shape)} differs from reference shape {tuple(r.shape)}; "
            "compare images of the same size (check the scale factor or use the matching "
            "reference)"
        )
    if p.ndim != 3:
        raise ConfigError(
            f"evaluate_volume needs 3-D volumes; got shape {tuple(p.shape)} (use psnr/ssim "
            "for 2-D images, or pick one volume of a 4-D series)"
        )
    if p_aff is not None and r_aff is not None:
        check_same_grid(p.shape, p_aff, r.shape, r_aff, "the prediction")
    if m_aff is not None and r_aff is not None and tuple(np.shape(mask)) == tuple(r.shape):
        check_same_grid(r.shape, m_aff, r.shape, r_aff, "the mask")
    if slice_axis is not None and not (
        isinstance(slice_axis, (int, np.integer)) and -3 <= slice_axis <= 2
    ):
        raise ConfigError(f"slice_axis must be 0, 1 or 2 (or -1..-3); got {slice_axis}")
    zooms = r_zooms or p_zooms
    if slice_axis is None:
        ax = resolve_axis(None, zooms, tuple(r.shape)) if zooms is not None else 2
    else:
        ax = int(slice_axis) % 3
    r = r.to(p.device)
    m = None
    if mask is not None:
        m = _mask_tensor(mask, p.device)
        if tuple(m.shape) != tuple(p.shape):
            raise ConfigError(
                f"mask shape {tuple(m.shape)} differs from volume shape {tuple(p.shape)}; "
                "use the mask made for this reference"
            )
        if not bool(m.any()):
            raise InputError("the mask is empty (no non-zero voxel); give a mask of the region")
    p, r = torch.movedim(p, ax, 0), torch.movedim(r, ax, 0)
    if m is not None:
        m = torch.movedim(m, ax, 0)
    _check_shave(shave, p.shape, need=2 * SSIM_RADIUS + 1)
    n = p.shape[0]
    step = max(1, int(chunk_slices))
    # Whole volumes in their own dtype (a boolean temporary, no float64 copy).
    _check_finite(p, "prediction")
    _check_finite(r, "reference")
    r_max = float(r.max())
    dr = _data_range(data_range, torch.tensor([r_max], dtype=torch.float64))
    p, r, m = _shave(p, shave), _shave(r, shave), _shave(m, shave)
    # Pass 2 (chunked): volume sums and per-slice metrics.
    err_sum = nrm_sum = n_vox = 0.0
    slices: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for lo in range(0, n, step):
        pc = p[lo : lo + step].to(torch.float64)
        rc = r[lo : lo + step].to(torch.float64)
        mc = torch.ones_like(pc, dtype=torch.bool) if m is None else m[lo : lo + step]
        w = mc.to(torch.float64)
        err_sum += float(((pc - rc) ** 2 * w).sum())
        nrm_sum += float((rc**2 * w).sum())
        n_vox += float(w.sum())
        inner = _shave(mc, SSIM_RADIUS).flatten(1).any(dim=1)
        has_signal = (rc * w != 0).flatten(1).any(dim=1)
        keep = (inner & has_signal).nonzero().flatten().tolist()
        for i in range(pc.shape[0]):
            if not bool(has_signal[i]):
                skipped.append({"index": lo + i, "reason": _ZERO_REF})
            elif not bool(inner[i]):
                skipped.append({"index": lo + i, "reason": _NO_MASK})
        if keep:
            pk, rk, mk = pc[keep], rc[keep], mc[keep]
            vals = zip(
                psnr(pk, rk, data_range=dr, mask=mk).tolist(),
                ssim(pk, rk, data_range=dr, mask=mk).tolist(),
                nmse(pk, rk, mask=mk, dim=(-2, -1)).tolist(),
                strict=True,
            )
            for i, (a, b, c) in zip(keep, vals, strict=True):
                slices.append({"index": lo + i, "psnr": a, "ssim": b, "nmse": c})
        if progress is not None:
            progress(pc.shape[0])
    if n_vox == 0:
        raise InputError(
            "no mask voxel is left after shaving the borders; use a smaller shave or another mask"
        )
    if not slices:
        raise InputError(
            "no slice has a non-zero reference inside the scored region; check the mask, "
            "the shave and that the reference is not empty"
        )
    mse_vol = err_sum / n_vox
    psnr_vol = float("inf") if mse_vol == 0 else 10.0 * float(np.log10(dr**2 / mse_vol))
    s_psnr = [s["psnr"] for s in slices]
    return {
        "volume": {
            "psnr": psnr_vol,
            "psnr_mean_slices": float(np.mean(s_psnr)),
            "ssim": float(np.mean([s["ssim"] for s in slices])),
            "nmse": err_sum / nrm_sum if nrm_sum > 0 else float("nan"),
            "data_range": dr,
            "shave": int(shave),
            "n_slices": len(slices),
            "n_skipped": len(skipped),
        },
        "slice_axis": ax,
        "slices": slices,
        "skipped": skipped,
    }

"""Pairs of contrasts for multi-contrast SR: a guide brought onto a target's grid.

Both scans' affines map voxels to the same scanner space (RAS+ mm), so a guide acquired with
another matrix, voxel size or orientation (IXI T1 is sagittal 1.2×0.94×0.94 mm, T2 axial
0.94×0.94×1.25 mm) is resampled onto the target grid by ``inv(A_guide) · A_target`` — no
registration, which is right for contrasts of one session and wrong when the subject moved
between them; :func:`alignment` measures how well they agree, so that a user can tell.

``resample_to_grid`` uses trilinear interpolation (``order=1``; cubic ``order=3`` is
available) with zeros outside the guide's field of view, and reports which target voxels the
guide covers; :func:`pair_guide` refuses a pair whose overlap is below ``min_overlap`` of the
target's foreground.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mrisr.errors import InputError


def resample_to_grid(
    data: np.ndarray,
    affine: np.ndarray,
    target_affine: np.ndarray,
    target_shape: tuple[int, int, int],
    order: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """``data`` (on ``affine``) sampled at the voxel centres of the target grid.

    Returns ``(values float32, covered bool)``; ``covered`` marks target voxels whose centre
    lies inside the source's field of view (voxel centres ± half a voxel).
    """
    from scipy import ndimage

    m = np.linalg.inv(np.asarray(affine, np.float64)) @ np.asarray(target_affine, np.float64)
    src = np.asarray(data, np.float32)
    out = ndimage.affine_transform(
        src, m[:3, :3], m[:3, 3], output_shape=tuple(target_shape), order=order, mode="constant"
    )
    # Coverage from the coordinates themselves, one slab at a time (no 3×N array in memory).
    covered = np.zeros(target_shape, bool)
    jj, kk = np.meshgrid(np.arange(target_shape[1]), np.arange(target_shape[2]), indexing="ij")
    lim = np.array(src.shape, np.float64) - 0.5
    for i in range(target_shape[0]):
        c = m[:3, :3] @ np.stack([np.full(jj.shape, i), jj, kk]).reshape(3, -1) + m[:3, 3:4]
        inside = np.all((c >= -0.5) & (c <= lim[:, None]), axis=0)
        covered[i] = inside.reshape(jj.shape)
    return out.astype(np.float32), covered


def _foreground(x: np.ndarray) -> np.ndarray:
    """Voxels above 10 % of the 99th percentile: tissue rather than air."""
    return x > 0.1 * np.percentile(x, 99)


def alignment(a: np.ndarray, b: np.ndarray, mask: np.ndarray, bins: int = 32) -> dict[str, float]:
    """Agreement of two contrasts over ``mask``: normalised cross-correlation (linear; low
    between contrasts with inverted tissue intensities) and normalised mutual information
    ``(H(A) + H(B)) / H(A, B)`` (1 = independent, higher = better aligned; contrast-agnostic)."""
    x, y = a[mask].astype(np.float64), b[mask].astype(np.float64)
    if x.size < 2:
        return {"ncc": float("nan"), "nmi": float("nan")}
    xs, ys = x - x.mean(), y - y.mean()
    den = np.sqrt((xs * xs).sum() * (ys * ys).sum())
    ncc = float((xs * ys).sum() / den) if den > 0 else float("nan")
    h, _, _ = np.histogram2d(x, y, bins=bins)
    p = h / h.sum()

    def entropy(q: np.ndarray) -> float:
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    nmi = (entropy(p.sum(1)) + entropy(p.sum(0))) / entropy(p.ravel())
    return {"ncc": ncc, "nmi": float(nmi)}


def pair_guide(
    target: Any, guide: Any, min_overlap: float = 0.9, order: int = 1
) -> tuple[Any, dict[str, Any]]:
    """The guide :class:`~mrisr.io.volume.Volume` resampled onto ``target``'s grid, and a report.

    The report holds ``overlap`` (fraction of the target's foreground the guide covers),
    ``ncc`` and ``nmi`` over the covered foreground, whether the grids were already the same,
    and the voxel sizes. Raises :class:`InputError` when the overlap is below ``min_overlap``.
    """
    same = target.shape == guide.shape and np.allclose(target.affine, guide.affine, atol=1e-3)
    if same:
        data, covered = np.asarray(guide.data, np.float32), np.ones(target.shape, bool)
    else:
        data, covered = resample_to_grid(
            guide.data, guide.affine, target.affine, target.shape, order
        )
    fg = _foreground(np.asarray(target.data))
    overlap = float((covered & fg).sum() / max(1, fg.sum()))
    report: dict[str, Any] = {
        "same_grid": bool(same),
        "overlap": overlap,
        **alignment(np.asarray(target.data), data, covered & fg),
        "target_zooms_mm": [round(float(z), 4) for z in target.zooms],
        "guide_zooms_mm": [round(float(z), 4) for z in guide.zooms],
        "interpolation": "none" if same else ("trilinear" if order == 1 else f"spline {order}"),
    }
    if overlap < min_overlap:
        raise InputError(
            f"the guide covers {overlap:.0%} of the target's foreground (needs "
            f"{min_overlap:.0%}): the two scans' fields of view do not overlap enough; give a "
            "guide of the same anatomy from the same session"
        )
    return target.replace(data, target.affine), report

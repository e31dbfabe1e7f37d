"""Training pairs for through-plane SR, made from a scan's own in-plane detail (SMORE's idea).

An in-plane slice of a thick-slice scan is sharp along both of its axes. Blurring it along one
axis with the slice profile and sampling every ``k`` output voxels gives exactly what the slice
direction looks like; the B-spline interpolation of those samples back onto the fine grid is the
network's input and the slice itself its target (:mod:`mrisr.degrade.through_plane` holds the
operator and the interpolation, so training and inference degrade alike). Both in-plane axes
are used, with flips, and patches are drawn where the image has structure (the best of a few
random windows by gradient energy). Every draw comes from ``SeedSequence([seed, index])``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrisr.degrade.through_plane import apply_along, operator, output_grid, spline_to_grid


@dataclass(frozen=True)
class SliceModel:
    """How the slice direction was acquired, in output voxels: ratio ``k`` (spacing / voxel),
    the profile (``rect`` / ``gaussian`` with ``fwhm``, or a sampled 1-D array)."""

    k: float
    profile: str | np.ndarray
    fwhm: float = 0.0

    def describe(self) -> dict:
        kind = "sampled" if isinstance(self.profile, np.ndarray) else self.profile
        return {"k": round(float(self.k), 4), "profile": kind, "fwhm_vox": round(self.fwhm, 4)}


def degrade_rows(img: np.ndarray, model: SliceModel) -> tuple[np.ndarray, np.ndarray]:
    """``(input, target)``: ``img``'s rows (dim 0) acquired with ``model`` and B-spline
    interpolated back (input), and ``img`` cut to the same rows (target), both ``n × W``."""
    m = int(np.floor(img.shape[0] / model.k + 1e-9))
    n, pos = output_grid(m, model.k)
    n = min(n, img.shape[0])
    top = (img.shape[0] - n) // 2
    target = img[top : top + n]
    a = operator(n, pos, model.profile, model.fwhm)
    y = apply_along(a, target, 0)
    return spline_to_grid(y, pos, n, 0).astype(np.float32), target.astype(np.float32)


def in_plane_slices(data: np.ndarray, slice_axis: int) -> np.ndarray:
    """The scan's in-plane slices ``[K, H, W]`` (a view), K along ``slice_axis``."""
    return np.moveaxis(data, slice_axis, 0)


def draw_pair(
    slices: np.ndarray,
    model: SliceModel,
    patch: int,
    rng: np.random.Generator,
    keep: np.ndarray | None = None,
    tries: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """One ``(input, target)`` patch pair, ``patch × patch`` (smaller if the slice is): a slice
    (among ``keep``), an in-plane axis, flips, then the window with the most gradient energy of
    ``tries`` random ones."""
    idx = rng.choice(keep) if keep is not None and len(keep) else rng.integers(slices.shape[0])
    img = np.asarray(slices[idx], dtype=np.float32)
    if rng.random() < 0.5:  # either in-plane axis plays the slice direction
        img = img.T
    if rng.random() < 0.5:
        img = img[::-1]
    if rng.random() < 0.5:
        img = img[:, ::-1]
    inp, tgt = degrade_rows(np.ascontiguousarray(img), model)
    ph, pw = min(patch, tgt.shape[0]), min(patch, tgt.shape[1])
    best, score = (0, 0), -1.0
    for _ in range(tries):
        r = int(rng.integers(tgt.shape[0] - ph + 1))
        c = int(rng.integers(tgt.shape[1] - pw + 1))
        win = tgt[r : r + ph, c : c + pw]
        g = float(np.abs(np.diff(win, axis=0)).sum() + np.abs(np.diff(win, axis=1)).sum())
        if g > score:
            best, score = (r, c), g
    r, c = best
    return inp[r : r + ph, c : c + pw], tgt[r : r + ph, c : c + pw]


def signal_slices(slices: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Indices of the slices whose 99th percentile reaches ``fraction`` of the scan's."""
    top = float(np.percentile(slices, 99)) or 1.0
    per = np.array([np.percentile(s, 99) for s in slices])
    keep = np.nonzero(per >= fraction * top)[0]
    return keep if len(keep) else np.arange(slices.shape[0])


def batch(
    slices: np.ndarray,
    model: SliceModel,
    size: int,
    patch: int,
    seed: int,
    step: int,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Batch ``step`` of the pair stream: ``[size, 1, p, p]`` inputs and targets, reproducible
    from ``(seed, step)`` (a resumed run draws the same batches)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, step]))
    pairs = [draw_pair(slices, model, patch, rng, keep) for _ in range(size)]
    h = min(p[0].shape[0] for p in pairs)
    w = min(p[0].shape[1] for p in pairs)
    x = np.stack([p[0][:h, :w] for p in pairs])[:, None]
    y = np.stack([p[1][:h, :w] for p in pairs])[:, None]
    return x, y

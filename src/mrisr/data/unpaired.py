"""Unpaired HR / real-LR crops for learning a degradation (the DSGAN, spec §5.5).

Each item is one HR crop (``hr_crop``² pixels) and one LR crop (the generator's output size,
``(hr_crop − K)//s + 1``: 26 for 64 at ×2) drawn **independently**: different positions and, in
per-volume mode, usually different slices, so the pair is never matched — the discriminator
only learns what real LR patches look like.

Crop centres are drawn with probability proportional to the local gradient magnitude (the
gradient magnitude averaged over a window of half the crop side, zero where the crop would leave
the slice), so crops land on edges, where a kernel shows (KernelGAN's ``create_gradient_map`` /
``create_probability_map`` idea). HR crop corners are multiples of ``s``, so every HR crop has the
same phase on the LR grid. In per-volume mode the slice is drawn in proportion to its total
gradient; per-slice mode (``slice``) uses one HR slice and the real LR slice at the same
position (nearest along the slice normal).

Intensities: each scan is normalised on its own (percentile 0 → 0, 99.5 → 1 by default:
KernelGAN's [0, 1] scale, which its 0.4 bicubic-loss threshold and 1/255 noise assume).
The LR slices may be denoised with non-local means first (the paper did, before training).
Items are reproducible from ``(seed, epoch, index)``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mrisr.errors import ConfigError
from mrisr.normalisation import Normalisation


def gradient_probability(img: np.ndarray, crop: int, step: int = 1) -> np.ndarray:
    """``[H, W]`` map ∝ the crop-window mean of ``|∇img|`` at valid crop corners, else 0.

    Entry ``(y, x)`` is the probability of the crop whose top-left corner is ``(y, x)``;
    corners must be multiples of ``step``. Falls back to uniform over valid corners for a flat
    image.
    """
    from scipy import ndimage

    gy, gx = np.gradient(img.astype(np.float64))
    g = np.hypot(gy, gx)
    w = max(1, crop // 2)
    g = ndimage.uniform_filter(g, size=w, mode="nearest")
    h, wd = img.shape
    half = crop // 2
    valid = np.zeros_like(g, dtype=bool)
    valid[: h - crop + 1 : step, : wd - crop + 1 : step] = True
    # The probability of a corner is the smoothed gradient at the crop's centre.
    p = np.zeros_like(g)
    ys, xs = np.nonzero(valid)
    p[ys, xs] = g[ys + half, xs + half]
    if not p.sum() > 0:
        p[ys, xs] = 1.0
    return p / p.sum()


def noise_sigma(img: np.ndarray) -> float:
    """Gaussian noise σ of an image from its fine-scale residual (Immerkær 1996: the mean
    absolute response to the 3×3 mask [1 −2 1; −2 4 −2; 1 −2 1], × √(π/2)/6), which
    cancels smooth structure up to second order."""
    from scipy import ndimage

    mask = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
    r = ndimage.convolve(np.asarray(img, np.float64), mask, mode="reflect")[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) / 6 * np.abs(r).mean())


def nlm_denoise(img: np.ndarray, strength: float = 0.8) -> np.ndarray:
    """Non-local means of a [0, 1] slice, ``h = strength·σ`` with σ from :func:`noise_sigma`
    (scikit-image ``denoise_nl_means``, 5×5 patches, 13×13 search)."""
    from skimage.restoration import denoise_nl_means

    x = img.astype(np.float64)
    sigma = noise_sigma(x)
    if sigma <= 0:
        return img.astype(np.float32)
    out = denoise_nl_means(
        x, h=strength * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True
    )
    return out.astype(np.float32)


def _slices(data: np.ndarray, axis: int) -> np.ndarray:
    """Volume → [K, H, W] along ``axis``."""
    return np.moveaxis(np.asarray(data, np.float32), axis, 0)


def _normal(affine: np.ndarray, axis: int) -> np.ndarray:
    v = np.asarray(affine, float)[:3, axis]
    return v / np.linalg.norm(v)


class UnpairedCrops(Dataset):
    """``{"hr": [1, c, c], "lr": [1, c_lr, c_lr]}`` crops from HR and real LR scans.

    Args:
        hr: HR scans (paths). lr: real LR scans of the same protocol (paths).
        scale: in-plane factor; the LR in-plane spacing must be ``scale`` × the HR's (±5 %).
        hr_crop: HR crop side; kernel_size: the generator's kernel (13 for 7-5-3-1-1-1).
        slice_index: per-slice mode: the HR slice (of the first HR scan) to learn from.
        axis: slice axis (None: each scan's coarsest spacing).
    """

    def __init__(
        self,
        hr: list[Path],
        lr: list[Path],
        scale: int,
        hr_crop: int = 64,
        kernel_size: int = 13,
        normalisation: Normalisation | None = None,
        denoise: bool = False,
        denoise_strength: float = 0.8,
        slice_index: int | None = None,
        axis: int | None = None,
        samples_per_epoch: int = 3000,
        seed: int = 0,
    ) -> None:
        from mrisr.io import load_volume
        from mrisr.io.geometry import resolve_axis

        if not hr or not lr:
            raise ConfigError("learning a kernel needs HR scans and real LR scans (data.lr_real)")
        self.scale, self.hr_crop, self.kernel_size = int(scale), int(hr_crop), int(kernel_size)
        if self.hr_crop < self.kernel_size + self.scale:
            raise ConfigError(
                f"dsgan.hr_crop: {hr_crop} is too small for a {kernel_size}-pixel kernel"
            )
        self.lr_crop = (self.hr_crop - self.kernel_size) // self.scale + 1
        self.normalisation = normalisation or Normalisation("percentile", 0.0, 99.5)
        self.denoise, self.denoise_strength = bool(denoise), float(denoise_strength)
        self.slice_index, self.axis = slice_index, axis
        self.samples_per_epoch, self.seed, self.epoch = int(samples_per_epoch), int(seed), 0
        self.lr_grid_offset = (self.scale - 1) / 2
        self.hr_paths, self.lr_paths = [Path(p) for p in hr], [Path(p) for p in lr]
        hr_vols = [load_volume(p) for p in self.hr_paths]
        lr_vols = [load_volume(p) for p in self.lr_paths]
        ax_hr = [resolve_axis(axis, v.zooms, v.shape) for v in hr_vols]
        # The LR scan's slice axis is the one along the HR slice normal (its coarsest spacing
        # may be in-plane: a ×2 LR of 0.94 mm × 1.25 mm slices has 1.875 mm pixels).
        n_hr = _normal(hr_vols[0].affine, ax_hr[0])
        ax_lr = [
            axis if axis is not None
            else int(np.argmax([abs(n_hr @ _normal(v.affine, a)) for a in range(3)]))
            for v in lr_vols
        ]  # fmt: skip
        ref_plane = [z for i, z in enumerate(hr_vols[0].zooms) if i != ax_hr[0]]
        for v, a, p in zip(lr_vols, ax_lr, self.lr_paths, strict=True):
            plane = [z for i, z in enumerate(v.zooms) if i != a]
            ratio = [b / r for b, r in zip(sorted(plane), sorted(ref_plane), strict=True)]
            if any(abs(q - self.scale) > 0.05 * self.scale for q in ratio):
                raise ConfigError(
                    f"'{p.name}': its in-plane spacing {tuple(round(z, 3) for z in plane)} mm is "
                    f"not ×{self.scale} of the HR's {tuple(round(z, 3) for z in ref_plane)} mm; "
                    "resample the real LR scan to exactly scale × the HR spacing first"
                )
        self.hr_slices, self.lr_slices, self.picked = [], [], {}
        for v, a in zip(hr_vols, ax_hr, strict=True):
            stats = self.normalisation.fit(v.data)
            self.hr_slices.append(self.normalisation.apply(_slices(v.data, a), stats))
        for v, a in zip(lr_vols, ax_lr, strict=True):
            stats = self.normalisation.fit(v.data)
            self.lr_slices.append(self.normalisation.apply(_slices(v.data, a), stats))
        hr_keep = self._usable(self.hr_slices, self.hr_crop)
        lr_keep = self._usable(self.lr_slices, self.lr_crop)
        if slice_index is not None:
            hr_keep, lr_keep = self._per_slice(hr_vols, lr_vols, ax_hr, ax_lr, slice_index)
        if not hr_keep:
            raise ConfigError(
                f"no HR slice is at least {self.hr_crop}×{self.hr_crop} pixels with tissue; "
                "lower dsgan.hr_crop"
            )
        if not lr_keep:
            raise ConfigError(
                f"no real LR slice is at least {self.lr_crop}×{self.lr_crop} pixels with tissue"
            )
        if self.denoise:
            for v, k in lr_keep:
                self.lr_slices[v][k] = nlm_denoise(self.lr_slices[v][k], self.denoise_strength)
        self.hr_index, self.hr_maps, self.hr_weights = self._maps(
            self.hr_slices, hr_keep, self.hr_crop, self.scale
        )
        self.lr_index, self.lr_maps, self.lr_weights = self._maps(
            self.lr_slices, lr_keep, self.lr_crop, 1
        )

    @staticmethod
    def _usable(slices: list[np.ndarray], crop: int) -> list[tuple[int, int]]:
        """(volume, slice) pairs big enough for a crop and with tissue (99th percentile above
        10 % of the volume's)."""
        out = []
        for v, vol in enumerate(slices):
            if min(vol.shape[1:]) < crop:
                continue
            top = np.percentile(vol, 99)
            out += [(v, k) for k in range(vol.shape[0]) if np.percentile(vol[k], 99) > 0.1 * top]
        return out

    def _per_slice(self, hr_vols, lr_vols, ax_hr, ax_lr, k: int):
        n = self.hr_slices[0].shape[0]
        if not 0 <= k < n:
            raise ConfigError(f"dsgan.slice: {k} is outside the HR scan's {n} slices (0..{n - 1})")
        a0, a1 = hr_vols[0].affine, lr_vols[0].affine
        if abs(float(_normal(a0, ax_hr[0]) @ _normal(a1, ax_lr[0]))) < 0.99:
            raise ConfigError(
                "dsgan.slice: the HR and real LR scans are not sliced in the same orientation; "
                "learn per volume (no dsgan.slice) or reslice the LR scan"
            )
        centre = np.array([(s - 1) / 2 for s in hr_vols[0].shape] + [1.0])
        centre[ax_hr[0]] = k
        world = a0 @ centre
        idx = np.linalg.inv(a1) @ world
        j = int(round(idx[ax_lr[0]]))
        m = self.lr_slices[0].shape[0]
        if not 0 <= j < m:
            raise ConfigError(
                f"dsgan.slice: HR slice {k} lies outside the real LR scan (its slice {j} of {m})"
            )
        self.picked = {"hr_slice": k, "lr_slice": j}
        for name, sl, crop in (("HR", self.hr_slices[0][k], self.hr_crop),
                               ("LR", self.lr_slices[0][j], self.lr_crop)):  # fmt: skip
            if min(sl.shape) < crop:
                raise ConfigError(f"dsgan.slice: the {name} slice is smaller than its crop {crop}")
        return [(0, k)], [(0, j)]

    @staticmethod
    def _maps(slices, keep, crop, step):
        maps = [gradient_probability(slices[v][k], crop, step).ravel() for v, k in keep]
        weights = np.array(
            [float(np.abs(np.gradient(slices[v][k].astype(np.float64))).sum()) for v, k in keep]
        )
        if not weights.sum() > 0:
            weights = np.ones(len(keep))
        weights = weights / weights.sum()
        return keep, [np.cumsum(m) for m in maps], np.cumsum(weights)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _draw(self, rng: np.random.Generator, index, maps, weights, slices, crop):
        i = min(int(np.searchsorted(weights, rng.random() * weights[-1])), len(index) - 1)
        v, k = index[i]
        cdf = maps[i]
        flat = min(int(np.searchsorted(cdf, rng.random() * cdf[-1])), cdf.size - 1)
        img = slices[v][k]
        y, x = divmod(flat, img.shape[1])
        return torch.from_numpy(np.ascontiguousarray(img[y : y + crop, x : x + crop]))[None]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        seq = np.random.SeedSequence([self.seed, self.epoch, int(index)])
        r_hr, r_lr = (np.random.default_rng(s) for s in seq.spawn(2))
        hr = self._draw(r_hr, self.hr_index, self.hr_maps, self.hr_weights, self.hr_slices,
                        self.hr_crop)  # fmt: skip
        lr = self._draw(r_lr, self.lr_index, self.lr_maps, self.lr_weights, self.lr_slices,
                        self.lr_crop)  # fmt: skip
        return {"hr": hr.float(), "lr": lr.float()}

    def card(self) -> dict[str, Any]:
        return {
            "hr": [p.name for p in self.hr_paths],
            "lr_real": [p.name for p in self.lr_paths],
            "scale": self.scale,
            "hr_crop": self.hr_crop,
            "lr_crop": self.lr_crop,
            "mode": "per-slice" if self.slice_index is not None else "per-volume",
            **self.picked,
            "hr_slices_used": len(self.hr_index),
            "lr_slices_used": len(self.lr_index),
            "normalisation": asdict(self.normalisation),
            "denoise": {"nlm": self.denoise, "strength": self.denoise_strength},
            "crop_sampling": "∝ window-mean gradient magnitude; HR corners on the stride grid",
            "seed": self.seed,
        }

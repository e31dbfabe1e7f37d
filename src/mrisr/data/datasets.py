"""2-D SR training pairs from 3-D scans: slices, foreground patches, on-the-fly degradation.

Pairs are always made by degrading a WHOLE HR slice and cropping aligned patches afterwards: the
LR patch at (y, x) of size p/s matches the HR patch at (s·y, s·x) of size p. A fixed degradation
is applied once to the whole (cropped) volume and the LR volume cached as a memmap; a random one
(:class:`~mrisr.degrade.RandomPipeline` with ranges) is drawn per item and applied to the chosen
slice. Every random choice comes from ``SeedSequence([seed, epoch, index])``: no global RNG, so
DataLoader workers and DDP ranks are reproducible whatever process serves an index.

Augmentation (flips, 90° rotations) is exact only if the LR grid is symmetric: a flip maps an LR
grid with offset ``o`` (HR index of LR sample 0) to one with offset ``s − 1 − o``. Block-centred
grids (bicubic, Gaussian: ``o = (s − 1)/2``) are flipped after cropping; otherwise (k-space
truncation: ``o = 0``) the HR slice is transformed first and then degraded, so every pair keeps
the recorded :attr:`SRSliceDataset.lr_grid_offset`.

Degradations act on the scan's own intensities (as ``mrisr degrade`` does, so a noise ``sigma``
or an SNR means the same thing; magnitude k-space images are not shift-equivariant), and both
images are normalised afterwards with the HR volume's stats: ``lr = norm(D(raw))``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mrisr.data.degradations import as_pipeline, kspace_grid
from mrisr.data.protocols import subject_of
from mrisr.data.volumes import (
    FOREGROUND_RULE,
    IDENTITY_T,
    CachedVolume,
    LazyArray,
    VolumeCache,
    VolumeEntry,
    apply_transform,
    crop_box,
    digest,
    foreground_threshold,
    map_point,
)
from mrisr.degrade import Pipeline, RandomPipeline
from mrisr.errors import ConfigError
from mrisr.io.geometry import resolve_axis
from mrisr.normalisation import Normalisation


class SRSliceDataset(Dataset):
    """LR/HR slice (or patch) pairs for 2-D super-resolution by ``scale``.

    Items: ``{"lr": [1, h, w], "hr": [1, s·h, s·w], "index", "subject", "slice", "volume"}``,
    float32, both normalised with the stats fitted on the (cropped) HR volume; ``slice`` is the
    index along the slice axis of the original volume. Whole slices (``patch_size=None``) are
    enumerated in order; patches come from a slice drawn uniformly over all non-empty slices
    (those with foreground, foreground = ``FOREGROUND_RULE``) and are centred on a random
    foreground pixel with probability ``foreground_fraction``, else placed uniformly.
    Slices without foreground are left out in both modes. ``crop = (H, W, slices)`` crops every
    volume centrally first (an error for smaller volumes); H and W are then cropped centrally to
    the largest multiple of ``scale`` (never padded).

    A fixed degradation is applied to each whole volume once (noise seeded per scan, so the
    same noise every epoch) and cached; with ``fixed_degradation=False`` it is applied per item
    to the chosen slice (fresh noise per item). ``cache_dir=None`` uses
    :func:`~mrisr.data.volumes.default_cache_dir`. Every scan is decoded, fitted and (fixed
    degradation) degraded in ``__init__``, in the main process, so workers only open memmaps.

    Attributes:
        volumes: per-volume :class:`VolumeEntry` (``.volume.path``, ``.shape``, ``.stats``, ...).
        slices: ``(volume, k)`` of every non-empty slice (k in the cropped volume); whole-slice
            item ``i`` is ``slices[i]``.
        lr_grid_offset: HR index of LR sample 0 on both in-plane axes (0.5 for bicubic ×2, 0.0
            for k-space truncation ×2 of even sizes), for the checkpoint's training card.
    """

    def __init__(
        self,
        scans: Sequence[str | Path],
        scale: int,
        degradation: Any,
        axis: int | None = None,
        patch_size: int | tuple[int, int] | None = None,
        normalisation: Normalisation = Normalisation("percentile"),
        foreground_fraction: float = 0.9,
        augment: bool = True,
        samples_per_epoch: int | None = None,
        seed: int = 0,
        cache_dir: str | Path | None = None,
        fixed_degradation: bool = True,
        crop: tuple[int, int, int] | None = None,
        subject_fn: Callable[[Path], str] | None = None,
        guides: Sequence[str | Path] | None = None,
        min_overlap: float = 0.9,
        stats_from: str = "hr",
        planes: str = "one",
        intensity: Any = None,
    ) -> None:
        if not scans:
            raise ConfigError("SRSliceDataset needs at least one scan")
        if guides is not None and len(guides) != len(scans):
            raise ConfigError(
                f"{len(guides)} guide scans for {len(scans)} target scans; give one guide "
                "(e.g. the T1) per target scan, in the same order"
            )
        self.guides = [Path(g) for g in guides] if guides is not None else None
        if stats_from not in ("hr", "lr"):
            raise ConfigError(f"stats_from must be 'hr' or 'lr', not {stats_from!r}")
        self.stats_from = stats_from
        if planes not in ("one", "all"):
            raise ConfigError(f"planes must be 'one' or 'all', not {planes!r}")
        self.planes = planes
        #: :class:`mrisr.data.intensity.IntensityAugment` (training only) or None
        self.intensity = intensity if intensity is not None and intensity.active else None
        self.min_overlap = float(min_overlap)
        if int(scale) < 1:
            raise ConfigError(f"scale must be a positive integer, got {scale}")
        self.scale = int(scale)
        self.pipeline = as_pipeline(degradation)
        self.random = isinstance(self.pipeline, RandomPipeline)
        # Centred-FFT grids put LR sample 0 at HR index N//2 − s·(M//2): an odd LR size M
        # shifts it (by 2 HR px at ×4). Cropping in-plane to a multiple of 2s keeps every
        # scan on the same grid (offset 0), so scans of any matrix can be mixed.
        self.multiple = 2 * self.scale if kspace_grid(self.pipeline) else self.scale
        self.fixed_degradation = bool(fixed_degradation) and not self.random
        ps = (patch_size, patch_size) if isinstance(patch_size, int) else patch_size
        if ps is not None and (min(ps) < self.scale or any(p % self.scale for p in ps)):
            raise ConfigError(f"patch_size {patch_size} must be a multiple of the scale {scale}")
        if samples_per_epoch is not None and ps is None:
            raise ConfigError("samples_per_epoch applies to patch sampling (set patch_size)")
        if not 0.0 <= foreground_fraction <= 1.0:
            raise ConfigError(f"foreground_fraction must be in [0, 1], got {foreground_fraction}")
        self.patch_size = None if ps is None else (int(ps[0]), int(ps[1]))
        self.axis, self.crop, self.seed, self.epoch = axis, crop, int(seed), 0
        self.normalisation, self.augment = normalisation, bool(augment)
        self.foreground_fraction = float(foreground_fraction)
        self.samples_per_epoch = samples_per_epoch
        self.cache = VolumeCache(cache_dir)
        subject_fn = subject_fn or subject_of
        self.volumes: list[VolumeEntry] = []
        offsets: list[float] = []
        for i, p in enumerate(scans):
            guide = self.guides[i] if self.guides is not None else None
            for ax in self._axes(Path(p)):
                entry, off = self._prepare(Path(p), subject_fn, guide, ax)
                self.volumes.append(entry)
                offsets.append(off)
                if abs(off - offsets[0]) > 1e-6:
                    raise ConfigError(
                        f"'{p}': LR grid offset {off} differs from {offsets[0]} of "
                        f"'{scans[0]}' (k-space grids depend on matrix parity); crop to a "
                        f"multiple of {2 * self.scale}"
                    )
        #: HR index of LR sample 0 (same on both in-plane axes), for the training card.
        self.lr_grid_offset = offsets[0]
        self._symmetric = abs(self.lr_grid_offset - (self.scale - 1) / 2) < 1e-6
        self.slices = [
            (v, int(k))
            for v, e in enumerate(self.volumes)
            for k in np.flatnonzero(np.diff(e.fg_start))
        ]
        if not self.slices:
            raise ConfigError("no slice of the given scans has foreground")

    def _axes(self, path: Path) -> list[int | None]:
        """The slice axes a scan is used along: the chosen one, or (``planes="all"``) every axis
        whose slices have square pixels (within 5 %) and room for a patch — three for an
        isotropic scan."""
        if self.planes == "one" or self.guides is not None:
            return [self.axis]
        vol = self.cache.get(path)
        z, sh = vol.zooms, vol.shape
        need = max(self.patch_size or (1, 1))
        axes = [a for a in range(3)
                if max(z[b] for b in range(3) if b != a) / min(z[b] for b in range(3) if b != a)
                <= 1.05 and min(sh[b] for b in range(3) if b != a) >= need]  # fmt: skip
        return axes or [self.axis]  # type: ignore[return-value]

    def _prepare(
        self,
        path: Path,
        subject_fn: Callable[[Path], str],
        guide_path: Path | None = None,
        axis: int | None = None,
    ) -> tuple[VolumeEntry, float]:
        vol = self.cache.get(path)
        k_axis = resolve_axis(self.axis if axis is None else axis, vol.zooms, vol.shape)
        order = (k_axis, *(a for a in range(3) if a != k_axis))
        shape = tuple(vol.shape[a] for a in order)
        box = crop_box(shape, self.crop, self.multiple, path)
        spacing = (float(vol.zooms[order[1]]), float(vol.zooms[order[2]]))
        (k0, k1), (h0, h1), (w0, w1) = box
        key = digest([vol.key, order, box, asdict(self.normalisation), FOREGROUND_RULE])

        def hr_volume() -> np.ndarray:
            return np.ascontiguousarray(np.transpose(vol.data, order)[k0:k1, h0:h1, w0:w1])

        def fg_flat(hr: np.ndarray, thr: float) -> np.ndarray:  # [n_fg] in-plane y·W + x
            mask = (hr > thr).reshape(hr.shape[0], -1)
            return (np.flatnonzero(mask) % mask.shape[1]).astype(np.int32)

        def fit() -> dict[str, Any]:
            hr = hr_volume()
            thr = foreground_threshold(hr)
            self.cache.array(f"{key}.fg.npy", lambda: fg_flat(hr, thr))
            start = np.concatenate([[0], np.cumsum((hr > thr).sum((1, 2)))])
            stats = self.normalisation.fit(hr)
            return {"stats": stats, "threshold": thr, "fg_start": start.tolist()}

        rec = self.cache.record(f"{key}.prep.json", fit)
        fg = self.cache.array(f"{key}.fg.npy", lambda: fg_flat(hr_volume(), rec["threshold"]))
        probe = self._pipeline(random.Random(self.seed))(torch.zeros(1, h1 - h0, w1 - w0), spacing)
        offset = self._check_grid(probe.axes, path)
        lr = None
        if self.fixed_degradation:
            noise_seed = int(vol.key[:8], 16) ^ self.seed
            lkey = digest([key, self.pipeline.params(), noise_seed])

            def degrade() -> np.ndarray:
                gen = torch.Generator().manual_seed(noise_seed)
                return self.pipeline(torch.from_numpy(hr_volume()), spacing, gen).image.numpy()

            lr = self.cache.array(f"{lkey}.lr.npy", degrade)
        stats = rec["stats"]
        if self.stats_from == "lr":  # what inference sees: the LR volume's statistics
            if lr is None:
                raise ConfigError(
                    "stats_from 'lr' needs a fixed degradation (the LR volume is cached once)"
                )
            lr_arr = lr
            stats = self.cache.record(
                f"{lkey}.lrstats.json",
                lambda: {"stats": self.normalisation.fit(np.asarray(lr_arr.array))},
            )["stats"]
        guide = guide_stats = report = None
        if guide_path is not None:
            guide, guide_stats, report = self._prepare_guide(vol, guide_path, order, box, key)
        entry = VolumeEntry(
            vol,
            subject_fn(path),
            order,
            box,
            spacing,
            stats,
            float(rec["threshold"]),
            fg,
            np.asarray(rec["fg_start"], dtype=np.int64),
            lr,
            guide,
            guide_stats,
            report,
        )
        if self.patch_size and max(self.patch_size) > min(entry.shape[1:]):
            raise ConfigError(
                f"patch {self.patch_size} is larger than a slice of '{path}' "
                f"({entry.shape[1]}×{entry.shape[2]} after cropping)"
            )
        return entry, offset

    def _prepare_guide(
        self, vol: CachedVolume, path: Path, order: tuple[int, ...], box: Any, key: str
    ) -> tuple[LazyArray, dict[str, float], dict[str, Any]]:
        """The guide resampled onto ``vol``'s grid (:func:`mrisr.data.pairs.pair_guide`),
        cropped like the target, cached; its normalisation stats, fitted on the whole guide
        on its own grid (what ``upscale --guide`` fits too, whatever region the target
        covers); the alignment report."""
        from mrisr.data.pairs import pair_guide
        from mrisr.io.volume import Volume

        gvol = self.cache.get(path)
        gkey = digest([key, gvol.key, self.min_overlap, "guide-trilinear", "stats-native"])
        (k0, k1), (h0, h1), (w0, w1) = box
        box_of = (slice(k0, k1), slice(h0, h1), slice(w0, w1))

        def paired() -> tuple[np.ndarray, dict[str, Any]]:
            on, rep = pair_guide(
                Volume(np.asarray(vol.data), vol.affine),
                Volume(np.asarray(gvol.data), gvol.affine),
                self.min_overlap,
            )
            return np.ascontiguousarray(np.transpose(on.data, order)[box_of]), rep

        held: dict[str, Any] = {}

        def compute_array() -> np.ndarray:
            held["arr"], held["rep"] = paired()
            return held["arr"]

        arr = self.cache.array(f"{gkey}.guide.npy", compute_array)

        def fit() -> dict[str, Any]:
            rep = held.get("rep") or paired()[1]
            return {"stats": self.normalisation.fit(np.asarray(gvol.data)), "alignment": rep}

        rec = self.cache.record(f"{gkey}.guide.json", fit)
        return arr, rec["stats"], rec["alignment"]

    def _pipeline(self, rng: random.Random) -> Pipeline:
        return self.pipeline.sample(rng) if self.random else self.pipeline  # type: ignore[return-value]

    def _check_grid(self, axes: Sequence[Any], where: Any) -> float:
        if any(abs(m.factor - self.scale) > 1e-9 for m in axes):
            raise ConfigError(
                f"the degradation scales by {[m.factor for m in axes]} on '{where}',"
                f" not by the dataset's scale {self.scale}"
            )
        if abs(axes[0].offset - axes[1].offset) > 1e-9:
            raise ConfigError(
                f"LR grid offsets differ between the in-plane axes of '{where}' "
                f"({axes[0].offset}, {axes[1].offset}); crop to a multiple of "
                f"{2 * self.scale}"
            )
        return float(axes[0].offset)

    def __len__(self) -> int:
        if self.patch_size is None:
            return len(self.slices)
        return int(self.samples_per_epoch or len(self.slices))

    def set_epoch(self, epoch: int) -> None:
        """Change every random draw (patch position, augmentation, random degradation)."""
        self.epoch = int(epoch)

    def stats(self, volume_idx: int) -> dict[str, float]:
        """Normalisation stats of volume ``volume_idx`` (fitted once on its cropped HR data)."""
        return dict(self.volumes[volume_idx].stats)

    def _seeds(self, index: int) -> list[np.random.SeedSequence]:
        return np.random.SeedSequence([self.seed, self.epoch, int(index)]).spawn(3)

    def degradation_for(self, index: int) -> Pipeline:
        """The concrete pipeline item ``index`` uses at the current epoch (its random draw)."""
        seq = self._seeds(index)[1]
        return self._pipeline(random.Random(int(seq.generate_state(1, np.uint64)[0])))

    def card(self) -> dict[str, Any]:
        """What a checkpoint's training card should record about the pairs."""
        deg = self.pipeline.params() if not self.random else {"steps": self.pipeline.steps}
        return {
            "scale": self.scale,
            "axis": self.axis,
            "crop": self.crop,
            "patch_size": self.patch_size,
            "normalisation": asdict(self.normalisation),
            "degradation": deg,
            "random_degradation": self.random,
            "fixed_degradation": self.fixed_degradation,
            "lr_grid_offset": self.lr_grid_offset,
            "foreground": FOREGROUND_RULE,
            "foreground_fraction": self.foreground_fraction,
            "augment": self.augment,
            "seed": self.seed,
            "stats_from": self.stats_from,
            "planes": self.planes,
            "stacks": len(self.volumes),
            "intensity": None if self.intensity is None else self.intensity.card(),
            "guides": None if self.guides is None else [p.name for p in self.guides],
            "alignment": None if self.guides is None else [e.alignment for e in self.volumes],
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        s = self.scale
        seq_np, _, seq_noise = self._seeds(index)
        aug = self.intensity
        rng = np.random.default_rng(seq_np)
        g = int(rng.integers(len(self.slices))) if self.patch_size else index
        v, k = self.slices[g]
        e = self.volumes[v]
        _, hh, ww = e.shape
        out_shape = self.patch_size or (hh, ww)
        t = IDENTITY_T
        if self.augment:
            turns = int(rng.integers(4)) if out_shape[0] == out_shape[1] else 0
            t = (bool(rng.integers(2)), bool(rng.integers(2)), turns)
        hr = torch.from_numpy(e.hr_slice(k))
        guide = None if e.guide is None else torch.from_numpy(np.array(e.guide.array[k]))
        post = t
        if aug is not None:  # its own stream: the other draws stay what they were without it
            arng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index, 7]))
            hr = aug.before(hr, e.stats, arng)
        if e.lr is not None and aug is None and (t == IDENTITY_T or self._symmetric):
            lr = torch.from_numpy(np.array(e.lr.array[k], dtype=np.float32))
        else:  # transform the whole HR slice, then degrade it (keeps the grid offset)
            hr, post = apply_transform(hr, t), IDENTITY_T
            if guide is not None:
                guide = apply_transform(guide, t)
            sp = e.spacing[::-1] if t[2] % 2 else e.spacing
            if self.random:
                out = self.degradation_for(index)(hr[None], sp)
            else:
                gen = torch.Generator().manual_seed(int(seq_noise.generate_state(1)[0]))
                out = self.pipeline(hr[None], sp, gen)
            if abs(self._check_grid(out.axes, e.volume.path) - self.lr_grid_offset) > 1e-6:
                raise ConfigError(f"LR grid offset changed on '{e.volume.path}'")
            lr = out.image[0]
        if aug is not None:
            lr = aug.after(lr, e.stats, arng)
        if self.patch_size:
            ph, pw = self.patch_size
            n_fg = int(e.fg_start[k + 1] - e.fg_start[k])
            cur_h, cur_w = hr.shape
            if n_fg and rng.random() < self.foreground_fraction:
                flat = int(e.fg.array[e.fg_start[k] + rng.integers(n_fg)])
                cy, cx = divmod(flat, ww)
                if post == IDENTITY_T:
                    cy, cx = map_point(cy, cx, (hh, ww), t)
            else:
                cy, cx = int(rng.integers(cur_h)), int(rng.integers(cur_w))
            y = min(max(cy // s - ph // s // 2, 0), (cur_h - ph) // s)
            x = min(max(cx // s - pw // s // 2, 0), (cur_w - pw) // s)
            hr = hr[s * y : s * y + ph, s * x : s * x + pw]
            lr = lr[y : y + ph // s, x : x + pw // s]
            if guide is not None:
                guide = guide[s * y : s * y + ph, s * x : s * x + pw]
        hr, lr = apply_transform(hr, post), apply_transform(lr, post)
        norm = self.normalisation
        extra = {}
        if guide is not None:
            g = norm.apply(apply_transform(guide, post), e.guide_stats)
            extra["guide"] = g[None].contiguous().float()
        return {
            **extra,
            "lr": norm.apply(lr, e.stats)[None].contiguous().float(),
            "hr": norm.apply(hr, e.stats)[None].contiguous().float(),
            "index": int(index),
            "subject": e.subject,
            "slice": int(e.box[0][0] + k),
            "volume": int(v),
        }


def worker_init_fn(worker_id: int) -> None:
    """Seed the global ``random``/NumPy RNGs of a DataLoader worker from its torch seed.

    :class:`SRSliceDataset` uses no global RNG (its draws come from (seed, epoch, index)); this
    only keeps any other code in the worker from repeating the parent's global random state.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002

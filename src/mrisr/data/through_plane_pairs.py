"""Training pairs for through-plane SR, made from a scan's own in-plane detail (SMORE's idea).

An in-plane slice of a thick-slice scan is sharp along both of its axes. Blurring it along one
axis with the slice profile and sampling every ``k`` output voxels gives exactly what the slice
direction looks like; the B-spline interpolation of those samples back onto the fine grid is the
network's input and the slice itself its target (:mod:`mrisr.degrade.through_plane` holds the
operator and the interpolation, so training and inference degrade alike). Both in-plane axes
are used, with flips, and patches are drawn where the image has structure (the best of a few
random windows by gradient energy). Every draw comes from ``SeedSequence([seed, index])``.

:class:`ThroughPlanePairs` is the same stream as a dataset for the training engine
(``task: throughplane``); :func:`slice_model_for` reads the acquisition (slice axis, ``k``,
profile) from a scan's header and the user's choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mrisr.degrade.through_plane import apply_along, operator, output_grid, spline_to_grid
from mrisr.errors import ConfigError

if TYPE_CHECKING:
    from mrisr.io.volume import Volume

MIN_K, MAX_K = 1.2, 8.0


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
    gamma: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One ``(input, target)`` patch pair, ``patch × patch`` (smaller if the slice is): a slice
    (among ``keep``), an in-plane axis, flips, then the window with the most gradient energy of
    ``tries`` random ones. ``gamma > 0`` raises the slice to a random power, log-uniform in
    ``[1/(1+gamma), 1+gamma]``, before it is degraded (contrast shifts, for a prior)."""
    idx = rng.choice(keep) if keep is not None and len(keep) else rng.integers(slices.shape[0])
    img = np.asarray(slices[idx], dtype=np.float32)
    if gamma > 0:
        img = np.clip(img, 0, None) ** np.float32(np.exp(rng.uniform(-1, 1) * np.log1p(gamma)))
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
    gamma: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Batch ``step`` of the pair stream: ``[size, 1, p, p]`` inputs and targets, reproducible
    from ``(seed, step)`` (a resumed run draws the same batches)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, step]))
    pairs = [draw_pair(slices, model, patch, rng, keep, gamma=gamma) for _ in range(size)]
    h = min(p[0].shape[0] for p in pairs)
    w = min(p[0].shape[1] for p in pairs)
    x = np.stack([p[0][:h, :w] for p in pairs])[:, None]
    y = np.stack([p[1][:h, :w] for p in pairs])[:, None]
    return x, y


def slice_model_for(
    volume: Volume,
    thickness_mm: float | None = None,
    profile: str | np.ndarray = "rect",
    axis: int | None = None,
    force: bool = False,
) -> tuple[int, SliceModel, dict[str, Any]]:
    """(slice axis, the acquisition in in-plane voxels, the facts recorded). The thickness is
    ``thickness_mm``, else the header's SliceThickness, else the spacing; ``k`` below
    ``MIN_K`` is refused unless ``force``, above ``MAX_K`` always."""
    from mrisr.io.geometry import choose_plane

    if volume.data.ndim != 3 or min(volume.shape) < 2:
        raise ConfigError(f"through-plane SR needs a 3-D scan; got shape {volume.shape}")
    plane = choose_plane(volume.zooms, volume.shape, axis)
    z = plane.slice_axis
    d = float(np.mean([volume.zooms[a] for a in plane.in_plane]))
    spacing = float(volume.zooms[z])
    k = spacing / d
    if k > MAX_K:
        raise ConfigError(
            f"slice spacing {spacing:.3g} mm is {k:.2f}x the in-plane {d:.3g} mm; through-plane "
            f"SR goes up to k = {MAX_K:g}"
        )
    if k < MIN_K and not force:
        raise ConfigError(
            f"the scan is nearly isotropic (k = {k:.2f} < {MIN_K}: {spacing:.3g} mm slices on a "
            f"{d:.3g} mm plane); nothing to restore through-plane (--force to run anyway)"
        )
    thickness, source = thickness_mm, "--thickness"
    if thickness is None:
        thickness, source = volume.meta.get("slice_thickness"), "header SliceThickness"
    if thickness is None:
        thickness, source = spacing, "assumed = spacing"
    if not (math.isfinite(float(thickness)) and thickness > 0):
        raise ConfigError(f"--thickness must be a positive number of mm, got {thickness}")
    if isinstance(profile, np.ndarray):
        model, kind = SliceModel(k, profile), "sampled"
    else:
        model, kind = SliceModel(k, profile, float(thickness) / d), profile
    facts = {
        "slice_axis": z,
        "in_plane_mm": round(d, 6),
        "slice_spacing_mm": round(spacing, 6),
        "slice_thickness_mm": round(float(thickness), 6),
        "thickness_source": source,
        "k": round(k, 6),
        "profile": kind,
    }
    return z, model, facts


def usable_patch(shape: tuple[int, int], k: float, patch: int) -> int:
    """The largest square patch (≤ ``patch``) that every orientation of a ``shape`` slice
    yields after :func:`degrade_rows` (it keeps only the rows its grid covers)."""
    rows = [min(output_grid(int(np.floor(n / k + 1e-9)), k)[0], n) for n in shape]
    return int(min(patch, *rows, *shape))


class ThroughPlanePairs:
    """The pair stream as a map-style dataset for the training engine: item ``i`` of epoch
    ``e`` is ``{"lr": [1, p, p], "hr": [1, p, p]}`` (float32 tensors) drawn from
    ``SeedSequence([seed, e, i])``; ``slices`` are the scan's in-plane slices, already scaled
    (the engine's normalisation is not applied: :func:`from_scan` divides by the 99.5th
    percentile, as inference does)."""

    def __init__(
        self,
        slices: np.ndarray,
        model: SliceModel,
        patch: int = 48,
        samples_per_epoch: int = 4096,
        seed: int = 0,
        facts: dict[str, Any] | None = None,
        name: str = "scan",
    ) -> None:
        if min(slices.shape[1:]) < 2 * model.k + 2:
            raise ConfigError(
                f"'{name}': in-plane slices {slices.shape[1:]} are too small for k = "
                f"{model.k:.2f}; through-plane training needs at least {2 * model.k + 2:.0f} "
                "voxels per side"
            )
        self.slices, self.model = np.ascontiguousarray(slices, np.float32), model
        self.patch = usable_patch(self.slices.shape[1:], model.k, patch)
        self.keep = signal_slices(self.slices)
        self.samples_per_epoch, self.seed, self.epoch = int(samples_per_epoch), int(seed), 0
        self.facts, self.name = dict(facts or {}), name
        self.lr_grid_offset = 0.0

    @classmethod
    def from_scan(
        cls,
        path: str | Path,
        profile: str = "rect",
        thickness_mm: float | None = None,
        axis: int | None = None,
        **kw: Any,
    ) -> ThroughPlanePairs:
        """Pairs of one thick-slice scan file (``profile``: rect, gaussian or a .npy)."""
        from mrisr.io import load_volume

        prof: str | np.ndarray = profile
        if profile not in ("rect", "gaussian"):
            from mrisr.degrade.profile import read_profile

            prof = np.asarray(read_profile(profile)[0], dtype=np.float64)
        vol = load_volume(path)
        z, model, facts = slice_model_for(vol, thickness_mm, prof, axis)
        data = np.moveaxis(vol.data, z, 0).astype(np.float32)
        x = data / (float(np.percentile(data, 99.5)) or 1.0)
        return cls(x, model, facts=facts, name=Path(path).name, **kw)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, int(index)]))
        x, y = draw_pair(self.slices, self.model, self.patch, rng, self.keep)
        p = self.patch
        return {
            "lr": torch.from_numpy(np.ascontiguousarray(x[:p, :p])[None]),
            "hr": torch.from_numpy(np.ascontiguousarray(y[:p, :p])[None]),
        }

    def card(self) -> dict[str, Any]:
        return {
            "scan": self.name,
            **self.facts,
            "slice_model": self.model.describe(),
            "patch": self.patch,
            "slices_with_signal": int(len(self.keep)),
            "pairs": "in-plane slices, both axes, flips, best of 4 windows by gradient energy",
            "seed": self.seed,
        }

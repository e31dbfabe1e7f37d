"""Training pairs made from one low-resolution scan alone, for per-scan adaptation
(``mrisr upscale --adapt``; zero-shot SR's idea, Shocher et al. 2018).

The user's LR scan is degraded once more with the model's own acquisition model (its training
card's ``degradation``: k-space truncation by ``s``, bicubic, a learned kernel ...). That gives
pairs (LLR → LR) at the same scale as (LR → HR), from the scan itself. The in-plane matrix is
first cropped centrally to a multiple of ``2·s`` so that the degradation needs no crop of its
own and LLR pixel ``i`` sits where training put it (whole-slice degradation, aligned crops, as
:class:`mrisr.data.datasets.SRSliceDataset`). Both volumes are normalised with the statistics
of the whole LR volume — what inference does — so the adapted network sees what it will see.

:class:`SelfPairs` is a map-style dataset for the training engine: item ``i`` of epoch ``e``
is drawn from ``SeedSequence([seed, e, i])``: a slice with signal, a window of ``lr_patch``
LLR pixels (the best of 4 random ones by gradient energy of the LR patch), transposed or not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mrisr.data.through_plane_pairs import signal_slices
from mrisr.errors import ConfigError

if TYPE_CHECKING:
    from mrisr.io.volume import Volume
    from mrisr.normalisation import Normalisation


def self_pair_slices(
    lr: Volume,
    degradation: list[dict[str, Any]],
    scale: int,
    slice_axis: int,
    normalisation: Normalisation | None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(target [K, H, W], source [K, H/s, W/s], record)``: the LR slices (cropped to a
    multiple of 2·s in-plane) and their re-degraded twins, both normalised as inference
    normalises ``lr``."""
    from mrisr.degrade import degrade_volume
    from mrisr.degrade.pipeline import from_config

    in_plane = [a for a in range(3) if a != slice_axis]
    sl: list[slice] = [slice(None)] * 3
    for a in in_plane:
        n = lr.shape[a]
        keep = n - n % (2 * scale)
        if keep < 8 * scale:
            raise ConfigError(
                f"the scan is {lr.shape[in_plane[0]]}x{lr.shape[in_plane[1]]} in-plane: too "
                f"small to adapt a x{scale} model to it (needs {8 * scale} pixels a side)"
            )
        sl[a] = slice((n - keep) // 2, (n - keep) // 2 + keep)
    data = np.ascontiguousarray(lr.data[tuple(sl)], dtype=np.float32)
    cropped = lr.replace(data)
    steps = from_config(degradation).sample().steps
    llr, side = degrade_volume(cropped, steps, axis=slice_axis, seed=0)
    stats = normalisation.fit(lr.data) if normalisation is not None else None
    t, s = data, llr.data.astype(np.float32)
    if normalisation is not None and stats is not None:
        t = normalisation.apply(t, stats).astype(np.float32)
        s = normalisation.apply(s, stats).astype(np.float32)
    order = (slice_axis, *in_plane)
    target = np.ascontiguousarray(np.transpose(t, order))
    source = np.ascontiguousarray(np.transpose(s, order))
    if target.shape[1:] != tuple(scale * n for n in source.shape[1:]):
        raise ConfigError(
            f"re-degrading the scan gave {source.shape[1:]} for {target.shape[1:]}: the "
            f"model's degradation is not a x{scale} in-plane one"
        )
    record = {"crop": [[x.start, x.stop] for x in sl], "degradation": side.get("degradation")}
    return target, source, record


class SelfPairs:
    """(LLR → LR) patch pairs of one scan (see the module doc)."""

    def __init__(
        self,
        target: np.ndarray,
        source: np.ndarray,
        scale: int,
        lr_patch: int = 24,
        samples_per_epoch: int = 2048,
        seed: int = 0,
        name: str = "scan",
        record: dict[str, Any] | None = None,
        lr_grid_offset: float | None = None,
    ) -> None:
        self.target, self.source, self.scale = target, source, int(scale)
        self.lr_patch = int(min(lr_patch, *source.shape[1:]))
        self.keep = signal_slices(target)
        self.samples_per_epoch, self.seed, self.epoch = int(samples_per_epoch), int(seed), 0
        self.name, self.record = name, dict(record or {})
        # the model's own grid convention (its degradation made these pairs): kept in the card
        self.lr_grid_offset = lr_grid_offset

    def __len__(self) -> int:
        return self.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, int(index)]))
        i = int(rng.choice(self.keep))
        p, s = self.lr_patch, self.scale
        h, w = self.source.shape[1:]
        best, score = (0, 0), -1.0
        for _ in range(4):
            r, c = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
            win = self.target[i, s * r : s * (r + p), s * c : s * (c + p)]
            g = float(np.abs(np.diff(win, axis=0)).sum() + np.abs(np.diff(win, axis=1)).sum())
            if g > score:
                best, score = (r, c), g
        r, c = best
        x = self.source[i, r : r + p, c : c + p]
        y = self.target[i, s * r : s * (r + p), s * c : s * (c + p)]
        if rng.random() < 0.5:  # a transpose keeps every pixel's grid position
            x, y = x.T, y.T
        return {
            "lr": torch.from_numpy(np.ascontiguousarray(x)[None]),
            "hr": torch.from_numpy(np.ascontiguousarray(y)[None]),
        }

    def card(self) -> dict[str, Any]:
        return {
            "scan": self.name,
            "pairs": "the scan re-degraded by the model's own degradation (LLR -> LR)",
            "slices": int(len(self.target)),
            "slices_with_signal": int(len(self.keep)),
            "lr_patch": self.lr_patch,
            "seed": self.seed,
            **self.record,
        }

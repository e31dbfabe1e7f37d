"""Validation per volume: whole-slice predictions stitched into volumes and scored like ``eval``.

Each validation volume (its non-empty slices, in order) is predicted slice by slice, the slices
are stacked into a volume ``[K, H, W]``, mapped back to the scan's intensities with the
dataset's normalisation stats, and scored with :func:`mrisr.metrics.evaluate_volume` (volume
PSNR from the MSE over all voxels, SSIM as the mean of slice SSIMs, data range = the reference
volume's maximum). The same slices are scored for the interpolation baselines, computed once:
bicubic from the LR samples' true positions (``bicubic_to_grid`` with the dataset's
``lr_grid_offset``) and, for k-space degradations, zero-filled (sinc) interpolation
(``zerofill_upsample`` with the same offsets).

Under DDP rank ``r`` scores volumes ``r, r + W, ...`` and the per-volume results are gathered,
so every rank returns the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mrisr.train.state import gather_objects

Predict = Callable[[dict[str, Any]], torch.Tensor]


def is_kspace(degradation: list[dict[str, Any]]) -> bool:
    """Whether any degradation step works in k-space (then the sinc baseline applies)."""
    return any(str(s.get("method", "")).startswith("kspace") for s in degradation)


class Validator:
    """Scores a task on a whole-slice :class:`~mrisr.data.SRSliceDataset` (``patch_size=None``).

    Args:
        dataset: the validation dataset (items carry ``"volume"``; ``dataset.slices[i]`` is
            ``(volume, slice)`` of item ``i``).
        kspace: add the zero-filled (sinc) baseline.
        shave: border pixels cut from every slice before scoring.
        batch_size: slices per forward pass.
        device: where the model runs.
        rank / world_size: this process's share of the volumes.
    """

    def __init__(
        self,
        dataset: Any,
        kspace: bool,
        shave: int = 0,
        batch_size: int = 8,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.ds, self.kspace, self.shave, self.batch_size = dataset, kspace, shave, batch_size
        self.device, self.rank, self.world = torch.device(device), rank, world_size
        self.scale = int(dataset.scale)
        self.offset = float(dataset.lr_grid_offset)
        self.items: dict[int, list[int]] = {}
        for i, (v, _) in enumerate(dataset.slices):
            self.items.setdefault(int(v), []).append(i)
        self.names = {v: dataset.volumes[v].volume.path.name for v in self.items}
        self._baselines: dict[str, Any] | None = None

    def _mine(self) -> list[int]:
        return [v for v in sorted(self.items) if v % self.world == self.rank]

    def _volume(self, v: int, predict: Predict | None) -> dict[str, torch.Tensor]:
        """HR, LR and (with ``predict``) SR of volume ``v``, in the scan's intensities."""
        from torch.utils.data import default_collate

        hr, lr, sr = [], [], []
        idx = self.items[v]
        for a in range(0, len(idx), self.batch_size):
            batch = default_collate([self.ds[i] for i in idx[a : a + self.batch_size]])
            hr.append(batch["hr"][:, 0])
            lr.append(batch["lr"][:, 0])
            if predict is not None:  # scored on the model's device (fast SSIM on a GPU)
                keys = ("lr", "hr", "guide") if "guide" in batch else ("lr", "hr")
                dev = {k: batch[k].to(self.device) for k in keys}
                sr.append(predict(dev)[:, 0].float())
        stats, norm = self.ds.stats(v), self.ds.normalisation
        hr_vol = torch.cat(hr).to(self.device) if predict is not None else torch.cat(hr)
        out = {"hr": norm.invert(hr_vol, stats), "lr": torch.cat(lr)}
        if predict is not None:
            out["sr"] = norm.invert(torch.cat(sr), stats)
        out["stats"] = stats  # type: ignore[assignment]
        return out

    def _score(self, pred: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
        from mrisr.metrics.scores import evaluate_volume

        vol = evaluate_volume(pred, ref, shave=self.shave, slice_axis=0)["volume"]
        return {"psnr": vol["psnr"], "ssim": vol["ssim"], "nmse": vol["nmse"]}

    def baselines(self) -> dict[str, Any]:
        """Per-volume and mean scores of the interpolation baselines (computed once)."""
        if self._baselines is None:
            from mrisr.degrade.kspace import zerofill_upsample
            from mrisr.degrade.resample import bicubic_to_grid

            off, s = (self.offset, self.offset), self.scale
            mine = {}
            for v in self._mine():
                d = self._volume(v, None)
                stats, norm = d["stats"], self.ds.normalisation
                # Interpolate the LR in the scan's intensities: zero-fill returns a magnitude,
                # which a z-scored image (negative background) would not survive.
                lr = norm.invert(d["lr"].double(), stats)
                res = {"bicubic": self._score(bicubic_to_grid(lr, s, off), d["hr"])}
                if self.kspace:
                    zf = zerofill_upsample(lr, s, offsets=off)
                    res["zerofill"] = self._score(zf, d["hr"])
                mine[v] = res
            self._baselines = _summarise(_merge(gather_objects(mine, self.world)), self.names)
        return self._baselines

    @torch.no_grad()
    def run(self, predict: Predict) -> dict[str, Any]:
        """Scores of ``predict`` per volume and their means (``psnr``, ``ssim``, ``nmse``)."""
        mine = {}
        for v in self._mine():
            d = self._volume(v, predict)
            mine[v] = {"model": self._score(d["sr"], d["hr"])}
        return _summarise(_merge(gather_objects(mine, self.world)), self.names)


def _merge(parts: list[dict[int, Any]]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for p in parts:
        out.update(p)
    return out


def _summarise(per_volume: dict[int, dict[str, dict[str, float]]], names: dict[int, str]) -> dict:
    """``{"mean": {method: {metric: x}}, "volumes": [{"volume", "name", method: {...}}]}``."""
    methods = sorted({m for r in per_volume.values() for m in r})
    keys = ("psnr", "ssim", "nmse")
    rows = list(per_volume.values())
    mean = {m: {k: float(np.mean([r[m][k] for r in rows])) for k in keys} for m in methods}
    vols = [{"volume": v, "name": names[v], **per_volume[v]} for v in sorted(per_volume)]
    return {"mean": mean, "volumes": vols}

"""What a recipe builds before the loop starts: the Fabric object and the datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mrisr.errors import ConfigError
from mrisr.train.config import RunConfig


def make_fabric(cfg: RunConfig) -> Any:
    """``Fabric(accelerator, devices, num_nodes, strategy, precision)``; errors → ConfigError."""
    from lightning.fabric import Fabric

    t = cfg.trainer
    precision = "32-true" if t.precision == "32" else t.precision
    try:
        return Fabric(
            accelerator=t.accelerator,
            devices=t.devices,
            num_nodes=t.num_nodes,
            strategy=t.strategy,
            precision=precision,  # type: ignore[arg-type]
        )
    except Exception as e:  # Lightning raises ValueError / MisconfigurationException / ...
        raise ConfigError(f"trainer: {' '.join(str(e).split())}") from None


def build_datasets(cfg: RunConfig) -> tuple[Any, Any | None, dict[str, list[str]]]:
    """(training patches, validation whole slices or None, scan names per split)."""
    from mrisr.data import SRSliceDataset, ixi_csn, split_by_subject
    from mrisr.data.intensity import from_config as intensity_from
    from mrisr.normalisation import Normalisation

    d = cfg.data
    if cfg.task == "dsgan":
        return _unpaired(cfg)
    if cfg.task == "profile":
        return _through_plane(cfg)
    if cfg.task == "throughplane":
        return _through_plane_pairs(cfg)
    crop = tuple(d.crop) if d.crop else None
    cache = d.cache_dir
    if d.protocol == "ixi-csn":
        split = ixi_csn(d.train, cache_dir=cache, seed=d.split.seed)
        train, val, test, crop, cache = (
            split.train,
            split.val,
            split.test,
            split.crop,
            split.cache_dir,
        )
    elif d.val:
        train, val, test = [Path(p) for p in d.train], [Path(p) for p in d.val], []
    elif d.guide and (d.split.val or d.split.test):
        raise ConfigError(
            "data.val: with guide scans give the validation pairs explicitly (data.val and "
            "data.val_guide), or set data.split.val=0"
        )
    elif d.split.val or d.split.test:
        s = d.split
        try:
            train, val, test = split_by_subject(d.train, val=s.val, test=s.test, seed=s.seed)
        except ConfigError as e:
            raise ConfigError(
                f"data.split: {e}; give data.val, or set data.split.val=0 to train without "
                "validation"
            ) from None
    else:
        train, val, test = [Path(p) for p in d.train], [], []
    common: dict[str, Any] = {
        "axis": d.axis,
        "normalisation": Normalisation(**d.normalisation.model_dump()),
        "seed": cfg.train.seed,
        "cache_dir": cache,
        "fixed_degradation": d.fixed_degradation,
        "crop": crop,
        "stats_from": d.stats_from,
    }
    train_ds = SRSliceDataset(
        train,
        d.scale,
        d.degradation,
        patch_size=d.lr_patch * d.scale,
        foreground_fraction=d.foreground_fraction,
        augment=d.augment,
        samples_per_epoch=d.samples_per_epoch,
        guides=d.guide or None,
        min_overlap=d.min_overlap,
        planes=d.planes,
        intensity=intensity_from(d.intensity.model_dump() if d.intensity else None),
        **common,
    )
    val_ds = None
    if val:
        val_ds = SRSliceDataset(
            val,
            d.scale,
            d.degradation,
            augment=False,
            guides=d.val_guide or None,
            min_overlap=d.min_overlap,
            **common,
        )
    splits = {"train": train, "val": val, "test": test}
    names = {k: [Path(p).name for p in v] for k, v in splits.items()}
    if d.guide:
        names["guide"] = [Path(p).name for p in d.guide]
        names["val_guide"] = [Path(p).name for p in d.val_guide]
    return train_ds, val_ds, names


def _unpaired(cfg: RunConfig) -> tuple[Any, None, dict[str, list[str]]]:
    """task: dsgan: unpaired HR / real-LR crops, no validation set."""
    from mrisr.data.unpaired import UnpairedCrops
    from mrisr.models.dsgan import kernel_size_of
    from mrisr.normalisation import Normalisation

    d, c = cfg.data, cfg.dsgan
    assert c is not None
    ds = UnpairedCrops(
        [Path(p) for p in d.train],
        [Path(p) for p in d.lr_real],
        d.scale,
        hr_crop=c.hr_crop,
        kernel_size=kernel_size_of(c.structure),
        normalisation=Normalisation(**d.normalisation.model_dump()),
        denoise=c.denoise,
        denoise_strength=c.denoise_strength,
        slice_index=c.slice,
        axis=d.axis,
        samples_per_epoch=d.samples_per_epoch or 3000,
        seed=cfg.train.seed,
    )
    names = {"train": [Path(p).name for p in d.train], "lr_real": [Path(p).name for p in d.lr_real]}
    return ds, None, names


def _through_plane(cfg: RunConfig) -> tuple[Any, None, dict[str, list[str]]]:
    """task: profile: through-plane and in-plane line segments of one thick-slice scan."""
    from mrisr.data.through_plane_lines import ThroughPlaneLines
    from mrisr.normalisation import Normalisation

    d, c = cfg.data, cfg.profile
    assert c is not None
    if len(d.train) != 1:
        raise ConfigError(
            f"data.train: task: profile learns from one thick-slice scan, got {len(d.train)}"
        )
    ds = ThroughPlaneLines(
        Path(d.train[0]),
        length=c.length,
        line_crop=c.line_crop,
        normalisation=Normalisation(**d.normalisation.model_dump()),
        axis=d.axis,
        samples_per_epoch=d.samples_per_epoch or 3000,
        seed=cfg.train.seed,
    )
    return ds, None, {"train": [Path(d.train[0]).name]}


def _through_plane_pairs(cfg: RunConfig) -> tuple[Any, None, dict[str, list[str]]]:
    """task: throughplane: training pairs from the in-plane slices of one thick-slice scan."""
    from mrisr.data.through_plane_pairs import ThroughPlanePairs

    d, c = cfg.data, cfg.through_plane
    assert c is not None
    if len(d.train) != 1:
        raise ConfigError(
            f"data.train: task: throughplane learns from one thick-slice scan, got {len(d.train)}"
        )
    ds = ThroughPlanePairs.from_scan(
        d.train[0],
        profile=c.profile,
        thickness_mm=c.thickness_mm,
        axis=d.axis,
        patch=c.patch,
        samples_per_epoch=d.samples_per_epoch or 4096,
        seed=cfg.train.seed,
    )
    return ds, None, {"train": [Path(d.train[0]).name]}

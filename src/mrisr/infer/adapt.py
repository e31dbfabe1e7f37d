"""Per-scan adaptation of an in-plane SR model (``mrisr upscale --adapt``).

The checkpoint is fine-tuned on (LLR → LR) pairs of the scan at hand
(:mod:`mrisr.data.self_pairs`: the scan degraded once more by the model's own degradation) for
at most ``steps`` steps, then applied to the scan. The training is the ordinary engine run of
recipe ``adapt_scan`` with the checkpoint's model, scale, degradation and normalisation and
``model.init_from`` = the checkpoint, handed the pairs in memory — the mechanism per-scan
through-plane training uses (:func:`mrisr.train.per_scan.fit_in_memory`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from mrisr.errors import ConfigError
from mrisr.io.volume import Volume


@dataclass
class AdaptOptions:
    """How far to adapt (see the module doc)."""

    steps: int = 200
    lr: float = 2e-5
    batch: int = 8
    lr_patch: int = 24
    patience: int = 60
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # bf16-mixed on a CPU with native bfloat16, else 32 (per_scan)
    progress: bool = True
    run_dir: str | Path | None = None


def adapt(
    volume: Volume,
    ck: Any,
    slice_axis: int,
    opts: AdaptOptions | None = None,
    name: str = "scan",
) -> tuple[nn.Module, dict[str, Any]]:
    """The checkpoint ``ck`` (a loaded :class:`~mrisr.checkpoint.Checkpoint` with a folder on
    disk) fine-tuned on ``volume``'s own pairs; returns the adapted network (eval mode) and a
    record (steps, why it stopped, loss before / after, seconds)."""
    from mrisr.data.self_pairs import SelfPairs, self_pair_slices
    from mrisr.models.registry import get_spec
    from mrisr.train.config import load_config
    from mrisr.train.per_scan import accelerator, fit_in_memory, precision

    opts = opts or AdaptOptions()
    if isinstance(opts.steps, bool) or not isinstance(opts.steps, int) or opts.steps < 1:
        raise ConfigError(f"--adapt-steps must be an integer >= 1, got {opts.steps}")
    training = ck.training or {}
    degradation = training.get("degradation")
    if not degradation:
        raise ConfigError(
            f"checkpoint '{ck.path}' records no training degradation; --adapt needs it to "
            "re-degrade the scan"
        )
    if get_spec(ck.name).needs_guide:
        raise ConfigError("--adapt works with single-contrast models (not with --guide)")
    t0 = time.perf_counter()
    target, source, rec = self_pair_slices(
        volume, degradation, ck.scale, slice_axis, ck.normalisation
    )
    args = {k: v for k, v in ck.init_args.items() if k != "scale"}
    over = [
        f"model.name={ck.name}",
        f"model.init_from={Path(ck.path).resolve()}",
        f"data.scale={ck.scale}",
        # the model's own degradation (JSON is YAML): validated with the scale, not after it
        f"data.degradation={json.dumps(list(degradation))}",
        f"data.batch_size={opts.batch}",
        f"data.lr_patch={opts.lr_patch}",
        f"optim.lr={opts.lr}",
        f"train.steps={opts.steps}",
        f"train.stop_patience={opts.patience}",
        f"train.seed={opts.seed}",
        f"train.progress={'auto' if opts.progress else 'off'}",
        f"trainer.accelerator={accelerator(opts.device)}",
        f"trainer.precision={precision(opts.precision, opts.device)}",
    ]
    cfg = load_config("adapt_scan", over)
    cfg.model.args = args
    cfg.data.degradation = list(degradation)
    cfg.data.normalisation = type(cfg.data.normalisation)(**asdict(ck.normalisation))
    ds = SelfPairs(
        target, source, ck.scale, opts.lr_patch, cfg.data.samples_per_epoch or 2048, opts.seed,
        name, rec, training.get("lr_grid_offset"),
    )  # fmt: skip
    argv = ["mrisr", "upscale", name, "--adapt"]
    net, _, record = fit_in_memory(cfg, ds, name, opts.run_dir, argv)
    record = {**record, "lr": opts.lr, "batch": opts.batch, "lr_patch": ds.lr_patch,
              "precision": cfg.trainer.precision,
              "seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
    return net, record

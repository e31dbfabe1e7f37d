"""Per-scan training: one mechanism for everything mrisr fits to the user's own scan —
through-plane SR (``mrisr upscale --through-plane``) and in-plane adaptation (``mrisr upscale
--adapt``). A recipe plus a dataset built in memory from the scan run through the ordinary
engine (:func:`mrisr.train.engine.train`: devices, precision, early stop, state files), in a
temporary folder or in ``run_dir`` (kept; the same call resumes a killed run from its last
state); the exported network comes back with what the run did."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from mrisr.errors import ConfigError


def accelerator(device: str) -> str:
    """``--device`` (auto, cpu, cuda[:N], mps) → the recipe's ``trainer.accelerator``."""
    d = device.split(":")[0]
    if d not in ("auto", "cpu", "cuda", "mps"):
        raise ConfigError(f"--device must be auto, cpu, cuda[:N] or mps, got '{device}'")
    return d


def precision(choice: str, device: str) -> str:
    """The recipe's ``trainer.precision`` for ``choice`` on ``device``: ``auto`` is
    ``bf16-mixed`` when training runs on a CPU with native bfloat16 arithmetic (AVX512-BF16 or
    AMX; about twice as fast per step, fp32 weights and loss) and ``32`` elsewhere; any other
    value is passed on as it is."""
    if choice != "auto":
        return choice
    import torch

    d = accelerator(device)
    on_cpu = d == "cpu" or (
        d == "auto" and not torch.cuda.is_available() and not torch.backends.mps.is_available()
    )
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bf16-mixed" if on_cpu and native else "32"


def logged_loss(run: Path) -> tuple[float | None, float | None]:
    """The first and last logged training loss of a run folder (``metrics.csv``)."""
    path = run / "metrics.csv"
    values: list[float] = []
    if path.is_file():
        with path.open() as f:
            values = [float(r["value"]) for r in csv.DictReader(f) if r.get("name") == "loss"]
    return (values[0], values[-1]) if values else (None, None)


def fit_in_memory(
    cfg: Any,
    dataset: Any,
    name: str,
    run_dir: str | Path | None = None,
    argv: list[str] | None = None,
) -> tuple[nn.Module, Any, dict[str, Any]]:
    """Train ``cfg`` on ``dataset`` (the scan ``name``); returns the exported network (eval
    mode), its :class:`~mrisr.checkpoint.Checkpoint` and a record: steps, why it stopped, the
    first and last logged loss, wall time, the checkpoint it started from, the run folder."""
    from mrisr.checkpoint import load_checkpoint
    from mrisr.train.engine import train
    from mrisr.train.state import list_states

    cfg.data.train = [name]
    tmp = None
    if run_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mrisr-per-scan-")
        run = Path(tmp.name) / "run"
    else:
        run = Path(run_dir)
    try:
        train(cfg, resume=bool(list_states(run)), run_dir=run, argv=argv,
              datasets=(dataset, None, {"train": [name]}))  # fmt: skip
        net, ck = load_checkpoint(run / "final")
        first, last = logged_loss(run)
    finally:
        if tmp is not None:
            tmp.cleanup()
    card = ck.training or {}
    record = {
        "steps": card.get("steps"),
        "stopped": card.get("stopped_early") or "steps",
        "loss_first": first,
        "loss_last": last,
        "wall_s": card.get("wall_time_s"),
        "init_from": card.get("init_from"),  # name and sha256 of the starting checkpoint
        "run_dir": None if tmp else str(run),
    }
    return net, ck, record

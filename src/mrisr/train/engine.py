"""The training loop: ours, step-based, on Lightning Fabric for devices, precision and DDP.

``train(cfg)`` runs the same code on CPU, one GPU, several GPUs and several nodes: Fabric picks
the cluster environment (``torchrun`` / torchelastic, SLURM ``srun``) and the process group;
``data.batch_size`` is the *global* batch, split evenly over the processes.

Run folder (``--run-dir``, default ``{train.out_dir}/{name}``)::

    runs/smoke/
      config.yaml               the resolved recipe (absolute data paths), frozen at the start
      metrics.csv               step, epoch, wall_s, name, value (long format; see monitor.py)
      curves.png                training loss, validation PSNR with the baselines as lines
      validation.json           latest per-volume scores of the model and of the baselines
      tb/                       TensorBoard events
      state/step_0000030.pt     resumable states (newest ``train.keep_states``), written
                                atomically; read with torch.load(weights_only=True)
      best/                     mrisr checkpoint with the best validation PSNR
      final/                    mrisr checkpoint at the last step (EMA weights when kept)

A state holds the task (networks, optimisers, schedulers, EMAs), every rank's RNG states, the
step (which fixes the data position: see :mod:`mrisr.train.state`), the best score and the wall
time. ``train(cfg, resume=True)`` loads the newest one and continues: in deterministic mode on
CPU the final weights are bit-identical to an uninterrupted run.

Recovery: a run killed at any moment goes on with ``--resume`` (from its newest state, or from
step 0 with the frozen config when it saved none yet) or, while it has saved no state, with the
same command again. Nothing is written into the folder before the data and the model are built,
so a start that fails there leaves nothing behind; a run that saved no state (config.yaml and
logs only) is started over by either command, its logs and ``best/`` removed first. Every start
removes the temporaries a kill left (ours only, by name: :func:`mrisr.train.state.stale_temps`);
a resume never reads one (states are ``state/step_XXXXXXX.pt`` exactly).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mrisr.errors import ConfigError, InputError, OutputError
from mrisr.train.builders import build_datasets, make_fabric
from mrisr.train.config import RunConfig, config_differences, dump_config, load_config
from mrisr.train.monitor import Monitor, Plateau, hardware
from mrisr.train.state import (
    GlobalBatchSampler,
    capture_rng,
    deterministic_mode,
    gather_objects,
    list_states,
    load_state,
    remove_temps,
    restore_rng,
    save_state,
    seed_everything,
)
from mrisr.train.tasks import TASKS
from mrisr.train.tasks.base import Task
from mrisr.train.validation import Validator, is_kspace

#: Keys a resumed run may change (length, bookkeeping, hardware); anything else is refused.
RESUMABLE_CHANGES = (
    "train.steps",
    "train.epochs",
    "train.val_every",
    "train.ckpt_every",
    "train.log_every",
    "train.keep_states",
    "train.progress",
    "train.out_dir",
    "trainer.",
    "data.num_workers",
    "data.cache_dir",
    "val.batch_size",
    "gan.vgg_weights",
)


def _may_change(key: str) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in RESUMABLE_CHANGES)


#: What a run writes besides config.yaml before its first state; removed when such a run (one
#: that saved no state) starts over from step 0.
_EARLY_OUTPUTS = ("metrics.csv", "curves.png", "validation.json", "tb", "best")


def _command(argv: Sequence[str], run_dir: Path, resume: bool) -> str:
    """The shell command that (re)starts this run: ``argv`` + ``--run-dir`` [+ ``--resume``]."""
    return shlex.join([*argv, "--run-dir", str(run_dir), *(["--resume"] if resume else [])])


def _check_folder(cfg: RunConfig, run_dir: Path, resume: bool, argv: Sequence[str]) -> Path | None:
    """The state to continue from (None: start at step 0), or an error that names the command
    to run instead. Writes nothing."""
    again, cont = _command(argv, run_dir, False), _command(argv, run_dir, True)
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"run folder '{run_dir}' is a file; choose another --run-dir")
    states = list_states(run_dir)
    frozen = run_dir / "config.yaml"
    if states and not frozen.is_file():
        raise InputError(
            f"run folder '{run_dir}' has states but no config.yaml; it cannot be continued: "
            "choose another --run-dir"
        )
    if not states and (run_dir / "final").exists():
        raise OutputError(
            f"run folder '{run_dir}' holds a finished run (final/) without states; "
            "choose another --run-dir"
        )
    if not resume:
        if states:
            raise OutputError(
                f"run folder '{run_dir}' holds a run already (newest state: step "
                f"{states[-1][0]}); pass --resume to continue it: {cont} "
                "(or choose another --run-dir)"
            )
        return None
    if not frozen.is_file():
        raise InputError(
            f"nothing to resume in '{run_dir}' (no config.yaml, no state/step_*.pt); "
            f"start the run without --resume: {again}"
        )
    bad = [k for k in config_differences(load_config(frozen), cfg) if not _may_change(k)]
    if bad and states:
        frozen_cmd = _command(["mrisr", "train", str(frozen)], run_dir, True)
        raise ConfigError(
            f"--resume: the config differs from '{frozen}' at "
            f"{', '.join(bad[:4])}; resume with the same recipe (the frozen one: "
            f"{frozen_cmd}) or start a new --run-dir"
        )
    if bad:
        raise ConfigError(
            f"--resume: the config differs from '{frozen}' at {', '.join(bad[:4])}; that run "
            f"saved no state, so start it over with this config without --resume: {again}"
        )
    return states[-1][1] if states else None


def _prepare_folder(run_dir: Path, cfg: RunConfig, from_zero: bool) -> None:
    """Rank 0, once everything is built: remove a killed run's temporaries (and, starting
    from step 0 in a folder that holds a run without state, its logs), freeze the config.
    Each step leaves a folder that the same command recovers if killed in between."""
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_temps(run_dir)
    if from_zero and (run_dir / "config.yaml").is_file():
        print(
            f"note: '{run_dir}' holds a run that saved no state; starting it from step 0",
            file=sys.stderr,
        )
        for name in _EARLY_OUTPUTS:
            path = run_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    _write_text(run_dir / "config.yaml", dump_config(cfg))


def _shareable(cfg: RunConfig) -> dict[str, Any]:
    """The resolved config without local paths (scan names only), for a checkpoint's card."""
    out = cfg.model_dump(mode="json")
    out["data"]["train"] = [Path(p).name for p in cfg.data.train]
    out["data"]["val"] = [Path(p).name for p in cfg.data.val]
    out["data"]["lr_real"] = [Path(p).name for p in cfg.data.lr_real]
    out["data"]["cache_dir"] = None
    if cfg.model.init_from:
        out["model"]["init_from"] = Path(cfg.model.init_from).name
    return out


def _write_text(path: Path, text: str) -> None:
    from mrisr.io.atomic import atomic_outputs

    with atomic_outputs([path], overwrite=True) as (tmp,):
        tmp.write_text(text)


class _Loop:
    """One run on one rank (state shared by the loop's helpers)."""

    def __init__(
        self, cfg: RunConfig, run_dir: Path, fabric: Any, argv: Sequence[str] = ()
    ) -> None:
        self.cfg, self.run_dir, self.fabric = cfg, run_dir, fabric
        self.argv = list(argv) or ["mrisr", "train", cfg.name]
        self.rank0 = fabric.global_rank == 0
        self.best: dict[str, Any] = {}
        self.last_val: dict[str, Any] = {}
        self.baselines: dict[str, Any] = {}
        self.wall0, self.t0 = 0.0, time.monotonic()
        t = cfg.train
        self.plateau = Plateau(t.stop_patience) if t.stop_patience else None
        self.stopped: str | None = None  # why the run ended before train.steps, if it did

    def wall(self) -> float:
        return self.wall0 + time.monotonic() - self.t0

    def card(self, step: int) -> dict[str, Any]:
        """The ``training`` card of an exported checkpoint."""
        cfg, f = self.cfg, self.fabric
        return {
            "recipe": cfg.name,
            "task": cfg.task,
            "data": self.names,
            "dataset": self.train_ds.card(),
            "lr_grid_offset": self.train_ds.lr_grid_offset,
            "scale": cfg.data.scale,
            "degradation": cfg.data.degradation,
            "steps": step,
            "epochs": step / self.spe,
            "global_batch": cfg.data.batch_size,
            "lr_patch": cfg.data.lr_patch,
            "optim": cfg.optim.model_dump(),
            "sched": cfg.sched.model_dump(),
            "loss": cfg.train.loss,
            "gan": cfg.gan.model_dump(exclude={"vgg_weights"}) if cfg.gan else None,
            "dsgan": cfg.dsgan.model_dump() if cfg.dsgan else None,
            "ema_decay": cfg.train.ema_decay,
            "weights": "ema" if self.task.emas else "model",
            "precision": cfg.trainer.precision,
            "world_size": f.world_size,
            "wall_time_s": round(self.wall(), 1),
            "hardware": hardware(),
            "val": {"last": self.last_val, "best": self.best, "baselines": self.baselines},
            "init_from": getattr(self.task, "warm_start", None),
            "stopped_early": self.stopped,
            "config": _shareable(cfg),
        }

    def validate(self, step: int, epoch: int) -> None:
        if self.validator is None:
            return
        self.baselines = self.validator.baselines()["mean"]
        res = self.validator.run(lambda batch: self.task.validation_step(batch)["sr"])
        m = res["mean"]["model"]
        self.last_val = {"step": step, "psnr": m["psnr"], "ssim": m["ssim"]}
        values = {"val/psnr": m["psnr"], "val/ssim": m["ssim"]}
        for name, b in self.baselines.items():
            values |= {f"val/{name}_psnr": b["psnr"], f"val/{name}_ssim": b["ssim"]}
        self.monitor.log(step, epoch, self.wall(), values)
        improved = not self.best or m["psnr"] > self.best["psnr"]
        if improved:
            self.best = dict(self.last_val)
        if self.rank0:
            body = {"step": step, "model": res, "baselines": self.validator.baselines()}
            _write_text(self.run_dir / "validation.json", json.dumps(body, indent=2) + "\n")
            if improved:
                self.task.export(self.run_dir / "best", self.card(step))
            self.monitor.curves()
        self.fabric.barrier()

    def save(self, step: int) -> None:
        rngs = gather_objects(capture_rng(), self.fabric.world_size)
        if self.rank0:
            payload = {
                "epoch": step // self.spe,
                "batch_in_epoch": step % self.spe,
                "samples_seen": step * self.cfg.data.batch_size,
                "task": self.task.state_dict(),
                "rng": rngs,
                "best": self.best,
                "last_val": self.last_val,
                "wall_s": self.wall(),
                "world_size": self.fabric.world_size,
                "plateau": self.plateau.state_dict() if self.plateau else None,
            }
            save_state(self.run_dir, step, payload, self.cfg.train.keep_states)
        self.fabric.barrier()

    def resume_from(self, path: Path) -> int:
        state = load_state(path)
        self.task.load_state_dict(state["task"])
        rngs = state["rng"]
        restore_rng(
            rngs[self.fabric.global_rank] if self.fabric.global_rank < len(rngs) else rngs[0]
        )
        self.best, self.last_val = state["best"], state["last_val"]
        self.wall0 = float(state["wall_s"])
        if self.plateau and state.get("plateau"):
            self.plateau.load_state_dict(state["plateau"])
        return int(state["step"])

    def loader(self, epoch: int, start_batch: int) -> Any:
        from torch.utils.data import DataLoader

        from mrisr.data import worker_init_fn

        f, d = self.fabric, self.cfg.data
        self.train_ds.set_epoch(epoch)
        sampler = GlobalBatchSampler(
            len(self.train_ds),
            d.batch_size,
            f.global_rank,
            f.world_size,
            self.cfg.train.seed,
            epoch,
            start_batch,
        )
        return DataLoader(
            self.train_ds,
            batch_size=d.batch_size // f.world_size,
            sampler=sampler,
            num_workers=d.num_workers,
            worker_init_fn=worker_init_fn,
            # Own generator: worker seeds depend on (seed, epoch) only and the global torch RNG
            # is not consumed by creating an iterator (a resumed run creates one more).
            generator=torch.Generator().manual_seed(self.cfg.train.seed * 7919 + epoch),
            pin_memory=f.device.type == "cuda",
            persistent_workers=False,
        )

    def run(self, resume_path: Path | None, stop_at: int | None, datasets: Any = None) -> None:
        cfg, f = self.cfg, self.fabric
        G = cfg.data.batch_size
        if G % f.world_size:
            raise ConfigError(
                f"data.batch_size: the global batch {G} does not split over "
                f"{f.world_size} processes"
            )
        with f.rank_zero_first(local=True):  # rank 0 fills the volume cache, the others read it
            self.train_ds, val_ds, self.names = datasets or build_datasets(cfg)
        if len(self.train_ds) < G:
            raise ConfigError(
                f"data.batch_size: {G} is more than the {len(self.train_ds)} "
                "samples of an epoch; raise data.samples_per_epoch"
            )
        self.spe = len(self.train_ds) // G
        total = cfg.train.steps or cfg.train.epochs * self.spe  # type: ignore[operator]
        seed_everything(cfg.train.seed)
        self.task: Task = TASKS[cfg.task]()
        self.task.setup(f, cfg, self.spe, total)
        step = self.resume_from(resume_path) if resume_path else 0
        # Only now, with data, model and state in hand, does the folder change: a start that
        # fails above leaves nothing behind.
        f.barrier()
        if self.rank0:
            _prepare_folder(self.run_dir, cfg, resume_path is None)
        f.barrier()
        self.validator = None
        if val_ds is not None:
            self.validator = Validator(
                val_ds,
                is_kspace(cfg.data.degradation),
                cfg.val.shave,
                cfg.val.batch_size,
                f.device,
                f.global_rank,
                f.world_size,
            )
        self.monitor = Monitor(self.run_dir, self.rank0, step, total, cfg.train.progress)
        try:
            self._loop(step, total, stop_at)
        finally:
            self.monitor.close()

    def _loop(self, step: int, total: int, stop_at: int | None) -> None:
        f, t = self.fabric, self.cfg.train
        end = min(total, stop_at) if stop_at is not None else total
        acc: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}  # per key: a GAN logs D terms only after its warm-up
        validated, saved = -1, -1
        while step < end:
            epoch, start_batch = divmod(step, self.spe)
            for batch in self.loader(epoch, start_batch):
                batch = {
                    k: f.to_device(v) if isinstance(v, torch.Tensor) else v
                    for k, v in batch.items()
                }
                out = self.task.training_step(batch)
                step += 1
                for k, v in out.items():
                    acc[k] = acc[k] + v if k in acc else v.clone()
                    counts[k] = counts.get(k, 0) + 1
                self.monitor.advance(step)
                if step % t.log_every == 0 or step == total:
                    values = {
                        k: float(f.all_reduce(v / counts[k], reduce_op="mean"))
                        for k, v in acc.items()
                    }
                    values |= self.task.learning_rates()
                    self.monitor.log(step, epoch, self.wall(), values)
                    acc, counts = {}, {}
                    if self.plateau and self.plateau.update(step, values.get("loss")):
                        self.stopped = f"loss flat for {self.plateau.patience} steps"
                        total = end = step
                if t.val_every and step % t.val_every == 0:
                    self.validate(step, epoch)
                    validated = step
                if t.ckpt_every and step % t.ckpt_every == 0:
                    self.save(step)
                    saved = step
                if step >= end:
                    break
        if step < total:  # stopped on purpose (stop_at): as if killed here
            if self.rank0:
                states = list_states(self.run_dir)
                last = f"step {states[-1][0]}" if states else "no state saved yet"
                cont = _command(self.argv, self.run_dir, True)
                print(
                    f"stopped after step {step} of {total} (newest state: {last}); "
                    f"continue with: {cont}"
                )
            return
        epoch = (step - 1) // self.spe
        if validated != step:
            self.validate(step, epoch)
        if saved != step:
            self.save(step)
        if self.rank0:
            self.task.export(self.run_dir / "final", self.card(step))
            self.monitor.curves()
        f.barrier()


def train(
    cfg: RunConfig,
    resume: bool = False,
    run_dir: str | Path | None = None,
    stop_at: int | None = None,
    argv: Sequence[str] | None = None,
    datasets: tuple[Any, Any, dict[str, list[str]]] | None = None,
) -> Path:
    """Train ``cfg``; return the run folder.

    ``resume`` continues from the newest state in the run folder (the config must match its
    frozen ``config.yaml`` except for :data:`RESUMABLE_CHANGES`), or from step 0 with that
    config when the run saved no state yet. Without ``resume`` a folder that holds states is
    refused; one that holds a run without state is started over. ``stop_at`` stops after that
    step without any final state or export — as if the job were killed (for tests and
    time-limited jobs that save with ``train.ckpt_every``). ``argv`` is the command that started
    the run, without ``--run-dir`` / ``--resume`` (default ``mrisr train NAME``): messages name
    the command to run next with it. ``datasets`` (training set, validation set or None,
    scan names) replaces the ones the recipe's ``data`` section would build (an in-memory
    scan: ``mrisr upscale --through-plane``).
    """
    run_dir = Path(run_dir) if run_dir is not None else Path(cfg.train.out_dir) / cfg.name
    argv = list(argv) if argv else ["mrisr", "train", cfg.name]
    with deterministic_mode(cfg.train.deterministic):
        fabric = make_fabric(cfg)
        fabric.launch()
        resume_path = _check_folder(cfg, run_dir, resume, argv)
        _Loop(cfg, run_dir, fabric, argv).run(resume_path, stop_at, datasets)
    return run_dir

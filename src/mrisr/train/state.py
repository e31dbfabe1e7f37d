"""Training state: the resumable sampler, RNG capture, and atomic state checkpoints.

Exact resume rests on three things:

- **Data position from the step.** Every epoch has ``steps_per_epoch = len(dataset) //
  global_batch`` full global batches (the rest is dropped), so step ``t`` is batch
  ``t % steps_per_epoch`` of epoch ``t // steps_per_epoch``. :class:`GlobalBatchSampler` rebuilds
  that epoch's permutation from ``(seed, epoch)`` and starts at that batch — no batch is
  replayed or skipped, and nothing is loaded to get there.
- **Same global batch on any number of devices.** Global batch ``b`` is the slice
  ``perm[b·G : (b+1)·G]`` of the epoch's permutation; rank ``r`` of ``W`` takes the contiguous
  chunk ``[r·G/W, (r+1)·G/W)`` of it. One process with batch ``G`` and two with ``G/2`` each
  therefore see the same samples in every step (that is what the DDP test checks).
- **RNG states as plain data.** Python ``random``, NumPy and torch (CPU, CUDA) states of every
  rank are stored as tensors, ints and tuples, so a state file loads with
  ``torch.load(weights_only=True)`` — it never unpickles code.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from mrisr.errors import InputError

STATE_FORMAT = "mrisr-train-state"
STATE_VERSION = 1
_STATE_NAME = re.compile(r"^step_(\d{7,})\.pt$")
#: Temporaries our atomic writers leave when killed mid-write, and nothing else: ``state/``
#: ``.step_XXXXXXX.pt.<8 hex>.tmp`` (:func:`save_state`); in the run folder
#: ``.NAME.<8 hex>.tmp[.ext]`` (:mod:`mrisr.io.atomic`: config.yaml, validation.json;
#: :mod:`mrisr.train.monitor`: metrics.csv, curves.png) and the ``.best|final.<8 hex>.tmp|old``
#: folders of :func:`mrisr.checkpoint.save_checkpoint`.
_STATE_TEMP = re.compile(r"^\.step_\d{7,}\.pt\.[0-9a-f]{8}\.tmp$")
_RUN_TEMP = re.compile(
    r"^\.(config\.yaml|validation\.json|metrics\.csv|curves\.png|best|final)"
    r"\.[0-9a-f]{8}\.(tmp|old)(\.(yaml|json|csv|png))?$"
)


class GlobalBatchSampler(Sampler[int]):
    """Indices of one epoch for one rank, starting at global batch ``start_batch``.

    Plays the role of ``DistributedSampler`` (and of a seeded ``RandomSampler`` on one device)
    but (1) can start mid-epoch for exact resume and (2) keeps the global batch independent of
    the world size (see the module doc). Yields ``(steps_per_epoch − start_batch) · G / W``
    indices; use it with ``DataLoader(batch_size=G // W)``.
    """

    def __init__(
        self,
        n: int,
        global_batch: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        epoch: int = 0,
        start_batch: int = 0,
        shuffle: bool = True,
    ) -> None:
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} is not divisible by {world_size}")
        if n < global_batch:
            raise ValueError(f"{n} samples cannot fill one global batch of {global_batch}")
        self.n, self.g, self.rank, self.world = n, global_batch, rank, world_size
        self.seed, self.epoch, self.start_batch, self.shuffle = seed, epoch, start_batch, shuffle
        self.steps_per_epoch = n // global_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def permutation(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        perm, local = self.permutation(), self.g // self.world
        for b in range(self.start_batch, self.steps_per_epoch):
            lo = b * self.g + self.rank * local
            yield from perm[lo : lo + local]

    def __len__(self) -> int:
        return max(0, self.steps_per_epoch - self.start_batch) * (self.g // self.world)


# ----------------------------------------------------------------------------- RNG


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global RNG is what we seed)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """This process's RNG states as tensors / plain Python (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np_state = (n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"])
    np.random.set_state(np_state)  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Deterministic kernels (errors on ops that have none) and no cuDNN autotuning while
    inside; the previous global settings come back on exit."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    if enabled:
        # cuBLAS needs a fixed workspace for deterministic GEMMs; must be set before CUDA use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.benchmark = not enabled
    torch.backends.cudnn.deterministic = enabled
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[1:]


def gather_objects(obj: Any, world_size: int) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` without a process group)."""
    if world_size == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


# ----------------------------------------------------------------------------- files


def state_path(run_dir: Path, step: int) -> Path:
    return run_dir / "state" / f"step_{step:07d}.pt"


def list_states(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the state checkpoints in ``run_dir/state``, oldest first."""
    folder = run_dir / "state"
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _STATE_NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def stale_temps(run_dir: Path) -> list[Path]:
    """The temporaries a killed run left in ``run_dir`` (ours only, by name; see above)."""
    found = []
    for folder, pattern in ((run_dir, _RUN_TEMP), (run_dir / "state", _STATE_TEMP)):
        if folder.is_dir():
            found += [p for p in folder.iterdir() if pattern.match(p.name)]
    return sorted(found)


def remove_temps(run_dir: Path) -> list[Path]:
    """Delete :func:`stale_temps` (files, or checkpoint folders); return what was handled.

    A ``.best|final.<hex>.old`` checkpoint whose ``best``/``final`` is missing (killed between
    the two renames that replace a checkpoint) is put back instead: it is the previous, complete
    one, which the newest state's ``best`` score refers to. Call this only while no other
    process writes into ``run_dir`` (at the start of a run)."""
    found = stale_temps(run_dir)
    for p in found:
        m = _RUN_TEMP.match(p.name)
        if m and m.group(2) == "old" and not (run_dir / m.group(1)).exists():
            if all((p / f).is_file() for f in ("config.json", "model.safetensors")):
                os.replace(p, run_dir / m.group(1))
                continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
    return found


def save_state(run_dir: Path, step: int, payload: dict[str, Any], keep: int) -> Path:
    """Write ``state/step_XXXXXXX.pt`` atomically (temp file, then rename); keep the newest
    ``keep``."""
    final = state_path(run_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    body = {"format": STATE_FORMAT, "version": STATE_VERSION, "step": step, **payload}
    try:
        torch.save(body, tmp)
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    for _, old in list_states(run_dir)[:-keep]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    return final


def load_state(path: Path) -> dict[str, Any]:
    """Read a state checkpoint with ``weights_only=True`` (tensors and plain data only)."""
    import pickle

    try:
        body = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        raise InputError(f"cannot read training state '{path}': {e}") from None
    if not isinstance(body, dict) or body.get("format") != STATE_FORMAT:
        raise InputError(f"'{path}' is not an mrisr training state")
    if body.get("version") != STATE_VERSION:
        raise InputError(f"'{path}' has state version {body.get('version')!r}, not {STATE_VERSION}")
    return body

"""Training: recipes (``config``), the loop on Lightning Fabric (``engine``), tasks (``tasks``).

``import mrisr.train`` is light; torch and Lightning load when a function runs. Entry points::

    mrisr train smoke                       # the CLI (cli.py calls run_train)
    python -m mrisr.train smoke key=value   # the same, for torchrun / srun
    from mrisr.train import load_config, train
    run_dir = train(load_config("smoke", ["train.steps=10"]))

Needs the ``train`` extra (``pip install mrisr[train]``: lightning, pydantic, pyyaml,
tensorboard).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

_LAZY = {
    "load_config": "mrisr.train.config",
    "recipe_names": "mrisr.train.config",
    "RunConfig": "mrisr.train.config",
    "train": "mrisr.train.engine",
    "Task": "mrisr.train.tasks",
    "SupervisedSR": "mrisr.train.tasks",
    "TASKS": "mrisr.train.tasks",
}


def _need_extra() -> None:
    from mrisr.errors import ConfigError

    missing = []
    for module in ("lightning", "pydantic", "yaml"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(
            f"training needs {', '.join(missing)}; install them with: pip install 'mrisr[train]'"
        )


def run_train(
    config: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    resume: bool = False,
    run_dir: str | Path | None = None,
    stop_at: int | None = None,
) -> Path:
    """``mrisr train CONFIG [key=value ...] [--resume] [--run-dir DIR] [--stop-at N]``: returns
    the run folder.

    ``config`` is a recipe file or a packaged recipe's name (``smoke``, ``seran_ixi_x2``, ...).
    ``stop_at`` ends the job after that step as if it were killed there (no final export; the
    newest state in ``state/`` is the one ``--resume`` continues from): for time-limited jobs.
    """
    _need_extra()
    from mrisr.train.config import load_config
    from mrisr.train.engine import train

    cfg = load_config(config, list(overrides))
    return train(cfg, resume=resume, run_dir=run_dir, stop_at=stop_at)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mrisr.train' has no attribute {name!r}")


__all__ = ["run_train", *_LAZY]

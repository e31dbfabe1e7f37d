"""Training: recipes (``config``), the loop on Lightning Fabric (``engine``), tasks (``tasks``).

``import mrisr.train`` is light; torch and Lightning load when a function runs. Entry points::

    mrisr train smoke                       # the CLI (mrisr.commands.train)
    python -m mrisr.train smoke key=value   # the same, for torchrun / srun
    from mrisr.train import load_config, train
    run_dir = train(load_config("smoke", ["train.steps=10"]))

Needs the ``train`` extra (``pip install mrisr[train]``: lightning, pydantic, pyyaml,
tensorboard).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "load_config": "mrisr.train.config",
    "recipe_names": "mrisr.train.config",
    "RunConfig": "mrisr.train.config",
    "train": "mrisr.train.engine",
    "Task": "mrisr.train.tasks.base",
    "SupervisedSR": "mrisr.train.tasks.supervised",
    "TASKS": "mrisr.train.tasks",
}


def require_extra() -> None:
    """One-line error naming the missing packages of the ``train`` extra."""
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mrisr.train' has no attribute {name!r}")


__all__ = ["require_extra", *_LAZY]

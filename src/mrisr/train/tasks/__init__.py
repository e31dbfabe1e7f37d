"""The task registry: recipe ``task:`` name → :class:`~mrisr.train.tasks.base.Task` subclass.

What is trained, separate from how the loop runs (:mod:`mrisr.train.engine`): a task owns its
networks, optimisers, schedulers and EMAs and does one optimisation step per batch.

Modules of this package::

    base.py        Task (the interface), EMA, lr_factor, make_optimizer, pixel_loss
    supervised.py  SupervisedSR (task: supervised), MultiContrastSR (task: multicontrast)
    gan.py         GANTask (task: gan): FA-GAN / SRGAN
    dsgan.py       DSGANTask (task: dsgan): learning a scanner's degradation kernel
    profile.py     ProfileTask (task: profile): learning a thick-slice scan's slice profile
    throughplane.py ThroughPlaneTask (task: throughplane): per-scan through-plane SR

:data:`TASKS` is an explicit table of ``name → "module:Class"``: its names are known from the
first access (``"gan" in TASKS``, ``list(TASKS)``, :func:`task_names`, which the recipe schema
validates ``task:`` against) and importing this package imports neither torch nor any task
module; ``TASKS[name]`` imports the task's module on first use. The task modules import only
downwards (``base`` ← ``supervised`` ← ``gan``, ``throughplane``; ``base`` ← ``dsgan``,
``profile``), never this registry.
A new task: a :class:`~mrisr.train.tasks.base.Task` subclass with ``name`` set, in a module
here, plus one line in :data:`_TABLE`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mrisr.train.tasks.base import Task

# name → "module:Class"; the class's ``name`` must be the key (checked on lookup)
_TABLE: dict[str, str] = {
    "supervised": "mrisr.train.tasks.supervised:SupervisedSR",
    "multicontrast": "mrisr.train.tasks.supervised:MultiContrastSR",
    "gan": "mrisr.train.tasks.gan:GANTask",
    "dsgan": "mrisr.train.tasks.dsgan:DSGANTask",
    "profile": "mrisr.train.tasks.profile:ProfileTask",
    "throughplane": "mrisr.train.tasks.throughplane:ThroughPlaneTask",
}


class _TaskRegistry(Mapping[str, "type[Task]"]):
    """Read-only mapping over :data:`_TABLE`; a class is imported when first looked up."""

    def __init__(self, table: dict[str, str]) -> None:
        self._table = dict(table)
        self._classes: dict[str, type[Task]] = {}

    def __getitem__(self, name: str) -> type[Task]:
        if name not in self._classes:
            module, _, cls_name = self._table[name].partition(":")  # KeyError if unknown
            cls = getattr(importlib.import_module(module), cls_name)
            if cls.name != name:
                raise RuntimeError(f"task table: {name!r} points to {cls_name}, named {cls.name!r}")
            self._classes[name] = cls
        return self._classes[name]

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"TASKS({', '.join(self._table)})"


TASKS: Mapping[str, type[Task]] = _TaskRegistry(_TABLE)


def task_names() -> tuple[str, ...]:
    """The registered task names, in table order (what a recipe's ``task:`` may be)."""
    return tuple(_TABLE)


__all__ = ["TASKS", "task_names"]

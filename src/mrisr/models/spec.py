"""What a zoo entry is (:class:`ModelSpec`) and the table the zoo fills (:data:`REGISTRY`).

The leaf of the models package: :mod:`mrisr.models.zoo` registers every preset here, and
:mod:`mrisr.models.registry` looks them up and builds them. Paper numbers come from the
project's model specification (kept in the zoo table and in docs/model-zoo.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the zoo.

    Attributes:
        name: registry name (lower case, dashes).
        target: ``"module:Class"``; the class takes ``scale`` plus ``defaults`` as keywords.
        scales: the scales the method supports.
        defaults: keyword arguments that define this preset (e.g. depth, width).
        paper_params: parameter count reported by the paper (or the spec's reading of it) per
            scale; ``None`` where the paper gives none.
        param_status: "matched" (our count equals the spec's exact number), "approx" or
            "not matched" (see the spec; never claim more).
        needs_guide: the model needs a high-resolution guide contrast (multi-contrast SR).
        input_kind: "lr" (the LR image) — networks that work on a bicubic-upsampled input do
            that upsampling inside ``forward``, so every model takes the LR image.
        paper: short citation.
        description: one line for ``mrisr models``.
        legacy: arguments added to the preset after checkpoints of it were written, with the
            value those checkpoints were built with (they do not store them).
    """

    name: str
    target: str
    scales: tuple[int, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    paper_params: dict[int, int | None] = field(default_factory=dict)
    param_status: str = "matched"
    needs_guide: bool = False
    paper: str = ""
    description: str = ""
    legacy: dict[str, Any] = field(default_factory=dict)

    def cls(self) -> type:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"model '{spec.name}' registered twice")
    REGISTRY[spec.name] = spec
    return spec

"""The model zoo: every network by name, with its paper's size and how to build it.

A :class:`ModelSpec` names the class by import path (``"mrisr.models.edsr:EDSR"``) so the heavy
module loads only when the model is built. Every network follows one interface::

    model = build_model("seran", scale=4)        # nn.Module
    sr = model(lr)                                # lr [B, 1, h, w] → sr [B, 1, s·h, s·w]
    sr = model(lr, guide)                         # multi-contrast models: guide [B, 1, H, W]

and is rebuilt from a checkpoint by ``build_model(name, **init_args)``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from mrisr.errors import ConfigError


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

    def cls(self) -> type:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"model '{spec.name}' registered twice")
    REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model '{name}'; `mrisr models` lists them: {', '.join(sorted(REGISTRY))}"
        ) from None


def build_model(name: str, scale: int, **overrides: Any):
    """Build ``name`` at ``scale`` with the preset's defaults updated by ``overrides``."""
    spec = get_spec(name)
    if scale not in spec.scales:
        raise ConfigError(
            f"{name} supports scales {', '.join(f'x{s}' for s in spec.scales)}, not x{scale}"
        )
    kwargs = {**spec.defaults, **overrides}
    return spec.cls()(scale=scale, **kwargs)


def count_parameters(model) -> int:
    """Every ``nn.Parameter`` (the papers' and the spec's convention)."""
    return sum(p.numel() for p in model.parameters())


def init_args(name: str, scale: int, **overrides: Any) -> dict[str, Any]:
    """The complete keyword arguments a checkpoint stores to rebuild the model."""
    spec = get_spec(name)
    return {"scale": scale, **spec.defaults, **overrides}


# --- the zoo ---------------------------------------------------------------------------------
# Paper numbers: see ../shared/specs/model-specs.md §1.6, §2.6, §6 (kept in the zoo table,
# docs/model-zoo.md). Entries are added by the modules' authors below.
from mrisr.models import zoo  # noqa: E402,F401  (explicit registration list)

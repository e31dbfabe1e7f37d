"""The model zoo: every network by name, with its paper's size and how to build it.

A :class:`ModelSpec` names the class by import path (``"mrisr.models.edsr:EDSR"``) so the heavy
module loads only when the model is built. Every network follows one interface::

    model = build_model("seran", scale=4)        # nn.Module
    sr = model(lr)                                # lr [B, 1, h, w] → sr [B, 1, s·h, s·w]
    sr = model(lr, guide)                         # multi-contrast models: guide [B, 1, H, W]

and is rebuilt from a checkpoint by ``build_model(name, **init_args)``.
"""

from __future__ import annotations

from typing import Any

import mrisr.models.zoo  # noqa: F401 - the explicit registration list fills REGISTRY
from mrisr.errors import ConfigError
from mrisr.models.spec import REGISTRY, ModelSpec, register

__all__ = [
    "REGISTRY",
    "ModelSpec",
    "build_model",
    "count_parameters",
    "get_spec",
    "init_args",
    "register",
]


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

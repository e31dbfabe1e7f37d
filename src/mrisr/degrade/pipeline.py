"""Degradation pipelines from plain configs, with seeds and random ranges for blind training.

A step is a dict ``{"method": NAME, **fields}``. A float field may be given as a two-element list
``[low, high]`` (drawn uniformly), any field as ``{"choice": [...]}``. :class:`RandomPipeline`
holds the ranges; :meth:`RandomPipeline.sample` draws one concrete :class:`Pipeline` (the
deterministic twin) whose parameters are exactly those drawn, so every random draw is recorded and
can be replayed.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mrisr.degrade.base import IDENTITY, AxisMap, Degradation, Degraded
from mrisr.degrade.blur import Gaussian
from mrisr.degrade.kernel import Kernel
from mrisr.degrade.kspace import KspaceTruncate, KspaceZerofill
from mrisr.degrade.noise import Rician
from mrisr.degrade.resize import Bicubic
from mrisr.degrade.thickslice import ThickSlice
from mrisr.errors import ConfigError

METHODS: dict[str, type[Degradation]] = {
    cls.method: cls
    for cls in (Bicubic, Gaussian, Kernel, KspaceTruncate, KspaceZerofill, Rician, ThickSlice)
}


def make_degradation(method: str, **fields: Any) -> Degradation:
    """Build one degradation by name, with errors that name the bad key."""
    if method not in METHODS:
        raise ConfigError(f"unknown degradation method '{method}'; choose from {sorted(METHODS)}")
    cls = METHODS[method]
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    bad = sorted(set(fields) - names)
    if bad:
        raise ConfigError(f"{method}: unknown parameter(s) {bad}; allowed: {sorted(names)}")
    for key, value in fields.items():  # NaN or inf make every output voxel NaN
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{method}: {key} must be a finite number, got {value}")
    return cls(**fields)


@dataclass
class Pipeline:
    """Concrete steps applied in order to [..., H, W] (in-plane steps only at this level)."""

    steps: list[Degradation]
    seed: int | None = None

    def __call__(
        self,
        x: torch.Tensor,
        spacing: tuple[float, float] = (1.0, 1.0),
        generator: torch.Generator | None = None,
    ) -> Degraded:
        if generator is None and self.seed is not None:
            generator = torch.Generator(device=x.device).manual_seed(self.seed)
        axes = (IDENTITY, IDENTITY)
        params: list[dict[str, Any]] = []
        for step in self.steps:
            if step.layout != "in-plane":
                raise ConfigError(
                    f"{step.method} acts through-plane; apply it to a volume with "
                    "mrisr.degrade.degrade_volume"
                )
            out = step(x, spacing=spacing, generator=generator)
            x = out.image
            spacing = (spacing[0] * out.axes[0].factor, spacing[1] * out.axes[1].factor)
            axes = (axes[0].then(out.axes[0]), axes[1].then(out.axes[1]))
            params.append(out.params)
        return Degraded(x, {"steps": params, "seed": self.seed}, axes)

    def params(self) -> dict[str, Any]:
        return {"steps": [s.params() for s in self.steps], "seed": self.seed}


@dataclass
class RandomPipeline:
    """Steps with ranges; ``sample()`` draws a concrete :class:`Pipeline`."""

    steps: list[dict[str, Any]]
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for i, s in enumerate(self.steps):
            if not isinstance(s, Mapping) or "method" not in s:
                raise ConfigError(f"degradation step {i} must be a mapping with a 'method' key")
            # Validate names now, with the range bounds as stand-ins, so errors come early.
            make_degradation(
                s["method"], **{k: _midpoint(v) for k, v in s.items() if k != "method"}
            )
        self._rng = random.Random(self.seed)

    def sample(self, rng: random.Random | None = None) -> Pipeline:
        rng = rng or self._rng
        steps = []
        for s in self.steps:
            drawn = {k: _draw(k, v, rng) for k, v in s.items() if k != "method"}
            steps.append(make_degradation(s["method"], **drawn))
        return Pipeline(steps, seed=rng.randrange(2**31))


def _midpoint(v: Any) -> Any:
    if isinstance(v, Mapping) and "choice" in v:
        return v["choice"][0]
    if isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 2:
        return (v[0] + v[1]) / 2
    return v


def _draw(key: str, v: Any, rng: random.Random) -> Any:
    if isinstance(v, Mapping):
        if set(v) != {"choice"} or not v["choice"]:
            raise ConfigError(f"'{key}': a mapping value must be {{'choice': [...]}}")
        return rng.choice(list(v["choice"]))
    if isinstance(v, Sequence) and not isinstance(v, str):
        if len(v) != 2 or not all(isinstance(b, int | float) for b in v) or v[0] > v[1]:
            raise ConfigError(f"'{key}': a range must be [low, high] with low <= high, got {v}")
        return rng.uniform(float(v[0]), float(v[1]))
    return v


def from_config(cfg: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> RandomPipeline:
    """``{"steps": [...], "seed": N}`` or a bare list of steps → :class:`RandomPipeline`."""
    if isinstance(cfg, Mapping):
        extra = sorted(set(cfg) - {"steps", "seed"})
        if extra:
            raise ConfigError(f"degradation config: unknown key(s) {extra}; use 'steps' and 'seed'")
        return RandomPipeline(list(cfg.get("steps", [])), cfg.get("seed"))
    return RandomPipeline(list(cfg))


__all__ = ["METHODS", "Pipeline", "RandomPipeline", "from_config", "make_degradation", "AxisMap"]

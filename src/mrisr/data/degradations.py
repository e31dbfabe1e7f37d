"""The degradation a training dataset applies: a recipe's config (or Degradation objects) as a
fixed :class:`~mrisr.degrade.Pipeline` or a :class:`~mrisr.degrade.RandomPipeline`, and whether
it resamples on a k-space grid (which decides how pairs may be flipped)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from mrisr.degrade import METHODS, Degradation, Pipeline, RandomPipeline, from_config
from mrisr.errors import ConfigError


def as_pipeline(degradation: Any) -> Pipeline | RandomPipeline:
    """A :class:`Pipeline` (fixed) or :class:`RandomPipeline` (with ranges) of in-plane steps."""
    d = degradation
    if isinstance(d, Degradation):
        d = Pipeline([d])
    elif isinstance(d, Mapping):
        d = from_config(d)
    elif isinstance(d, Sequence) and not isinstance(d, str) and d:
        if all(isinstance(s, Degradation) for s in d):
            d = Pipeline(list(d))
        elif all(isinstance(s, Mapping) for s in d):
            d = from_config(list(d))
    if not isinstance(d, Pipeline | RandomPipeline) or not d.steps:
        raise ConfigError(
            f"degradation must be a Degradation, a list, a RandomPipeline or a "
            f"config dict with steps; got {degradation!r}"
        )
    if isinstance(d, RandomPipeline):
        values = [v for s in d.steps for k, v in s.items() if k != "method"]
        if not any(isinstance(v, Mapping | list | tuple) for v in values):
            d = d.sample(random.Random(d.seed or 0))  # no ranges: a fixed pipeline
    if isinstance(d, RandomPipeline):
        layouts = [METHODS[s["method"]].layout for s in d.steps]
    else:
        layouts = [s.layout for s in d.steps]
    if any(lay != "in-plane" for lay in layouts):
        raise ConfigError(
            "SRSliceDataset takes in-plane degradations only (slices are 2-D); "
            "apply through-plane steps with mrisr.degrade.degrade_volume"
        )
    return d


def kspace_grid(pipeline: Pipeline | RandomPipeline) -> bool:
    """Whether a step of ``pipeline`` resamples on a centred-FFT (k-space) grid."""
    from mrisr.degrade.kspace import KspaceTruncate, KspaceZerofill

    concrete = (
        pipeline.sample(random.Random(0)) if isinstance(pipeline, RandomPipeline) else pipeline
    )
    return any(isinstance(step, KspaceTruncate | KspaceZerofill) for step in concrete.steps)

"""``mrisr upscale IN... OUT``: super-resolve scans with shipped weights or a checkpoint.

The work (weights, input expansion, plane, acquired resolution, sidecars) is
:func:`mrisr.infer.run.upscale`, which is also the Python API ``mrisr.upscale``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_upscale(
    inputs: list[Path],
    out: Path,
    *,
    checkpoint: Path | None,
    weights: str | None,
    model: str | None,
    scale: int | None,
    guide: Path | None,
    overwrite: bool,
    argv: list[str] | None,
    assume_geometry: bool = False,
    **options: Any,
) -> list[Path]:
    """``options``: :class:`mrisr.infer.upsample.UpscaleOptions` fields."""
    from mrisr.infer.run import upscale

    return upscale(
        inputs,
        out,
        checkpoint=checkpoint,
        model=model,
        weights=weights,
        scale=scale,
        overwrite=overwrite,
        argv=argv,
        guide=guide,
        assume_geometry=assume_geometry,
        **options,
    )

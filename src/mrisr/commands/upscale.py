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
    consistency: bool = False,
    **options: Any,
) -> list[Path]:
    """``options``: :class:`mrisr.infer.upsample.UpscaleOptions` fields; ``consistency``:
    project every output onto the input's central k-space (kspace-truncate models only)."""
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
        consistency=consistency,
        **options,
    )


def run_through_plane(
    inputs: list[Path],
    out: Path,
    *,
    checkpoint: Path | None,
    overwrite: bool,
    argv: list[str] | None,
    thickness: float | None,
    profile: str,
    steps: int,
    consistency: bool,
    axis: int | None,
    device: str,
    progress: bool,
    assume_geometry: bool,
    voxel: float | None = None,
    combine: str = "mean",
    from_scratch: bool = False,
    run_dir: Path | None = None,
    scale: int | None = None,
    weights: str | None = None,
) -> Path:
    """``mrisr upscale IN OUT --through-plane``: one scan, its slice direction restored (and,
    with ``--scale`` / ``--weights``, then its plane)."""
    from mrisr.errors import ConfigError
    from mrisr.infer.through_plane import ThroughPlaneOptions, upscale_through_plane

    if len(inputs) != 1:
        raise ConfigError(f"--through-plane takes one input scan, not {len(inputs)}")
    opts = ThroughPlaneOptions(
        thickness_mm=thickness,
        profile=profile,
        steps=steps,
        consistency=consistency,
        voxel_mm=voxel,
        axis=axis,
        device=device,
        progress=progress,
        combine=combine,
        run_dir=run_dir,
    )
    return upscale_through_plane(
        inputs[0], out, opts, checkpoint=checkpoint, overwrite=overwrite, argv=argv,
        assume_geometry=assume_geometry, from_scratch=from_scratch, in_plane_scale=scale,
        in_plane_weights=weights,
    )  # fmt: skip

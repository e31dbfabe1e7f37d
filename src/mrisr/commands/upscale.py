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
    bids: bool = False,
    suffix: str = "T2w",
    participants: list[str] | None = None,
    report: bool = False,
    **options: Any,
) -> list[Path]:
    """``options``: :class:`mrisr.infer.upsample.UpscaleOptions` fields; ``consistency``:
    project every output onto the input's central k-space (kspace-truncate models only);
    ``bids``: IN is a BIDS dataset, OUT a derivatives folder (:func:`run_upscale_bids`)."""
    from mrisr.infer.run import upscale

    if bids:
        return run_upscale_bids(
            inputs, out, suffix=suffix, participants=participants, checkpoint=checkpoint,
            weights=weights, model=model, scale=scale, guide=guide, overwrite=overwrite,
            argv=argv, assume_geometry=assume_geometry, consistency=consistency, **options,
        )  # fmt: skip
    html = report_path(inputs, out, overwrite) if report else None  # before any work
    written = upscale(
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
    if html is not None:
        _write_report(html, inputs[0], written[0], overwrite)
    return written


def report_path(inputs: list[Path], out: Path, overwrite: bool) -> Path:
    """``--report``: ``OUT`` with ``.html`` for ``.nii[.gz]`` (one input scan), writable."""
    from mrisr.errors import ConfigError
    from mrisr.io.atomic import check_writable

    if len(inputs) != 1:
        raise ConfigError(f"--report goes with one input scan, not {len(inputs)}")
    name = out.name
    for ext in (".nii.gz", ".nii"):
        name = name[: -len(ext)] if name.endswith(ext) else name
    html = out.with_name(name + ".html")
    check_writable(html, overwrite)
    return html


def _write_report(html: Path, inp: Path, result: Path, overwrite: bool) -> None:
    """The input (nearest neighbour on the result's grid) and the result in linked viewers,
    with the result's sidecar as provenance (docs/report.md)."""
    import json

    from mrisr.commands.report import run_report

    side = json.loads(Path(f"{result}.json").read_text())
    keep = ("model", "checkpoint", "checkpoint_sha256", "seconds", "device", "created",
            "mrisr_version", "through_plane", "adapt", "kspace_consistency")  # fmt: skip
    prov = {"command": side.get("command") or "mrisr upscale"}
    prov |= {k: side[k] for k in keep if k in side}
    run_report(html, [inp, result], labels=["input", "result"], resample=True,
               overwrite=overwrite, provenance=prov)  # fmt: skip


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
    bids: bool = False,
    report: bool = False,
) -> Path:
    """``mrisr upscale IN OUT --through-plane``: one scan, its slice direction restored (and,
    with ``--scale`` / ``--weights``, then its plane)."""
    from mrisr.errors import ConfigError
    from mrisr.infer.through_plane import ThroughPlaneOptions, upscale_through_plane

    if bids:
        raise ConfigError("--through-plane works on one scan, not with --bids")
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
    html = report_path(inputs, out, overwrite) if report else None  # before any work
    written = upscale_through_plane(
        inputs[0], out, opts, checkpoint=checkpoint, overwrite=overwrite, argv=argv,
        assume_geometry=assume_geometry, from_scratch=from_scratch, in_plane_scale=scale,
        in_plane_weights=weights,
    )  # fmt: skip
    if html is not None:
        _write_report(html, inputs[0], written, overwrite)
    return written


def run_upscale_bids(
    inputs: list[Path],
    out: Path,
    *,
    suffix: str,
    participants: list[str] | None,
    overwrite: bool,
    argv: list[str] | None,
    guide: Path | None = None,
    **kwargs: Any,
) -> list[Path]:
    """``mrisr upscale BIDS_ROOT OUT_DERIV --bids``: every anatomical ``*_<suffix>`` scan of
    the dataset (or of ``participants``) super-resolved into a BIDS-derivatives dataset
    (:mod:`mrisr.io.bids`). The scans go through :func:`run_upscale` into a hidden staging
    folder inside OUT_DERIV (one model load; one bad scan does not stop the others); each
    output is then renamed to its BIDS name together with its BIDS sidecar, atomically."""
    import contextlib
    import json
    import os
    import shutil
    import sys
    import tempfile

    from mrisr.errors import ConfigError, InputError
    from mrisr.io import bids
    from mrisr.io.atomic import atomic_outputs, emit_text, strict_json, write_json_atomic
    from mrisr.provenance import sidecar_path

    if len(inputs) != 1:
        raise ConfigError(
            f"--bids takes one BIDS root and OUT_DERIV, not {len(inputs)} inputs (give several "
            "participants as --participant-label 01,02 or repeat --participant-label)"
        )
    if guide is not None:
        raise ConfigError("--bids does not take --guide (multi-contrast models)")
    root, out = Path(inputs[0]), Path(out)
    scans = bids.find_scans(root, suffix, participants)
    bids.check_outputs(root, out, scans, overwrite)  # before any work
    created = not out.exists()
    out.mkdir(exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".mrisr-stage-", dir=out))
    failure: InputError | None = None
    written: list[Path] = []
    try:
        said = _StagedLines(sys.stdout, f"wrote {stage}{os.sep}")
        try:
            with contextlib.redirect_stdout(said):  # "staged <name> <shape> ...", not the path
                staged = run_upscale([s.path for s in scans], stage, overwrite=False, argv=argv,
                                     guide=None, **kwargs)  # fmt: skip
        except InputError as exc:  # several scans, some failed: keep the good ones
            if not hasattr(exc, "written"):
                raise
            staged, failure = exc.written, exc
        by_input = {s.path.resolve(): s for s in scans}
        for w in staged:
            meta = json.loads(sidecar_path(w).read_text())
            scan = by_input[Path(meta["input"]).resolve()]
            dst, side = out / scan.out_relpath, out / bids.json_relpath(scan.out_relpath)
            meta["output"] = str(dst)
            dst.parent.mkdir(parents=True, exist_ok=True)
            with atomic_outputs([dst, side], overwrite=overwrite) as (tmp_img, tmp_json):
                os.replace(w, tmp_img)
                tmp_json.write_text(strict_json(bids.bids_sidecar(scan, meta), indent=2) + "\n")
            print(f"wrote {dst} (+ {side.name})")
            written.append(dst)
        if written:
            desc = bids.dataset_description(root, argv)
            write_json_atomic(out / "dataset_description.json", desc, overwrite=True)
            if not (out / "README.md").exists():
                emit_text(bids.readme(desc), out / "README.md", overwrite=False)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):  # nothing written: no trace
            out.rmdir()
    if failure is not None:
        raise failure
    return written


class _StagedLines:
    """A stdout that says ``staged <name>`` where :func:`run_upscale` says ``wrote
    <staging folder>/<name>`` (the staging folder is gone when the command ends)."""

    def __init__(self, target: Any, prefix: str) -> None:
        self.target, self.prefix = target, prefix

    def write(self, text: str) -> int:
        self.target.write(text.replace(self.prefix, "staged "))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

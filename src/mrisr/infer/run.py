"""``mrisr upscale``: inputs (files, folders, lists) → checkpoint → NIfTI outputs + sidecars.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the list of scans is split across ranks; each rank
writes its own files, so no gathering is needed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mrisr.errors import ConfigError, InputError, MrisrError, OutputError
from mrisr.io.formats import expand_folder, split_suffix

#: How deep ``.txt`` lists may name other lists.
MAX_LIST_DEPTH = 8


def expand_inputs(inputs: Sequence[Path], _seen: tuple[Path, ...] = ()) -> list[Path]:
    """Files stay; a folder holding scan files becomes its sorted scans; any other folder is
    one DICOM series; a ``.txt`` file lists one path per line (``#`` comments; lists may name
    lists, up to :data:`MAX_LIST_DEPTH` deep; a list that names itself, directly or through
    another list, is a one-line InputError)."""
    found: list[Path] = []
    for p in inputs:
        p = Path(p)
        if not p.exists():
            where = f" (listed in '{_seen[-1]}')" if _seen else ""
            raise InputError(f"input '{p}' does not exist{where}")
        if p.is_file() and p.suffix == ".txt":
            key = p.resolve()
            if key in _seen:
                chain = " -> ".join(str(q) for q in (*_seen, key))
                raise InputError(f"input list '{p}' includes itself ({chain})")
            if len(_seen) >= MAX_LIST_DEPTH:
                raise InputError(
                    f"input list '{p}' is nested more than {MAX_LIST_DEPTH} lists deep; "
                    "list the scans (or their folders) directly"
                )
            try:
                text = p.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or "not a UTF-8 text file"
                raise InputError(f"cannot read input list '{p}': {why}") from None
            lines = [ln.strip() for ln in text.splitlines()]
            named = [Path(ln) for ln in lines if ln and not ln.startswith("#")]
            found += expand_inputs(named, (*_seen, key)) if named else []
        else:
            found += expand_folder(p)
    if not found and not _seen:
        raise InputError("no input scans found")
    return found


def output_name(inp: Path, scale: int) -> str:
    return f"{split_suffix(inp)[0]}_sr_x{scale}.nii.gz"


def plan_outputs(inputs: list[Path], out: Path, scale: int) -> list[Path]:
    """One output per input: OUT itself for one input (unless OUT is a folder), else
    OUT/<name>_sr_x<s>.nii.gz."""
    if len(inputs) == 1 and not out.is_dir() and not str(out).endswith(os.sep):
        return [out]
    if not out.is_dir():
        if out.exists():
            raise OutputError(f"'{out}' is a file; several inputs need an output folder")
        if not out.parent.is_dir():
            raise OutputError(f"output folder '{out.parent}' does not exist; create it first")
        out.mkdir(exist_ok=True)  # ranks under torchrun may race to create it
    outs = [out / output_name(p, scale) for p in inputs]
    if len(set(outs)) != len(outs):
        raise ConfigError("two inputs map to the same output name; upscale them separately")
    return outs


def degraded_slice_axis(src: Path) -> int | None:
    """The slice axis recorded by ``mrisr degrade`` in ``<src>.json``, if that sidecar exists.

    After an in-plane degradation the in-plane spacing can be coarser than the slice spacing
    (IXI T2 at ×2: 1.875 mm in-plane, 1.25 mm slices), so the default "coarsest spacing"
    rule would pick the wrong axis; the sidecar knows which axes were degraded.
    """
    import json

    side = src.with_name(src.name + ".json")
    if not src.is_file() or not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    axis = meta.get("slice_axis") if isinstance(meta, dict) and "degradation" in meta else None
    return axis if isinstance(axis, int) and 0 <= axis <= 2 else None


def _with_sidecar_axis(opts: Any, src: Path) -> Any:
    if opts.axis is not None:
        return opts
    axis = degraded_slice_axis(src)
    if axis is None:
        return opts
    import dataclasses

    print(f"{src.name}: slice axis {axis} from its mrisr degrade sidecar (--axis overrides)")
    return dataclasses.replace(opts, axis=axis, axis_source="mrisr degrade sidecar")


def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def upscale(
    inputs: Sequence[str | Path] | str | Path,
    out: str | Path,
    checkpoint: str | Path | None = None,
    model: str | None = None,
    weights: str | None = None,
    scale: int | None = None,
    overwrite: bool = False,
    argv: list[str] | None = None,
    guide: str | Path | None = None,
    assume_geometry: bool = False,
    adapt_steps: int | None = None,
    **options: Any,
) -> list[Path]:
    """Super-resolve scans with a checkpoint; the Python twin of ``mrisr upscale``.

    ``adapt_steps``: fine-tune the checkpoint on each scan's own re-degraded pairs first
    (:func:`mrisr.infer.adapt.adapt`, at most that many steps; the sidecar's ``adapt``).

    ``assume_geometry``: read inputs whose header lacks spacing / orientation / position
    (what was assumed goes into each sidecar as ``input_assumed_geometry``).

    Without ``checkpoint``, the shipped ``weights`` (a name of :data:`mrisr.weights.SHIPPED`)
    or the default weights for ``scale`` (×2 when None; k-space-truncation models; with
    ``guide``, the multi-contrast SANet T1 → T2 weights) are used.

    ``options`` are :class:`mrisr.infer.upsample.UpscaleOptions` fields (axis, tile, batch,
    ensemble, device, compile, max_memory_mb, progress, consistency, ...). ``guide``: the
    high-resolution scan of the guide contrast, for multi-contrast checkpoints (one input
    scan). Returns the written paths.

    Several scans (a folder, a list): every output name is checked before any work; then each
    scan is read, checked and super-resolved on its own. A scan that fails (corrupt, empty,
    a plane refused, ...) gets one line on stderr, ``mrisr: error: <scan>: <why>``, and the
    others go on; each good output is written whole, atomically with its sidecar. If any scan
    failed, an :class:`InputError` follows at the end (``N of M scans failed (...)``; the CLI
    exits 2) carrying ``written`` and ``failed``. One scan: its error is raised as it is.
    """
    from mrisr.checkpoint import load_checkpoint
    from mrisr.infer.upsample import UpscaleOptions, check_guide, pick_device, upscale_volume
    from mrisr.io import load_volume
    from mrisr.io.geometry import check_plane, choose_plane
    from mrisr.io.nifti import check_nifti_output
    from mrisr.metrics.acquired import acquired_resolution, sidecar_record
    from mrisr.provenance import sidecar_header, working_gain, write_volume_with_sidecar

    if isinstance(inputs, str | Path):
        inputs = [inputs]
    if checkpoint is not None and weights is not None:
        raise ConfigError("give either --checkpoint DIR or --weights NAME, not both")
    if checkpoint is None:
        from mrisr.weights import default_weights, shipped_path

        if model is not None:
            from mrisr.models.registry import get_spec

            get_spec(model)  # unknown names fail with the list of models
        checkpoint = shipped_path(weights or default_weights(scale, model, guide is not None))
    opts = UpscaleOptions(**options)
    rank, world = rank_and_world()
    if world > 1 and opts.device in ("auto", "cuda") and __import__("torch").cuda.is_available():
        opts.device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
    net, ckpt = load_checkpoint(checkpoint, map_location=str(pick_device(opts.device)))
    if model is not None and model != ckpt.name:
        raise ConfigError(f"--model {model} does not match the checkpoint's model {ckpt.name}")
    if scale is not None and scale != ckpt.scale:
        raise ConfigError(f"--scale {scale}: this checkpoint is trained for x{ckpt.scale}")
    check_guide(net, guide is not None, ckpt.name)
    if opts.consistency:  # a model not trained on kspace-truncate: refused before any work
        from mrisr.degrade.kspace_consistency import check_consistency

        check_consistency(ckpt.training, ckpt.scale)
    if adapt_steps is not None:  # before any work
        from mrisr.infer.adapt import AdaptOptions

        adapt_opts = AdaptOptions(steps=adapt_steps, device=opts.device, progress=opts.progress)
        if guide is not None:
            raise ConfigError("--adapt works with single-contrast models (not with --guide)")
        if not (ckpt.training or {}).get("degradation"):
            raise ConfigError(f"--adapt: checkpoint '{ckpt.path}' records no degradation")
    scans = expand_inputs([Path(p) for p in inputs])
    guide_vol = None
    if guide is not None:
        if len(scans) != 1:
            raise ConfigError(f"--guide goes with one input scan, not {len(scans)}")
        guide_vol = load_volume(guide, assume_geometry=assume_geometry)
    outs = plan_outputs(scans, Path(out), ckpt.scale)
    # This rank's share; other ranks check and write their own files concurrently.
    mine = list(zip(scans, outs, strict=True))[rank::world]
    for _, o in mine:  # fail before any work: a bad name, an existing file, no folder
        check_nifti_output(o, overwrite)

    def one(src: Path, dst: Path) -> Path:
        vol = load_volume(src, assume_geometry=assume_geometry)
        t0 = time.time()
        scan_opts = _with_sidecar_axis(opts, src)
        plane = choose_plane(vol.zooms, vol.shape, scan_opts.axis)
        check_plane(plane, scan_opts.force_plane)  # before any work
        if plane.ambiguous:
            print(f"warning: {src.name}: {plane.ambiguous}", file=sys.stderr)
        gain = working_gain(vol.data)  # the spectrum is scale-free; no overflow at the gain
        tame = vol.data if gain == 1.0 else vol.data * gain
        acq = acquired_resolution(tame, vol.zooms, plane.slice_axis, vol.meta)
        if acq["interpolated"]:
            print(
                f"warning: {src.name}: {acq['summary']}; a x{ckpt.scale} model trained on "
                "natively sampled scans may score below zero-fill here",
                file=sys.stderr,
            )
        scan_net, adapted = net, None
        if adapt_steps is not None:
            from mrisr.infer.adapt import adapt

            print(f"adapting {ckpt.name} to {src.name}", file=sys.stderr)
            scan_net, adapted = adapt(vol, ckpt, plane.slice_axis, adapt_opts, src.name)
        result, record = upscale_volume(
            vol,
            scan_net,
            ckpt.scale,
            normalisation=ckpt.normalisation,
            training=ckpt.training,
            options=scan_opts,
            guide=guide_vol,
        )
        sidecar = {
            **sidecar_header(argv, {"input": src, "guide": guide}, created=t0),
            "output": str(dst),
            "model": ckpt.name,
            "checkpoint": str(ckpt.path),
            "checkpoint_sha256": ckpt.sha256,
            "rank": rank,
            "world_size": world,
            **record,
            "input_acquired_resolution": sidecar_record(acq),
            **({"adapt": adapted} if adapted is not None else {}),
        }
        if vol.meta.get("assumed_geometry"):
            sidecar["input_assumed_geometry"] = list(vol.meta["assumed_geometry"])
        write_volume_with_sidecar(result, dst, sidecar, overwrite)
        used = record["plane"]
        a, b = used["in_plane_axes"]
        print(
            f"wrote {dst} {result.shape} zooms {tuple(round(z, 4) for z in result.zooms)} mm, "
            f"plane of axes {a},{b} ({used['rule']}) ({record['seconds']:.1f} s)"
        )
        return dst

    written: list[Path] = []
    failed: list[Path] = []
    for src, dst in mine:
        if len(mine) == 1:  # one scan: its error is the error
            written.append(one(src, dst))
            continue
        try:
            written.append(one(src, dst))
        except MrisrError as exc:  # this scan only: say why, go on with the others
            print(f"mrisr: error: {src}: {exc}", file=sys.stderr)
            failed.append(src)
    if failed:
        names = ", ".join(p.name for p in failed[:5]) + (", ..." if len(failed) > 5 else "")
        err = InputError(
            f"{len(failed)} of {len(mine)} scans failed ({names}); wrote the other "
            f"{len(written)}, each complete with its sidecar"
        )
        err.written, err.failed = written, failed  # type: ignore[attr-defined]
        raise err
    return written

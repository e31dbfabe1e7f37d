"""Through-plane SR of a thick-slice scan, learned from the scan itself (``mrisr upscale
--through-plane``).

1. The slice axis is the one whose spacing differs from the other two; ``k`` = slice spacing /
   in-plane spacing (refused below 1.2 unless forced, and above 8). The slice profile is
   ``rect`` or ``gaussian`` with FWHM = the slice thickness (``--thickness``, else the DICOM
   SliceThickness, else the spacing), a sampled profile (``.npy``, from ``mrisr learn-kernel
   --through-plane``), or ``learn``: learned from the scan first
   (:func:`mrisr.train.slice_profile.learn_profile`).
2. A :class:`~mrisr.models.throughplane.ThroughPlaneNet` — the shipped prior, a given
   checkpoint, or fresh (whose output is the B-spline baseline) — is trained for up to
   ``steps`` steps on pairs made from the scan's own in-plane slices
   (:class:`~mrisr.data.through_plane_pairs.ThroughPlanePairs`) by the training engine
   (recipe ``throughplane_scan``: GPU and AMP as any run; resumable in ``run_dir``), stopping
   early when the loss stops improving.
3. The acquired slices are B-spline interpolated onto the fine grid at their true positions; the
   network refines the slice direction in both orthogonal planes that contain it, and the two
   are combined: averaged, or by Fourier burst accumulation (``combine="fba"``). A self-check
   first scores the network against the B-spline on 32 unseen pairs of the scan's own
   in-plane slices; if it does worse, the B-spline is returned (with a warning).
4. Data consistency: the relative residual ``‖A·x − y‖/‖y‖`` of re-acquiring the output is
   recorded; ``consistency=True`` projects the output onto ``{x : A·x = y}`` (exact, 1-D).

The output keeps the orientation and field of view; its affine puts output sample ``i`` of the
slice axis at acquired-slice index ``(i − p₀)/k`` (:func:`mrisr.degrade.through_plane.output_grid`).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrisr.data.through_plane_pairs import (
    MAX_K,
    MIN_K,
    SliceModel,
    ThroughPlanePairs,
    in_plane_slices,
    slice_model_for,
)
from mrisr.degrade.through_plane import operator, output_grid, project, residual, spline_to_grid
from mrisr.errors import ConfigError
from mrisr.io.geometry import grid_affine
from mrisr.io.volume import Volume

__all__ = ["MAX_K", "MIN_K", "ThroughPlaneOptions", "restore", "upscale_through_plane"]

PRIOR = "throughplane-prior"  # the shipped weights a run starts from unless told otherwise
COMBINE = ("mean", "fba")


@dataclass
class ThroughPlaneOptions:
    """How to restore the slice direction (see the module doc)."""

    thickness_mm: float | None = None
    profile: str | np.ndarray = "rect"  # rect, gaussian, learn, a .npy path, or the taps
    steps: int = 300
    batch: int = 8
    patch: int = 48
    lr: float = 5e-4
    seed: int = 0
    consistency: bool = False
    axis: int | None = None
    force: bool = False
    device: str = "auto"
    precision: str = "auto"  # trainer.precision: auto (bf16-mixed on a bf16 CPU), 32, ...
    progress: bool = True
    patience: int = 100  # stop when the logged loss has not improved by 1 % in this many steps
    voxel_mm: float | None = None  # output spacing along the slice axis (default: in-plane)
    combine: str = "mean"  # how the two planes' estimates are combined: mean or fba
    fba_power: float = 4.0
    run_dir: str | Path | None = None  # keep (and resume) the training run here


def fit(
    slices: np.ndarray,
    model: SliceModel,
    facts: dict[str, Any],
    opts: ThroughPlaneOptions,
    checkpoint: str | Path | None,
    name: str,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train on the scan's own pairs (recipe ``throughplane_scan``, through
    :func:`mrisr.train.per_scan.fit_in_memory`), from ``checkpoint`` when given; returns the
    trained network (eval mode) and the run's record."""
    from mrisr.train.config import load_config
    from mrisr.train.per_scan import accelerator, fit_in_memory, precision

    over = [
        "data.train=demo",  # replaced: the scan is handed over in memory
        f"train.steps={opts.steps}",
        f"data.batch_size={opts.batch}",
        f"through_plane.patch={opts.patch}",
        f"optim.lr={opts.lr}",
        f"train.seed={opts.seed}",
        f"train.stop_patience={opts.patience}",
        f"train.progress={'auto' if opts.progress else 'off'}",
        f"trainer.accelerator={accelerator(opts.device)}",
        f"trainer.precision={precision(opts.precision, opts.device)}",
    ]
    if checkpoint is not None:
        over.append(f"model.init_from={checkpoint}")
    cfg = load_config("throughplane_scan", over)
    if checkpoint is not None:  # fine-tune the network the checkpoint holds, whatever its size
        from mrisr.checkpoint import read_config

        init = read_config(checkpoint)[1]["init_args"]
        cfg.model.args = {k: v for k, v in init.items() if k != "scale"}
    ds = ThroughPlanePairs(
        slices, model, opts.patch, cfg.data.samples_per_epoch or 4096, opts.seed, facts, name
    )
    argv = ["mrisr", "upscale", name, "--through-plane"]
    net, _, record = fit_in_memory(cfg, ds, name, opts.run_dir, argv)
    return net, {**record, "patch": ds.patch, "batch": opts.batch, "lr": opts.lr,
                 "precision": cfg.trainer.precision}  # fmt: skip


@torch.no_grad()
def self_check(
    net: torch.nn.Module, slices: np.ndarray, model: SliceModel, opts: ThroughPlaneOptions,
    device: torch.device,
) -> dict[str, Any]:  # fmt: skip
    """The guard against a network that would do harm: on 32 pairs of the scan's own
    in-plane slices that training did not draw (another seed), the mean |error| of the
    network and of the B-spline input it refines; the network is used only if it is lower."""
    from mrisr.data.through_plane_pairs import batch, signal_slices

    x, y = batch(slices, model, 32, opts.patch, opts.seed + 7919, 0, signal_slices(slices))
    net.eval()
    pred = _refine(net, x[:, 0], device, lambda _n: None)
    e_net, e_spline = float(np.abs(pred - y[:, 0]).mean()), float(np.abs(x - y).mean())
    return {"pairs": 32, "l1_network": round(e_net, 6), "l1_bspline": round(e_spline, 6),
            "used": "network" if e_net < e_spline else "bspline"}  # fmt: skip


@torch.no_grad()
def _refine(
    net: torch.nn.Module, images: np.ndarray, device: torch.device, bar: Any, n: int = 4
) -> np.ndarray:
    """``images [N, H, W]`` → the network's output, ``n`` at a time (float32)."""
    out = np.empty_like(images, dtype=np.float32)
    for i in range(0, images.shape[0], n):
        xb = torch.from_numpy(np.ascontiguousarray(images[i : i + n], np.float32)[:, None])
        out[i : i + n] = net(xb.to(device))[:, 0].float().cpu().numpy()
        bar(len(xb))
    return out


def fourier_burst(estimates: list[np.ndarray], power: float = 4.0) -> np.ndarray:
    """Fourier burst accumulation (Delbracio & Sapiro 2015, as ECLARE combines its passes):
    each 3-D frequency is the estimates' weighted mean with weights ``|F_i|^p / Σ_j |F_j|^p``,
    so whichever estimate kept more energy at a frequency wins it. ``p = 0`` is the mean."""
    spectra = [np.fft.rfftn(e.astype(np.float64)) for e in estimates]
    mags = [np.abs(f) ** power for f in spectra]
    total = np.sum(mags, axis=0)
    total[total == 0] = 1.0
    acc = sum(w * f for w, f in zip(mags, spectra, strict=True)) / total
    shape = estimates[0].shape
    return np.fft.irfftn(acc, s=shape, axes=tuple(range(len(shape)))).astype(np.float32)


def restore(
    volume: Volume,
    opts: ThroughPlaneOptions | None = None,
    checkpoint: str | Path | None = None,
    name: str = "scan",
) -> tuple[Volume, dict[str, Any]]:
    """The restored volume (slice axis at the in-plane spacing, or ``voxel_mm``) and what was
    done. ``checkpoint``: a throughplane-resnet folder to start from (None: a fresh network)."""
    from mrisr.checkpoint import load_checkpoint
    from mrisr.infer.upsample import clamp_to_input_range, pick_device

    opts = opts or ThroughPlaneOptions()
    t0 = time.perf_counter()
    v = opts.voxel_mm
    if v is not None and not (math.isfinite(v) and v > 0):  # before any work
        raise ConfigError(f"--voxel must be a positive number of mm, got {v}")
    if opts.combine not in COMBINE:
        raise ConfigError(f"--combine must be one of {', '.join(COMBINE)}, got '{opts.combine}'")
    if isinstance(opts.profile, str) and opts.profile not in ("rect", "gaussian"):
        raise ConfigError(
            f"profile '{opts.profile}': restore() takes rect, gaussian or the taps; read a "
            ".npy with mrisr.degrade.profile.read_profile (or use upscale_through_plane)"
        )
    z, model, facts = slice_model_for(
        volume, opts.thickness_mm, opts.profile, opts.axis, opts.force
    )
    device = pick_device(opts.device)
    torch.manual_seed(opts.seed)
    data = np.moveaxis(volume.data, z, 0).astype(np.float32)  # [m, A, B]
    scale = float(np.percentile(data, 99.5)) or 1.0
    x = data / scale
    training: dict[str, Any] = {"steps": 0}
    if opts.steps:
        net, training = fit(in_plane_slices(x, 0), model, facts, opts, checkpoint, name)
    elif checkpoint is not None:
        net = load_checkpoint(checkpoint)[0]
    else:  # no network at all: the B-spline interpolation, without a check or a warning
        net = None
    t_inf = time.perf_counter()
    if net is None:
        check: dict[str, Any] = {"used": "bspline", "why": "no checkpoint and no training"}
    else:
        net = net.to(device).eval()
        check = self_check(net, in_plane_slices(x, 0), model, opts, device)
    m = x.shape[0]
    n, pos = output_grid(m, model.k)
    base = spline_to_grid(x, pos, n, 0).astype(np.float32)  # [n, A, B]
    if net is None:
        out = base
    elif check["used"] == "bspline":
        print(
            "warning: the network scores below cubic B-spline on the scan's own in-plane "
            f"pairs (mean |error| {check['l1_network']:.4g} vs {check['l1_bspline']:.4g}); "
            "returning the B-spline interpolation (train on the scan: --steps)",
            file=sys.stderr,
        )
        out = base
    else:
        out = _both_planes(net, base, opts, device)
    a = operator(n, pos, model.profile, model.fwhm)
    hr = np.moveaxis(out * scale, 0, z).astype(np.float32)
    clamp = clamp_to_input_range(hr, volume)  # before the projection: it must come last
    out = np.moveaxis(hr, z, 0) / scale
    before = residual(a, out, x, 0)
    after = None
    if opts.consistency:
        out = project(a, out, x, 0)
        after = residual(a, out, x, 0)
        hr = np.moveaxis(out * scale, 0, z).astype(np.float32)
    affine = grid_affine(volume.affine, {z: (1.0 / model.k, -pos[0] / model.k)})
    if opts.voxel_mm is not None:
        hr, affine = _resample_slice_axis(hr, affine, z, facts["in_plane_mm"], opts.voxel_mm)
    result = volume.replace(np.ascontiguousarray(hr), affine)
    record = {
        "through_plane": {
            **facts,
            "acquired_slices": m,
            "output_slices": n,
            "slice_model": model.describe(),
            "training": training,
            "combine": opts.combine,
            "self_check": check,
            "consistency_residual": before,
            "consistency_projected": opts.consistency,
            **({"consistency_residual_after": after} if after is not None else {}),
        },
        "input_shape": list(volume.shape),
        "output_shape": list(result.shape),
        "output_zooms_mm": [round(v, 6) for v in result.zooms],
        "clamp": clamp,
        "device": str(device),
        "inference_seconds": round(time.perf_counter() - t_inf, 3),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return result, record


def _both_planes(
    net: torch.nn.Module, base: np.ndarray, opts: ThroughPlaneOptions, device: torch.device
) -> np.ndarray:
    """The network along the slice axis (dim 0 of ``base``) in both orthogonal planes that
    contain it, combined by mean or Fourier burst accumulation."""
    from mrisr.progress import slice_progress

    bar = slice_progress(opts.progress, base.shape[1] + base.shape[2], "restoring both planes")
    try:
        plane_a = np.moveaxis(_refine(net, np.moveaxis(base, 2, 0), device, bar), 0, 2)
        plane_b = np.moveaxis(_refine(net, np.moveaxis(base, 1, 0), device, bar), 0, 1)
    finally:
        bar(0, done=True)
    if opts.combine == "fba":
        return fourier_burst([plane_a, plane_b], opts.fba_power)
    return 0.5 * (plane_a + plane_b)


def _resample_slice_axis(
    hr: np.ndarray, affine: np.ndarray, z: int, d: float, voxel: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cubic B-spline from the in-plane-spacing grid onto ``voxel`` mm along ``z``, centred on
    the same field of view (``n·d`` mm); the affine follows."""
    from scipy.interpolate import make_interp_spline

    if not (math.isfinite(voxel) and voxel > 0):
        raise ConfigError(f"--voxel must be a positive number of mm, got {voxel}")
    n = hr.shape[z]
    n2 = max(1, int(round(n * d / voxel)))
    step = voxel / d
    at = (n - 1) / 2 + (np.arange(n2) - (n2 - 1) / 2) * step  # in the d grid's indices
    spl = make_interp_spline(np.arange(n), hr.astype(np.float64), k=min(3, n - 1), axis=z)
    out = spl(np.clip(at, 0, n - 1)).astype(np.float32)
    return out, grid_affine(affine, {z: (step, float(at[0]))})


def resolve_prior(checkpoint: str | Path | None, from_scratch: bool) -> Path | None:
    """The checkpoint a run starts from: ``checkpoint`` (a folder or shipped name), else the
    shipped prior (:data:`PRIOR`), or none with ``from_scratch``."""
    from mrisr.weights import HERE, resolve_checkpoint

    if from_scratch:
        if checkpoint is not None:
            raise ConfigError("--from-scratch and --checkpoint contradict each other; give one")
        return None
    if checkpoint is None:  # the shipped prior, when this installation has it
        return resolve_checkpoint(PRIOR) if (HERE / PRIOR / "config.json").is_file() else None
    return resolve_checkpoint(checkpoint)


def upscale_through_plane(
    inp: str | Path,
    out: str | Path,
    opts: ThroughPlaneOptions | None = None,
    checkpoint: str | Path | None = None,
    overwrite: bool = False,
    argv: list[str] | None = None,
    assume_geometry: bool = False,
    from_scratch: bool = False,
    in_plane_scale: int | None = None,
    in_plane_weights: str | Path | None = None,
) -> Path:
    """Files in, files out: ``out`` (NIfTI) and ``out.json`` with the through-plane record,
    the slice profile, the consistency residual and the checkpoint it started from (the
    shipped prior unless ``checkpoint`` / ``from_scratch`` say otherwise). With
    ``in_plane_scale`` the restored volume is then super-resolved in-plane by that factor
    (``in_plane_weights``: shipped name or folder; default the shipped k-space model). The
    Python twin of ``mrisr upscale IN OUT --through-plane``."""
    from mrisr.checkpoint import load_checkpoint
    from mrisr.io import load_volume
    from mrisr.io.nifti import check_nifti_output
    from mrisr.provenance import sidecar_header, write_volume_with_sidecar

    opts = opts or ThroughPlaneOptions()
    out = Path(out)
    check_nifti_output(out, overwrite)  # before any work
    if not Path(inp).exists():
        raise ConfigError(f"input '{inp}' does not exist")
    start = resolve_prior(checkpoint, from_scratch)
    ck = None
    if start is not None:
        ck = load_checkpoint(start)[1]
        if ck.name != "throughplane-resnet":
            raise ConfigError(
                f"--through-plane needs a throughplane-resnet checkpoint, not '{ck.name}'"
            )
    in_plane = _in_plane_model(in_plane_scale, in_plane_weights)
    learned = None
    if isinstance(opts.profile, str) and opts.profile == "learn":
        from mrisr.train.slice_profile import learn_profile

        print("learning the slice profile from the scan", file=sys.stderr)
        taps, learned = learn_profile(
            inp, seed=opts.seed, axis=opts.axis, scratch=out.parent,
            progress="auto" if opts.progress else "off",
        )  # fmt: skip
        opts.profile = taps
    elif isinstance(opts.profile, str) and opts.profile not in ("rect", "gaussian"):
        from mrisr.degrade.profile import read_profile

        opts.profile = np.asarray(read_profile(opts.profile)[0], dtype=np.float64)
    vol = load_volume(inp, assume_geometry=assume_geometry)
    t0 = time.time()
    result, record = restore(vol, opts, start, Path(inp).name)
    if learned is not None:
        keep = ("fwhm_mm", "fwhm_vox", "centre_vox", "steps", "wall_s")
        record["through_plane"]["learned_profile"] = {k: learned.get(k) for k in keep}
    if in_plane is not None:
        from mrisr.infer.upsample import UpscaleOptions, upscale_volume

        net2, ck2, s2 = in_plane
        z = record["through_plane"]["slice_axis"]
        o2 = UpscaleOptions(axis=z, axis_source="--through-plane", progress=opts.progress,
                            device=opts.device)  # fmt: skip
        result, rec2 = upscale_volume(result, net2, s2, ck2.normalisation, ck2.training, o2)
        record["in_plane"] = {"model": ck2.name, "checkpoint": str(ck2.path),
                              "checkpoint_sha256": ck2.sha256, "scale": s2,
                              "seconds": rec2.get("seconds")}  # fmt: skip
    sidecar = {
        **sidecar_header(argv, {"input": inp}, created=t0),
        "output": str(out),
        "model": "throughplane-resnet",
        "checkpoint": str(ck.path) if ck else None,
        "checkpoint_sha256": ck.sha256 if ck else None,
        **record,
    }
    if vol.meta.get("assumed_geometry"):
        sidecar["input_assumed_geometry"] = list(vol.meta["assumed_geometry"])
    write_volume_with_sidecar(result, out, sidecar, overwrite)
    tp = record["through_plane"]
    print(
        f"wrote {out} {result.shape} zooms {tuple(round(v, 4) for v in result.zooms)} mm: slice "
        f"axis {tp['slice_axis']} restored x{tp['k']:.3g} ({tp['training'].get('steps', 0)} "
        f"steps, residual {tp.get('consistency_residual_after', tp['consistency_residual']):.2e}"
        f") ({time.time() - t0:.1f} s)",
        file=sys.stdout,
    )
    return out


def _in_plane_model(scale: int | None, weights: str | Path | None) -> Any:
    """``(net, checkpoint, scale)`` for the in-plane stage, or None without one."""
    if scale is None and weights is None:
        return None
    from mrisr.checkpoint import load_checkpoint
    from mrisr.weights import DEFAULTS, SHIPPED, shipped_path

    if weights is None:
        if scale not in DEFAULTS:
            raise ConfigError(
                f"--scale {scale} with --through-plane: shipped in-plane weights exist for "
                f"{', '.join(f'x{s}' for s in DEFAULTS)}; give --weights for others"
            )
        weights = DEFAULTS[scale]
    path = shipped_path(str(weights)) if str(weights) in SHIPPED else Path(weights)
    net, ck = load_checkpoint(path)
    from mrisr.models.registry import get_spec

    s = int(ck.scale)
    if scale is not None and s != scale:
        raise ConfigError(f"--scale {scale} but the in-plane weights '{weights}' are x{s}")
    if s < 2 or get_spec(ck.name).needs_guide:
        raise ConfigError(
            f"the in-plane stage needs a single-contrast in-plane SR model, not '{ck.name}' x{s}"
        )
    return net, ck, s

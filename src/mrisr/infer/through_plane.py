"""Through-plane SR of a thick-slice scan, learned from the scan itself (``mrisr upscale
--through-plane``).

1. The slice axis is the one whose spacing differs from the other two; ``k`` = slice spacing /
   in-plane spacing (refused below 1.2 unless forced, and above 8). The slice profile is
   ``rect`` or ``gaussian`` with FWHM = the slice thickness (``--thickness``, else the DICOM
   SliceThickness, else the spacing), or a sampled profile (``.npy``, from ``mrisr learn-kernel
   --through-plane``).
2. A :class:`~mrisr.models.throughplane.ThroughPlaneNet` (fresh — its output is the B-spline
   baseline until trained — or warm-started from ``checkpoint``) is trained for ``steps`` Adam
   steps on pairs made from the scan's own in-plane slices
   (:mod:`mrisr.data.through_plane_pairs`), stopping early when the loss stops improving.
3. The acquired slices are B-spline interpolated onto the fine grid at their true positions; the
   network refines the slice direction in both orthogonal planes that contain it, and the two
   are averaged.
4. Data consistency: the relative residual ``‖A·x − y‖/‖y‖`` of re-acquiring the output is
   recorded; ``consistency=True`` projects the output onto ``{x : A·x = y}`` (exact, 1-D).

The output keeps the orientation and field of view; its affine puts output sample ``i`` of the
slice axis at acquired-slice index ``(i − p₀)/k`` (:func:`mrisr.degrade.through_plane.output_grid`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrisr.data.through_plane_pairs import SliceModel, batch, in_plane_slices, signal_slices
from mrisr.degrade.through_plane import operator, output_grid, project, residual, spline_to_grid
from mrisr.errors import ConfigError
from mrisr.io.geometry import choose_plane, grid_affine
from mrisr.io.volume import Volume

MIN_K, MAX_K = 1.2, 8.0


@dataclass
class ThroughPlaneOptions:
    """How to restore the slice direction (see the module doc)."""

    thickness_mm: float | None = None
    profile: str | np.ndarray = "rect"
    steps: int = 300
    batch: int = 8
    patch: int = 48
    lr: float = 5e-4
    seed: int = 0
    consistency: bool = False
    axis: int | None = None
    force: bool = False
    device: str = "auto"
    progress: bool = True
    patience: int = 100  # stop when the smoothed loss has not improved by 1 % in this many steps
    voxel_mm: float | None = None  # output spacing along the slice axis (default: in-plane)


def slice_model_for(volume: Volume, opts: ThroughPlaneOptions) -> tuple[int, SliceModel, dict]:
    """(slice axis, the acquisition in in-plane voxels, the facts recorded)."""
    if volume.data.ndim != 3 or min(volume.shape) < 2:
        raise ConfigError(f"through-plane SR needs a 3-D scan; got shape {volume.shape}")
    plane = choose_plane(volume.zooms, volume.shape, opts.axis)
    z = plane.slice_axis
    d = float(np.mean([volume.zooms[a] for a in plane.in_plane]))
    spacing = float(volume.zooms[z])
    k = spacing / d
    if k > MAX_K:
        raise ConfigError(
            f"slice spacing {spacing:.3g} mm is {k:.2f}x the in-plane {d:.3g} mm; through-plane "
            f"SR goes up to k = {MAX_K:g}"
        )
    if k < MIN_K and not opts.force:
        raise ConfigError(
            f"the scan is nearly isotropic (k = {k:.2f} < {MIN_K}: {spacing:.3g} mm slices on a "
            f"{d:.3g} mm plane); nothing to restore through-plane (--force to run anyway)"
        )
    thickness = opts.thickness_mm
    source = "--thickness"
    if thickness is None:
        thickness = volume.meta.get("slice_thickness")
        source = "header SliceThickness"
    if thickness is None:
        thickness, source = spacing, "assumed = spacing"
    if not (math.isfinite(float(thickness)) and thickness > 0):
        raise ConfigError(f"--thickness must be a positive number of mm, got {thickness}")
    profile = opts.profile
    if isinstance(profile, np.ndarray):
        model = SliceModel(k, profile)
        kind = "sampled"
    else:
        model = SliceModel(k, profile, float(thickness) / d)
        kind = profile
    facts = {
        "slice_axis": z,
        "in_plane_mm": round(d, 6),
        "slice_spacing_mm": round(spacing, 6),
        "slice_thickness_mm": round(float(thickness), 6),
        "thickness_source": source,
        "k": round(k, 6),
        "profile": kind,
    }
    return z, model, facts


def fit(
    net: torch.nn.Module,
    slices: np.ndarray,
    model: SliceModel,
    opts: ThroughPlaneOptions,
    device: torch.device,
) -> dict[str, Any]:
    """Train ``net`` on the scan's own pairs; returns the steps run, the final smoothed loss
    and why it stopped."""
    from mrisr.progress import slice_progress

    keep = signal_slices(slices)
    optim = torch.optim.Adam(net.parameters(), lr=opts.lr)
    net.train()
    ema, best, since, step = None, math.inf, 0, 0
    bar = slice_progress(opts.progress, opts.steps, "training on the scan")
    stop = "steps"
    try:
        for step in range(opts.steps):
            x, y = batch(slices, model, opts.batch, opts.patch, opts.seed, step, keep)
            xb, yb = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
            loss = torch.nn.functional.l1_loss(net(xb), yb)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            v = float(loss.detach())
            ema = v if ema is None else 0.95 * ema + 0.05 * v
            if ema < 0.99 * best:
                best, since = ema, 0
            else:
                since += 1
            bar(1)
            if since >= opts.patience:
                stop = f"no 1 % improvement in {opts.patience} steps"
                break
    finally:
        bar(0, done=True)
    net.eval()
    steps = step + 1 if opts.steps else 0
    return {"steps": steps, "loss": None if ema is None else round(ema, 6), "stopped": stop}


@torch.no_grad()
def _refine(net: torch.nn.Module, images: np.ndarray, device: torch.device, n: int = 4):
    """``images [N, H, W]`` → the network's output, ``n`` at a time (float32)."""
    out = np.empty_like(images, dtype=np.float32)
    for i in range(0, images.shape[0], n):
        xb = torch.from_numpy(np.ascontiguousarray(images[i : i + n], np.float32)[:, None])
        out[i : i + n] = net(xb.to(device))[:, 0].float().cpu().numpy()
    return out


def restore(
    volume: Volume,
    opts: ThroughPlaneOptions | None = None,
    net: torch.nn.Module | None = None,
) -> tuple[Volume, dict[str, Any]]:
    """The restored volume (slice axis at the in-plane spacing) and what was done."""
    from mrisr.infer.upsample import clamp_to_input_range, pick_device
    from mrisr.models.registry import build_model

    opts = opts or ThroughPlaneOptions()
    t0 = time.perf_counter()
    v = opts.voxel_mm
    if v is not None and not (math.isfinite(v) and v > 0):  # before any work
        raise ConfigError(f"--voxel must be a positive number of mm, got {v}")
    z, model, facts = slice_model_for(volume, opts)
    device = pick_device(opts.device)
    torch.manual_seed(opts.seed)
    net = (net or build_model("throughplane-resnet", 1)).to(device)
    data = np.moveaxis(volume.data, z, 0).astype(np.float32)  # [m, A, B]
    scale = float(np.percentile(data, 99.5)) or 1.0
    x = data / scale
    training = fit(net, in_plane_slices(x, 0), model, opts, device) if opts.steps else {}
    m = x.shape[0]
    n, pos = output_grid(m, model.k)
    base = spline_to_grid(x, pos, n, 0).astype(np.float32)  # [n, A, B]
    plane_a = _refine(net, np.moveaxis(base, 2, 0), device)  # images [B, n, A]
    plane_b = _refine(net, np.moveaxis(base, 1, 0), device)  # images [A, n, B]
    out = 0.5 * (np.moveaxis(plane_a, 0, 2) + np.moveaxis(plane_b, 0, 1))
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
            "consistency_residual": before,
            "consistency_projected": opts.consistency,
            **({"consistency_residual_after": after} if after is not None else {}),
        },
        "input_shape": list(volume.shape),
        "output_shape": list(result.shape),
        "output_zooms_mm": [round(v, 6) for v in result.zooms],
        "clamp": clamp,
        "device": str(device),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return result, record


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


def upscale_through_plane(
    inp: str | Path,
    out: str | Path,
    opts: ThroughPlaneOptions | None = None,
    checkpoint: str | Path | None = None,
    overwrite: bool = False,
    argv: list[str] | None = None,
    assume_geometry: bool = False,
) -> Path:
    """Files in, files out: ``out`` (NIfTI) and ``out.json`` with the through-plane record,
    the slice profile, the consistency residual and the checkpoint it started from (if any).
    The Python twin of ``mrisr upscale IN OUT --through-plane``."""
    import sys

    from mrisr.io import load_volume
    from mrisr.io.nifti import check_nifti_output
    from mrisr.provenance import sidecar_header, write_volume_with_sidecar

    opts = opts or ThroughPlaneOptions()
    out = Path(out)
    check_nifti_output(out, overwrite)  # before any work
    if isinstance(opts.profile, str) and opts.profile not in ("rect", "gaussian"):
        from mrisr.degrade.profile import read_profile

        opts.profile = np.asarray(read_profile(opts.profile)[0], dtype=np.float64)
    net, ck = None, None
    if checkpoint is not None:
        from mrisr.checkpoint import load_checkpoint

        net, ck = load_checkpoint(checkpoint)
        if ck.name != "throughplane-resnet":
            raise ConfigError(
                f"--through-plane needs a throughplane-resnet checkpoint, not '{ck.name}'"
            )
    vol = load_volume(inp, assume_geometry=assume_geometry)
    t0 = time.time()
    result, record = restore(vol, opts, net)
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
        f"steps, residual {tp['consistency_residual']:.2e}) ({record['seconds']:.1f} s)",
        file=sys.stdout,
    )
    return out

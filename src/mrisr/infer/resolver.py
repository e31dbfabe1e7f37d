"""Super-resolve whole volumes: volume → normalised slices → (tiles) → model → volume.

The output keeps the input's orientation; its affine places every new voxel where the model's
training pairs put HR samples relative to LR samples (block-centred unless the checkpoint says
otherwise), so the field of view is unchanged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from mrisr.errors import ConfigError
from mrisr.infer.ensemble import SelfEnsemble
from mrisr.infer.tiling import tiled_forward
from mrisr.io.geometry import grid_affine, resolve_axis
from mrisr.io.volume import Volume


@dataclass
class UpscaleOptions:
    """How to run a model over a volume."""

    axis: int | None = None  # slice axis; default: the coarsest spacing
    tile: int = 0  # core tile size in LR pixels; 0 = whole slices, -1 = from max_memory_mb
    margin: int = 16
    blend: int = 8
    batch: int = 4  # slices per forward
    ensemble: bool = False
    device: str = "auto"
    channels_last: bool = True
    compile: bool = False
    max_memory_mb: float | None = None  # bound for the activations of one forward
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, then Apple MPS, else CPU; explicit names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use auto/cpu")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise ConfigError(f"--device must be auto, cpu, cuda[:N] or mps, not '{name}'")
    return torch.device(name)


def activation_bytes_per_pixel(model: nn.Module, device: torch.device) -> float:
    """Estimate peak activation memory per LR pixel of one forward (no grad).

    Runs a 24×24 probe with forward hooks and takes 4× the largest module output (the live
    input, output, skip connection and a workspace): an estimate, used only to choose tiles.
    """
    sizes: list[int] = []
    hooks = [
        m.register_forward_hook(
            lambda _m, _i, o: (
                sizes.append(o.numel() * o.element_size()) if isinstance(o, torch.Tensor) else None
            )
        )
        for m in model.modules()
        if not list(m.children())
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, 24, 24, device=device))
    finally:
        for hk in hooks:
            hk.remove()
    return 4.0 * max(sizes, default=4) / (24 * 24)


def lr_grid_offset(training: dict[str, Any] | None, scale: int) -> float:
    """HR index of LR sample 0 in the training pairs (block centres unless recorded)."""
    if training and "lr_grid_offset" in training:
        return float(training["lr_grid_offset"])
    return (scale - 1) / 2


def upscale_affine(affine: np.ndarray, axes: list[int], scale: int, offset: float) -> np.ndarray:
    """Affine of the HR grid: HR index ``i`` sits at LR index ``(i − offset)/s`` on ``axes``."""
    return grid_affine(affine, {a: (1.0 / scale, -offset / scale) for a in axes})


def upscale_volume(
    volume: Volume,
    model: nn.Module,
    scale: int,
    normalise=None,
    training: dict[str, Any] | None = None,
    options: UpscaleOptions | None = None,
    guide: Volume | None = None,
) -> tuple[Volume, dict[str, Any]]:
    """Super-resolve every slice of ``volume`` in-plane by ``scale`` with ``model``.

    ``guide`` (multi-contrast models): a high-resolution scan of another contrast in the same
    scanner space; it is resampled onto the output grid through both affines
    (:func:`mrisr.data.pairs.resample_to_grid`, after :func:`~mrisr.data.pairs.pair_guide`
    checked the overlap on the input grid), normalised with the statistics of the whole guide
    (on its own grid, as in training) and fed to the model slice by slice as
    ``model(lr, guide)``.

    Args:
        volume: the LR volume (any orientation).
        model: LR [B,1,h,w] → HR [B,1,s·h,s·w].
        scale: the model's scale.
        normalise: a :class:`mrisr.checkpoint.Normalisation` (``fit``/``apply``/``invert``) or None.
        training: the checkpoint's training card (grid convention of its training pairs).
    Returns:
        The HR volume (float32, same orientation, in-plane zooms / scale, field of view kept)
        and a record of what was done.
    """
    opt = options or UpscaleOptions()
    t0 = time.perf_counter()
    device = pick_device(opt.device)
    k = resolve_axis(opt.axis, volume.zooms, volume.shape)
    in_plane = [a for a in range(3) if a != k]
    net: nn.Module = model.to(device).eval()
    # channels_last is 4-D only: models with 3-D convolutions (SANet's CSAM) stay contiguous
    cl = opt.channels_last and device.type != "mps" and all(p.dim() != 5 for p in net.parameters())
    if cl:
        net = net.to(memory_format=torch.channels_last)
    fn: nn.Module = SelfEnsemble(net) if opt.ensemble else net
    if opt.compile:
        fn = torch.compile(fn)  # type: ignore[assignment]
    needs = bool(getattr(net, "needs_guide", False))
    if needs != (guide is not None):
        raise ConfigError(
            "this model is multi-contrast: give the high-resolution guide scan (--guide)"
            if needs
            else "this model is single-contrast and takes no --guide; drop it or use a "
            "multi-contrast checkpoint"
        )
    if guide is not None and (opt.ensemble or opt.tile or opt.max_memory_mb):
        raise ConfigError("--guide works without --ensemble, --tile and --max-memory")
    offset = lr_grid_offset(training, scale)
    affine = upscale_affine(volume.affine, in_plane, scale, offset)
    guide_slices, alignment = None, None
    if guide is not None:
        from mrisr.data.pairs import pair_guide, resample_to_grid

        _, alignment = pair_guide(volume, guide)  # overlap and agreement, on the input grid
        out_shape = tuple(n * (scale if a in in_plane else 1) for a, n in enumerate(volume.shape))
        g, _ = resample_to_grid(guide.data, guide.affine, affine, out_shape)  # type: ignore[arg-type]
        # stats of the whole guide on its own grid, as in training
        g = normalise.apply(g, normalise.fit(guide.data)) if normalise is not None else g
        guide_slices = torch.from_numpy(np.ascontiguousarray(np.transpose(g, (k, *in_plane))))
    data = volume.data
    stats = normalise.fit(data) if normalise is not None else None
    x_all = normalise.apply(data, stats) if normalise is not None else data
    slices = torch.from_numpy(np.ascontiguousarray(np.transpose(x_all, (k, *in_plane))))
    n, h, w = slices.shape
    tile = opt.tile
    if tile < 0 or (opt.max_memory_mb and tile == 0):
        if not opt.max_memory_mb:
            raise ConfigError("automatic tiling needs a memory bound (--max-memory MB)")
        per_px = activation_bytes_per_pixel(net, device)
        budget_px = opt.max_memory_mb * 2**20 / per_px / max(1, opt.batch)
        tile = max(32, int(math.sqrt(budget_px)) - 2 * opt.margin)
        if tile >= max(h, w):
            tile = 0
    out = np.empty((n, scale * h, scale * w), dtype=np.float32)
    bar = _progress(opt.progress, n)
    with torch.inference_mode():
        for start in range(0, n, opt.batch):
            xb = slices[start : start + opt.batch, None].to(device)
            if cl:
                xb = xb.contiguous(memory_format=torch.channels_last)
            if guide_slices is not None:
                gb = guide_slices[start : start + opt.batch, None].to(device).float()
                yb = fn(xb, gb)
            elif tile:
                yb = tiled_forward(fn, xb, scale, tile, opt.margin, opt.blend)
            else:
                yb = fn(xb)
            out[start : start + xb.shape[0]] = yb[:, 0].float().cpu().numpy()
            bar(xb.shape[0])
    bar(0, done=True)
    hr = np.transpose(out, np.argsort((k, *in_plane)))
    if normalise is not None:
        hr = normalise.invert(hr, stats)
    result = volume.replace(np.ascontiguousarray(hr, dtype=np.float32), affine)
    record = {
        "scale": scale,
        "slice_axis": k,
        "in_plane_axes": in_plane,
        "lr_grid_offset": offset,
        "input_shape": list(volume.shape),
        "output_shape": list(result.shape),
        "input_zooms_mm": [round(z, 6) for z in volume.zooms],
        "output_zooms_mm": [round(z, 6) for z in result.zooms],
        "device": str(device),
        "tile": tile,
        "margin": opt.margin if tile else 0,
        "blend": opt.blend if tile else 0,
        "batch": opt.batch,
        "ensemble": opt.ensemble,
        "normalisation_stats": stats,
        **({"guide_alignment": alignment} if alignment is not None else {}),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return result, record


def _progress(enabled: bool, total: int):
    """A rich progress bar over slices, or a no-op."""
    if not enabled:
        return lambda _n, done=False: None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn("upscaling"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} slices"),
        TimeRemainingColumn(),
        transient=True,
    )
    task = prog.add_task("slices", total=total)
    prog.start()

    def advance(nslices: int, done: bool = False) -> None:
        if nslices:
            prog.advance(task, nslices)
        if done:
            prog.stop()

    return advance

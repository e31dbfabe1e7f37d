"""Super-resolve whole volumes: volume → normalised slices → (tiles) → model → volume.

The output keeps the input's orientation; its affine places every new voxel where the model's
training pairs put HR samples relative to LR samples (block-centred unless the checkpoint says
otherwise), so the field of view is unchanged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from mrisr.degrade.kspace_consistency import (
    check_consistency,
    truncation_params,
    volume_consistency,
)
from mrisr.errors import ConfigError
from mrisr.infer.ensemble import SelfEnsemble
from mrisr.infer.tiling import tiled_forward
from mrisr.io.geometry import check_plane, choose_plane, grid_affine
from mrisr.io.volume import Volume
from mrisr.normalisation import Normalisation
from mrisr.provenance import finite_float32, working_gain


@dataclass
class UpscaleOptions:
    """How to run a model over a volume."""

    axis: int | None = None  # slice axis; default: the axis whose spacing the other two don't share
    axis_source: str = "--axis"  # who gave ``axis`` (recorded): --axis or a degrade sidecar
    force_plane: bool = False  # run across in-plane axes of very different spacing anyway
    clamp: bool = True  # clip the output to the input's physical range (magnitude ≥ 0)
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
    consistency: bool = False  # project onto the acquired k-space (kspace-truncate models)

    def __post_init__(self) -> None:
        """Refuse values that make no sense before any work (one line, naming the option)."""
        check_tiling(self.tile, self.margin, self.blend, self.max_memory_mb)
        if not _is_int(self.batch) or self.batch < 1:
            raise ConfigError(
                f"--batch must be an integer >= 1 (slices per forward), got {self.batch}"
            )


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


#: The smallest tile core, in LR pixels; tiles must also be at least twice the context margin.
MIN_TILE = 8


def check_tiling(tile: int, margin: int, blend: int, max_memory_mb: float | None) -> None:
    """The tile rule: ``tile`` is 0 (whole slices), -1 (automatic: needs ``max_memory_mb``) or
    at least ``max(MIN_TILE, 2 * margin)`` LR pixels (32 with the default 16-pixel margin).

    A tile runs with ``margin`` pixels of context on every side, so a core of ``t`` pixels costs
    ``(t + 2·margin)²`` for ``t²`` kept: at ``t = 2·margin`` a quarter of each forward is kept
    (4× the untiled work); at ``--tile 1`` it was 1/1089 and a 32×32×4 scan took ~100 s.
    ``max_memory_mb``, when given, must be a finite number > 0."""
    if max_memory_mb is not None:
        mb = float(max_memory_mb)
        if not (math.isfinite(mb) and mb > 0):
            raise ConfigError(
                f"--max-memory must be a finite number of MB > 0, got {max_memory_mb}"
            )
    for name, v in (("margin", margin), ("blend", blend)):
        if not _is_int(v) or v < 0:
            raise ConfigError(f"tile {name} must be an integer >= 0, got {v}")
    if not _is_int(tile):
        raise ConfigError(f"--tile must be an integer, got {tile!r}")
    smallest = max(MIN_TILE, 2 * margin)
    if tile == -1:
        if max_memory_mb is None:
            raise ConfigError("--tile -1 (automatic tiling) needs --max-memory MB")
    elif tile < 0:
        raise ConfigError(
            f"--tile {tile}: use 0 (whole slices), -1 (automatic, with --max-memory MB) or a tile "
            f"of at least {smallest} LR pixels"
        )
    elif 0 < tile < smallest:
        raise ConfigError(
            f"--tile {tile} is too small: tiles must be at least {smallest} LR pixels (twice "
            f"the {margin}-pixel context margin, and >= {MIN_TILE}); or 0 for whole slices"
        )


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


def check_guide(net: nn.Module, has_guide: bool, name: str | None = None) -> None:
    """A multi-contrast model needs a guide scan and a single-contrast one takes none: a
    one-line ConfigError otherwise (``name``: the checkpoint's model, for the message)."""
    needs = bool(getattr(net, "needs_guide", False))
    model = f"model '{name}'" if name else "this model"
    if needs and not has_guide:
        raise ConfigError(
            f"{model} is multi-contrast: give the high-resolution guide scan of the same "
            "subject with --guide (e.g. --guide T1.nii.gz)"
        )
    if has_guide and not needs:
        raise ConfigError(
            f"{model} is single-contrast and takes no --guide; drop --guide or use a "
            "multi-contrast checkpoint"
        )


def upscale_volume(
    volume: Volume,
    model: nn.Module,
    scale: int,
    normalisation: Normalisation | None = None,
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
        normalisation: the checkpoint's :class:`mrisr.normalisation.Normalisation`
            (``fit`` once on the whole volume, ``apply``, ``invert``), or None.
        training: the checkpoint's training card (grid convention of its training pairs;
            its degradation: for kspace-truncate models the record gets the k-space residual
            of the output against the input, and ``options.consistency`` projects onto it,
            :mod:`mrisr.degrade.kspace_consistency`; other models refuse ``consistency``).
    Returns:
        The HR volume (float32, same orientation, in-plane zooms / scale, field of view kept)
        and a record of what was done.
    """
    opt = options or UpscaleOptions()
    t0 = time.perf_counter()
    # k-space truncation models: the residual against the input's k-space (and the projection)
    kspace = (check_consistency if opt.consistency else truncation_params)(training, scale)
    device = pick_device(opt.device)
    plane = choose_plane(volume.zooms, volume.shape, opt.axis)
    check_plane(plane, opt.force_plane)
    k = plane.slice_axis
    in_plane = list(plane.in_plane)
    plane_record = plane.record()
    if opt.axis is not None:
        plane_record["rule"] = opt.axis_source
    net: nn.Module = model.to(device).eval()
    # channels_last is 4-D only: models with 3-D convolutions (SANet's CSAM) stay contiguous
    cl = opt.channels_last and device.type != "mps" and all(p.dim() != 5 for p in net.parameters())
    if cl:
        net = net.to(memory_format=torch.channels_last)
    offset = lr_grid_offset(training, scale)
    # The ensemble advances the progress bar by 1/8 of the batch after each of its passes, so
    # that even a slow ×8 run shows an ETA after its first pass (tiles advance per batch).
    progress: dict[str, Any] = {"bar": None, "per_pass": 0.0}

    def on_pass(_i: int) -> None:
        if progress["bar"] is not None and progress["per_pass"]:
            progress["bar"](progress["per_pass"])

    ens = SelfEnsemble(net, scale, offset, on_pass=on_pass) if opt.ensemble else None
    fn: nn.Module = ens if ens is not None else net
    if opt.compile:
        fn = torch.compile(fn)  # type: ignore[assignment]
    check_guide(net, guide is not None)
    if guide is not None and (opt.ensemble or opt.tile or opt.max_memory_mb):
        raise ConfigError("--guide works without --ensemble, --tile and --max-memory")
    affine = upscale_affine(volume.affine, in_plane, scale, offset)
    guide_slices, alignment = None, None
    if guide is not None:
        from mrisr.data.pairs import pair_guide, resample_to_grid

        _, alignment = pair_guide(volume, guide)  # overlap and agreement, on the input grid
        out_shape = tuple(n * (scale if a in in_plane else 1) for a, n in enumerate(volume.shape))
        g, _ = resample_to_grid(guide.data, guide.affine, affine, out_shape)  # type: ignore[arg-type]
        # stats of the whole guide on its own grid, as in training
        if normalisation is not None:
            g = normalisation.apply(g, normalisation.fit(guide.data))
        guide_slices = torch.from_numpy(np.ascontiguousarray(np.transpose(g, (k, *in_plane))))
    data = volume.data
    # Intensities near the float32 maximum overflow in the normalisation and its inverse: the
    # statistics scale with the data, so a power-of-two gain (exact) leaves the network's
    # input unchanged and is divided out, in float64, at the end.
    gain = 1.0
    if normalisation is not None and normalisation.mode != "none":
        gain = working_gain(data)
        data = data if gain == 1.0 else data * np.float32(gain)
    stats = normalisation.fit(data) if normalisation is not None else None
    x_all = normalisation.apply(data, stats) if normalisation is not None else data
    slices = torch.from_numpy(np.ascontiguousarray(np.transpose(x_all, (k, *in_plane))))
    n, h, w = slices.shape
    tile = opt.tile
    if tile < 0 or (opt.max_memory_mb and tile == 0):
        if not opt.max_memory_mb:
            raise ConfigError("--tile -1 (automatic tiling) needs --max-memory MB")
        per_px = activation_bytes_per_pixel(net, device)
        budget_px = opt.max_memory_mb * 2**20 / per_px / max(1, opt.batch)
        tile = max(32, int(math.sqrt(budget_px)) - 2 * opt.margin)
        if tile >= max(h, w):
            tile = 0
    out = np.empty((n, scale * h, scale * w), dtype=np.float32)
    bar = progress["bar"] = _progress(opt.progress, n)
    with torch.inference_mode(), _closing(bar):
        for start in range(0, n, opt.batch):
            xb = slices[start : start + opt.batch, None].to(device)
            progress["per_pass"] = xb.shape[0] / 8 if ens is not None and not tile else 0.0
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
            if not progress["per_pass"]:
                bar(xb.shape[0])
    hr = np.transpose(out, np.argsort((k, *in_plane)))
    if normalisation is not None:
        hr = normalisation.invert(hr, stats)
    if gain != 1.0:
        hr = np.asarray(hr, dtype=np.float64) / gain
        stats = {key: v / gain for key, v in stats.items()}  # type: ignore[union-attr]
    clamp_record = clamp_to_input_range(hr, volume) if opt.clamp else {"applied": False}
    kspace_record = None
    if isinstance(kspace, dict):  # after the clamp: the projection comes last
        hr, kspace_record = volume_consistency(
            hr, volume.data, k, in_plane, scale, kspace["keep_mean"], opt.consistency
        )
    hr = finite_float32(hr, "the super-resolved volume")
    result = volume.replace(np.ascontiguousarray(hr, dtype=np.float32), affine)
    record = {
        "scale": scale,
        "slice_axis": k,
        "in_plane_axes": in_plane,
        "plane": plane_record,
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
        **({"ensemble_grid_shift_px": ens.shift} if ens is not None else {}),
        "clamp": clamp_record,
        "normalisation_stats": stats,
        **({"working_gain": gain} if gain != 1.0 else {}),
        **({"guide_alignment": alignment} if alignment is not None else {}),
        **({"kspace_consistency": kspace_record} if kspace_record is not None else {}),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return result, record


def input_range(volume: Volume) -> tuple[float | None, float | None]:
    """The physical range of values an SR result of ``volume`` may take.

    Lower bound 0 when the input is a magnitude image (no negative voxel): MR magnitude is
    never negative, and the networks' undershoot around edges and in the background (down to
    −158 on a [0, 1000] scan) is an artefact. Upper bound the largest value of the input's
    integer storage type when every input value fits it unscaled (uint8 → 255): a saturated
    8-bit scan cannot hold brighter voxels. ``None`` where no bound applies (an input with
    negative values — phase, z-scored — or float / rescaled storage).
    """
    lo = 0.0 if float(volume.data.min()) >= 0 else None
    hi = None
    dt = np.dtype(volume.orig_dtype)
    if dt.kind in "iu" and float(volume.data.max()) <= np.iinfo(dt).max:
        hi = float(np.iinfo(dt).max)
    return lo, hi


def clamp_to_input_range(hr: np.ndarray, volume: Volume) -> dict[str, Any]:
    """Clip ``hr`` in place to :func:`input_range` of ``volume``; return what was done."""
    lo, hi = input_range(volume)
    below = int(np.count_nonzero(hr < lo)) if lo is not None else 0
    above = int(np.count_nonzero(hr > hi)) if hi is not None else 0
    record: dict[str, Any] = {
        "applied": True,
        "range": [lo, hi],
        "raw_min": float(hr.min()),
        "raw_max": float(hr.max()),
        "voxels_below": below,
        "voxels_above": above,
    }
    if lo is not None or hi is not None:
        np.clip(hr, lo, hi, out=hr)
    else:
        record["note"] = "the input has negative values (not a magnitude image): not clamped"
    return record


class _closing:
    """Stop a progress bar however the loop ends."""

    def __init__(self, bar) -> None:
        self.bar = bar

    def __enter__(self):
        return self.bar

    def __exit__(self, *exc) -> None:
        self.bar(0, done=True)


def _progress(enabled: bool, total: int):
    """A rich progress bar over slices, or a no-op."""
    from mrisr.progress import slice_progress

    return slice_progress(enabled, total, "upscaling")

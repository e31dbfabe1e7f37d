"""Apply degradations to whole volumes along the chosen axes, with the exact output geometry."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mrisr.degrade.base import IDENTITY, Degradation
from mrisr.errors import ConfigError
from mrisr.io.geometry import crop_to_multiple, grid_affine, resolve_axis
from mrisr.io.volume import Volume
from mrisr.provenance import finite_float32, working_gain


def degrade_volume(
    volume: Volume,
    steps: Degradation | Sequence[Degradation],
    axis: int | None = None,
    crop: bool = False,
    seed: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[Volume, dict[str, Any]]:
    """Degrade ``volume`` slice-wise (in-plane steps) or along the slice axis (through-plane).

    Args:
        volume: the HR volume.
        steps: one degradation or several applied in order.
        axis: the slice (through-plane) axis; default the axis whose spacing differs from the
            other two (:func:`mrisr.io.geometry.choose_plane`).
        crop: when a scale does not divide the matrix, crop centrally to a multiple of it instead
            of failing (the crop is recorded and the affine moved accordingly).
        seed: seed of the random number generator (noise): an integer from 0 to 2**63 - 1
            (torch's generator takes 64 signed bits), or None for a fresh one.
    Returns:
        The degraded volume, whose affine places every new voxel exactly where its samples lie
        (same orientation, zooms × scale), and the sidecar dict of everything used.
    """
    steps = [steps] if isinstance(steps, Degradation) else list(steps)
    if not steps:
        raise ConfigError("no degradation step given")
    check_seed(seed)
    t0 = time.perf_counter()
    slice_axis = resolve_axis(axis, volume.zooms, volume.shape)
    in_plane = [a for a in range(3) if a != slice_axis]
    data, affine = volume.data, volume.affine
    # Intensities near the float32 maximum overflow in FFTs and squares: work at a power-of-two
    # gain (exact; every step is linear, or Rician with sigma scaled alike) and undo it after.
    gain = working_gain(data)
    if gain != 1.0:
        data = data * np.float32(gain)
        steps = [_scaled_sigma(s, gain) for s in steps]
    crops: dict[int, tuple[int, int]] = {}
    warnings: list[str] = []
    gen = torch.Generator(device=device)
    gen.manual_seed(seed if seed is not None else int(np.random.SeedSequence().entropy % 2**63))
    records = []
    for step in steps:
        scale = int(getattr(step, "scale", 1)) if step.integer_scale else 1
        axes = in_plane if step.layout == "in-plane" else [slice_axis]
        if step.layout == "in-plane" and getattr(step, "axes", "both") != "both":
            axes = [in_plane[0]] if step.axes == "h" else [in_plane[1]]  # type: ignore[attr-defined]
        # Centred-FFT decimations keep the grid (offset 0) only for an even LR matrix.
        multiple = 2 * scale if _fft_decimates(step) else scale
        bad = [a for a in axes if scale > 1 and data.shape[a] % scale]
        if crop:
            todo = [a for a in axes if scale > 1 and data.shape[a] % multiple]
            if todo:
                data, affine, c = crop_to_multiple(data, affine, todo, multiple)
                for a, (lo, hi) in c.items():  # compose with an earlier step's crop
                    base = crops.get(a, (0, 0))[0]
                    crops[a] = (base + lo, base + hi)
        elif bad:
            raise ConfigError(
                f"{step.method}: scale {scale} does not divide the matrix {data.shape} along "
                f"axis {bad[0]}; pass --crop to crop centrally to a multiple of {multiple}"
            )
        elif multiple != scale:
            odd = {a: data.shape[a] // scale for a in axes if (data.shape[a] // scale) % 2}
            if odd and scale > 1:
                warnings.append(_odd_matrix_warning(step.method, scale, odd))
        zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        if step.layout == "in-plane":
            order = (slice_axis, *in_plane)  # → [K, H, W]
            spacing = (float(zooms[in_plane[0]]), float(zooms[in_plane[1]]))
            mapped = in_plane
        else:
            order = (in_plane[0], slice_axis, in_plane[1])  # → [A, Z, B]
            spacing = (float(zooms[slice_axis]), float(zooms[in_plane[1]]))
            mapped = [slice_axis, in_plane[1]]
        # A permuted view, not a copy: the operators' matrix products and FFTs take strided input.
        x = torch.from_numpy(np.asarray(data, dtype=np.float32)).permute(order).to(device)
        out = step(x, spacing=spacing, generator=gen)
        data = np.transpose(out.image.cpu().numpy(), np.argsort(order))
        maps = {
            a: (m.factor, m.offset) for a, m in zip(mapped, out.axes, strict=True) if m != IDENTITY
        }
        affine = grid_affine(affine, maps)
        # Where the new samples lie: output index j along array axis a sits at input index
        # offset + factor·j (in the step's input grid).
        record = dict(out.params)
        if gain != 1.0:  # intensity-unit parameters back in the input's units
            for key in ("sigma_used", "signal_mean") + (
                ("sigma",) if step.method == "rician" else ()
            ):
                if isinstance(record.get(key), float):
                    record[key] = record[key] / gain
        record["grid"] = {
            f"axis{a}": {"factor": f, "offset_voxels": o} for a, (f, o) in maps.items()
        }
        records.append(record)
    what = "the degraded volume"
    if gain != 1.0:
        data = finite_float32(np.asarray(data, dtype=np.float64) / gain, what)
    result = volume.replace(np.ascontiguousarray(finite_float32(data, what)), affine)
    sidecar = {
        "degradation": records,
        "seed": seed,
        "slice_axis": slice_axis,
        "in_plane_axes": in_plane,
        "input_shape": list(volume.shape),
        "output_shape": list(result.shape),
        "input_zooms_mm": [round(z, 6) for z in volume.zooms],
        "output_zooms_mm": [round(z, 6) for z in result.zooms],
        "crop": {str(a): list(c) for a, c in sorted(crops.items())},
        "warnings": warnings,
        **({"working_gain": gain} if gain != 1.0 else {}),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return result, sidecar


#: Largest ``seed``: torch's generator takes a signed 64-bit seed.
SEED_MAX = 2**63 - 1


def check_seed(seed: int | None) -> None:
    """None or an integer in [0, :data:`SEED_MAX`]: a one-line ConfigError otherwise."""
    if seed is None:
        return
    if (
        isinstance(seed, bool)
        or not isinstance(seed, int | np.integer)
        or not 0 <= seed <= SEED_MAX
    ):
        raise ConfigError(f"--seed must be an integer from 0 to {SEED_MAX} (2**63 - 1), got {seed}")


def _scaled_sigma(step: Degradation, gain: float) -> Degradation:
    """A Rician step given ``sigma`` in intensity units, at the working gain."""
    import dataclasses

    sigma = getattr(step, "sigma", None)
    if step.method == "rician" and sigma is not None:
        return dataclasses.replace(step, sigma=float(sigma) * gain)  # type: ignore[type-var]
    return step


def _fft_decimates(step: Degradation) -> bool:
    """k-space truncation / zero-fill onto the LR grid: LR sample ``j`` lies at HR index
    ``N//2 + s·(j − M//2)``, i.e. offset 0 for an even LR matrix ``M`` but
    ``(s·M)//2 − s·(M//2)`` HR voxels (1 at ×2, 2 at ×4) for an odd one."""
    return step.method in ("kspace-truncate", "kspace-zerofill") and (
        getattr(step, "grid", "low") == "low"
    )


def _odd_matrix_warning(method: str, scale: int, odd: dict[int, int]) -> str:
    """One line: which LR axes are odd, what that does to the grid, and the fix."""
    shift = {a: (scale * m) // 2 - scale * (m // 2) for a, m in odd.items()}
    where = ", ".join(f"axis {a} ({m} samples)" for a, m in odd.items())
    px = sorted(set(shift.values()))
    vox = " or ".join(str(v) for v in px) + (" HR voxel" if px == [1] else " HR voxels")
    return (
        f"{method} x{scale}: the LR matrix is odd along {where}, so its grid is shifted by {vox} "
        f"against an even one; super-resolution by the shipped k-space models (trained on even "
        f"LR matrices) then lies {vox} off the reference grid and `mrisr eval` cannot score it "
        f"- pass --crop to crop the input to a multiple of {2 * scale} in-plane"
    )

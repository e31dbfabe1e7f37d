"""``mrisr degrade IN OUT``: simulate a lower-resolution acquisition of a scan."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mrisr.provenance import sidecar_header, sidecar_path, write_volume_with_sidecar


def method_fields(method: str, scale: int | None, *, kernel: Path | None, **o: Any) -> dict:
    """The degradation's fields from the CLI's options (``o``: sigma, fwhm_mm, kspace_axes,
    keep_mean, fermi_radius, fermi_width, same_grid, thickness, spacing, profile)."""
    from mrisr.errors import ConfigError

    if method == "kernel" and kernel is None:
        raise ConfigError("--method kernel needs --kernel K.npy (made by mrisr learn-kernel)")
    if kernel is not None and method != "kernel":
        raise ConfigError(f"--kernel is for --method kernel, not {method}")
    if method == "thick-slice" and scale is not None:  # it would be ignored: say so
        raise ConfigError(
            "--scale is an in-plane factor; thick-slice takes --thickness MM and --spacing MM "
            "(e.g. 4 mm slices from a 1 mm scan: --thickness 4)"
        )
    given_scale, scale = scale, 2 if scale is None else scale
    return {
        "kernel": {"kernel": str(kernel), "scale": given_scale},
        "bicubic": {"scale": scale},
        "gaussian": {"scale": scale, "sigma": o["sigma"], "fwhm_mm": o["fwhm_mm"]},
        "kspace-truncate": {"scale": scale, "axes": o["kspace_axes"], "keep_mean": o["keep_mean"]},
        "kspace-zerofill": {
            "scale": scale,
            "radius": o["fermi_radius"],
            "width": o["fermi_width"],
            "grid": "same" if o["same_grid"] else "low",
            "keep_mean": o["keep_mean"],
        },
        "thick-slice": {
            "thickness": o["thickness"],
            "spacing": o["spacing"] or o["thickness"],
            "profile": o["profile"],
        },
    }[method]


def run_degrade(
    inp: Path,
    out: Path,
    method: str,
    fields: dict[str, Any],
    *,
    axis: int | None,
    seed: int | None,
    crop: bool,
    snr: float | None,
    volume_index: int | None,
    overwrite: bool,
    argv: list[str] | None = None,
    assume_geometry: bool = False,
) -> dict:
    """Degrade ``inp`` with ``method`` (+ Rician noise at ``snr``) along the in-plane axes of
    ``axis``; write ``out`` and ``out.json`` together. Returns the sidecar.
    ``assume_geometry``: read a header without spacing / orientation (recorded)."""
    from mrisr.commands.entry import check_positive
    from mrisr.degrade import degrade_volume, make_degradation
    from mrisr.degrade.apply import check_seed
    from mrisr.io import load_volume
    from mrisr.io.atomic import check_writable
    from mrisr.metrics.acquired import acquired_resolution, sidecar_record
    from mrisr.provenance import working_gain

    # Fail on the values and the output before doing any work.
    check_seed(seed)
    check_positive(snr, "--snr")
    steps = [make_degradation(method, **fields)]
    if snr is not None:
        steps.append(make_degradation("rician", snr=snr))
    check_writable(out, overwrite)
    check_writable(sidecar_path(out), overwrite)
    vol = load_volume(inp, volume_index=volume_index, assume_geometry=assume_geometry)
    result, record = degrade_volume(vol, steps, axis=axis, crop=crop, seed=seed)
    # the spectrum is scale-free: measured at the working gain, it cannot overflow
    gain = working_gain(vol.data)
    tame = vol.data if gain == 1.0 else vol.data * gain
    acq = acquired_resolution(tame, vol.zooms, record["slice_axis"], vol.meta)
    record["input_acquired_resolution"] = sidecar_record(acq)
    sidecar = {**sidecar_header(argv, {"input": inp}), "output": str(out), **record}
    if vol.meta.get("assumed_geometry"):
        sidecar["input_assumed_geometry"] = list(vol.meta["assumed_geometry"])
    write_volume_with_sidecar(result, out, sidecar, overwrite)
    for w in record.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    if record.get("crop"):
        box = ", ".join(f"axis {a} [{lo}:{hi}]" for a, (lo, hi) in record["crop"].items())
        print(f"cropped the input to {box} (the LR grid is that crop's)", file=sys.stderr)
    print(
        f"wrote {out} {result.shape} zooms {tuple(round(z, 4) for z in result.zooms)} mm "
        f"and {sidecar_path(out).name}"
    )
    return sidecar

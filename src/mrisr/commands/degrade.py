"""``mrisr degrade IN OUT``: simulate a lower-resolution acquisition of a scan."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mrisr.provenance import sidecar_header, sidecar_path, write_volume_with_sidecar


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
) -> dict:
    """Degrade ``inp`` with ``method`` (+ Rician noise at ``snr``) along the in-plane axes of
    ``axis``; write ``out`` and ``out.json`` together. Returns the sidecar."""
    from mrisr.degrade import degrade_volume, make_degradation
    from mrisr.io import load_volume
    from mrisr.io.atomic import check_writable
    from mrisr.metrics.acquired import acquired_resolution, sidecar_record

    # Fail on the output before doing any work.
    check_writable(out, overwrite)
    check_writable(sidecar_path(out), overwrite)
    steps = [make_degradation(method, **fields)]
    if snr is not None:
        steps.append(make_degradation("rician", snr=snr))
    vol = load_volume(inp, volume_index=volume_index)
    result, record = degrade_volume(vol, steps, axis=axis, crop=crop, seed=seed)
    acq = acquired_resolution(vol.data, vol.zooms, record["slice_axis"], vol.meta)
    record["input_acquired_resolution"] = sidecar_record(acq)
    sidecar = {**sidecar_header(argv, {"input": inp}), "output": str(out), **record}
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

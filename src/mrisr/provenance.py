"""Where an output came from: file hashes, the provenance header every sidecar starts with,
and an atomic write of a volume together with its JSON sidecar (refused, with nothing written,
when the volume has a non-finite voxel; the sidecar is strict JSON: non-finite numbers are
``null``).

Used by the commands and by the library functions that write files (``mrisr.upscale``,
``learn_kernel``, checkpoints); it imports nothing above ``io``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mrisr.errors import ConfigError, OutputError


def file_sha256(path: str | Path) -> str | None:
    """SHA-256 of a file (None for folders such as DICOM series)."""
    path = Path(path)
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sidecar_path(out: str | Path) -> Path:
    """``OUT.json`` beside ``OUT`` (``sr.nii.gz`` → ``sr.nii.gz.json``)."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def sidecar_header(
    argv: list[str] | None,
    inputs: Mapping[str, str | Path | None],
    created: float | None = None,
) -> dict[str, Any]:
    """The first keys of every sidecar: mrisr version, the command line, the time, and each
    input's path and sha256 (``{"input": p}`` → ``"input"``, ``"input_sha256"``; ``None``
    inputs are left out)."""
    from mrisr import __version__

    t = time.localtime(created) if created is not None else time.localtime()
    head: dict[str, Any] = {
        "mrisr_version": __version__,
        "command": " ".join(argv) if argv else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", t),
    }
    for key, p in inputs.items():
        if p is not None:
            head[key] = str(p)
            head[f"{key}_sha256"] = file_sha256(Path(p))
    return head


#: Intensities above this (in magnitude) are scaled by a power of two before arithmetic that
#: squares or sums them (FFTs, Rician noise, spectra): float32 overflows at 3.4e38 = 2**128.
SAFE_PEAK = 2.0**48


def working_gain(data) -> float:
    """1.0 for ordinary scans; for intensities beyond :data:`SAFE_PEAK`, the power of two
    ``2**-k`` that brings the peak near 2**40. Multiplying by it is exact (no rounding), and
    linear operations commute with it, so ``op(x * g) / g`` is ``op(x)`` without overflow."""
    import numpy as np

    peak = float(np.max(np.abs(data))) if np.size(data) else 0.0
    if not np.isfinite(peak) or peak <= SAFE_PEAK:
        return 1.0
    return float(2.0 ** (40 - int(np.ceil(np.log2(peak)))))


def finite_float32(data, what: str):
    """``data`` as float32 when every value is finite and fits float32; a one-line error
    naming ``what`` otherwise (never a NaN or inf voxel in an output)."""
    import numpy as np

    arr = np.asarray(data)
    finite = np.isfinite(arr)
    if not finite.all():
        n = int(arr.size - np.count_nonzero(finite))
        raise OutputError(
            f"{what} would have {n} non-finite voxel(s) (NaN or inf); nothing was written - "
            "check the input's intensities (are they within the float32 range?)"
        )
    top = float(np.max(np.abs(arr))) if arr.size else 0.0
    if top > float(np.finfo(np.float32).max):
        raise OutputError(
            f"{what} would have values up to {top:.3g}, beyond the float32 range (3.4e38); "
            "nothing was written - rescale the input's intensities"
        )
    return np.asarray(arr, dtype=np.float32)


def write_volume_with_sidecar(volume, out: str | Path, sidecar: dict, overwrite: bool) -> None:
    """Write a NIfTI and its JSON sidecar together: both appear, or neither does.

    A volume with a NaN or inf voxel is refused (:class:`OutputError`) before anything is
    written; the sidecar is strict JSON (non-finite numbers become ``null``)."""
    import nibabel as nib
    import numpy as np

    from mrisr.io.atomic import atomic_outputs, strict_json
    from mrisr.io.nifti import NIFTI_SUFFIXES, to_nifti_image

    out = Path(out)
    if not str(out).endswith(NIFTI_SUFFIXES):
        raise ConfigError(f"output '{out}' must end with .nii or .nii.gz")
    data = np.asarray(volume.data)
    if data.dtype.kind == "f":
        finite_float32(data, f"output '{out}'")
    text = strict_json(sidecar, indent=2) + "\n"
    img = to_nifti_image(volume)
    with atomic_outputs([out, sidecar_path(out)], overwrite=overwrite) as (tmp_img, tmp_json):
        nib.save(img, str(tmp_img))
        tmp_json.write_text(text)

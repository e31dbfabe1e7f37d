"""Where an output came from: file hashes, the provenance header every sidecar starts with,
and an atomic write of a volume together with its JSON sidecar.

Used by the commands and by the library functions that write files (``mrisr.upscale``,
``learn_kernel``, checkpoints); it imports nothing above ``io``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mrisr.errors import ConfigError


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


def write_volume_with_sidecar(volume, out: str | Path, sidecar: dict, overwrite: bool) -> None:
    """Write a NIfTI and its JSON sidecar together: both appear, or neither does."""
    import nibabel as nib

    from mrisr.io.atomic import _json_default, atomic_outputs
    from mrisr.io.nifti import NIFTI_SUFFIXES, to_nifti_image

    out = Path(out)
    if not str(out).endswith(NIFTI_SUFFIXES):
        raise ConfigError(f"output '{out}' must end with .nii or .nii.gz")
    img = to_nifti_image(volume)
    with atomic_outputs([out, sidecar_path(out)], overwrite=overwrite) as (tmp_img, tmp_json):
        nib.save(img, str(tmp_img))
        tmp_json.write_text(json.dumps(sidecar, indent=2, default=_json_default) + "\n")

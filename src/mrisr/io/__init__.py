"""Volume I/O: ``load_volume`` for every supported format and atomic ``save_volume``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrisr.io.load import detect_format, load_volume
from mrisr.io.volume import Volume


def save_volume(
    volume: Volume, path: str | Path, overwrite: bool = False, dtype: np.dtype | str = np.float32
) -> Path:
    """Write ``volume`` as NIfTI atomically (temporary file, then rename), keeping its
    qform/sform codes, orientation and units; refuses to overwrite unless ``overwrite``."""
    from mrisr.io.nifti import save_nifti

    return save_nifti(volume, path, overwrite=overwrite, dtype=dtype)


__all__ = ["Volume", "detect_format", "load_volume", "save_volume"]

"""Data shipped with mrisr (see NOTICE for attribution), and the training datasets.

The dataset classes load torch lazily: ``import mrisr.data`` stays light; ``SRSliceDataset``,
``VolumeCache`` and the protocol helpers are imported on first attribute access.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

DEMO_SCAN = "IXI002-T2-demo.nii.gz"

_LAZY = {
    "SRSliceDataset": "mrisr.data.datasets",
    "worker_init_fn": "mrisr.data.datasets",
    "CachedVolume": "mrisr.data.volumes",
    "VolumeCache": "mrisr.data.volumes",
    "FOREGROUND_RULE": "mrisr.data.volumes",
    "CSN_CROP": "mrisr.data.protocols",
    "CSN_SPLIT": "mrisr.data.protocols",
    "ProtocolSplit": "mrisr.data.protocols",
    "fastmri_folder": "mrisr.data.protocols",
    "ixi_csn": "mrisr.data.protocols",
    "split_by_subject": "mrisr.data.protocols",
    "subject_of": "mrisr.data.protocols",
}


def demo_scan_path() -> Path:
    """The real demo scan: a 176×192×24 crop of the IXI002 T2 (IXI, CC BY-SA 3.0)."""
    return Path(__file__).resolve().parent / "demo" / DEMO_SCAN


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mrisr.data' has no attribute {name!r}")


__all__ = ["DEMO_SCAN", "demo_scan_path", *_LAZY]

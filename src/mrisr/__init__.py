"""mrisr — MRI super-resolution toolkit.

``import mrisr`` is light: heavy parts (torch, nibabel, pydicom, h5py) load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_volume": "mrisr.io",
    "save_volume": "mrisr.io",
    "Volume": "mrisr.io",
    "degrade_volume": "mrisr.degrade",
    "evaluate_volume": "mrisr.metrics",
    "upscale": "mrisr.infer.run",
    "build_model": "mrisr.models",
    "load_checkpoint": "mrisr.checkpoint",
    "save_checkpoint": "mrisr.checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mrisr' has no attribute '{name}'")


__all__ = ["__version__", *_LAZY]

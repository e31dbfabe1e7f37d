"""Inference: volume → slices → (tiles) → model (optionally ×8 ensemble) → volume."""

from mrisr.infer.ensemble import SelfEnsemble
from mrisr.infer.tiling import tiled_forward

__all__ = ["SelfEnsemble", "tiled_forward"]

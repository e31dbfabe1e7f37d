"""Inference: volume → slices → (tiles) → model (optionally ×8 ensemble) → volume.

:func:`upscale_volume` (:mod:`mrisr.infer.upsample`) works on a loaded Volume;
:func:`mrisr.infer.run.upscale` (``mrisr.upscale``) on files, with sidecars.
"""

from mrisr.infer.ensemble import SelfEnsemble
from mrisr.infer.tiling import tiled_forward
from mrisr.infer.upsample import UpscaleOptions, upscale_volume

__all__ = ["SelfEnsemble", "UpscaleOptions", "tiled_forward", "upscale_volume"]

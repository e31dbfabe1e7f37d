"""Old name of :mod:`mrisr.infer.upsample` (it upsamples a volume; it resolves nothing).

Kept so that ``from mrisr.infer.resolver import upscale_volume, UpscaleOptions`` goes on
working; new code imports from :mod:`mrisr.infer` or :mod:`mrisr.infer.upsample`.
"""

from mrisr.infer.upsample import UpscaleOptions, upscale_volume

__all__ = ["UpscaleOptions", "upscale_volume"]

"""Degradations: acquisition models that turn an HR image into an LR one (see docs/architecture)."""

from mrisr.degrade.apply import degrade_volume
from mrisr.degrade.base import AxisMap, Degradation, Degraded
from mrisr.degrade.blur import Gaussian, gaussian_downsample
from mrisr.degrade.kspace import (
    KspaceTruncate,
    KspaceZerofill,
    fermi_window,
    fft2c,
    ifft2c,
    kspace_truncate,
    kspace_zerofill,
    zerofill_upsample,
)
from mrisr.degrade.noise import Rician, rician_noise
from mrisr.degrade.pipeline import METHODS, Pipeline, RandomPipeline, from_config, make_degradation
from mrisr.degrade.resize import Bicubic, bicubic_downsample, imresize
from mrisr.degrade.thickslice import ThickSlice

__all__ = [
    "METHODS",
    "AxisMap",
    "Bicubic",
    "Degradation",
    "Degraded",
    "Gaussian",
    "KspaceTruncate",
    "KspaceZerofill",
    "Pipeline",
    "RandomPipeline",
    "Rician",
    "ThickSlice",
    "bicubic_downsample",
    "degrade_volume",
    "fermi_window",
    "fft2c",
    "from_config",
    "gaussian_downsample",
    "ifft2c",
    "imresize",
    "kspace_truncate",
    "kspace_zerofill",
    "make_degradation",
    "rician_noise",
    "zerofill_upsample",
]

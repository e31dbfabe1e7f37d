"""Through-plane thick-slice acquisition: slice thickness and slice spacing as separate numbers.

A thick-slice acquisition integrates the object over a slice profile of width ``thickness`` (mm,
FWHM) centred on positions ``spacing`` mm apart. Thickness > spacing means overlapping slices,
thickness < spacing a gap: the two are independent, as in ECLARE/SynthSR's models of real
2-D protocols.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from mrisr.degrade.base import IDENTITY, AxisMap, Degradation, Degraded
from mrisr.errors import ConfigError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@lru_cache(maxsize=32)
def slice_profile_matrix(
    n_in: int, in_spacing: float, thickness: float, spacing: float, profile: str = "rect"
) -> tuple[np.ndarray, float]:
    """(n_out × n_in) matrix of the thick-slice sampling along one axis, and the input index of
    output slice 0.

    Output slices are centred on the field of view: ``n_out = floor(n_in·d / spacing)`` slices at
    input indices ``c + (k − (n_out − 1)/2)·spacing/d`` with ``c = (n_in − 1)/2``. ``rect``
    integrates each input voxel's overlap with the slab of width ``thickness``; ``gaussian``
    uses a Gaussian profile with that FWHM. Borders are mirrored; rows sum to one.
    """
    d = in_spacing
    n_out = int(math.floor(n_in * d / spacing + 1e-9))
    if n_out < 1:
        raise ConfigError(f"thick-slice: spacing {spacing} mm exceeds the field of view")
    centre = (n_in - 1) / 2
    pos = centre + (np.arange(n_out) - (n_out - 1) / 2) * spacing / d  # input index units
    half = thickness / d / 2  # half thickness in input voxels
    reach = int(math.ceil(half * (3 if profile == "gaussian" else 1) + 1))
    mat = np.zeros((n_out, n_in))
    for k, p in enumerate(pos):
        idx = np.arange(int(math.floor(p)) - reach, int(math.ceil(p)) + reach + 1)
        if profile == "rect":
            # overlap of voxel [i − ½, i + ½] with the slab [p − half, p + half]
            w = np.clip(np.minimum(idx + 0.5, p + half) - np.maximum(idx - 0.5, p - half), 0, None)
        elif profile == "gaussian":
            sigma = thickness / d / FWHM_PER_SIGMA
            w = np.exp(-0.5 * ((idx - p) / sigma) ** 2)
        else:
            raise ConfigError(f"thick-slice: profile must be 'rect' or 'gaussian', got '{profile}'")
        folded = np.mod(idx, 2 * n_in)
        folded = np.where(folded < n_in, folded, 2 * n_in - 1 - folded)
        np.add.at(mat[k], folded, w)
        mat[k] /= mat[k].sum()
    return mat, float(pos[0])


@dataclass(frozen=True)
class ThickSlice(Degradation):
    """Simulate slices of ``thickness`` mm every ``spacing`` mm along the slice axis.

    Acts along dim −2 of its input (the volume layer puts the slice axis there); ``in_spacing``
    is taken from the volume's voxel size unless given.
    """

    thickness: float = 3.0
    spacing: float = 3.0
    profile: str = "rect"
    in_spacing: float | None = None

    method = "thick-slice"
    layout = "through-plane"

    def apply(self, x, spacing=(1.0, 1.0), generator=None) -> Degraded:
        if self.thickness <= 0 or self.spacing <= 0:
            raise ConfigError("thick-slice: thickness and spacing must be > 0 mm")
        d = float(self.in_spacing if self.in_spacing is not None else spacing[0])
        mat, first = slice_profile_matrix(
            x.shape[-2], d, float(self.thickness), float(self.spacing), self.profile
        )
        w = torch.as_tensor(mat, dtype=x.dtype, device=x.device)
        y = torch.matmul(w, x)
        params = self.params()
        params["in_spacing"] = d
        return Degraded(y, params, (AxisMap(self.spacing / d, first), IDENTITY))

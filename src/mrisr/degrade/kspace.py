"""k-space degradations: centred orthonormal FFTs, central truncation, zero-fill with a Fermi
window.

Conventions (as fastMRI's ``fftc``): ``fft2c(x) = fftshift(fft2(ifftshift(x), norm="ortho"))``
over the last two dims; the DC coefficient of an N-point axis sits at index ``N // 2`` and the
spatial origin of the transform is pixel ``N // 2``. Cropping the central M of N coefficients and
inverting on the M-point grid therefore puts output sample ``j`` at input index
``N//2 + s·(j − M//2)`` with ``s = N/M`` — the output grid is *not* block-centred; the
:class:`AxisMap` returned says exactly where it is, and the volume layer writes that into the
affine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from mrisr.degrade.base import IDENTITY, AxisMap, Degradation, Degraded, check_divisible
from mrisr.errors import ConfigError
from mrisr.fourier import DIMS, fft2c, ifft2c  # noqa: F401 - fft2c/ifft2c re-exported


def center_crop(k: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Central ``size`` block of the last two dims; indices ``(N − M)//2 … (N − M)//2 + M``."""
    (n_h, n_w), (m_h, m_w) = k.shape[-2:], size
    top, left = (n_h - m_h) // 2, (n_w - m_w) // 2
    return k[..., top : top + m_h, left : left + m_w]


def center_pad(k: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-pad the last two dims to ``size``, the inverse of :func:`center_crop`."""
    (m_h, m_w), (n_h, n_w) = k.shape[-2:], size
    out = k.new_zeros(*k.shape[:-2], n_h, n_w)
    top, left = (n_h - m_h) // 2, (n_w - m_w) // 2
    out[..., top : top + m_h, left : left + m_w] = k
    return out


def _in_chunks(fn, x: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """Apply ``fn`` to ``x`` [..., H, W] a few images at a time.

    Complex intermediates of a whole volume (130×256×256 → 68 MB each) fall out of the caches;
    8 slices at a time is 6× faster on CPU for the same result (benchmarks/degrade.py).
    """
    lead = x.shape[:-2]
    flat = x.reshape(-1, *x.shape[-2:])
    if flat.shape[0] <= chunk:
        return fn(x)
    out = torch.cat([fn(c) for c in flat.split(chunk)])
    return out.reshape(*lead, *out.shape[-2:])


def _factors(scale: int, axes: str) -> tuple[int, int]:
    if axes not in ("both", "h", "w"):
        raise ConfigError(f"k-space: axes must be 'both', 'h' or 'w', got '{axes}'")
    return (scale if axes in ("both", "h") else 1, scale if axes in ("both", "w") else 1)


def _axis_map(n: int, factor: int) -> AxisMap:
    m = n // factor
    return AxisMap(float(factor), float(n // 2 - factor * (m // 2)))


def fermi_window(
    size: tuple[int, int], radius: float = 1.0, width: float = 1 / 16, device=None
) -> torch.Tensor:
    """Radial Fermi window ``1 / (1 + exp((r − R)/T))`` on a centred ``size`` k-space grid.

    ``r`` is the distance from the centre sample (index ``M//2``) in units of the half-width
    ``M/2`` of each axis (elliptical for non-square grids), so ``radius`` = R and ``width`` = T are
    fractions of the half-width: the defaults R = 1, T = 1/16 give W = 0.5 at the edge of the
    grid along the axes and a transition of M/32 samples (the spec's R = M/2, T = M/32).
    """
    if radius <= 0 or width <= 0:
        raise ConfigError(f"Fermi window: radius and width must be > 0, got {radius}, {width}")
    axes = [(torch.arange(m, dtype=torch.float64, device=device) - m // 2) / (m / 2) for m in size]
    r = torch.sqrt(axes[0][:, None] ** 2 + axes[1][None, :] ** 2)
    return torch.sigmoid(-(r - radius) / width)


def kspace_truncate(
    x: torch.Tensor, scale: int, axes: str = "both", keep_mean: bool = True
) -> torch.Tensor:
    """Keep the central N/s of k-space (both axes or one) and return the magnitude image.

    ``x`` [..., H, W] real → [..., H/s, W] / [..., H, W/s] / [..., H/s, W/s]. With the plain
    orthonormal transforms the result is brighter by sqrt(N_h·N_w / (M_h·M_w)) (s for both axes;
    SANet's code keeps that); ``keep_mean=True`` scales it back so a constant stays constant.
    """
    return _in_chunks(lambda c: _kspace_truncate(c, scale, axes, keep_mean), x)


def _kspace_truncate(
    x: torch.Tensor, scale: int, axes: str = "both", keep_mean: bool = True
) -> torch.Tensor:
    """Unchunked body of :func:`kspace_truncate`."""
    fh, fw = _factors(scale, axes)
    n_h, n_w = x.shape[-2:]
    check_divisible((n_h, n_w), (fh, fw), "kspace-truncate")
    size = (n_h // fh, n_w // fw)
    y = ifft2c(
        center_crop(
            fft2c(x.to(torch.complex64 if x.dtype != torch.float64 else torch.complex128)), size
        )
    ).abs()
    if keep_mean:
        y = y * math.sqrt((size[0] * size[1]) / (n_h * n_w))
    return y.to(x.dtype)


def kspace_zerofill(
    x: torch.Tensor,
    scale: int,
    radius: float = 1.0,
    width: float = 1 / 16,
    grid: Literal["low", "same"] = "low",
    keep_mean: bool = True,
) -> torch.Tensor:
    """Zero the peripheral k-space (keep the central N/s × N/s), apply a Fermi window, and
    return the magnitude — on the low-resolution M×M grid (``grid="low"``, the LR image of the
    realistic-downsampling paper's "ZF" baseline) or zero-filled back on the N×N input grid
    (``grid="same"``). ``keep_mean`` as in :func:`kspace_truncate` (only matters for ``low``).
    """
    if grid not in ("low", "same"):
        raise ConfigError(f"kspace-zerofill: grid must be 'low' or 'same', got '{grid}'")
    return _in_chunks(lambda c: _kspace_zerofill(c, scale, radius, width, grid, keep_mean), x)


def _kspace_zerofill(
    x: torch.Tensor,
    scale: int,
    radius: float,
    width: float,
    grid: str,
    keep_mean: bool,
) -> torch.Tensor:
    """Unchunked body of :func:`kspace_zerofill`."""
    n_h, n_w = x.shape[-2:]
    check_divisible((n_h, n_w), (scale, scale), "kspace-zerofill")
    size = (n_h // scale, n_w // scale)
    cdtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    k = center_crop(fft2c(x.to(cdtype)), size)
    k = k * fermi_window(size, radius, width, device=x.device).to(k.dtype)
    if grid == "same":
        return ifft2c(center_pad(k, (n_h, n_w))).abs().to(x.dtype)
    if grid != "low":
        raise ConfigError(f"kspace-zerofill: grid must be 'low' or 'same', got '{grid}'")
    y = ifft2c(k).abs()
    if keep_mean:
        y = y / scale
    return y.to(x.dtype)


@dataclass(frozen=True)
class KspaceTruncate(Degradation):
    """Central k-space truncation by ``scale`` (``axes`` = both, or only 'h' / 'w')."""

    scale: int = 2
    axes: str = "both"
    keep_mean: bool = True

    method = "kspace-truncate"
    integer_scale = True

    def apply(self, x, spacing=(1.0, 1.0), generator=None) -> Degraded:
        y = kspace_truncate(x, self.scale, self.axes, self.keep_mean)
        fh, fw = _factors(self.scale, self.axes)
        n_h, n_w = x.shape[-2:]
        return Degraded(y, self.params(), (_axis_map(n_h, fh), _axis_map(n_w, fw)))


@dataclass(frozen=True)
class KspaceZerofill(Degradation):
    """k-space zero-fill of the periphery with a Fermi anti-ringing window."""

    scale: int = 2
    radius: float = 1.0
    width: float = 1 / 16
    grid: str = "low"
    keep_mean: bool = True

    method = "kspace-zerofill"
    integer_scale = True

    def apply(self, x, spacing=(1.0, 1.0), generator=None) -> Degraded:
        y = kspace_zerofill(x, self.scale, self.radius, self.width, self.grid, self.keep_mean)  # type: ignore[arg-type]
        n_h, n_w = x.shape[-2:]
        params = self.params()
        m = n_h // self.scale
        params["fermi_radius_samples"] = self.radius * m / 2
        params["fermi_width_samples"] = self.width * m / 2
        if self.grid == "same":
            return Degraded(y, params, (IDENTITY, IDENTITY))
        return Degraded(y, params, (_axis_map(n_h, self.scale), _axis_map(n_w, self.scale)))


def zerofill_upsample(
    x: torch.Tensor,
    scale: int,
    keep_mean: bool = True,
    offsets: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Sinc (zero-filled k-space) interpolation of ``x`` [..., h, w] to [..., s·h, s·w].

    Without ``offsets`` LR sample ``j`` lands at HR index ``N//2 + s·(j − M//2)``, the exact
    inverse grid of :func:`kspace_truncate` (the classic zero-filled reconstruction, the baseline
    a network must beat). ``offsets`` (HR index of LR sample 0 per axis, from the degradation's
    :class:`AxisMap`) moves the samples there with a linear phase ramp, so block-centred LR images
    (bicubic, Gaussian) are interpolated onto the right grid too.
    """
    return _in_chunks(lambda c: _zerofill_upsample(c, scale, keep_mean, offsets), x)


def _zerofill_upsample(x, scale, keep_mean, offsets):
    """Unchunked body of :func:`zerofill_upsample`."""
    h, w = x.shape[-2:]
    n_h, n_w = h * scale, w * scale
    cdtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    k = center_pad(fft2c(x.to(cdtype)), (n_h, n_w))
    if offsets is not None:
        for dim, (n, m, off) in zip(
            (-2, -1), ((n_h, h, offsets[0]), (n_w, w, offsets[1])), strict=True
        ):
            delta = off - (n // 2 - scale * (m // 2))
            if delta:
                freq = torch.arange(n, dtype=torch.float64, device=x.device) - n // 2
                ramp = torch.exp(-2j * math.pi * freq * delta / n).to(cdtype)
                k = k * (ramp[:, None] if dim == -2 else ramp[None, :])
    y = ifft2c(k).abs()
    if keep_mean:
        y = y * scale
    return y.to(x.dtype)

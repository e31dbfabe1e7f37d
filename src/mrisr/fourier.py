"""Centred orthonormal 2-D FFTs over the last two dims (fastMRI's ``fftc`` convention):
``fft2c(x) = fftshift(fft2(ifftshift(x), norm="ortho"))``. The DC coefficient of an N-point
axis sits at index ``N // 2``, and so does the spatial origin of the transform.

A leaf module: the k-space reader (``io.kspace_h5``) and the k-space degradations
(``degrade.kspace``) both use it, and neither imports the other.
"""

from __future__ import annotations

import torch

DIMS = (-2, -1)


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D FFT over the last two dims: [..., H, W] → complex [..., H, W]."""
    x = torch.fft.ifftshift(x, dim=DIMS)
    return torch.fft.fftshift(torch.fft.fft2(x, dim=DIMS, norm="ortho"), dim=DIMS)


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D inverse FFT over the last two dims (complex in, complex out)."""
    k = torch.fft.ifftshift(k, dim=DIMS)
    return torch.fft.fftshift(torch.fft.ifft2(k, dim=DIMS, norm="ortho"), dim=DIMS)

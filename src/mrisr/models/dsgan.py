"""Realistic-downsampling GAN (DSGAN): learn a scanner's HR → LR kernel from unpaired slices.

The generator is a *deep linear* network (KernelGAN's G; spec §5.2): convolutions 7×7, 5×5,
3×3 and three 1×1 with 64 channels, no bias, no padding, no activation, the last one with
stride = scale. Being linear and shift-invariant, it is one explicit kernel ``k`` (13×13 for
the default layers) followed by decimation::

    G(x) = conv2d(x, k, stride=s)          (conv2d = cross-correlation, as in PyTorch)

:func:`equivalent_kernel` computes ``k`` differentiably (the delta response of the layers,
flipped), which is what the regularisers act on and what is saved. Sample ``j`` of the output
of a crop lies at crop coordinate ``s·j + c`` where ``c`` is ``k``'s centre; the centre
regulariser pulls ``c`` to ``K//2 + (s − 1)/2`` (6.5 at ×2), the centre of the ``s``×``s`` block,
so a learned kernel samples the same grid as mrisr's other decimations.

The discriminator (KernelGAN's D with an edge input, spec §5.3) sees an LR patch as three
channels ``[y, S_x∗y, S_y∗y]`` (Sobel, zero padding) and returns a map of probabilities, one per
7×7 window: spectral-normalised 7×7 conv, five [SN 1×1, BN, ReLU], SN 1×1 → sigmoid.

Losses (spec §5.4, the paper's Eq. 2–3): L1 to 0/1 label maps for the adversarial terms, and
the five kernel regularisers of :class:`KernelRegularisers`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mrisr.degrade.kernel import centre_of_mass  # noqa: F401 - re-exported

SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def kernel_size_of(structure: Sequence[int]) -> int:
    """Receptive field of stacked valid convolutions: 1 + Σ(k − 1)."""
    return 1 + sum(k - 1 for k in structure)


def kernel_centre(size: int, scale: int) -> float:
    """Where a kernel's centre of mass belongs (both axes): the middle of the ``scale``-block
    its output sample summarises (KernelGAN: ``K//2 + 0.5·(s − K mod 2)``; 6.5 for 13 at ×2)."""
    return size // 2 + 0.5 * (scale - size % 2)


class DSGANGenerator(nn.Module):
    """Deep linear downsampler; ``forward`` maps an HR crop ``[B, 1, H, W]`` to its LR."""

    def __init__(
        self, scale: int = 2, n_feats: int = 64, structure: Sequence[int] = (7, 5, 3, 1, 1, 1)
    ) -> None:
        super().__init__()
        if len(structure) < 2:
            raise ValueError("structure: give at least two layer sizes")
        self.scale = int(scale)
        self.structure = tuple(int(k) for k in structure)
        chans = [1] + [n_feats] * (len(structure) - 1) + [1]
        layers = []
        for i, k in enumerate(self.structure):
            last = i == len(self.structure) - 1
            layers.append(
                nn.Conv2d(chans[i], chans[i + 1], k, stride=self.scale if last else 1, bias=False)
            )
        self.layers = nn.Sequential(*layers)
        for m in self.layers:  # KernelGAN weights_init_G
            nn.init.xavier_normal_(m.weight, 0.1)

    @property
    def kernel_size(self) -> int:
        return kernel_size_of(self.structure)

    def output_size(self, n: int) -> int:
        return (n - self.kernel_size) // self.scale + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def equivalent_kernel(g: DSGANGenerator) -> torch.Tensor:
    """The ``K``×``K`` kernel with ``g(x) == conv2d(x, k, stride=s)`` (differentiable)."""
    ks = g.kernel_size
    w0 = g.layers[0].weight
    delta = torch.ones(1, 1, 1, 1, dtype=w0.dtype, device=w0.device)
    y = F.conv2d(delta, w0, padding=ks - 1)
    for layer in list(g.layers)[1:]:
        y = F.conv2d(y, layer.weight)
    return y[0, 0].flip(0, 1)


def sobel(y: torch.Tensor) -> torch.Tensor:
    """``[B, 1, h, w]`` → ``[B, 3, h, w]``: the image and its horizontal / vertical Sobel maps
    (the paper's Eq. 1), zero "same" padding."""
    sx = torch.tensor(SOBEL_X, dtype=y.dtype, device=y.device)
    w = torch.stack([sx, sx.t()])[:, None]
    return torch.cat([y, F.conv2d(y, w, padding=1)], dim=1)


class DSGANDiscriminator(nn.Module):
    """Patch discriminator on ``[y, S_x∗y, S_y∗y]``: ``[B, 1, h, w]`` → ``[B, 1, h−6, w−6]``
    probabilities (one per 7×7 window)."""

    def __init__(self, n_feats: int = 64, n_layers: int = 7, kernel: int = 7) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.first = sn(nn.Conv2d(3, n_feats, kernel))
        body = []
        for _ in range(n_layers - 2):
            body += [sn(nn.Conv2d(n_feats, n_feats, 1)), nn.BatchNorm2d(n_feats), nn.ReLU(True)]
        self.body = nn.Sequential(*body)
        self.last = sn(nn.Conv2d(n_feats, 1, 1))
        for m in self.modules():  # KernelGAN weights_init_D
            if isinstance(m, nn.Conv2d):
                sn_w = getattr(m, "parametrizations", None)
                nn.init.xavier_normal_(sn_w.weight.original if sn_w else m.weight, 0.1)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.last(self.body(self.first(sobel(y)))))


def bicubic_taps(scale: int) -> np.ndarray:
    """1-D antialiased bicubic (MATLAB ``imresize``, a = −0.5) weights of a ×``scale``
    decimation: ``4·scale`` taps at distances ±0.5, ±1.5, ... from the output sample."""
    from mrisr.degrade.resample import cubic_kernel

    pos = np.arange(4 * scale, dtype=np.float64) - (4 * scale - 1) / 2
    w = cubic_kernel(pos / scale) / scale
    return w / w.sum()


class KernelRegularisers(nn.Module):
    """The five terms of Eq. 3 on a kernel ``k`` (KernelGAN ``loss.py``); all differentiable.

    - ``bicubic``: MSE between ``G(x)`` and ``x`` decimated by the antialiased bicubic kernel
      (``4s``×``4s`` taps, stride ``s``), centre-cropped to ``G(x)``'s size;
    - ``sum2one``: ``|1 − Σk|``;
    - ``boundaries``: ``mean|k ⊙ m|`` with ``m = 30·(1 − g/max g)`` (``g`` a Gaussian of σ = K),
      zero on the inner (K−4)×(K−4): only the outer 2-pixel ring is penalised;
    - ``sparse``: ``mean|k|^0.2``;
    - ``centre``: MSE between ``k``'s centre of mass (row, col) and :func:`kernel_centre`.
    """

    def __init__(self, size: int, scale: int) -> None:
        super().__init__()
        self.size, self.scale = size, scale
        taps = bicubic_taps(scale)
        self.register_buffer("bicubic", torch.tensor(np.outer(taps, taps), dtype=torch.float32))
        r = np.arange(size, dtype=np.float64) - (size - 1) / 2
        g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2.0 * size**2))
        m = 30.0 * (1.0 - g / g.max())
        m[2 : size - 2, 2 : size - 2] = 0.0
        self.register_buffer("mask", torch.tensor(m, dtype=torch.float32))
        self.register_buffer("idx", torch.arange(size, dtype=torch.float32))
        self.centre = kernel_centre(size, scale)

    def bicubic_loss(self, hr: torch.Tensor, lr_fake: torch.Tensor) -> torch.Tensor:
        s, t = self.scale, self.bicubic.shape[-1]
        ref = F.conv2d(hr, self.bicubic[None, None].to(hr.dtype), stride=s, padding=(t - s) // 2)
        dh = (ref.shape[-2] - lr_fake.shape[-2]) // 2
        dw = (ref.shape[-1] - lr_fake.shape[-1]) // 2
        ref = ref[..., dh : dh + lr_fake.shape[-2], dw : dw + lr_fake.shape[-1]]
        return F.mse_loss(lr_fake, ref)

    def sum2one(self, k: torch.Tensor) -> torch.Tensor:
        return (1.0 - k.sum()).abs()

    def boundaries(self, k: torch.Tensor) -> torch.Tensor:
        return (k * self.mask).abs().mean()

    def sparse(self, k: torch.Tensor) -> torch.Tensor:
        return k.abs().pow(0.2).mean()

    def centre_loss(self, k: torch.Tensor) -> torch.Tensor:
        total = k.sum()
        row = (k.sum(1) * self.idx).sum() / total
        col = (k.sum(0) * self.idx).sum() / total
        target = torch.full((2,), self.centre, dtype=k.dtype, device=k.device)
        return F.mse_loss(torch.stack([row, col]), target)

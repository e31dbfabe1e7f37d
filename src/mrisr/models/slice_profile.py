"""Learning a slice profile (``task: profile``): the 1-D analogue of the DSGAN's networks.

Generator: the profile itself, unimodal by construction: ``h = softmax(z)`` with ``z_c = 0``
at the centre tap ``c = (L − 1)/2`` and ``z`` falling away from it on each side by positive
steps, ``z_{c±m} = −Σ_{j ≤ m} softplus(a^±_j)`` (``2c`` free numbers, left and right apart, so
an asymmetric profile can be learned). So ``h`` is ≥ 0 and sums to 1 (a slice integrates a
positive weight of the object and keeps the mean intensity; the sum-to-one regulariser of
:class:`~mrisr.models.dsgan.KernelRegularisers` is not needed) and it has one peak, at the
slice centre, as an RF-selected slab has. A free softmax (or the deep linear net of the 2-D
DSGAN) drifted to flat floors (~1 % a tap) and second peaks that change a segment sampled
every ``k`` voxels too little for the discriminator to see (measured). It starts as a
Gaussian of FWHM ``init_fwhm``. Applied to the taps of an in-plane line
(:class:`mrisr.data.through_plane_lines.ThroughPlaneLines`) it gives a fake through-plane
segment: ``G(taps) = taps @ h``, ``[B, J, L] → [B, 1, J]``.

Discriminator: DSGANDiscriminator in 1-D: the segment and its derivative ``[y, ∂y]`` (central
difference, edge samples replicated), a spectral-normalised convolution of ``kernel`` samples,
``n_layers − 2`` blocks [SN 1×1, BN, ReLU] and an SN 1×1 with a sigmoid: one probability per
window of ``kernel`` slices.

Regularisers (:class:`ProfileRegularisers`, KernelRegularisers' terms that make sense in 1-D):
``boundaries`` (mass on the outer two taps at each end, weighted 30·(1 − g/max g)), ``centre``
(squared distance of the centre of mass from tap ``(L − 1)/2``) and ``sparse``
(``mean h^0.2``). Plus :class:`SegmentSpectra`: the mean squared log ratio of the real and fake
segments' power spectra, exact for any ``h`` from running statistics of the data (both spectra
are quadratic forms in ``h``). It pins the profile's width down (its RMS width); the
discriminator adds what second-order statistics miss, and alone it was the noisier estimator
(Gaussian FWHM +18 % at k = 4 without the spectrum term, −2 % with it: measured).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mrisr.degrade.profile import FWHM_PER_SIGMA


class ProfileGenerator(nn.Module):
    """Unimodal ``L``-tap profile (see the module docstring); ``forward(taps [B, J, L]) →
    [B, 1, J]``. ``init_fwhm``: the starting Gaussian's FWHM in taps."""

    def __init__(self, length: int, init_fwhm: float = 2.0) -> None:
        super().__init__()
        self.length = int(length)
        if self.length < 3 or self.length % 2 == 0:
            raise ValueError(f"profile length must be odd and >= 3, got {length}")
        m = torch.arange(1, self.length // 2 + 1, dtype=torch.float64)
        sigma = float(init_fwhm) / FWHM_PER_SIGMA
        step = (2 * m - 1) / (2 * sigma**2)  # Gaussian log-profile differences, all > 0
        a = step + torch.log(-torch.expm1(-step))  # softplus⁻¹, stable for large steps
        self.steps = nn.Parameter(torch.stack([a, a.clone()]).float())  # [left, right]

    def profile(self) -> torch.Tensor:
        z = -torch.cumsum(F.softplus(self.steps), dim=1)
        zero = torch.zeros(1, dtype=z.dtype, device=z.device)
        return torch.softmax(torch.cat([z[0].flip(0), zero, z[1]]), dim=0)

    def forward(self, taps: torch.Tensor) -> torch.Tensor:
        return (taps @ self.profile().to(taps.dtype))[:, None, :]


def with_derivative(y: torch.Tensor) -> torch.Tensor:
    """``[B, 1, J]`` → ``[B, 2, J]``: the segment and its central difference (ends replicated)."""
    p = F.pad(y, (1, 1), mode="replicate")
    return torch.cat([y, 0.5 * (p[..., 2:] - p[..., :-2])], dim=1)


class ProfileDiscriminator(nn.Module):
    """Patch discriminator on ``[y, ∂y]``: ``[B, 1, J]`` → ``[B, 1, J − kernel + 1]``."""

    def __init__(self, n_feats: int = 64, n_layers: int = 5, kernel: int = 5) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.kernel = int(kernel)
        self.first = sn(nn.Conv1d(2, n_feats, self.kernel))
        body: list[nn.Module] = []
        for _ in range(max(0, n_layers - 2)):
            body += [sn(nn.Conv1d(n_feats, n_feats, 1)), nn.BatchNorm1d(n_feats), nn.ReLU(True)]
        self.body = nn.Sequential(*body)
        self.last = sn(nn.Conv1d(n_feats, 1, 1))
        for m in self.modules():  # as DSGANDiscriminator (KernelGAN weights_init_D)
            if isinstance(m, nn.Conv1d):
                sn_w = getattr(m, "parametrizations", None)
                nn.init.xavier_normal_(sn_w.weight.original if sn_w else m.weight, 0.1)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm1d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.last(self.body(self.first(with_derivative(y)))))


class ProfileRegularisers(nn.Module):
    """``boundaries``, ``centre`` and ``sparse`` on a 1-D profile ``h`` (differentiable)."""

    def __init__(self, length: int) -> None:
        super().__init__()
        n = int(length)
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2
        g = np.exp(-(x**2) / (2.0 * n**2))
        m = 30.0 * (1.0 - g / g.max())
        m[2 : n - 2] = 0.0
        self.register_buffer("mask", torch.tensor(m, dtype=torch.float32))
        self.register_buffer("idx", torch.arange(n, dtype=torch.float32))
        self.centre = (n - 1) / 2

    def boundaries(self, h: torch.Tensor) -> torch.Tensor:
        return (h * self.mask).abs().mean()

    def sparse(self, h: torch.Tensor) -> torch.Tensor:
        return h.abs().pow(0.2).mean()

    def centre_loss(self, h: torch.Tensor) -> torch.Tensor:
        com = (h * self.idx).sum() / h.sum()
        return (com - self.centre) ** 2


class SegmentSpectra(nn.Module):
    """Running power spectra of the real and fake segments as quadratic forms in the profile.

    A segment ``y = taps @ h`` (``J`` samples, mean removed, Hann window) has the power
    ``|F y|²_f = hᵀ Re(Tᴴ F_fᴴ F_f T) h`` at frequency ``f``: :meth:`update` keeps the running
    mean of that ``L``×``L`` matrix per frequency (DC left out) for the real taps and for the fake
    ones (statistics of the data, not of ``h``), and :meth:`loss` is the mean squared log ratio
    of the two spectra for ``h``: an exact, noise-averaged discriminator of second-order
    statistics, which D sees only through its noisy updates.
    """

    def __init__(self, segment: int, length: int) -> None:
        super().__init__()
        n = int(segment)
        w = np.hanning(n + 2)[1:-1]
        f = np.fft.rfft(np.eye(n) * w[:, None], axis=0) @ (np.eye(n) - 1.0 / n)
        self.register_buffer("dft_re", torch.tensor(f.real[1:], dtype=torch.float32))
        self.register_buffer("dft_im", torch.tensor(f.imag[1:], dtype=torch.float32))
        shape = (f.shape[0] - 1, int(length), int(length))
        self.register_buffer("real_cov", torch.zeros(shape))
        self.register_buffer("fake_cov", torch.zeros(shape))
        self.register_buffer("count", torch.zeros(()))

    @torch.no_grad()
    def update(self, real_taps: torch.Tensor, fake_taps: torch.Tensor) -> None:
        b = real_taps.shape[0]
        for taps, cov in ((real_taps, self.real_cov), (fake_taps, self.fake_cov)):
            t = taps.to(cov.dtype)
            re = torch.einsum("fj,bjl->bfl", self.dft_re, t)
            im = torch.einsum("fj,bjl->bfl", self.dft_im, t)
            outer = torch.einsum("bfl,bfm->flm", re, re) + torch.einsum("bfl,bfm->flm", im, im)
            batch = outer / b
            cov += (batch - cov) * (b / (self.count + b))
        self.count += b

    def power(self, h: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
        return torch.einsum("l,flm,m->f", h, cov.to(h.dtype), h)

    def loss(self, h: torch.Tensor) -> torch.Tensor:
        if not self.count > 0:
            return h.sum() * 0.0
        tiny = 1e-12
        ratio = torch.log(self.power(h, self.fake_cov) + tiny) - torch.log(
            self.power(h, self.real_cov) + tiny
        )
        return (ratio**2).mean()

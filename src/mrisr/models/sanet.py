"""SANet: multi-contrast SR with separable attention (spec §3; paper: sanet-multicontrast.md).

A low-resolution target contrast (e.g. T2, ``lr [B, 1, h, w]``) is restored with a
high-resolution auxiliary ("guide") contrast of the same anatomy on the output grid
(``guide [B, 1, s·h, s·w]``, e.g. T1). Two branches of RCAN residual groups run at the HR
resolution (the target is upsampled right after its head); after every stage a separable
attention module adds to the target stream a residual predicted from the auxiliary features
(high-intensity priority map σ(·) and its complement, the low-intensity separation map); the
multi-stage integration module (MSIM, HAN's layer attention) fuses the 2L stored stage
features; channel-spatial attention (CSAM, a 3-D convolution over C×H×W) refines each
branch's last features; both contrasts are reconstructed.

``forward(lr, guide)`` returns the target image; :meth:`SANet.forward_both` returns
``(target, auxiliary)`` for the training loss ``α·L1(target) + (1 − α)·L1(aux)``, α = 0.7.

Two layouts:

- ``mode="paper"`` (default, the spec's functional reading): all L stages are fused, no dead
  modules — 6,806,627 parameters at ×2 with L = 6.
- ``mode="code"``: the registration of the released ``SANet.py`` (11,413,707 at ×2, L = 6),
  including the modules it registers but never runs (a third branch's body, 7 fusion convs,
  ...), and its forward: only 4 separable-attention stages (it zips the groups with its 4
  attention modules), the trailing body convs and groups 5–6 unused. Parameter names follow
  the released model, so its state dict loads. It runs only at L = 6, as released.

Ablations (paper Table III) switch parts off: ``guide`` (the auxiliary branch), ``msim``,
``csam`` (M_Att) and ``sa`` (S^l). Without MSIM the last target features are fused with the
last auxiliary features by the same 3×3 convolution (or, without a guide, that convolution
sees the target features alone) [assumption: the paper does not say how Ab₃ fuses].
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from mrisr.models.blocks import Upsampler, conv


class CALayer(nn.Module):
    """RCAN channel attention: GAP → 1×1 C→C/r → ReLU → 1×1 C/r→C → sigmoid → ×x."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


class RCAB(nn.Module):
    """conv3×3 → ReLU → conv3×3 → CA, plus the input (no residual scaling)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels),
            nn.ReLU(inplace=True),
            conv(channels, channels),
            CALayer(channels, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """``n_rcab`` RCABs and a conv3×3, with a group skip (483,544 parameters at 6 × 64)."""

    def __init__(self, channels: int, n_rcab: int = 6, reduction: int = 16) -> None:
        super().__init__()
        blocks: list[nn.Module] = [RCAB(channels, reduction) for _ in range(n_rcab)]
        self.body = nn.Sequential(*blocks, conv(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(conv(cin, cout, k), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PredLayer(nn.Module):
    """Q_R: conv3×3 2·r→r + BN + ReLU, then conv1×1 r→C (a C-channel residual)."""

    def __init__(self, channels: int = 64, reduced: int = 32) -> None:
        super().__init__()
        self.enlayer = _conv_bn_relu(2 * reduced, reduced)
        self.outlayer = nn.Sequential(nn.Conv2d(reduced, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outlayer(self.enlayer(x))


class SeparableAttention(nn.Module):
    """S^l (spec §3.3): residual for the target stream from ``(f_aux, f_tar, logit map)``.

    ``f = conv1×1(cat(f_aux, f_tar))`` (C→32); ``a_H = σ(map)``, ``a_L = 1 − a_H``;
    ``p = Q_ff(f·a_H)``, ``q = Q_bf(f·a_L)`` (conv3×3 + BN + ReLU each); ``Q_R(cat(p, q))``.
    The map itself (conv3×3 C→1 on f_aux) is computed outside, as in the released code.
    ``dead_convq`` registers the released model's unused ``convq``.
    """

    def __init__(self, channels: int = 64, reduced: int = 32, dead_convq: bool = False) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(2 * channels, reduced, 1)
        self.ff_conv = _conv_bn_relu(reduced, reduced)
        self.bf_conv = _conv_bn_relu(reduced, reduced)
        self.rgbd_pred_layer = PredLayer(channels, reduced)
        if dead_convq:
            self.convq = conv(reduced, reduced)

    def forward(
        self, f_aux: torch.Tensor, f_tar: torch.Tensor, logit: torch.Tensor
    ) -> torch.Tensor:
        f = self.reduce(torch.cat([f_aux, f_tar], 1))
        a_high = torch.sigmoid(logit)
        p = self.ff_conv(f * a_high)
        q = self.bf_conv(f * (1 - a_high))
        return self.rgbd_pred_layer(torch.cat([p, q], 1))


class MSIM(nn.Module):
    """Multi-stage integration (HAN's layer attention): ``[B, N, C, H, W]`` → ``[B, N·C, H, W]``.

    ``E = F·Fᵀ`` over the flattened stages, ``A = softmax(rowmax(E) − E)`` (the released rule),
    ``out = γ·A·F + F`` with γ initialised to 0.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c, h, w = x.shape
        f = x.reshape(b, n, -1)
        energy = torch.bmm(f, f.transpose(1, 2))
        energy = energy.amax(-1, keepdim=True) - energy
        out = torch.bmm(torch.softmax(energy, -1), f)
        return (self.gamma * out + f).reshape(b, n * c, h, w)


class CSAM(nn.Module):
    """Channel-spatial attention: ``x·(γ·σ(conv3d(x))) + x`` with x as a 1-channel C×H×W
    volume, a 3×3×3 convolution and γ initialised to 0 (29 parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 1, 3, padding=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        att = torch.sigmoid(self.conv(x.unsqueeze(1))).squeeze(1)
        return x * (self.gamma * att) + x


class SANet(nn.Module):
    """SANet generator; see the module doc. ``n_groups`` = L (6), ``n_rcab`` RCABs per group."""

    needs_guide = True

    def __init__(
        self,
        scale: int = 2,
        n_groups: int = 6,
        n_rcab: int = 6,
        n_feats: int = 64,
        reduction: int = 16,
        mode: Literal["paper", "code"] = "paper",
        guide: bool = True,
        msim: bool = True,
        csam: bool = True,
        sa: bool = True,
    ) -> None:
        super().__init__()
        if mode not in ("paper", "code"):
            raise ValueError(f"mode must be 'paper' or 'code', not {mode!r}")
        if mode == "code" and not (guide and msim and csam and sa):
            raise ValueError(
                "the released layout (mode='code') has every part; ablate mode='paper'"
            )
        if (sa or msim) and not guide:
            raise ValueError("separable attention and MSIM fuse the guide's features: need guide")
        self.scale, self.mode, self.n_groups = scale, mode, n_groups
        self.use_guide, self.use_msim, self.use_csam, self.use_sa = guide, msim, csam, sa
        self.needs_guide = guide
        c = n_feats
        if mode == "code":
            self._build_code(scale, n_groups, n_rcab, c, reduction)
            return
        self.tar_head = conv(1, c)
        self.tar_up = nn.Sequential(Upsampler(scale, c), conv(c, c))
        self.tar_groups = nn.ModuleList(
            ResidualGroup(c, n_rcab, reduction) for _ in range(n_groups)
        )
        n_fuse = 1
        if guide:
            self.aux_head = conv(1, c)
            self.aux_groups = nn.ModuleList(
                ResidualGroup(c, n_rcab, reduction) for _ in range(n_groups)
            )
            self.aux_csam = CSAM() if csam else None
            self.aux_tail = conv(c, c)
            self.aux_out = conv(c, 1)
            n_fuse = 2
        if sa:
            self.map_convs = nn.ModuleList(conv(c, 1) for _ in range(n_groups))
            self.attention = nn.ModuleList(SeparableAttention(c) for _ in range(n_groups))
        if msim:
            self.msim = MSIM()
            self.msim_conv = conv(2 * n_groups * c, c)
        self.tar_csam = CSAM() if csam else None
        self.fuse = conv(n_fuse * c, c)
        self.tar_out = conv(c, 1)

    # ------------------------------------------------------------------ the released layout

    def _build_code(self, scale: int, n_groups: int, n_rcab: int, c: int, reduction: int) -> None:
        """Register exactly what the released ``SANet.__init__`` registers, in its order."""
        self.Seatts = nn.ModuleList(SeparableAttention(c, dead_convq=True) for _ in range(4))
        self.net1 = _CodeBranch(scale, n_groups, n_rcab, c, reduction)
        self.net2 = _CodeBranch(scale, n_groups, n_rcab, c, reduction)
        main = _CodeBranch(scale, n_groups, n_rcab, c, reduction)  # only parts are attached
        self.body, self.csa, self.la = main.body, main.csa, main.la
        self.last_conv, self.last, self.last1, self.tail = (
            main.last_conv,
            main.last,
            main.last1,
            main.tail,
        )
        self.conv1 = conv(2 * c, c)
        n_layer = n_groups + 1  # len(net1.body): the groups and the body's trailing conv
        self.fusion_convs = nn.ModuleList(conv(2 * c, c) for _ in range(n_layer))
        self.map_convs = nn.ModuleList(conv(c, 1) for _ in range(n_layer))
        self.rgbd_global = PredLayer(c)

    def _forward_code(self, lr: torch.Tensor, guide: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.n_groups != 6:
            raise ValueError(
                "the released layout runs only with n_groups=6 (its 4 attention stages give "
                "8 stacked features for a 64·(L+2)-channel fusion conv); use mode='paper'"
            )
        a0 = self.net1.head(guide)
        t0 = self.tail(self.net2.head(lr))
        a, t = a0, t0
        aux_f, tar_f = [], []
        for g_aux, g_tar, att, mconv in zip(
            self.net1.body, self.net2.body, self.Seatts, self.map_convs, strict=False
        ):
            a, t = g_aux(a), g_tar(t)
            aux_f.append(a)
            tar_f.append(t)
            t = t + att(a, t, mconv(a))
        h = self.net2.last_conv(self.net2.la(torch.stack(aux_f + tar_f, 1)))
        tar = self.net2.final(self.net2.last(torch.cat([self.net2.csa(t), h], 1)) + t0)
        aux = self.net1.final(self.net1.last1(self.net1.csa(a)) + a0)
        return tar, aux

    # ------------------------------------------------------------------ forward

    def _check(self, lr: torch.Tensor, guide: torch.Tensor | None) -> None:
        if not self.use_guide:
            if guide is not None:
                raise ValueError(
                    "this SANet ablation is single-contrast (no guide branch); it takes no guide"
                )
            return
        if guide is None:
            raise ValueError(
                "SANet needs the high-resolution guide contrast (forward(lr, guide)); "
                "give --guide T1.nii.gz"
            )
        want = (lr.shape[0], 1, lr.shape[2] * self.scale, lr.shape[3] * self.scale)
        if tuple(guide.shape) != want:
            raise ValueError(
                f"guide has shape {tuple(guide.shape)}; it must be on the output grid, {want}"
            )

    def forward_both(
        self, lr: torch.Tensor, guide: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(target SR, auxiliary reconstruction or None)``."""
        self._check(lr, guide)
        if self.mode == "code":
            assert guide is not None
            return self._forward_code(lr, guide)
        t0 = self.tar_up(self.tar_head(lr))
        t = t0
        a0 = a = self.aux_head(guide) if self.use_guide else None
        aux_f, tar_f = [], []
        for k, g_tar in enumerate(self.tar_groups):
            t = g_tar(t)
            if a is not None:
                a = self.aux_groups[k](a)
                aux_f.append(a)
            tar_f.append(t)
            if self.use_sa:
                t = t + self.attention[k](a, t, self.map_convs[k](a))
        g_tar = self.tar_csam(t) if self.tar_csam is not None else t
        if self.use_msim:
            second = self.msim_conv(self.msim(torch.stack(aux_f + tar_f, 1)))
            fused = torch.cat([g_tar, second], 1)
        elif a is not None:
            fused = torch.cat([g_tar, self.aux_csam(a) if self.aux_csam is not None else a], 1)
        else:
            fused = g_tar
        tar = self.tar_out(self.fuse(fused) + t0)
        aux = None
        if a is not None:
            g_aux = self.aux_csam(a) if self.aux_csam is not None else a
            aux = self.aux_out(self.aux_tail(g_aux) + a0)
        return tar, aux

    def forward(
        self, lr: torch.Tensor, guide: torch.Tensor | None = None, return_aux: bool = False
    ) -> torch.Tensor:
        """The target SR; with ``return_aux`` the pair :meth:`forward_both` returns (so the
        training task gets both through a DDP / precision wrapper)."""
        both = self.forward_both(lr, guide)
        return both if return_aux else both[0]  # type: ignore[return-value]


class _CodeBranch(nn.Module):
    """The released ``SR_Branch`` registration (names and order) — only parts of it run."""

    def __init__(self, scale: int, n_groups: int, n_rcab: int, c: int, reduction: int) -> None:
        super().__init__()
        self.add_mean = nn.Conv2d(3, 3, 1)  # the frozen RGB MeanShift of the released code
        self.add_mean.requires_grad_(False)
        self.head = nn.Sequential(conv(1, c))
        groups: list[nn.Module] = [ResidualGroup(c, n_rcab, reduction) for _ in range(n_groups)]
        self.body = nn.Sequential(*groups, conv(c, c))
        self.csa = CSAM()
        self.la = MSIM()
        self.last_conv = conv(c * (n_groups + 2), c)
        self.last = conv(2 * c, c)
        self.last1 = conv(c, c)
        self.tail = nn.Sequential(Upsampler(scale, c), conv(c, c))
        self.final = conv(c, 1)

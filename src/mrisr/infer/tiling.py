"""Tiled inference: large slices in overlapping tiles, so peak memory is bounded.

Each tile is run with a context ``margin`` of LR pixels on every side that is not an image
border; outputs of the margins are discarded, and neighbouring tile cores overlap by ``blend``
pixels that are cross-faded with linear ramps. When the margin covers the network's receptive
field, the tiled result equals the untiled one up to float rounding; with a global operation
(SERAN's attention, FA-GAN's self-attention) the margin and blend hide the seams.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def _starts(n: int, core: int, blend: int) -> list[int]:
    """Start indices of cores of length ``core`` covering [0, n) with ``blend`` overlap."""
    if n <= core:
        return [0]
    step = core - blend
    starts = list(range(0, n - core, step)) + [n - core]
    return sorted(set(starts))


def _balanced_core(n: int, tile: int, blend: int) -> int:
    """The smallest core that covers ``n`` with as many tiles as ``tile`` needs.

    A 256-pixel axis with tile 128 and blend 8 needs 3 tiles; cores of 91 instead of 128 do the
    same with no redundant overlap (2.69× → 1.63× the untiled time, benchmarks/README.md).
    """
    if n <= tile:
        return n
    k = math.ceil((n - blend) / (tile - blend))
    return min(tile, math.ceil((n + (k - 1) * blend) / k))


def _ramp(length: int, blend_lo: int, blend_hi: int) -> torch.Tensor:
    """1-D weight: linear ramps of ``blend_lo`` / ``blend_hi`` samples at the two ends."""
    w = torch.ones(length, dtype=torch.float64)
    if blend_lo:
        w[:blend_lo] = torch.arange(1, blend_lo + 1, dtype=torch.float64) / (blend_lo + 1)
    if blend_hi:
        w[length - blend_hi :] = torch.arange(blend_hi, 0, -1, dtype=torch.float64) / (blend_hi + 1)
    return w


def tiled_forward(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    scale: int,
    tile: int,
    margin: int = 16,
    blend: int = 8,
) -> torch.Tensor:
    """Apply ``fn`` ([B, C, h, w] → [B, C', s·h, s·w]) to ``x`` in tiles of ``tile`` LR pixels.

    Args:
        fn: the model (or ensemble) call.
        x: LR batch [B, C, h, w].
        scale: the model's scale ``s``.
        tile: core tile size in LR pixels (the part of each tile that is kept).
        margin: context added around each core (not at image borders), LR pixels.
        blend: overlap of neighbouring cores, cross-faded linearly, LR pixels.
    Returns:
        [B, C', s·h, s·w] on ``x``'s device.
    """
    b, _, h, w = x.shape
    if tile <= 0 or (h <= tile and w <= tile):
        return fn(x)
    blend = min(blend, tile // 2)
    s = scale
    out = None
    weight = torch.zeros(s * h, s * w, dtype=torch.float64, device=x.device)
    core_h, core_w = _balanced_core(h, tile, blend), _balanced_core(w, tile, blend)
    ys, xs = _starts(h, core_h, blend), _starts(w, core_w, blend)
    for i, y0 in enumerate(ys):
        for j, x0 in enumerate(xs):
            # context window, clipped at the image borders
            top, left = max(0, y0 - margin), max(0, x0 - margin)
            bottom, right = min(h, y0 + core_h + margin), min(w, x0 + core_w + margin)
            y = fn(x[:, :, top:bottom, left:right])
            if out is None:
                out = torch.zeros(b, y.shape[1], s * h, s * w, dtype=torch.float64, device=x.device)
            cy, cx = s * (y0 - top), s * (x0 - left)
            core = y[:, :, cy : cy + s * core_h, cx : cx + s * core_w].to(torch.float64)
            wy = _ramp(s * core_h, s * blend if i > 0 else 0, s * blend if i < len(ys) - 1 else 0)
            wx = _ramp(s * core_w, s * blend if j > 0 else 0, s * blend if j < len(xs) - 1 else 0)
            wgt = (wy[:, None] * wx[None, :]).to(x.device)
            out[:, :, s * y0 : s * (y0 + core_h), s * x0 : s * (x0 + core_w)] += core * wgt
            weight[s * y0 : s * (y0 + core_h), s * x0 : s * (x0 + core_w)] += wgt
    assert out is not None
    return (out / weight).to(x.dtype)

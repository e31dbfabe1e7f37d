"""×8 geometric self-ensemble (EDSR's "+" models) as a wrapper around any network, on the
model's own sampling grid.

A network trained on pairs whose LR sample ``j`` sits at HR index ``o + s·j`` (``o`` = the
training card's ``lr_grid_offset``) places its output pixel ``i`` at LR position
``(i − o)/s``. Flipping an M-sample LR axis maps LR position ``u`` to ``M − 1 − u``; the
flipped pass's output pixel ``i'`` therefore lies at original HR index
``2o + s(M − 1) − i'``, while a plain flip of the output assumes ``sM − 1 − i'``. The two agree
only for block-centred grids (``o = (s − 1)/2``: bicubic, Gaussian). On a k-space grid
(``o = 0``) a plainly un-flipped pass is ``d = 2o − (s − 1)`` HR pixels off (−1 at ×2, −3 at
×4), and averaging it in blurs the result by several dB (issue 13). Here every un-flipped
output is shifted back by ``d``; the ``|d|`` border rows it cannot cover get no weight from
that pass (every pixel keeps the identity pass, so the average is always defined).
Transposition maps the grid onto itself (both axes share ``o``), so no shift is needed for it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mrisr.errors import ConfigError

#: (flip H, flip W, transpose) for the 8 symmetries of the square.
TRANSFORMS = [(fh, fw, tr) for tr in (False, True) for fh in (False, True) for fw in (False, True)]


def grid_shift(scale: int, lr_grid_offset: float) -> int:
    """HR pixels by which a plainly un-flipped pass is off: ``2o − (s − 1)``."""
    d = 2.0 * lr_grid_offset - (scale - 1)
    if abs(d - round(d)) > 1e-6:
        raise ConfigError(
            f"self-ensemble: LR grid offset {lr_grid_offset} at x{scale} puts flipped samples "
            "between HR pixels; run without --ensemble"
        )
    return int(round(d))


def _forward_transform(x: torch.Tensor, fh: bool, fw: bool, tr: bool) -> torch.Tensor:
    if fh:
        x = x.flip(-2)
    if fw:
        x = x.flip(-1)
    return x.transpose(-2, -1) if tr else x


def _shift(z: torch.Tensor, d: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``out[i] = z[i − d]`` along ``dim`` and the 1-D validity of ``out`` (False where
    ``i − d`` falls outside); invalid samples repeat the nearest valid one."""
    n = z.shape[dim]
    valid = torch.ones(n, dtype=torch.bool, device=z.device)
    if d == 0:
        return z, valid
    idx = torch.arange(n, device=z.device) - d
    valid = (idx >= 0) & (idx < n)
    return z.index_select(dim, idx.clamp(0, n - 1)), valid


def _inverse_transform(
    y: torch.Tensor, fh: bool, fw: bool, tr: bool, d: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Undo :func:`_forward_transform` on an output; also return its [H, W] weight map."""
    if tr:
        y = y.transpose(-2, -1)
    h, w = y.shape[-2:]
    vh = torch.ones(h, dtype=torch.bool, device=y.device)
    vw = torch.ones(w, dtype=torch.bool, device=y.device)
    if fh:
        y, vh = _shift(y.flip(-2), d, -2)
    if fw:
        y, vw = _shift(y.flip(-1), d, -1)
    return y, (vh[:, None] & vw[None, :]).to(y.dtype)


def _transform_guide(g: torch.Tensor, fh: bool, fw: bool, tr: bool, d: int) -> torch.Tensor:
    """A guide on the HR output grid, moved onto the flipped pass's output grid (the inverse
    of the output's shift; border samples repeat)."""
    if fh:
        g, _ = _shift(g.flip(-2), d, -2)
    if fw:
        g, _ = _shift(g.flip(-1), d, -1)
    return g.transpose(-2, -1) if tr else g


class SelfEnsemble(nn.Module):
    """Average of the model over the 8 symmetries of the square (4 rotations × flip), each
    pass returned to the model's own output grid.

    ``scale`` and ``lr_grid_offset`` (the training card's; default block-centred
    ``(s − 1)/2``) fix where the model puts its output samples, so flipped passes can be
    shifted back exactly (see the module docstring). ``forward(lr, guide=None)``: every
    transform is applied to ``lr`` (and to ``guide``, on the output grid, for multi-contrast
    models). ``on_pass(i)`` is called after each of the 8 passes (progress bars). Costs 8
    forward passes — SERAN⁺ / W²AMSN⁺ in the papers.
    """

    def __init__(
        self,
        model: nn.Module,
        scale: int | None = None,
        lr_grid_offset: float | None = None,
        on_pass: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        s = int(scale if scale is not None else getattr(model, "scale", 1) or 1)
        self.shift = grid_shift(s, (s - 1) / 2 if lr_grid_offset is None else lr_grid_offset)
        self.on_pass = on_pass

    def forward(self, lr: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        acc: torch.Tensor | None = None
        weight: torch.Tensor | None = None
        for i, (fh, fw, tr) in enumerate(TRANSFORMS):
            x = _forward_transform(lr, fh, fw, tr)
            if guide is None:
                y = self.model(x)
            else:
                y = self.model(x, _transform_guide(guide, fh, fw, tr, self.shift))
            y, wmap = _inverse_transform(y, fh, fw, tr, self.shift)
            acc = y * wmap if acc is None else acc + y * wmap
            weight = wmap if weight is None else weight + wmap
            if self.on_pass is not None:
                self.on_pass(i)
        assert acc is not None and weight is not None
        return acc / weight

"""×8 geometric self-ensemble (EDSR's "+" models) as a wrapper around any network."""

from __future__ import annotations

import torch
from torch import nn


def _transform(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, k, dims=(-2, -1))


def _inverse(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    y = torch.rot90(y, -k, dims=(-2, -1))
    return y.flip(-1) if flip else y


class SelfEnsemble(nn.Module):
    """Average of the model over the 8 symmetries of the square (4 rotations × flip).

    ``forward(lr, guide=None)``: every transform is applied to ``lr`` (and to ``guide`` for
    multi-contrast models), the output is transformed back, and the 8 results are averaged —
    SERAN⁺ / W²AMSN⁺ in the papers. Costs 8 forward passes.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, lr: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        acc = None
        for flip in (False, True):
            for k in range(4):
                g = None if guide is None else _transform(guide, k, flip)
                x = _transform(lr, k, flip)
                y = self.model(x) if g is None else self.model(x, g)
                y = _inverse(y, k, flip)
                acc = y if acc is None else acc + y
        return acc / 8

"""Common types of the degradation operators.

Every degradation is a frozen config dataclass that is also callable on a batch of images
``x[..., H, W]`` (float tensor). A call returns a :class:`Degraded`: the image, the parameters
actually used (JSON-serialisable, recorded in sidecars) and, for each of the two image axes, the
:class:`AxisMap` that places the output samples on the input grid. The volume layer turns those
maps into the output affine, so geometry is never guessed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch


@dataclass(frozen=True)
class AxisMap:
    """Output sample ``j`` lies at input index ``offset + factor·j`` along one axis."""

    factor: float = 1.0
    offset: float = 0.0

    def then(self, other: AxisMap) -> AxisMap:
        """The map of applying ``self`` first and ``other`` to its output."""
        return AxisMap(self.factor * other.factor, self.offset + self.factor * other.offset)


IDENTITY = AxisMap()


@dataclass
class Degraded:
    """Result of a degradation: image [..., h, w], parameters used, and the (H, W) axis maps."""

    image: torch.Tensor
    params: dict[str, Any]
    axes: tuple[AxisMap, AxisMap] = field(default=(IDENTITY, IDENTITY))


class Degradation:
    """Mixin for the config dataclasses. Subclasses set ``method`` and implement ``apply``.

    ``layout`` tells the volume layer how to present a volume: ``"in-plane"`` operators see the
    slices as [K, H, W] (H, W = the in-plane axes); ``"through-plane"`` operators see
    [A, Z, B] and act along Z, the slice axis.
    """

    method: ClassVar[str] = ""
    layout: ClassVar[str] = "in-plane"
    integer_scale: ClassVar[bool] = False

    def params(self) -> dict[str, Any]:
        d = {"method": self.method}
        d.update(asdict(self))  # type: ignore[call-overload]
        return d

    def apply(
        self,
        x: torch.Tensor,
        spacing: tuple[float, float] = (1.0, 1.0),
        generator: torch.Generator | None = None,
    ) -> Degraded:
        raise NotImplementedError

    def __call__(
        self,
        x: torch.Tensor,
        spacing: tuple[float, float] = (1.0, 1.0),
        generator: torch.Generator | None = None,
    ) -> Degraded:
        """Apply to ``x`` [..., H, W]; ``spacing`` is the (H, W) pixel spacing in mm."""
        if x.ndim < 2:
            raise ValueError(f"expected [..., H, W], got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            x = x.float()
        return self.apply(x, spacing=spacing, generator=generator)


def check_divisible(shape: tuple[int, int], factors: tuple[int, int], method: str) -> None:
    """Raise if an integer scale does not divide the matrix (the policy: never pad silently)."""
    from mrisr.errors import ConfigError

    for n, f in zip(shape, factors, strict=True):
        if f > 1 and n % f:
            raise ConfigError(
                f"{method}: scale {f} does not divide the matrix size {n} "
                f"(shape {tuple(shape)}); crop to a multiple of {f} first "
                f"(mrisr degrade --crop does this centrally)"
            )

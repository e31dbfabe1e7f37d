"""Supervised SR tasks: :class:`SupervisedSR` (``task: supervised``, pixel loss) and
:class:`MultiContrastSR` (``task: multicontrast``, guided SR with an auxiliary output).

:class:`SupervisedSR` is also the generator side of :class:`~mrisr.train.tasks.gan.GANTask`
(:meth:`SupervisedSR.build_generator`, :meth:`SupervisedSR.predict`, export). Multi-contrast
batches carry ``"guide"`` (``[B, 1, H, W]``) besides ``"lr"``/``"hr"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from mrisr.train.tasks.base import EMA, Task, lr_factor, make_optimizer, pixel_loss

if TYPE_CHECKING:
    from lightning.fabric import Fabric

    from mrisr.train.config import RunConfig


class SupervisedSR(Task):
    """Pixel-loss SR: one network, L1 or L2, Adam, optional EMA and gradient clipping."""

    name = "supervised"
    key: ClassVar[str] = "model"  # the SR network's name in the registries

    def setup(self, fabric: Fabric, cfg: RunConfig, steps_per_epoch: int, total_steps: int) -> None:
        self.fabric, self.cfg = fabric, cfg
        self.nets[self.key] = net = self.build_generator()
        self.configure_optimizers(steps_per_epoch, total_steps)
        model, opt = fabric.setup(net, self.optimizers[self.key])
        self.wrapped[self.key], self.optimizers[self.key] = model, opt
        if cfg.train.ema_decay is not None:
            self.emas[self.key] = EMA(net, cfg.train.ema_decay)
        self.loss_fn = pixel_loss(cfg.train.loss)

    def build_generator(self) -> nn.Module:
        """``model`` from the zoo, warm-started from ``model.init_from`` when given."""
        from mrisr.models.registry import build_model

        assert self.cfg is not None
        cfg = self.cfg
        net = build_model(cfg.model.name, cfg.data.scale, **cfg.model.args)
        self.warm_start: dict[str, Any] | None = None
        if cfg.model.init_from:
            from mrisr.checkpoint import warm_start

            self.warm_start = warm_start(net, cfg.model.name, cfg.model.init_from)
        return net

    def configure_optimizers(self, steps_per_epoch: int, total_steps: int) -> None:
        assert self.cfg is not None
        opt = make_optimizer(self.nets[self.key].parameters(), self.cfg.optim)
        self.optimizers[self.key] = opt
        factor = lr_factor(self.cfg, steps_per_epoch, total_steps)
        self.schedulers[self.key] = torch.optim.lr_scheduler.LambdaLR(opt, factor)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """The training forward; multi-contrast tasks pass the guide here."""
        return self.wrapped[self.key](batch["lr"])

    def loss(self, sr: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        return self.loss_fn(sr.float(), batch["hr"].float())

    def losses(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to minimise on ``batch`` and extra terms to log."""
        return self.loss(self.forward(batch), batch), {}

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        assert self.fabric is not None and self.cfg is not None
        model, opt = self.wrapped[self.key], self.optimizers[self.key]
        model.train()
        loss, out = self.losses(batch)
        opt.zero_grad(set_to_none=True)
        self.fabric.backward(loss)
        out["loss"] = loss.detach()
        if self.cfg.train.grad_clip is not None:
            norm = self.fabric.clip_gradients(
                model, opt, max_norm=self.cfg.train.grad_clip, error_if_nonfinite=False
            )
            if norm is not None:
                out["grad_norm"] = norm.detach()
        opt.step()
        self.schedulers[self.key].step()
        if self.key in self.emas:
            self.emas[self.key].update(self.nets[self.key])
        return out

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> torch.Tensor:
        assert self.fabric is not None
        net = self.eval_net(self.key).eval()
        with self.fabric.autocast():
            return net(batch["lr"]).float()

    def export_module(self) -> nn.Module:
        return self.eval_net(self.key)


class MultiContrastSR(SupervisedSR):
    """Guided SR (SANet): ``model(lr, guide, return_aux=True) → (target, guide reconstruction)``,
    loss ``α·L1(target, hr) + (1 − α)·L1(aux, guide)`` with α = ``train.target_weight``
    (0.7: SANet Eq. 9); validation and export use the target output."""

    name = "multicontrast"

    def losses(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        assert self.cfg is not None
        tar, aux = self.wrapped[self.key](batch["lr"], batch["guide"], return_aux=True)
        alpha = self.cfg.train.target_weight
        l_tar = self.loss_fn(tar.float(), batch["hr"].float())
        out = {"loss/target": l_tar.detach()}
        loss = alpha * l_tar
        if aux is not None:
            l_aux = self.loss_fn(aux.float(), batch["guide"].float())
            loss = loss + (1 - alpha) * l_aux
            out["loss/guide"] = l_aux.detach()
        return loss, out

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> torch.Tensor:
        assert self.fabric is not None
        net = self.eval_net(self.key).eval()
        with self.fabric.autocast():
            return net(batch["lr"], batch["guide"]).float()

"""Adversarial SR training (``task: gan``): FA-GAN and SRGAN (spec §4.6).

One step on a batch ``(lr, hr)``::

    sr = G(lr)
    D update (×gan.d_steps):  L_D = BCE(D(hr), 1) + BCE(D(sr.detach()), 0)          (Eq. 3)
    G update:                 L_G = w_c·content(sr, hr) + w_p·pixel(sr, hr)
                                    + w_a·mean(−log σ(D(sr)))                     (Eq. 14, 16)

``content`` is the VGG19 feature MSE (``gan.content: vgg``, φ5,4/12.75 by default: FA-GAN
Eq. 15) or a weight-free pixel L1/L2; ``pixel`` is the spec's extra pixel term (MSE, weight 1).
During the first ``gan.pretrain_steps`` steps only G learns, on ``train.loss`` (the SRGAN
warm-up); the discriminator is neither run nor updated.

The G update runs the *raw* discriminator with its parameters frozen, so no D gradients are
computed and, under DDP, the wrapped D's gradient reducer only sees the D update's backward.

Logged per step (the engine averages them over ``train.log_every``): ``g/loss``, ``g/content``,
``g/pixel``, ``g/adv``, ``d/loss``, ``d/real`` and ``d/fake`` (mean σ(D) on real and generated
patches: 0.5 is a balanced game; D wins when real → 1 and fake → 0). ``curves.png`` then has a
generator panel, a discriminator panel and the validation PSNR (the paper's Fig. 11/12 shows G
and D losses with and without spectral normalisation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from mrisr.train.tasks.base import EMA, lr_factor, make_optimizer, pixel_loss
from mrisr.train.tasks.supervised import SupervisedSR

if TYPE_CHECKING:
    from lightning.fabric import Fabric

    from mrisr.train.config import RunConfig


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator BCE: real → 1, generated → 0 (FA-GAN Eq. 3), from logits."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def g_adv_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator adversarial term ``mean(−log σ(D(G(LR))))`` (Eq. 16, non-saturating)."""
    return F.softplus(-fake_logits).mean()  # −log σ(x) = softplus(−x), stable for any x


class GANTask(SupervisedSR):
    """Generator (``model``) against :class:`~mrisr.models.fagan.FAGANDiscriminator`."""

    name = "gan"
    key: ClassVar[str] = "generator"

    def setup(self, fabric: Fabric, cfg: RunConfig, steps_per_epoch: int, total_steps: int) -> None:
        from mrisr.models.fagan import FAGANDiscriminator
        from mrisr.models.vgg import content_loss

        assert cfg.gan is not None
        self.fabric, self.cfg, self.gan = fabric, cfg, cfg.gan
        g = self.gan
        self.nets["generator"] = gen = self.build_generator()
        self.nets["discriminator"] = FAGANDiscriminator(norm=g.discriminator_norm)
        self.configure_optimizers(steps_per_epoch, total_steps)
        for k in ("generator", "discriminator"):
            self.wrapped[k], self.optimizers[k] = fabric.setup(self.nets[k], self.optimizers[k])
        if cfg.train.ema_decay is not None:
            self.emas["generator"] = EMA(gen, cfg.train.ema_decay)
        self.loss_fn = pixel_loss(cfg.train.loss)  # the warm-up loss
        self.content = content_loss(g.content, g.vgg_weights, g.vgg_layer).to(fabric.device)
        self.pixel = None if g.pixel == "none" else pixel_loss(g.pixel)

    def configure_optimizers(self, steps_per_epoch: int, total_steps: int) -> None:
        assert self.cfg is not None
        factor = lr_factor(self.cfg, steps_per_epoch, total_steps)
        warm = self.gan.pretrain_steps
        for k, o, f in (
            ("generator", self.cfg.optim, factor),
            # D starts after the warm-up, on the schedule's value at that step
            ("discriminator", self.gan.d_optim, lambda n: factor(n + warm)),
        ):
            opt = make_optimizer(self.nets[k].parameters(), o)
            self.optimizers[k] = opt
            self.schedulers[k] = torch.optim.lr_scheduler.LambdaLR(opt, f)

    def _step(self, name: str, loss: torch.Tensor) -> torch.Tensor | None:
        """Backward, optional gradient clipping and the optimiser step of one network."""
        assert self.fabric is not None and self.cfg is not None
        net, opt = self.wrapped[name], self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        self.fabric.backward(loss)
        norm = None
        if self.cfg.train.grad_clip is not None:
            norm = self.fabric.clip_gradients(
                net, opt, max_norm=self.cfg.train.grad_clip, error_if_nonfinite=False
            )
        opt.step()
        return None if norm is None else norm.detach()

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        assert self.fabric is not None
        g = self.gan
        gen, disc = self.wrapped["generator"], self.wrapped["discriminator"]
        raw_disc = self.nets["discriminator"]
        gen.train()
        hr = batch["hr"]
        sr = gen(batch["lr"])
        out: dict[str, torch.Tensor] = {}
        pretraining = self.global_step < g.pretrain_steps
        if pretraining:
            loss_g = self.loss_fn(sr.float(), hr.float())
            out |= {"g/loss": loss_g.detach(), "g/pixel": loss_g.detach()}
        else:
            disc.train()
            raw_disc.requires_grad_(True)
            fake = sr.detach()
            for _ in range(g.d_steps):
                real_logits, fake_logits = disc(hr), disc(fake)
                loss_d = d_loss(real_logits.float(), fake_logits.float())
                self._step("discriminator", loss_d)
            out |= {
                "d/loss": loss_d.detach(),
                "d/real": torch.sigmoid(real_logits.detach().float()).mean(),
                "d/fake": torch.sigmoid(fake_logits.detach().float()).mean(),
            }
            raw_disc.requires_grad_(False)  # G's update: gradients flow to sr only
            with self.fabric.autocast():
                adv = g_adv_loss(raw_disc(sr).float())
            content = self.content(sr.float(), hr.float())
            loss_g = g.content_weight * content + g.adv_weight * adv
            out |= {"g/content": content.detach(), "g/adv": adv.detach()}
            if self.pixel is not None:
                pix = self.pixel(sr.float(), hr.float())
                loss_g = loss_g + g.pixel_weight * pix
                out["g/pixel"] = pix.detach()
            out["g/loss"] = loss_g.detach()
        norm = self._step("generator", loss_g)
        if norm is not None:
            out["grad_norm"] = norm
        self.schedulers["generator"].step()
        if not pretraining:
            self.schedulers["discriminator"].step()
        if "generator" in self.emas:
            self.emas["generator"].update(self.nets["generator"])
        return out

    @property
    def global_step(self) -> int:
        """Optimiser steps taken (the generator scheduler counts every step, resumed too)."""
        return int(self.schedulers["generator"].last_epoch)

"""What is trained, separate from how the loop runs: the :class:`Task` interface.

The engine owns the loop (data, steps, validation, logs, state files); a task owns its networks,
optimisers, schedulers and EMAs and does one optimisation step per batch. The task calls
``fabric.backward`` and steps its own optimisers, so tasks with several of them fit the same loop.

Tasks: :class:`SupervisedSR` (pixel loss) and :class:`mrisr.train.gan.GANTask` (FA-GAN /
SRGAN: ``"generator"`` and ``"discriminator"`` with one optimiser and scheduler each, D and G
updates alternating inside :meth:`Task.training_step`; the generic :meth:`Task.state_dict` saves
and restores every registered part by name). Extension point for the training that comes next:

- **Multi-contrast** (e.g. SANet: LR target + HR guide → HR target, with an auxiliary output):
  the batch carries ``"guide"`` (``[B, 1, H, W]``) besides ``"lr"``/``"hr"``; override
  :meth:`SupervisedSR.forward` to call ``model(lr, guide)`` and :meth:`SupervisedSR.loss` to
  weigh the two outputs; :meth:`Task.predict` returns the target contrast for validation.

Tasks are looked up by name in :data:`TASKS` (``task:`` in the recipe).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from lightning.fabric import Fabric

    from mrisr.checkpoint import Checkpoint
    from mrisr.train.config import RunConfig


class EMA:
    """Exponential moving average of a network's weights, ``ema ← d·ema + (1−d)·w``.

    The decay warms up as ``min(d, (1 + n) / (10 + n))`` over the first updates (as in timm /
    BasicSR), so early weights do not dominate. Buffers are copied, not averaged.
    """

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema = self.module.state_dict()
        for k, v in net.state_dict().items():
            if v.is_floating_point():
                ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                ema[k].copy_(v)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "weights": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.module.load_state_dict(state["weights"])


def lr_factor(cfg: RunConfig, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
    """Multiplier of ``optim.lr`` after ``step`` optimiser steps (``sched`` section)."""
    s = cfg.sched
    every = s.every * (steps_per_epoch if s.unit == "epochs" else 1)
    floor = s.min_lr / cfg.optim.lr

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / s.warmup_steps) if s.warmup_steps else 1.0
        if s.name == "step":
            return warm * s.gamma ** (step // every)
        if s.name == "cosine":
            t = min(1.0, max(0, step - s.warmup_steps) / max(1, total_steps - s.warmup_steps))
            return warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))
        return warm

    return factor


def make_optimizer(params: Any, o: Any) -> torch.optim.Optimizer:
    """Adam / AdamW from an ``optim`` section (:class:`~mrisr.train.config.OptimConfig`)."""
    cls = torch.optim.Adam if o.name == "adam" else torch.optim.AdamW
    return cls(params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)


def pixel_loss(kind: str) -> nn.Module:
    """``l1`` → L1Loss, ``l2`` → MSELoss."""
    return nn.L1Loss() if kind == "l1" else nn.MSELoss()


class Task:
    """Base class: registries of nets / optimisers / schedulers / EMAs plus the step API.

    Subclasses implement :meth:`setup`, :meth:`configure_optimizers`, :meth:`training_step` and
    :meth:`predict`; state saving and export work on the registries.
    """

    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.fabric: Fabric | None = None
        self.cfg: RunConfig | None = None
        self.nets: dict[str, nn.Module] = {}  # the raw modules (for state and export)
        self.wrapped: dict[str, nn.Module] = {}  # as set up by Fabric (DDP, precision)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.emas: dict[str, EMA] = {}

    def setup(self, fabric: Fabric, cfg: RunConfig, steps_per_epoch: int, total_steps: int) -> None:
        """Build the networks and optimisers and hand them to ``fabric.setup``."""
        raise NotImplementedError

    def configure_optimizers(self, steps_per_epoch: int, total_steps: int) -> None:
        """Fill :attr:`optimizers` and :attr:`schedulers` (called by :meth:`setup`)."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One optimisation step on ``batch``; returns detached scalar tensors to log (no
        host sync: the engine reduces them across ranks at logging time)."""
        raise NotImplementedError

    def predict(self, batch: dict[str, Any]) -> torch.Tensor:
        """Validation forward: ``batch["lr"] [B, 1, h, w]`` → SR ``[B, 1, s·h, s·w]``
        (float32), with the EMA weights when the task keeps an EMA."""
        raise NotImplementedError

    def validation_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``{"sr": predict(batch)}``; the engine stitches and scores whole volumes."""
        return {"sr": self.predict(batch)}

    def learning_rates(self) -> dict[str, float]:
        return {
            f"lr/{k}" if len(self.optimizers) > 1 else "lr": o.param_groups[0]["lr"]
            for k, o in self.optimizers.items()
        }

    def state_dict(self) -> dict[str, Any]:
        """Every registered part, as tensors and plain data."""
        return {
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "emas": {k: v.state_dict() for k, v in self.emas.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for group, parts in (
            ("nets", self.nets),
            ("optimizers", self.optimizers),
            ("schedulers", self.schedulers),
            ("emas", self.emas),
        ):
            saved = state[group]
            if set(saved) != set(parts):
                raise ValueError(f"state has {group} {sorted(saved)}, task has {sorted(parts)}")
            for k, part in parts.items():
                part.load_state_dict(saved[k])

    def export_module(self) -> nn.Module:
        """The network an exported checkpoint holds (EMA weights when kept)."""
        raise NotImplementedError

    def export(self, out_dir: Path, training: dict[str, Any]) -> Checkpoint:
        """Write :meth:`export_module` as an mrisr checkpoint folder (atomic, replaced)."""
        from mrisr.checkpoint import save_checkpoint
        from mrisr.normalisation import Normalisation

        assert self.cfg is not None
        cfg = self.cfg
        return save_checkpoint(
            self.export_module(),
            cfg.model.name,
            {"scale": cfg.data.scale, **cfg.model.args},
            out_dir,
            normalisation=Normalisation(**cfg.data.normalisation.model_dump()),
            training=training,
            overwrite=True,
        )


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
        # The raw module (not the DDP wrapper, whose forward may broadcast buffers): ranks
        # score different volumes, so their forward calls need not pair up.
        net = self.emas[self.key].module if self.key in self.emas else self.nets[self.key]
        net.eval()
        with self.fabric.autocast():
            return net(batch["lr"]).float()

    def export_module(self) -> nn.Module:
        net = self.emas[self.key].module if self.key in self.emas else self.nets[self.key]
        return net


class MultiContrastSR(SupervisedSR):
    """Guided SR (SANet): ``model.forward_both(lr, guide) → (target, guide reconstruction)``,
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
        net = self.emas[self.key].module if self.key in self.emas else self.nets[self.key]
        net.eval()
        with self.fabric.autocast():
            return net(batch["lr"], batch["guide"]).float()


class _TaskTable(dict):
    """``TASKS[name]`` → the task class; the tasks in their own modules (which import this
    one) are registered on first use, so any module may be imported first."""

    def _fill(self) -> None:
        if GANTask_name not in dict.keys(self):
            from mrisr.train.dsgan import DSGANTask
            from mrisr.train.gan import GANTask

            self.update({GANTask.name: GANTask, DSGANTask.name: DSGANTask})

    def __getitem__(self, key: str) -> type[Task]:
        self._fill()
        return dict.__getitem__(self, key)

    def __iter__(self):  # type: ignore[override]
        self._fill()
        return dict.__iter__(self)

    def keys(self):  # type: ignore[override]
        self._fill()
        return dict.keys(self)


GANTask_name = "gan"
TASKS: dict[str, type[Task]] = _TaskTable(
    {SupervisedSR.name: SupervisedSR, MultiContrastSR.name: MultiContrastSR}
)

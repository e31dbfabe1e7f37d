"""What is trained, separate from how the loop runs: the :class:`Task` interface.

The engine owns the loop (data, steps, validation, logs, state files); a task owns its networks,
optimisers, schedulers and EMAs and does one optimisation step per batch. The task calls
``fabric.backward`` and steps its own optimisers, so tasks with several of them fit the same loop.

The tasks: :class:`~mrisr.train.tasks.supervised.SupervisedSR` (pixel loss),
:class:`~mrisr.train.tasks.supervised.MultiContrastSR` (guided SR: the batch carries ``"guide"``
besides ``"lr"``/``"hr"``), :class:`~mrisr.train.tasks.gan.GANTask` (FA-GAN / SRGAN:
``"generator"`` and ``"discriminator"`` with one optimiser and scheduler each, D and G updates
alternating inside :meth:`Task.training_step`) and :class:`~mrisr.train.tasks.dsgan.DSGANTask`;
the generic :meth:`Task.state_dict` saves and restores every registered part by name. Tasks are
looked up by name in :data:`mrisr.train.tasks.TASKS` (``task:`` in the recipe).

Shared here: :class:`EMA`, :meth:`Task.eval_net` (the EMA copy of a network when kept, else the
raw one), :func:`lr_factor`, :func:`make_optimizer` and :func:`pixel_loss`.
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

    def eval_net(self, key: str) -> nn.Module:
        """The network ``key`` for validation and export: its EMA copy when the task keeps one,
        else the raw module (not the DDP wrapper, whose forward may broadcast buffers: ranks
        score different volumes, so their forward calls need not pair up)."""
        return self.emas[key].module if key in self.emas else self.nets[key]

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


def gan_optimizers(task: Task, d_optim: Any, steps_per_epoch: int, total_steps: int) -> None:
    """A generator / discriminator pair's optimisers (``optim`` and ``d_optim``) and their
    LambdaLR schedules, into ``task.optimizers`` / ``task.schedulers``."""
    cfg = task.cfg
    assert cfg is not None
    factor = lr_factor(cfg, steps_per_epoch, total_steps)
    for k, o in (("generator", cfg.optim), ("discriminator", d_optim)):
        opt = make_optimizer(task.nets[k].parameters(), o)
        task.optimizers[k] = opt
        task.schedulers[k] = torch.optim.lr_scheduler.LambdaLR(opt, factor)


def l1_label_d_step(
    task: Task, real: torch.Tensor, fake: torch.Tensor, noise_std: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KernelGAN's discriminator update (real → 1, fake → 0 in L1, optional input noise), then
    every scheduler steps; ``fake`` must be detached. Returns (D loss, D(real), D(fake))."""
    f, d, od = task.fabric, task.wrapped["discriminator"], task.optimizers["discriminator"]
    assert f is not None
    if noise_std > 0:
        real = real + noise_std * torch.randn_like(real)
        fake = fake + noise_std * torch.randn_like(fake)
    p_real, p_fake = d(real), d(fake)
    d_loss = 0.5 * ((p_real - 1.0).abs().mean() + p_fake.abs().mean())
    f.backward(d_loss)
    od.step()
    for s in task.schedulers.values():
        s.step()
    return d_loss, p_real, p_fake

"""Learning a scanner's degradation (``task: dsgan``): the realistic-downsampling GAN.

One step on an unpaired batch ``(hr, lr)`` (:class:`mrisr.data.unpaired.UnpairedCrops`), in
KernelGAN's order::

    G update:  fake = G(hr);  k = equivalent_kernel(G)
               L_G = mean|D(fake) − 1| + λ_b·bicubic(hr, fake) + λ_1·|1 − Σk|
                     + λ_bd·boundaries(k) + λ_c·centre(k) + λ_sp·sparse(k)       (Eq. 2–3)
    D update:  L_D = ½(mean|D(lr + n) − 1| + mean|D(fake.detach() + n)|),  n ~ N(0, σ²)

then the λ schedule (:class:`LambdaSchedule`). The G update runs the raw discriminator with its
parameters frozen (no D gradients; DDP-safe as in :mod:`mrisr.train.tasks.gan`). Learning rates:
``optim`` (G) and ``dsgan.d_optim`` (D), both with the ``sched`` schedule (KernelGAN: 2e-4,
β₁ 0.5, ÷10 every 750 steps).

The exported "checkpoint" is the kernel: ``kernel.npy`` (``K``×``K``, normalised to sum 1),
``kernel.json`` (training card, raw sum, centre of mass, the λ values at the end) and
``kernel.png`` (PSF plot).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mrisr.train.tasks.base import Task, gan_optimizers, l1_label_d_step

if TYPE_CHECKING:
    from lightning.fabric import Fabric

    from mrisr.train.config import RunConfig


class LambdaSchedule:
    """The regulariser weights and KernelGAN's rule for changing them (spec §5.4)."""

    def __init__(self, c: Any) -> None:
        self.c = c
        self.bicubic = c.lambda_bicubic
        self.sum2one = c.lambda_sum2one
        self.boundaries = c.lambda_boundaries
        self.centre = 0.0
        self.sparse = 0.0
        self.below = 0  # consecutive steps with the bicubic MSE under the threshold
        self.similar = False  # G has reached the bicubic kernel: start decaying λ_bicubic
        self.constraints = False  # centre / sparse switched on

    def update(self, step: int, bicubic_mse: float) -> None:
        """After optimiser step ``step`` (1-based) with the bicubic MSE of that step."""
        c = self.c
        if not self.similar:
            self.below = self.below + 1 if bicubic_mse < c.bicubic_threshold else 0
            self.similar = self.below >= c.bicubic_patience
        elif step % c.decay_every == 0 and self.bicubic > c.lambda_bicubic_min:
            self.bicubic = max(self.bicubic / c.decay_rate, c.lambda_bicubic_min)
            if not self.constraints and self.bicubic < c.constraints_below:
                self.centre, self.sparse = c.lambda_centre, c.lambda_sparse
                self.constraints = True

    def state_dict(self) -> dict[str, Any]:
        keys = ("bicubic", "sum2one", "boundaries", "centre", "sparse", "below", "similar",
                "constraints")  # fmt: skip
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        for k, v in d.items():
            setattr(self, k, v)


class DSGANTask(Task):
    """Deep linear generator (the kernel) against the Sobel-input patch discriminator."""

    name = "dsgan"

    def setup(self, fabric: Fabric, cfg: RunConfig, steps_per_epoch: int, total_steps: int) -> None:
        from mrisr.models.dsgan import DSGANDiscriminator, DSGANGenerator, KernelRegularisers

        self.fabric, self.cfg = fabric, cfg
        c = cfg.dsgan
        assert c is not None
        g = DSGANGenerator(cfg.data.scale, c.n_feats, tuple(c.structure))
        d = DSGANDiscriminator(c.n_feats)
        self.nets = {"generator": g, "discriminator": d}
        self.reg = KernelRegularisers(g.kernel_size, cfg.data.scale).to(fabric.device)
        self.lambdas = LambdaSchedule(c)
        self.configure_optimizers(steps_per_epoch, total_steps)
        for k in ("generator", "discriminator"):
            self.wrapped[k], self.optimizers[k] = fabric.setup(self.nets[k], self.optimizers[k])
        self.steps_done = 0

    def configure_optimizers(self, steps_per_epoch: int, total_steps: int) -> None:
        assert self.cfg is not None and self.cfg.dsgan is not None
        gan_optimizers(self, self.cfg.dsgan.d_optim, steps_per_epoch, total_steps)

    def kernel(self) -> torch.Tensor:
        from mrisr.models.dsgan import equivalent_kernel

        return equivalent_kernel(self.nets["generator"])

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        f, cfg, lam = self.fabric, self.cfg, self.lambdas
        assert f is not None and cfg is not None and cfg.dsgan is not None
        hr, lr = batch["hr"], batch["lr"]
        g = self.wrapped["generator"]
        d_raw = self.nets["discriminator"]
        og, od = self.optimizers["generator"], self.optimizers["discriminator"]
        # --- G update
        og.zero_grad(set_to_none=True)
        fake = g(hr)
        k = self.kernel()
        d_raw.requires_grad_(False)
        g_gan = (d_raw(fake) - 1.0).abs().mean()
        d_raw.requires_grad_(True)
        r = self.reg
        bic = r.bicubic_loss(hr, fake)
        terms = {
            "bicubic": bic,
            "sum2one": r.sum2one(k),
            "boundaries": r.boundaries(k),
            "centre": r.centre_loss(k),
            "sparse": r.sparse(k),
        }
        reg = sum(getattr(lam, n) * v for n, v in terms.items())
        f.backward(g_gan + reg)
        og.step()
        # --- D update
        od.zero_grad(set_to_none=True)
        d_loss, p_real, p_fake = l1_label_d_step(self, lr, fake.detach(), cfg.dsgan.noise_std)
        self.steps_done += 1
        mse = float(f.all_reduce(bic.detach(), reduce_op="mean"))  # one decision on all ranks
        lam.update(self.steps_done, mse)
        out = {
            "g/gan": g_gan.detach(),
            "g/reg": reg.detach(),
            "d/loss": d_loss.detach(),
            "d/real": p_real.detach().mean(),
            "d/fake": p_fake.detach().mean(),
            "k/sum": k.detach().sum(),
            "lambda/bicubic": torch.tensor(lam.bicubic),
        }
        out |= {f"reg/{n}": v.detach() for n, v in terms.items()}
        return out

    def predict(self, batch: dict[str, Any]) -> torch.Tensor:  # pragma: no cover - no val
        raise NotImplementedError("task dsgan has no validation set; it exports a kernel")

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "lambdas": self.lambdas.state_dict(),
                "steps_done": self.steps_done}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        rest = {k: v for k, v in state.items() if k not in ("lambdas", "steps_done")}
        super().load_state_dict(rest)
        self.lambdas.load_state_dict(state["lambdas"])
        self.steps_done = int(state["steps_done"])

    def export_module(self) -> torch.nn.Module:
        return self.nets["generator"]

    def export(self, out_dir: Path, training: dict[str, Any]) -> Any:
        """``out_dir/kernel.npy`` + ``kernel.json`` + ``kernel.png`` (replaced atomically)."""
        from mrisr.degrade.kernel import save_kernel

        assert self.cfg is not None
        with torch.no_grad():
            k = self.kernel().double().cpu().numpy()
        raw = float(k.sum())
        kn = k / raw
        s = self.cfg.data.scale
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        meta = kernel_meta(kn, raw, s, training, self.lambdas.state_dict())
        meta["title"] = f"learned ×{s} kernel (DSGAN, {training.get('steps')} steps)"
        save_kernel(out_dir / "kernel.npy", kn, meta, overwrite=True)
        return out_dir / "kernel.npy"


def kernel_meta(
    k: np.ndarray, raw_sum: float, scale: int, training: dict[str, Any], lambdas: dict[str, Any]
) -> dict[str, Any]:
    """The JSON sidecar of a learned kernel."""
    from mrisr.models.dsgan import centre_of_mass, kernel_centre

    r, c = centre_of_mass(k)
    return {
        "kind": "mrisr-kernel",
        "scale": int(scale),
        "size": int(k.shape[0]),
        "convention": "LR = (HR ⋆ k)↓s: cross-correlation with k (reflect padding K//2), then "
        "every s-th sample; k sums to 1",
        "raw_sum": raw_sum,
        "centre_of_mass": [r, c],
        "centre_target": kernel_centre(k.shape[0], scale),
        "source": {
            "hr": training.get("data", {}).get("train"),
            "lr_real": training.get("dataset", {}).get("lr_real"),
        },  # fmt: skip
        "steps": training.get("steps"),
        "lambdas_at_end": lambdas,
        "training": training,
    }

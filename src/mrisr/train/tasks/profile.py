"""Learning a thick-slice scan's slice profile from the scan alone (``task: profile``).

ESPRESO's idea on the DSGAN machinery (:mod:`mrisr.train.tasks.dsgan`), in 1-D. A batch of
:class:`mrisr.data.through_plane_lines.ThroughPlaneLines` holds the taps ``[B, J, L]`` of real
through-plane segments (``J`` slices, spacing ``S``, across-offsets) and of fake ones (in-plane
lines at the positions a slice every ``k`` voxels would sample). One step, in KernelGAN's
order::

    G update:  fake = fake_taps @ h;   h = G.profile()   (unimodal, ≥ 0, Σh = 1)
               L_G = mean|D(fake) − 1| + λ_bd·boundaries(h) + λ_c·centre(h) + λ_sp·sparse(h)
                     + λ_spec·mean_f (log P_fake(f; h) − log P_real(f; h))²
    D update:  real = real_taps @ h (no gradient)
               L_D = ½(mean|D(real + n) − 1| + mean|D(fake.detach() + n)|),  n ~ N(0, σ²)

``P`` are the segments' power spectra as quadratic forms in ``h`` over all batches so far
(:class:`mrisr.models.slice_profile.SegmentSpectra`). The G update runs the raw discriminator
with its parameters frozen (as :mod:`.dsgan`). Learning rates: ``optim`` (G) and
``profile.d_optim`` (D), both on the ``sched`` schedule; with ``train.ema_decay`` the exported
profile is the EMA generator's (it averages the GAN's jitter).

The exported "checkpoint" is the profile: ``profile.npy`` (``L`` taps, float64, sum 1),
``profile.json`` (FWHM in mm and voxels, centre of mass, ``k``, ``d``, ``S``, the training card)
and ``profile.png`` (:func:`mrisr.degrade.profile.save_profile`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mrisr.train.tasks.base import EMA, Task, gan_optimizers, l1_label_d_step

if TYPE_CHECKING:
    from lightning.fabric import Fabric

    from mrisr.train.config import RunConfig


class ProfileTask(Task):
    """Unimodal 1-D profile (the generator) against a 1-D spectral-norm patch discriminator."""

    name = "profile"

    def setup(self, fabric: Fabric, cfg: RunConfig, steps_per_epoch: int, total_steps: int) -> None:
        from mrisr.data.through_plane_lines import scan_line_geometry
        from mrisr.models.slice_profile import (
            ProfileDiscriminator,
            ProfileGenerator,
            ProfileRegularisers,
            SegmentSpectra,
        )

        self.fabric, self.cfg = fabric, cfg
        c = cfg.profile
        assert c is not None
        self.geometry = geo = scan_line_geometry(cfg.data.train[0], cfg.data.axis, c.length)
        init = c.init_fwhm if c.init_fwhm is not None else geo.k / 2
        g = ProfileGenerator(geo.length, init)
        d = ProfileDiscriminator(c.n_feats, c.d_layers, c.d_kernel)
        self.nets = {"generator": g, "discriminator": d}
        self.reg = ProfileRegularisers(geo.length).to(fabric.device)
        self.spectra = SegmentSpectra(min(c.line_crop, geo.n_slices), geo.length).to(fabric.device)
        self.configure_optimizers(steps_per_epoch, total_steps)
        for k in ("generator", "discriminator"):
            self.wrapped[k], self.optimizers[k] = fabric.setup(self.nets[k], self.optimizers[k])
        if cfg.train.ema_decay:
            self.emas["generator"] = EMA(g, cfg.train.ema_decay)

    def configure_optimizers(self, steps_per_epoch: int, total_steps: int) -> None:
        assert self.cfg is not None and self.cfg.profile is not None
        gan_optimizers(self, self.cfg.profile.d_optim, steps_per_epoch, total_steps)

    def profile(self) -> torch.Tensor:
        """The current profile (the EMA generator's when kept)."""
        return self.eval_net("generator").profile()  # type: ignore[operator]

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        f, cfg = self.fabric, self.cfg
        assert f is not None and cfg is not None and cfg.profile is not None
        c = cfg.profile
        real_taps, taps = batch["real_taps"], batch["fake_taps"]
        g = self.wrapped["generator"]
        g_raw, d_raw = self.nets["generator"], self.nets["discriminator"]
        og, od = self.optimizers["generator"], self.optimizers["discriminator"]
        # --- G update
        og.zero_grad(set_to_none=True)
        fake = g(taps)
        h = g_raw.profile()  # type: ignore[operator]
        d_raw.requires_grad_(False)
        g_gan = (d_raw(fake) - 1.0).abs().mean()
        d_raw.requires_grad_(True)
        r = self.reg
        self.spectra.update(real_taps, taps)
        terms = {"boundaries": r.boundaries(h), "centre": r.centre_loss(h), "sparse": r.sparse(h),
                 "spectrum": self.spectra.loss(h)}  # fmt: skip
        weights = {"boundaries": c.lambda_boundaries, "centre": c.lambda_centre,
                   "sparse": c.lambda_sparse, "spectrum": c.lambda_spectrum}  # fmt: skip
        reg = sum(weights[n] * v for n, v in terms.items())
        f.backward(g_gan + reg)
        og.step()
        # --- D update: real segments blurred across the plane by the same profile
        od.zero_grad(set_to_none=True)
        with torch.no_grad():
            real = (real_taps @ g_raw.profile().to(real_taps.dtype))[:, None, :]  # type: ignore[operator]
        d_loss, p_real, p_fake = l1_label_d_step(self, real, fake.detach(), c.noise_std)
        for k, ema in self.emas.items():
            ema.update(self.nets[k])
        hd = h.detach()
        x = torch.arange(hd.numel(), dtype=hd.dtype, device=hd.device)
        com = (hd * x).sum()
        out = {
            "g/gan": g_gan.detach(),
            "g/reg": reg.detach(),
            "d/loss": d_loss.detach(),
            "d/real": p_real.detach().mean(),
            "d/fake": p_fake.detach().mean(),
            "profile/std": ((hd * (x - com) ** 2).sum()).sqrt(),  # in taps (no host sync)
            "profile/peak": hd.max(),
        }
        out |= {f"reg/{n}": v.detach() for n, v in terms.items()}
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "spectra": self.spectra.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict({k: v for k, v in state.items() if k != "spectra"})
        self.spectra.load_state_dict(state["spectra"])

    def predict(self, batch: dict[str, Any]) -> torch.Tensor:  # pragma: no cover - no val
        raise NotImplementedError("task profile has no validation set; it exports a profile")

    def export_module(self) -> torch.nn.Module:
        return self.eval_net("generator")

    def export(self, out_dir: Path, training: dict[str, Any]) -> Any:
        """``out_dir/profile.npy`` + ``profile.json`` + ``profile.png`` (replaced atomically)."""
        from mrisr.degrade.profile import profile_summary, save_profile

        with torch.no_grad():
            h = self.profile().double().cpu().numpy()
        geo = self.geometry
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        meta = profile_summary(h, geo.d, geo.k)
        meta |= {
            "mode": "learned",
            "slice_axis": geo.axis,
            "source": training.get("data", {}).get("train"),
            "steps": training.get("steps"),
            "weights": training.get("weights"),
            "training": training,
            "title": f"learned slice profile (k = {geo.k:.3g}, {training.get('steps')} steps)",
        }
        save_profile(out_dir / "profile.npy", h, meta, overwrite=True)
        return out_dir / "profile.npy"

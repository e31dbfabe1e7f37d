"""The recipe's building blocks and its task sections: :class:`OptimConfig` and the sections
that only one task reads (``gan``, ``dsgan``, ``profile``, ``through_plane``). :mod:`.schema`
assembles them into :class:`~mrisr.train.config.schema.RunConfig`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptimConfig(_Strict):
    """Adam / AdamW (the papers: Adam, β (0.9, 0.999), ε 1e-8, lr 1e-4)."""

    name: Literal["adam", "adamw"] = "adam"
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class GANConfig(_Strict):
    """Adversarial training (``task: gan``; FA-GAN Eq. 14, SRGAN practice).

    The generator is ``model``; it minimises ``content_weight·content + pixel_weight·pixel +
    adv_weight·adv`` with ``adv = mean(−log σ(D(G(LR))))`` (Eq. 16, non-saturating); the
    discriminator minimises the BCE of real HR against G(LR) (Eq. 3), ``d_steps`` updates per
    generator update. The first ``pretrain_steps`` steps train G alone on ``train.loss`` (the
    usual SRGAN pixel warm-up); the discriminator starts after them.
    """

    discriminator_norm: Literal["spectral", "batch", "none"] = Field(
        "spectral", description="FA-GAN: spectral; SRGAN: batch; none: the paper's unstable case"
    )
    content: Literal["vgg", "l1", "l2"] = "vgg"
    vgg_weights: str | None = Field(
        None, description="ImageNet VGG19 weights (.pth or .safetensors), for content: vgg"
    )
    vgg_layer: str = "relu5_4"
    content_weight: float = Field(1.0, ge=0)
    pixel: Literal["l1", "l2", "none"] = "l2"
    pixel_weight: float = Field(1.0, ge=0)
    adv_weight: float = Field(1e-3, ge=0)
    pretrain_steps: int = Field(0, ge=0)
    d_steps: int = Field(1, ge=1)
    d_optim: OptimConfig = Field(default_factory=OptimConfig)

    @model_validator(mode="after")
    def _vgg_needs_weights(self) -> GANConfig:
        if self.content == "vgg" and not self.vgg_weights:
            raise ValueError(
                "vgg_weights: content: vgg needs the ImageNet VGG19 weights file "
                "(vgg19-dcbb9e9d.pth, see docs/gan.md); give gan.vgg_weights=PATH or "
                "use gan.content=l2"
            )
        from mrisr.models.vgg import LAYERS

        if self.vgg_layer not in LAYERS:
            raise ValueError(f"vgg_layer: must be one of {', '.join(LAYERS)}")
        return self


class DSGANConfig(_Strict):
    """Learning a degradation kernel from unpaired HR and real LR scans (``task: dsgan``; the
    realistic-downsampling GAN = KernelGAN on MRI, spec §5.4).

    The generator minimises ``mean|D(G(hr)) − 1| + R(k)`` with the kernel regularisers
    ``R = λ_bicubic·bicubic + λ_sum2one·|1 − Σk| + λ_boundaries·boundaries + λ_centre·centre +
    λ_sparse·sparse``; D minimises ``½(mean|D(lr) − 1| + mean|D(G(hr))|)``. Schedule: once the
    bicubic MSE is below ``bicubic_threshold`` for ``bicubic_patience`` steps in a row,
    ``λ_bicubic ← max(λ_bicubic / decay_rate, lambda_bicubic_min)`` every ``decay_every``
    steps; the first time it is below ``constraints_below``, λ_centre and λ_sparse switch on.
    """

    hr_crop: int = Field(64, ge=16)
    structure: list[int] = Field(default_factory=lambda: [7, 5, 3, 1, 1, 1])
    n_feats: int = Field(64, ge=1)
    noise_std: float = Field(1 / 255, ge=0, description="N(0, σ²) on D's inputs (KernelGAN)")
    lambda_bicubic: float = Field(5.0, ge=0)
    lambda_sum2one: float = Field(0.5, ge=0)
    lambda_boundaries: float = Field(0.5, ge=0)
    lambda_centre: float = Field(1.0, ge=0, description="value once the constraints start")
    lambda_sparse: float = Field(5.0, ge=0, description="value once the constraints start")
    bicubic_threshold: float = Field(0.4, gt=0)
    bicubic_patience: int = Field(3, ge=1)
    decay_every: int = Field(200, ge=1)
    decay_rate: float = Field(100.0, gt=1)
    lambda_bicubic_min: float = Field(5e-6, ge=0)
    constraints_below: float = Field(5e-3, gt=0)
    denoise: bool = Field(False, description="non-local-means denoise the real LR slices first")
    denoise_strength: float = Field(0.8, gt=0, description="NLM h as a multiple of the noise σ")
    slice: int | None = Field(
        None, ge=0, description="per-slice: learn from this HR slice (and the LR slice there)"
    )
    d_optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=2e-4, betas=(0.5, 0.999)))


class ProfileConfig(_Strict):
    """Learning a thick-slice scan's 1-D slice profile from the scan alone (``task: profile``;
    ESPRESO's idea on the DSGAN machinery, docs/realistic-degradation.md). G: a unimodal
    ``length``-tap profile; D: a 1-D spectral-norm patch discriminator on ``line_crop``-slice
    segments; G minimises ``mean|D(fake) − 1| + λ_boundaries·boundaries + λ_centre·centre +
    λ_sparse·sparse``."""

    length: int | None = Field(None, ge=3, description="taps, odd (default 2·ceil(1.5k) + 1)")
    line_crop: int = Field(16, ge=6, description="segment length in slices (fewer if the scan is)")
    init_fwhm: float | None = Field(None, gt=0, description="start: Gaussian FWHM in voxels (k/2)")
    n_feats: int = Field(64, ge=1)
    d_layers: int = Field(5, ge=2)
    d_kernel: int = Field(5, ge=1, description="D window in slices")
    noise_std: float = Field(1 / 255, ge=0, description="N(0, σ²) on D's inputs")
    lambda_boundaries: float = Field(0.5, ge=0)
    lambda_centre: float = Field(1.0, ge=0)
    lambda_sparse: float = Field(0.0, ge=0)
    lambda_spectrum: float = Field(1.0, ge=0, description="segment power spectra, real vs fake")
    d_optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-3, betas=(0.5, 0.999)))


class ThroughPlaneConfig(_Strict):
    """Per-scan through-plane SR (``task: throughplane``, docs/through-plane.md): pairs from
    the in-plane slices of the one scan in ``data.train``, degraded along one axis as its slice
    direction was acquired (k = slice spacing / in-plane spacing, from the scan)."""

    profile: str = Field("rect", description="rect, gaussian, or a profile .npy (learn-kernel)")
    thickness_mm: float | None = Field(
        None, gt=0, description="slice FWHM in mm (default: header SliceThickness, else spacing)"
    )
    patch: int = Field(48, ge=8, description="square patch side in output voxels")

"""The recipe schema: :class:`RunConfig` and its sections (pydantic, extra keys forbidden),
and :func:`validate` (schema, then the model against the zoo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from mrisr.errors import ConfigError
from mrisr.train.config.errors import format_validation_error
from mrisr.train.config.sections import (
    DSGANConfig,
    GANConfig,
    OptimConfig,
    ProfileConfig,
    ThroughPlaneConfig,
    _Strict,
)


class ModelConfig(_Strict):
    """The network: a zoo name (``mrisr models``) and keyword overrides of its preset."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    init_from: str | None = Field(
        None,
        description="checkpoint folder (or shipped weights name) to warm-start from: tensors "
        "whose names and shapes match are copied (e.g. a x2 model starts a x4 one)",
    )


class NormalisationConfig(_Strict):
    """:class:`mrisr.normalisation.Normalisation` fields, stored in the exported checkpoint."""

    mode: Literal["percentile", "max", "zscore", "none"] = "percentile"
    low: float = Field(0.0, ge=0, le=100)
    high: float = Field(99.5, ge=0, le=100)
    clip: bool = False


class SplitConfig(_Strict):
    """Subjects held out of ``data.train`` when ``data.val`` is empty (``split_by_subject``);
    with ``data.protocol: ixi-csn`` the protocol's split is used instead."""

    val: int = Field(1, ge=0)
    test: int = Field(0, ge=0)
    seed: int = 0


class IntensityConfig(_Strict):
    """Per-item intensity augmentation of the training pairs (:mod:`mrisr.data.intensity`)."""

    gamma: float = Field(0.0, ge=0, le=2, description="power log-uniform in [1/(1+g), 1+g]")
    bias: float = Field(0.0, ge=0, le=2, description="bias field exp(b·P), P quadratic, |P| ≤ 1")
    noise: tuple[float, float] | None = Field(
        None, description="Rician noise, σ uniform in [lo, hi] (normalised)"
    )
    noise_on: Literal["hr", "lr"] = Field(
        "hr",
        description="hr: on the HR slice before degradation (the target carries it, as in a "
        "noisy scan); lr: on the LR input only (a denoising prior)",
    )


class DataConfig(_Strict):
    """Scans, degradation and patches. ``batch_size`` is the *global* batch (all devices)."""

    train: list[str] = Field(default_factory=list)
    val: list[str] = Field(default_factory=list)
    guide: list[str] = Field(
        default_factory=list,
        description="multi-contrast: the guide scan (e.g. T1) of each data.train scan, same order",
    )
    val_guide: list[str] = Field(default_factory=list, description="guides of data.val")
    lr_real: list[str] = Field(
        default_factory=list,
        description="task: dsgan: real low-resolution scans (unpaired with data.train, the HR)",
    )
    min_overlap: float = Field(0.9, gt=0, le=1, description="guide's cover of the target's FOV")
    protocol: Literal["none", "ixi-csn"] = "none"
    split: SplitConfig = Field(default_factory=SplitConfig)
    scale: int = Field(2, ge=1, le=8, description="1 only for task: throughplane")
    degradation: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"method": "bicubic", "scale": 2}]
    )
    fixed_degradation: bool = True
    axis: int | None = Field(None, ge=0, le=2)
    crop: tuple[PositiveInt, PositiveInt, PositiveInt] | None = None
    lr_patch: int = Field(32, ge=4, description="LR patch side in pixels (HR: × scale)")
    batch_size: int = Field(16, ge=1)
    samples_per_epoch: int | None = Field(None, ge=1)
    foreground_fraction: float = Field(0.9, ge=0, le=1)
    augment: bool = True
    planes: Literal["one", "all"] = Field(
        "one",
        description="train along the chosen slice axis, or along every axis of square-pixel "
        "slices (an isotropic scan gives three orientations)",
    )
    intensity: IntensityConfig | None = None
    normalisation: NormalisationConfig = Field(default_factory=NormalisationConfig)
    stats_from: Literal["hr", "lr"] = Field(
        "hr",
        description="fit the normalisation on the HR scan, or on its degraded LR volume (what "
        "inference sees; SANet's 'LR mean/std'; needs a fixed degradation)",
    )
    num_workers: int = Field(0, ge=0)
    cache_dir: str | None = None

    @field_validator("train", "val", "guide", "val_guide", "lr_real", mode="before")
    @classmethod
    def _one_path_is_a_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _degradation_parses(self) -> DataConfig:
        if not self.train:
            raise ValueError("train: give the training scans (e.g. data.train=/path/to/IXI-T2)")
        if self.protocol != "none" and (self.val or self.crop):
            raise ValueError(
                f"protocol: '{self.protocol}' chooses the validation scans and the "
                "crop; leave data.val and data.crop empty"
            )
        if self.guide or self.val_guide:
            for scans, guides, k in ((self.train, self.guide, "guide"),
                                     (self.val, self.val_guide, "val_guide")):  # fmt: skip
                if len(guides) != len(scans):
                    what = "train" if k == "guide" else "val"
                    raise ValueError(
                        f"{k}: {len(guides)} guide scans for {len(scans)} data.{what} scans; "
                        "give one guide per scan, in the same order"
                    )
                from mrisr.data.protocols import IXI_ID

                for a, b in zip(scans, guides, strict=True):  # IXI names carry the subject
                    ia, ib = IXI_ID.search(Path(a).name), IXI_ID.search(Path(b).name)
                    if ia and ib and ia.group(0) != ib.group(0):
                        raise ValueError(
                            f"{k}: '{Path(b).name}' is not of the same subject as "
                            f"'{Path(a).name}'; pair each scan with its own subject's guide"
                        )
            if self.protocol != "none":
                raise ValueError("guide: multi-contrast pairs need protocol: none")
        from mrisr.degrade.pipeline import from_config

        try:
            from_config(self.degradation)
        except ConfigError as e:
            raise ValueError(f"degradation: {e}") from None
        return self


class SchedConfig(_Strict):
    """Learning-rate schedule, evaluated per optimiser step.

    ``constant``; ``step``: ×``gamma`` every ``every`` ``unit`` (epochs or steps); ``cosine``:
    from ``optim.lr`` to ``min_lr`` over the run. ``warmup_steps`` ramps linearly first.
    """

    name: Literal["constant", "step", "cosine"] = "constant"
    every: int = Field(200, ge=1)
    unit: Literal["epochs", "steps"] = "epochs"
    gamma: float = Field(0.5, gt=0, le=1)
    min_lr: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)


class TrainConfig(_Strict):
    """Loop length, losses and bookkeeping. Give exactly one of ``steps`` and ``epochs``."""

    steps: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    loss: Literal["l1", "l2"] = "l1"
    grad_clip: float | None = Field(None, gt=0, description="max gradient norm")
    ema_decay: float | None = Field(None, gt=0, lt=1)
    target_weight: float = Field(
        0.7, ge=0, le=1, description="multicontrast: α in α·L1(target) + (1 − α)·L1(guide recon)"
    )
    val_every: int = Field(1000, ge=0, description="steps; 0 = at the end only")
    ckpt_every: int = Field(1000, ge=0, description="steps; 0 = at the end only")
    log_every: int = Field(50, ge=1)
    keep_states: int = Field(3, ge=1, description="state checkpoints kept in state/")
    seed: int = 0
    stop_patience: int | None = Field(
        None, ge=1, description="steps: stop early when the logged loss has not improved by 1 %"
    )
    deterministic: bool = False
    progress: Literal["auto", "on", "off"] = "auto"
    out_dir: str = "runs"

    @field_validator("progress", mode="before")
    @classmethod
    def _yaml_booleans(cls, v: Any) -> Any:  # YAML reads on/off as true/false
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v

    @model_validator(mode="after")
    def _one_length(self) -> TrainConfig:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("steps: give exactly one of train.steps and train.epochs")
        return self


class ValConfig(_Strict):
    """Validation on whole slices, scored per volume."""

    batch_size: int = Field(8, ge=1)
    shave: int = Field(0, ge=0, description="border pixels cut before scoring")


class TrainerConfig(_Strict):
    """What Lightning Fabric does: devices, precision, distribution."""

    accelerator: Literal["auto", "cpu", "cuda", "gpu", "mps"] = "auto"
    devices: int | Literal["auto"] = 1
    num_nodes: int = Field(1, ge=1)
    strategy: Literal["auto", "ddp"] = "auto"
    precision: Literal["32", "32-true", "bf16-mixed", "16-mixed"] = "32"

    @field_validator("precision", mode="before")
    @classmethod
    def _number_is_text(cls, v: Any) -> Any:  # `precision: 32` in YAML is an int
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class RunConfig(_Strict):
    """A whole recipe."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    base: str | None = Field(
        None, description="recipe this one extends (merged before validation; kept for the record)"
    )
    task: str = Field("supervised", description="what is trained: a name in train.tasks.TASKS")

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        from mrisr.train.tasks import task_names  # the registry (light: no torch, no tasks)

        if v not in task_names():
            raise ValueError(f"unknown task {v!r}; the tasks are: {', '.join(task_names())}")
        return v

    model: ModelConfig
    data: DataConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)
    sched: SchedConfig = Field(default_factory=SchedConfig)
    train: TrainConfig
    val: ValConfig = Field(default_factory=ValConfig)
    gan: GANConfig | None = None
    dsgan: DSGANConfig | None = None
    profile: ProfileConfig | None = None
    through_plane: ThroughPlaneConfig | None = None
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    @model_validator(mode="after")
    def _scale_matches(self) -> RunConfig:
        if self.task == "gan" and self.gan is None:
            raise ValueError(
                "gan: task: gan needs a gan section; give at least gan.vgg_weights=PATH "
                "(VGG19 content loss) or gan.content=l2"
            )
        if self.task != "gan" and self.gan is not None:
            raise ValueError("gan: this section is for task: gan; remove it or set task: gan")
        if self.task == "multicontrast" and not self.data.guide:
            raise ValueError(
                "data.guide: task: multicontrast needs a guide scan per training scan "
                "(data.guide=[...], and data.val_guide for data.val)"
            )
        if (self.task == "dsgan") != (self.dsgan is not None):
            raise ValueError(
                "dsgan: task: dsgan needs a dsgan section (dsgan: {}) and the section is "
                "only for task: dsgan"
            )
        if (self.task == "profile") != (self.profile is not None):
            raise ValueError(
                "profile: task: profile needs a profile section (profile: {}) and the section "
                "is only for task: profile"
            )
        if (self.task == "throughplane") != (self.through_plane is not None):
            raise ValueError(
                "through_plane: task: throughplane needs a through_plane section (through_plane: "
                "{}) and the section is only for task: throughplane"
            )
        if (self.task == "dsgan") != bool(self.data.lr_real):
            raise ValueError(
                "data.lr_real: task: dsgan learns from real LR scans (data.lr_real=[...]); "
                "other tasks make their LR with data.degradation"
            )
        if self.task != "multicontrast" and (self.data.guide or self.data.val_guide):
            raise ValueError("data.guide: guide scans are for task: multicontrast")
        for step in self.data.degradation:
            s = step.get("scale")
            if isinstance(s, int) and s not in (1, self.data.scale):
                raise ValueError(
                    f"data.degradation: step '{step.get('method')}' has scale {s} but "
                    f"data.scale is {self.data.scale}"
                )
        return self


def validate(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a plain dict (paths already resolved) into a :class:`RunConfig`."""
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(source, e)) from None
    _check_model(cfg, source)
    return cfg


def _check_model(cfg: RunConfig, source: str) -> None:
    import inspect

    from mrisr.models.registry import get_spec

    if cfg.task == "profile" or cfg.model.name == "profile":
        if cfg.task != "profile" or cfg.model.name != "profile" or cfg.model.args:
            raise ConfigError(
                f"{source}: model.name: the slice-profile generator is model.name: profile with "
                "task: profile (set it up in the profile section)"
            )
        return
    if cfg.task == "dsgan" or cfg.model.name == "dsgan":
        if cfg.task != "dsgan" or cfg.model.name != "dsgan" or cfg.model.args:
            raise ConfigError(
                f"{source}: model.name: the kernel-learning generator is model.name: dsgan with "
                "task: dsgan (its layers are set in the dsgan section)"
            )
        return
    if (cfg.task == "throughplane") != (cfg.model.name == "throughplane-resnet"):
        raise ConfigError(
            f"{source}: model.name: task: throughplane trains model.name: throughplane-resnet, "
            "and that network is trained only by task: throughplane"
        )
    try:
        spec = get_spec(cfg.model.name)
    except ConfigError as e:
        raise ConfigError(f"{source}: model.name: {e}") from None
    if spec.needs_guide != (cfg.task == "multicontrast"):
        want = "task: multicontrast" if spec.needs_guide else "task: supervised or gan"
        kind = "multi-contrast (needs a guide)" if spec.needs_guide else "single-contrast"
        raise ConfigError(f"{source}: task: {cfg.model.name} is {kind}; use {want}")
    if cfg.data.scale not in spec.scales:
        raise ConfigError(
            f"{source}: data.scale: {cfg.model.name} supports scales {list(spec.scales)}, "
            f"not {cfg.data.scale}"
        )
    params = inspect.signature(spec.cls().__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        bad = sorted(set(cfg.model.args) - set(params) | ({"scale"} & set(cfg.model.args)))
        if bad:
            raise ConfigError(
                f"{source}: model.args.{bad[0]}: not an argument of {cfg.model.name} "
                f"(allowed: {', '.join(k for k in params if k not in ('self', 'scale'))})"
            )

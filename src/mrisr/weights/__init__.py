"""Trained weights that ship inside the package, and the defaults ``mrisr upscale`` uses.

Each entry is an ordinary checkpoint folder (``model.safetensors`` in float16 + ``config.json``)
with a ``MODEL_CARD.md`` beside it, under ``mrisr/weights/<name>/``. They were trained by
``scripts/train_default_weights.py`` from the recipes of the same name (``mrisr train
default_kspace_x2`` ...); every number in a card comes from that script's run.

``mrisr upscale IN OUT`` without ``--checkpoint`` / ``--weights`` uses :data:`DEFAULTS` for the
requested ``--scale`` (×2 when none is given): models trained on k-space truncation, the way a
scan acquired with a smaller matrix loses resolution.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mrisr.errors import ConfigError, InputError

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Shipped:
    """One set of shipped weights."""

    name: str
    model: str
    scale: int
    degradation: str
    recipe: str
    summary: str
    init_from: str | None = None  # trained from these shipped weights' run (warm start)


SHIPPED: dict[str, Shipped] = {
    s.name: s
    for s in (
        Shipped(
            "edsr-kspace-x2",
            "edsr-baseline",
            2,
            "kspace-truncate",
            "default_kspace_x2",
            "EDSR baseline x2 for scans acquired with half the matrix (k-space truncation)",
        ),
        Shipped(
            "edsr-kspace-x4",
            "edsr-baseline",
            4,
            "kspace-truncate",
            "default_kspace_x4",
            "EDSR baseline x4 for scans acquired with a quarter of the matrix (k-space truncation)",
            init_from="edsr-kspace-x2",
        ),
        Shipped(
            "edsr-bicubic-x2",
            "edsr-baseline",
            2,
            "bicubic",
            "default_bicubic_x2",
            "EDSR baseline x2 for the papers' protocol (MATLAB bicubic downsampling)",
            init_from="edsr-kspace-x2",
        ),
        Shipped(
            "seran-bicubic-x2",
            "seran",
            2,
            "bicubic",
            "default_seran_bicubic_x2",
            "SERAN x2 (the paper's network and size) for the papers' protocol (MATLAB bicubic)",
        ),
        Shipped(
            "seran-bicubic-x4",
            "seran",
            4,
            "bicubic",
            "default_seran_bicubic_x4",
            "SERAN x4 (the paper's network and size) for the papers' protocol (MATLAB bicubic)",
            init_from="seran-bicubic-x2",
        ),
        Shipped(
            "sanet-t1t2-kspace-x2",
            "sanet",
            2,
            "kspace-truncate",
            "default_sanet_t1t2_kspace_x2",
            "SANet x2 (reduced size) for a T2 acquired with half the matrix, guided by a T1 of "
            "the same session",
        ),
        Shipped(
            "sanet-t1t2-kspace-x4",
            "sanet",
            4,
            "kspace-truncate",
            "default_sanet_t1t2_kspace_x4",
            "SANet x4 (reduced size) for a T2 acquired with a quarter of the matrix, guided by a "
            "T1 of the same session",
        ),
    )
}

#: Through-plane priors (``throughplane-resnet``, scale 1): the network ``mrisr upscale
#: --through-plane`` starts from (:data:`mrisr.infer.through_plane.PRIOR`). Kept apart from
#: :data:`SHIPPED`, whose entries are in-plane SR models with a held-out in-plane test.
PRIORS: dict[str, Shipped] = {
    s.name: s
    for s in (
        Shipped(
            "throughplane-prior",
            "throughplane-resnet",
            1,
            "thick-slice",
            "scripts/train_through_plane_prior.py",
            "through-plane prior: thick slices at k 2-6, rect and Gaussian profiles, gaps",
        ),
    )
}

#: scale → the weights ``mrisr upscale`` uses when no checkpoint is given.
DEFAULTS: dict[int, str] = {2: "edsr-kspace-x2", 4: "edsr-kspace-x4"}
#: scale → the weights ``mrisr upscale --guide T1`` uses when no checkpoint is given.
GUIDED_DEFAULTS: dict[int, str] = {2: "sanet-t1t2-kspace-x2", 4: "sanet-t1t2-kspace-x4"}


def shipped_path(name: str) -> Path:
    """The checkpoint folder of shipped weights ``name``; a clear error if unknown or absent."""
    if name not in SHIPPED and name not in PRIORS:
        names = ", ".join([*SHIPPED, *PRIORS])
        raise ConfigError(f"no shipped weights '{name}'; choose one of: {names}")
    p = HERE / name
    if not (p / "config.json").is_file():
        raise ConfigError(
            f"shipped weights '{name}' are missing from this installation ({p}); reinstall "
            "mrisr or pass --checkpoint DIR"
        )
    return p


def resolve_checkpoint(spec: str | os.PathLike[str]) -> Path:
    """A checkpoint given as a path (a folder, or its config.json / model.safetensors) or as
    the name of shipped weights (``edsr-kspace-x2``); an existing path wins over a name.

    A path that does not exist and is no shipped name is an :class:`InputError` that lists the
    shipped names. The path itself is validated by :func:`mrisr.checkpoint.read_config`.
    """
    p = Path(spec)
    if p.exists():
        return p
    if str(spec) in SHIPPED or str(spec) in PRIORS:
        return shipped_path(str(spec))
    raise InputError(
        f"checkpoint '{spec}' is neither a checkpoint folder nor the name of shipped weights "
        f"({', '.join(SHIPPED)})"
    )


def default_weights(
    scale: int | None = None, model: str | None = None, guided: bool = False
) -> str:
    """The name of the default weights for ``scale`` (×2 when None), optionally of ``model``;
    ``guided``: for a scan with a guide contrast (``--guide``), a multi-contrast model."""
    s = 2 if scale is None else int(scale)
    table = GUIDED_DEFAULTS if guided else DEFAULTS
    if model is not None:
        names = [n for n, w in SHIPPED.items() if w.model == model and w.scale == s]
        names.sort(key=lambda n: n != table.get(s))
        if not names:
            raise ConfigError(
                f"no weights ship for model '{model}' at x{s}; pass --checkpoint DIR (train one "
                "with `mrisr train`)"
            )
        return names[0]
    if s not in table:
        raise ConfigError(
            f"no default weights ship for x{s}{' with --guide' if guided else ''} (shipped: "
            f"{', '.join(f'x{k}' for k in sorted(table))}); pass --checkpoint DIR"
        )
    return table[s]


def card(name: str) -> str:
    """The model card (Markdown) of shipped weights ``name``."""
    return (shipped_path(name) / "MODEL_CARD.md").read_text()

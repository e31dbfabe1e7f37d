"""Training recipes: plain YAML validated by pydantic, with ``key=value`` overrides.

A recipe is plain data (no expressions, no ``${...}``). ``load_config(path_or_name, overrides)``
reads it, applies the overrides, resolves the data paths and validates everything; any mistake
raises one :class:`~mrisr.errors.ConfigError` line naming the dotted key::

    smoke.yaml: train.stepz: unknown key
    smoke.yaml: optim.lr: input should be greater than 0 (got -1)

Where recipes live: the packaged ``mrisr/train/recipes/*.yaml`` are the source of truth (an
installed mrisr finds them by name: ``load_config("smoke")``); the repository's ``configs/``
holds byte-identical copies for reading and editing (``tests/test_train.py`` keeps them equal).

Paths in ``data.train`` / ``data.val``: absolute, relative to the recipe file's folder (when
written in the recipe) or to the working directory (when given as an override), or the special
value ``demo`` (the packaged demo scan, :func:`mrisr.data.demo_scan_path`). A folder is expanded
to the scan files inside it (sorted; :func:`mrisr.io.formats.expand_folder`, as ``mrisr upscale``
does); a folder without any is kept as one scan (a DICOM series). ``train.out_dir`` is relative
to the working directory.

Modules: ``schema`` (RunConfig, :func:`validate`), ``sections`` (OptimConfig and the task
sections), ``recipes`` (packaged
recipes, ``base:`` merging, overrides, :func:`load_config`), ``paths`` (one resolver for every
path key), ``errors`` (pydantic errors as one line).
"""

from __future__ import annotations

from mrisr.io.formats import scan_suffixes
from mrisr.train.config.errors import format_validation_error
from mrisr.train.config.paths import DEMO, resolve_path, resolve_paths
from mrisr.train.config.recipes import (
    RECIPES,
    _read_recipe,
    config_differences,
    dump_config,
    load_config,
    parse_overrides,
    recipe_names,
    recipe_path,
)
from mrisr.train.config.schema import (
    DataConfig,
    ModelConfig,
    NormalisationConfig,
    RunConfig,
    SchedConfig,
    SplitConfig,
    TrainConfig,
    TrainerConfig,
    ValConfig,
    validate,
)
from mrisr.train.config.sections import (
    DSGANConfig,
    GANConfig,
    OptimConfig,
    ProfileConfig,
    ThroughPlaneConfig,
)

#: Suffixes of the scan files a data folder is expanded to (from :mod:`mrisr.io.formats`).
VOLUME_SUFFIXES = scan_suffixes()

__all__ = [
    "DEMO",
    "RECIPES",
    "VOLUME_SUFFIXES",
    "DSGANConfig",
    "DataConfig",
    "GANConfig",
    "ModelConfig",
    "NormalisationConfig",
    "OptimConfig",
    "ProfileConfig",
    "RunConfig",
    "SchedConfig",
    "SplitConfig",
    "ThroughPlaneConfig",
    "TrainConfig",
    "TrainerConfig",
    "ValConfig",
    "_read_recipe",
    "config_differences",
    "dump_config",
    "format_validation_error",
    "load_config",
    "parse_overrides",
    "recipe_names",
    "recipe_path",
    "resolve_path",
    "resolve_paths",
    "validate",
]

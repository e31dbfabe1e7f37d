"""Recipes: packaged ones by name, ``base:`` chains merged section by section, ``key=value``
overrides, and :func:`load_config` (read → override → resolve paths → validate)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mrisr.errors import ConfigError
from mrisr.train.config.paths import resolve_paths
from mrisr.train.config.schema import RunConfig, validate

#: The packaged recipes (``configs/`` in the repository holds byte-identical copies).
RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def recipe_names() -> list[str]:
    """Names of the packaged recipes (``load_config(name)`` accepts them)."""
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def recipe_path(path_or_name: str | os.PathLike[str]) -> Path:
    """A recipe file: an existing path, or a packaged recipe's name (without ``.yaml``)."""
    p = Path(path_or_name)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ConfigError(f"recipe '{p}' does not exist")
        return p
    if (RECIPES / f"{p.name}.yaml").is_file() and p.name == str(path_or_name):
        return RECIPES / f"{p.name}.yaml"
    raise ConfigError(
        f"no recipe '{path_or_name}'; give a .yaml file or one of: {', '.join(recipe_names())}"
    )


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> list[tuple[list[str], Any]]:
    """``["optim.lr=2e-4", "data.train=[a.nii.gz]"]`` → ``[(["optim", "lr"], 2e-4), ...]``.

    Values are YAML scalars or flow collections (``1e-4``, ``true``, ``null``, ``[a, b]``).
    """
    import yaml

    out = []
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.strip() for p in parts):
            raise ConfigError(f"override '{item}' must look like key.sub=value")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override '{item}': value is not valid YAML ({e})") from None
        out.append(([p.strip() for p in parts], value))
    return out


def _set(tree: dict[str, Any], keys: list[str], value: Any, item: str) -> None:
    node = tree
    for i, k in enumerate(keys[:-1]):
        nxt = node.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {item}: {'.'.join(keys[: i + 1])} is not a section")
        node = nxt
    node[keys[-1]] = value


def _merge(base: dict[str, Any], child: dict[str, Any], key: str = "") -> dict[str, Any]:
    """``child`` over ``base``, section by section. Lists and values are replaced whole, and
    so is ``model.args`` (the arguments belong to the child's ``model.name``)."""
    out = dict(base)
    for k, v in child.items():
        sub = f"{key}.{k}" if key else k
        deep = isinstance(v, dict) and isinstance(out.get(k), dict) and sub != "model.args"
        out[k] = _merge(out[k], v, sub) if deep else v
    return out


def _read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe file as a dict, with its ``base:`` chain merged under it.

    ``base`` names a packaged recipe or a file relative to this one. Paths inside a base
    (``data.train``, ...) are resolved against the extending recipe's folder.
    """
    import yaml

    source = path.name
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a recipe must be a mapping of sections")
    parent = raw.get("base")
    if parent is None:
        return raw
    if not isinstance(parent, str) or not parent:
        raise ConfigError(f"{source}: base: give a recipe name or a .yaml path")
    sibling = path.parent / parent
    target = sibling if parent.endswith((".yaml", ".yml")) and sibling.is_file() else None
    try:
        ppath = target or recipe_path(parent)
    except ConfigError as e:
        raise ConfigError(f"{source}: base: {e}") from None
    if ppath.resolve() in seen or ppath.resolve() == path.resolve():
        raise ConfigError(f"{source}: base: '{parent}' extends itself (a cycle of recipes)")
    merged = _merge(_read_recipe(ppath, (*seen, path.resolve())), raw)
    merged["base"] = parent
    return merged


def load_config(
    path_or_name: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()
) -> RunConfig:
    """Read a recipe (file or packaged name), apply ``key=value`` overrides, validate.

    Data paths come back absolute, so ``cfg.model_dump()`` is the resolved, frozen config.
    """
    path = recipe_path(path_or_name)
    source = path.name
    raw = _read_recipe(path)
    from_cli = set()
    for keys, value in parse_overrides(list(overrides)):
        _set(raw, keys, value, ".".join(keys))
        from_cli.add(".".join(keys))
    try:
        resolve_paths(raw, path.resolve().parent, from_cli)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    return validate(raw, source)


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML (what ``config.yaml`` in the run folder holds)."""
    import yaml

    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def config_differences(a: RunConfig, b: RunConfig) -> list[str]:
    """Dotted keys whose values differ between two configs."""
    out: list[str] = []

    def walk(x: Any, y: Any, prefix: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                walk(x.get(k), y.get(k), f"{prefix}.{k}" if prefix else k)
        elif x != y:
            out.append(prefix)

    walk(a.model_dump(mode="json"), b.model_dump(mode="json"), "")
    return out

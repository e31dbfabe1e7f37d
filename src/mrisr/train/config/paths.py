"""Paths inside a recipe, made absolute before validation.

One rule for every path key (:func:`resolve_path`): ``~`` is expanded; a relative path is taken
from the working directory when the key was given as a ``key=value`` override, else from the
recipe file's folder; the result must pass the key's test, or a
:class:`~mrisr.errors.ConfigError` says ``key: 'entry' <problem> (looked at /abs/path)<hint>``.

The keys: ``data.train`` / ``val`` / ``guide`` / ``val_guide`` / ``lr_real`` (lists of scans;
``demo`` is the packaged demo scan; a folder expands to the scans inside it by
:func:`mrisr.io.formats.expand_folder`, or is one DICOM series), ``model.init_from`` (a
checkpoint folder or a shipped weights name), ``gan.vgg_weights``, ``through_plane.profile``
(a .npy), the ``kernel`` of ``data.degradation`` steps, and ``data.cache_dir`` (never
checked; relative to the recipe unless overridden, then left as given).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrisr.errors import ConfigError

#: ``data.train: [demo]``: the packaged demo scan (:func:`mrisr.data.demo_scan_path`).
DEMO = "demo"
#: The data keys holding lists of scans.
SCAN_KEYS = ("train", "val", "guide", "val_guide", "lr_real")


def resolve_path(
    entry: str,
    key: str,
    base: Path,
    from_cli: set[str],
    test: Callable[[Path], bool] | None = Path.exists,
    problem: str = "does not exist",
    hint: str = "",
    what: str = "",
) -> Path:
    """The absolute path of ``entry``, the value of dotted ``key``: relative to the working
    directory if ``key`` is in ``from_cli`` (given as an override), else to ``base``. Unless
    ``test`` (None: no test) passes, a ConfigError ``key: <what>'entry' <problem> (looked at
    P)<hint>``."""
    p = Path(os.path.expanduser(entry))
    p = p if p.is_absolute() else (Path.cwd() if key in from_cli else base) / p
    if test is not None and not test(p):
        raise ConfigError(f"{key}: {what}'{entry}' {problem} (looked at {p}){hint}")
    return p


def _scans(entry: str, key: str, base: Path, from_cli: set[str]) -> list[str]:
    """One ``data.train`` (& co.) entry → absolute scan paths."""
    if entry == DEMO:
        from mrisr.data import demo_scan_path

        return [str(demo_scan_path())]
    from mrisr.io.formats import expand_folder

    return [str(f) for f in expand_folder(resolve_path(entry, key, base, from_cli))]


def _entry(section: Any, name: str) -> str | None:
    """``section[name]`` when it is a non-empty string (other types are pydantic's to report)."""
    entry = section.get(name) if isinstance(section, dict) else None
    return entry if isinstance(entry, str) and entry else None


def resolve_paths(raw: dict[str, Any], base: Path, from_cli: set[str]) -> None:
    """Make the paths of a raw recipe absolute, in place (``base``: the recipe's folder;
    ``from_cli``: the dotted keys given as overrides)."""
    model, gan, data = raw.get("model"), raw.get("gan"), raw.get("data")
    if entry := _entry(model, "init_from"):
        from mrisr.weights import SHIPPED, shipped_path

        model["init_from"] = str(
            shipped_path(entry)
            if entry in SHIPPED
            else resolve_path(
                entry,
                "model.init_from",
                base,
                from_cli,
                test=lambda p: (p / "config.json").is_file(),
                problem="is not a checkpoint folder",
                hint=f" nor shipped weights ({', '.join(SHIPPED)})",
            )
        )
    if entry := _entry(gan, "vgg_weights"):
        gan["vgg_weights"] = str(
            resolve_path(
                entry,
                "gan.vgg_weights",
                base,
                from_cli,
                test=Path.is_file,
                hint="; give the ImageNet VGG19 weights file (vgg19-dcbb9e9d.pth, see "
                "docs/gan.md) or gan.content=l2",
            )
        )
    tp = raw.get("through_plane")
    if (entry := _entry(tp, "profile")) and entry not in ("rect", "gaussian"):
        tp["profile"] = str(
            resolve_path(
                entry,
                "through_plane.profile",
                base,
                from_cli,
                test=Path.is_file,
                hint="; give rect, gaussian or a profile from mrisr learn-kernel --through-plane",
            )
        )
    if not isinstance(data, dict):
        return
    for name in SCAN_KEYS:
        entries = data.get(name)
        if isinstance(entries, str):
            entries = [entries]
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            continue  # pydantic reports the type error with the key
        data[name] = [s for e in entries for s in _scans(e, f"data.{name}", base, from_cli)]
    steps = data.get("degradation")
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and step.get("method") == "kernel":
            if entry := _entry(step, "kernel"):
                step["kernel"] = str(
                    resolve_path(
                        entry,
                        "data.degradation",
                        base,
                        from_cli,
                        test=Path.is_file,
                        hint="; learn one with mrisr learn-kernel",
                        what="kernel ",
                    )
                )
    if isinstance(data.get("cache_dir"), str) and "data.cache_dir" not in from_cli:
        data["cache_dir"] = str(
            resolve_path(data["cache_dir"], "data.cache_dir", base, set(), None)
        )

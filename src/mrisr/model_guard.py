"""Build a network from a checkpoint's ``init_args`` only when they make sense.

Integer init args over :data:`MAX_ARG_FACTOR` times the preset's default are refused; the
network is then built on the ``meta`` device (no memory) under a guard that stops it past
:data:`MAX_MODULES` modules or :data:`MAX_PARAMS` parameters, and its tensor names and shapes
must be those of the weights' safetensors header. A ``scale`` that disagrees with the weights
is named as such. Every refusal is one InputError line naming the field.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mrisr.errors import ConfigError, InputError, MrisrError
from mrisr.models.registry import build_model, count_parameters, get_spec
from mrisr.safetensors_file import header_shapes

#: A checkpoint whose network would have more parameters (or buffer elements) is refused.
MAX_PARAMS = 10**9
#: ... or more modules (the largest preset has about 1,500; 20,000 build in about 2 s on meta).
MAX_MODULES = 20_000
#: An integer init arg above this many times its preset default is refused before building.
MAX_ARG_FACTOR = 100


def _few(keys: Sequence[str], n: int = 3) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(f"'{k}'" for k in keys[:n]) + more


def _shape_error(
    expected: Mapping[str, tuple[int, ...]], got: Mapping[str, tuple[int, ...]], source: str
) -> str | None:
    """One line naming missing / extra / misshapen tensors, or None when they all agree."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    if missing:
        return f"{source} lacks tensors the model needs: {_few(missing)}"
    if unexpected:
        return f"{source} holds tensors the model does not have: {_few(unexpected)}"
    shapes = [
        f"'{k}' {got[k]} vs model {v}" for k, v in expected.items() if tuple(got[k]) != tuple(v)
    ]
    if shapes:
        more = f" (+{len(shapes) - 3} more)" if len(shapes) > 3 else ""
        return f"{source} has tensors of the wrong shape: {'; '.join(shapes[:3])}{more}"
    return None


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


class _TooLarge(Exception):
    pass


@contextlib.contextmanager
def _size_guard() -> Any:
    """Abort any module construction inside (``_TooLarge``) once it has registered more than
    :data:`MAX_MODULES` submodules or :data:`MAX_PARAMS` parameter + buffer elements."""
    max_modules, max_params = MAX_MODULES, MAX_PARAMS
    from torch.nn.modules.module import (
        register_module_buffer_registration_hook,
        register_module_module_registration_hook,
        register_module_parameter_registration_hook,
    )

    count = {"modules": 0, "elements": 0}

    def on_module(module: nn.Module, name: str, sub: nn.Module | None) -> None:
        count["modules"] += 1
        if count["modules"] > max_modules:
            raise _TooLarge(f"more than {max_modules:,} modules")

    def on_tensor(module: nn.Module, name: str, t: torch.Tensor | None) -> None:
        count["elements"] += t.numel() if t is not None else 0
        if count["elements"] > max_params:
            raise _TooLarge(f"more than {max_params:,} parameters")

    hooks = (
        register_module_module_registration_hook(on_module),
        register_module_parameter_registration_hook(on_tensor),
        register_module_buffer_registration_hook(on_tensor),
    )
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def _build(
    name: str, init_args: Mapping[str, Any], source: str, device: str | None = None
) -> nn.Module:
    try:
        get_spec(name)
    except ConfigError as e:
        raise InputError(f"{source} needs model '{name}': {e}") from None
    try:
        with torch.device(device) if device else contextlib.nullcontext():
            return build_model(name, **init_args)
    except (TypeError, ValueError, RuntimeError, MrisrError) as e:
        msg = " ".join(str(e).split())
        raise InputError(f"{source}: init_args do not build model '{name}': {msg}") from None


def _suspect(name: str, init_args: Mapping[str, Any]) -> str:
    """The integer init arg furthest above its preset default, as ``init_args.KEY = V``."""
    defaults = get_spec(name).defaults
    worst, ratio = "", 1.0
    for key, default in defaults.items():
        value = init_args.get(key)
        if _is_int(default) and _is_int(value) and value / max(default, 1) > ratio:
            worst = f"init_args.{key} = {value} (preset {default})"
            ratio = value / max(default, 1)
    return worst or "init_args"


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def check_init_args(
    name: str,
    init_args: Mapping[str, Any],
    source: str,
    weights: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse absurd ``init_args`` before a real build (see the module doc); with ``weights``,
    the network's tensor names and shapes must be those of that safetensors file's header."""
    spec_defaults = _spec_defaults(name, source)
    for key, default in spec_defaults.items():
        value = init_args.get(key)
        if not (_is_int(default) and _is_int(value)):
            continue  # a wrong type is the model's to refuse (init_args do not build ...)
        cap = MAX_ARG_FACTOR * max(default, 1)
        if value < 0 or value > cap:
            raise InputError(
                f"{source}: init_args.{key} = {value} is out of range for '{name}' "
                f"(preset {default}; at most {cap})"
            )
    try:
        with _size_guard():
            meta = _build(name, init_args, source, device="meta")
    except _TooLarge as e:
        raise InputError(
            f"{source}: init_args build a '{name}' of {e}; check {_suspect(name, init_args)}"
        ) from None
    n = count_parameters(meta)
    if n > MAX_PARAMS:  # registered otherwise than through nn.Module (defensive)
        raise InputError(
            f"{source}: init_args build a '{name}' of {n:,} parameters (over {MAX_PARAMS:,}); "
            f"check {_suspect(name, init_args)}"
        )
    if weights is None:
        return
    got = header_shapes(Path(weights))
    error = _shape_error(_shapes(meta.state_dict()), got, source)
    if error is None:
        return
    scale = init_args.get("scale")
    for other in get_spec(name).scales:
        if other == scale:
            continue
        try:
            with _size_guard():
                alt = _build(name, {**init_args, "scale": other}, source, device="meta")
        except (InputError, _TooLarge):
            continue
        if _shape_error(_shapes(alt.state_dict()), got, source) is None:
            raise InputError(
                f"{source}: scale {scale} in config.json disagrees with the weights, which are "
                f"those of a x{other} '{name}'"
            )
    raise InputError(error)


def _spec_defaults(name: str, source: str) -> dict[str, Any]:
    try:
        return dict(get_spec(name).defaults)
    except ConfigError as e:
        raise InputError(f"{source} needs model '{name}': {e}") from None

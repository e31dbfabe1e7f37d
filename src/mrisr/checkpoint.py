"""Checkpoints: a folder with ``model.safetensors`` and a ``config.json`` that rebuilds the model.

::

    run/best/                       save_checkpoint(model, "seran", {"scale": 2}, "run/best")
      model.safetensors             the state dict (float32, or float16 storage)
      config.json                   format, model name, complete init_args, normalisation, card

``load_checkpoint(folder)`` rebuilds the network with ``build_model(name, **init_args)`` — no
architecture flags — verifies the weights' SHA-256 against ``config.json`` and loads them
strictly. Files are never unpickled: weights are read with ``safetensors`` only, and
:func:`convert_legacy` reads old ``.pth`` files with ``torch.load(weights_only=True)``, which
refuses any pickle that holds more than tensors.

Before anything is built, ``config.json`` is checked against absurd values
(:mod:`mrisr.model_guard`: init args far above the preset's, a network past a size cap,
tensor shapes unlike the weights', a ``scale`` that disagrees with them).

``model.safetensors`` is written canonically (:func:`mrisr.safetensors_file.write_safetensors`):
the same tensors give
the same bytes, hence the same ``sha256`` in ``config.json`` (which hashes that file only; the
config's ``created`` and the card's wall time do not enter it).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mrisr import __version__
from mrisr.errors import ConfigError, InputError, OutputError
from mrisr.io.atomic import _json_default
from mrisr.model_guard import _build, _few, _is_int, _shape_error, _shapes, check_init_args
from mrisr.models.registry import count_parameters, get_spec
from mrisr.models.registry import init_args as complete_init_args
from mrisr.normalisation import Normalisation
from mrisr.provenance import file_sha256
from mrisr.safetensors_file import write_safetensors

FORMAT = "mrisr-checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
_WRAPPERS = ("params_ema", "params", "state_dict", "model")  # BasicSR prefers the EMA weights


@dataclass
class Checkpoint:
    """What ``config.json`` says about a loaded checkpoint."""

    name: str
    init_args: dict[str, Any]
    scale: int
    normalisation: Normalisation
    training: dict[str, Any]
    path: Path
    sha256: str
    config: dict[str, Any] = field(repr=False)


def load_state_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state, strict=True)`` with one-line errors naming the keys."""
    error = _shape_error(_shapes(model.state_dict()), _shapes(state), source)
    if error:
        raise InputError(error)
    model.load_state_dict(state, strict=True)


def save_checkpoint(
    model: nn.Module,
    name: str,
    init_args: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    normalisation: Normalisation | None = None,
    training: Mapping[str, Any] | None = None,
    dtype: str = "float32",
    overwrite: bool = False,
) -> Checkpoint:
    """Write ``model`` as a checkpoint folder, atomically (temp folder, then rename).

    ``init_args`` must hold ``scale``; the registry's defaults complete the rest, so the stored
    arguments rebuild the same network even if the presets change. ``dtype="float16"`` halves
    the file (floating tensors are stored in fp16 and read back as float32). An existing
    ``out_dir`` is refused unless ``overwrite``; then it is replaced only if it is empty or a
    checkpoint folder (never an arbitrary folder).
    """
    if dtype not in ("float32", "float16"):
        raise ConfigError(f"checkpoint dtype must be 'float32' or 'float16', not '{dtype}'")
    if "scale" not in init_args:
        raise ConfigError("init_args must include 'scale'")
    args = complete_init_args(name, **init_args)
    out = Path(out_dir)
    _check_out_dir(out, overwrite)
    norm = normalisation or Normalisation()
    store = torch.float16 if dtype == "float16" else torch.float32
    tensors = {
        k: (v.to(store) if v.is_floating_point() else v).detach().cpu().contiguous().clone()
        for k, v in model.state_dict().items()
    }
    token = uuid.uuid4().hex[:8]
    tmp = out.with_name(f".{out.name}.{token}.tmp")
    old = out.with_name(f".{out.name}.{token}.old")
    tmp.mkdir()
    try:
        write_safetensors(tensors, tmp / WEIGHTS, metadata={"format": "pt", "mrisr": FORMAT})
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": name,
            "init_args": args,
            "scale": int(args["scale"]),
            "normalisation": asdict(norm),
            "training": dict(training or {}),
            "storage_dtype": dtype,
            "mrisr_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sha256": file_sha256(tmp / WEIGHTS),
            "n_params": count_parameters(model),
        }
        text = json.dumps(config, indent=2, default=_json_default)
        (tmp / CONFIG).write_text(text + "\n")
        if out.exists():
            os.rename(out, old)
            try:
                os.rename(tmp, out)
            except BaseException:
                os.rename(old, out)
                raise
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _checkpoint(config, out)


def _check_out_dir(out: Path, overwrite: bool) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder '{parent}' does not exist; create it first (mkdir -p)")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder '{parent}' is not writable")
    if not out.exists():
        return
    if not overwrite:
        raise OutputError(f"checkpoint '{out}' exists already; pass --overwrite to replace it")
    if not out.is_dir():
        raise OutputError(f"'{out}' is a file; a checkpoint is a folder, choose another name")
    if any(out.iterdir()) and not (out / CONFIG).is_file():
        raise OutputError(f"'{out}' is a folder that is not a checkpoint; it will not be replaced")


def _checkpoint(config: dict[str, Any], path: Path) -> Checkpoint:
    return Checkpoint(
        name=config["model"],
        init_args=dict(config["init_args"]),
        scale=int(config.get("scale", config["init_args"].get("scale", 0))),
        normalisation=Normalisation.from_dict(config.get("normalisation", {})),
        training=dict(config.get("training") or {}),
        path=path,
        sha256=config["sha256"],
        config=config,
    )


def read_config(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """Validate a checkpoint folder's ``config.json``; return (folder, config)."""
    p = Path(path)
    if p.is_file() and p.name in (WEIGHTS, CONFIG):
        p = p.parent
    if not p.exists():
        raise InputError(f"checkpoint '{p}' does not exist")
    if not p.is_dir():
        raise InputError(
            f"checkpoint '{p}' is a file; a checkpoint is a folder with {WEIGHTS} and {CONFIG} "
            "(convert a .pth with mrisr.checkpoint.convert_legacy)"
        )
    for f in (CONFIG, WEIGHTS):
        if not (p / f).is_file():
            raise InputError(f"checkpoint '{p}' has no {f}")
    try:
        config = json.loads((p / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"'{p / CONFIG}' is not valid JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise InputError(f"'{p / CONFIG}' is not an mrisr checkpoint config (format != {FORMAT})")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise InputError(
            f"'{p / CONFIG}' has format_version {version!r}; this mrisr reads version "
            f"{FORMAT_VERSION} (a newer mrisr may read it)"
        )
    for key, kind in (("model", str), ("init_args", dict), ("sha256", str)):
        if not isinstance(config.get(key), kind):
            raise InputError(f"'{p / CONFIG}' lacks a valid '{key}'")
    scale = config["init_args"].get("scale")
    if not _is_int(scale) or scale < 1:
        raise InputError(
            f"'{p / CONFIG}': init_args.scale must be a positive integer, not {scale!r}"
        )
    if "scale" in config and config["scale"] != scale:
        raise InputError(
            f"'{p / CONFIG}': scale {config['scale']!r} disagrees with init_args.scale {scale}"
        )
    try:
        Normalisation.from_dict(config.get("normalisation", {}))
    except (ConfigError, TypeError) as e:
        raise InputError(f"'{p / CONFIG}' has a bad normalisation: {e}") from None
    try:  # arguments added to a preset after a checkpoint was written: the value it was built with
        legacy = get_spec(config["model"]).legacy
    except ConfigError:
        legacy = {}  # an unknown model is refused with its own message where it is built
    config["init_args"] = {**legacy, **config["init_args"]}
    return p, config


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, Checkpoint]:
    """Rebuild and load a checkpoint folder; return ``(model in eval mode, Checkpoint)``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p, config = read_config(path)
    if file_sha256(p / WEIGHTS) != config["sha256"]:
        raise InputError(
            f"'{p / WEIGHTS}': weights do not match config.json; the checkpoint is corrupt or "
            "was edited"
        )
    source = f"checkpoint '{p}'"
    check_init_args(config["model"], config["init_args"], source, p / WEIGHTS)
    model = _build(config["model"], config["init_args"], source)
    try:
        state = load_file(str(p / WEIGHTS), device="cpu")
    except (SafetensorError, OSError) as e:
        raise InputError(f"cannot read '{p / WEIGHTS}': {e}") from None
    state = {k: v.float() if v.dtype == torch.float16 else v for k, v in state.items()}
    load_state_strict(model, state, source)
    return model.to(map_location).eval(), _checkpoint(config, p)


def _read_legacy(path: Path) -> Any:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # any parse failure means a bad user file
            raise InputError(f"cannot read '{path}' as safetensors: {e}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(
            f"'{path}' holds more than tensors (Python objects); mrisr will not unpickle it, "
            "as that can run arbitrary code. Re-save only the weights: "
            "torch.save(model.state_dict(), 'weights.pth')"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise InputError(f"cannot read '{path}' as a PyTorch file: {e}") from None


def _unwrap(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict inside ``obj`` and where it was found ("" = bare)."""
    found: list[str] = []
    for _ in range(3):
        if (
            isinstance(obj, Mapping)
            and obj
            and all(isinstance(v, torch.Tensor) for v in obj.values())
        ):
            return dict(obj), ".".join(found)
        key = next((k for k in _WRAPPERS if isinstance(obj, Mapping) and k in obj), None)
        if key is None:
            break
        obj, found = obj[key], [*found, key]
    keys = _few([str(k) for k in obj]) if isinstance(obj, Mapping) else type(obj).__name__
    raise InputError(
        f"'{path}' is not a state dict of tensors nor one wrapped in "
        f"{', '.join(_WRAPPERS)} (found {keys})"
    )


def _rename_keys(
    state: dict[str, torch.Tensor],
    strip_prefix: Sequence[str],
    key_map: Mapping[str, str] | Sequence[tuple[str, str]] | None,
) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key
        for prefix in strip_prefix:
            if new.startswith(prefix):
                new = new[len(prefix) :]
        if isinstance(key_map, Mapping):
            new = key_map.get(new, new)
        elif key_map:
            for pattern, repl in key_map:
                new = re.sub(pattern, repl, new)
        if new in out:
            raise InputError(f"two tensors map to the same key '{new}'; check key_map")
        out[new] = value
    return out


def convert_legacy(
    pth_path: str | os.PathLike[str],
    name: str,
    init_args: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    key_map: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    strip_prefix: Sequence[str] = ("module.",),
    normalisation: Normalisation | None = None,
    overwrite: bool = False,
) -> Checkpoint:
    """Turn a PyTorch ``.pth``/``.pt`` (or bare ``.safetensors``) state dict into a checkpoint.

    Reads with ``torch.load(weights_only=True)`` — a pickle holding Python objects is refused,
    never executed. Accepts a bare state dict or one wrapped in ``params_ema``, ``params``,
    ``state_dict`` or ``model`` (recorded in ``training["converted_from"]["wrapper"]``), strips
    ``strip_prefix`` from the keys, then renames them with ``key_map``: a dict of exact
    ``old → new`` names or a sequence of ``(regex, replacement)`` pairs applied in order.
    """
    src = Path(pth_path)
    if not src.is_file():
        raise InputError(f"legacy weights '{src}' do not exist or are not a file")
    if "scale" not in init_args:
        raise ConfigError("init_args must include 'scale'")
    args = complete_init_args(name, **init_args)
    _check_out_dir(Path(out_dir), overwrite)
    state, wrapper = _unwrap(_read_legacy(src), src)
    prefixes = (strip_prefix,) if isinstance(strip_prefix, str) else tuple(strip_prefix)
    state = _rename_keys(state, prefixes, key_map)
    model = _build(name, args, f"model '{name}'")
    load_state_strict(model, state, f"'{src}'")  # load_state_dict casts fp16/fp64 weights
    training = {
        "converted_from": {
            "file": src.name,
            "sha256": file_sha256(src),
            "wrapper": wrapper or "bare state dict",
            "strip_prefix": list(prefixes),
        }
    }
    return save_checkpoint(model, name, args, out_dir, normalisation, training, overwrite=overwrite)


def warm_start(model: nn.Module, name: str, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Initialise ``model`` (zoo name ``name``) from a checkpoint of the same model family.

    Copies every tensor whose name and shape match (a ×2 checkpoint starts a ×4 network:
    head and body match, the ×4 upsampler's second stage keeps its fresh initialisation — the
    EDSR practice of pre-training larger scales from ×2). The weights are read with
    ``safetensors`` after the SHA-256 check. Returns what was copied, for the training card.
    """
    from safetensors.torch import load_file

    p, config = read_config(path)
    if config["model"] != name:
        raise ConfigError(
            f"model.init_from: '{p}' holds a '{config['model']}' model, not '{name}'; "
            "warm-start from a checkpoint of the same model"
        )
    sha = file_sha256(p / WEIGHTS)
    if sha != config["sha256"]:
        raise InputError(f"'{p / WEIGHTS}': weights do not match config.json; corrupt or edited")
    state = load_file(str(p / WEIGHTS), device="cpu")
    own = model.state_dict()
    copied = [k for k, v in own.items() if k in state and tuple(state[k].shape) == tuple(v.shape)]
    if not copied:
        raise ConfigError(f"model.init_from: no tensor of '{p}' fits {name} (names or shapes)")
    with torch.no_grad():
        for k in copied:
            own[k].copy_(state[k].to(own[k].dtype))
    kept = sorted(set(own) - set(copied))
    return {
        "checkpoint": p.name,
        "sha256": sha,
        "scale": config.get("scale"),
        "tensors_copied": len(copied),
        "tensors_new": len(kept),
        "new": kept,
        **_history(config.get("training")),
    }


def _history(tr: Any) -> dict[str, Any]:
    """What the start checkpoint's own card says it was trained on (recipe, data, steps, and
    ``total_steps``: its steps plus those of every warm start before it), so that a card of a
    run continued from it can add the steps up."""
    if not isinstance(tr, dict) or not isinstance(tr.get("steps"), int):
        return {}
    before = tr.get("init_from") if isinstance(tr.get("init_from"), dict) else {}
    data = tr.get("data") if isinstance(tr.get("data"), dict) else {}
    return {
        "start": {
            "recipe": tr.get("recipe"),
            "data": data.get("train"),
            "steps": tr["steps"],
            "scale": tr.get("scale"),
            "wall_time_s": tr.get("wall_time_s"),
            "total_steps": tr["steps"] + int(before.get("start", {}).get("total_steps") or 0),
        }
    }

"""Export a checkpoint to ONNX: input ``lr`` [B, 1, h, w] → output ``sr`` [B, 1, s·h, s·w].

Exporter: the legacy TorchScript-based ``torch.onnx.export(..., dynamo=False)``. With torch 2.13
the default torch.export-based ("dynamo") exporter needs the ``onnxscript`` package, which is
not a dependency of mrisr (``ModuleNotFoundError: onnxscript``); the legacy path needs only
``onnx`` and works for every zoo model (it prints a deprecation warning, silenced here). Torch
versions before 2.5 have no ``dynamo`` argument and use the legacy exporter by default.

Batch, height and width are dynamic axes. Networks that upsample with mrisr's MATLAB bicubic
(SRCNN, VDSR) build their interpolation matrix from the input size in NumPy, which tracing
freezes into a constant: they are detected before export (trace at one size, run at another)
and must be exported with ``fixed_size=(h, w)``.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mrisr.checkpoint import Checkpoint, load_checkpoint
from mrisr.errors import ConfigError, OutputError
from mrisr.io.atomic import atomic_outputs, check_writable
from mrisr.models.registry import get_spec

TOLERANCE = 1e-4  # max |onnxruntime − PyTorch| accepted by the check
MIN_OPSET = 11  # DepthToSpace (PixelShuffle) in CRD mode; the legacy exporter stops at 20
_PROBE_SHAPES = ((1, 1, 24, 20), (2, 1, 17, 31))


def export_onnx(
    checkpoint_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    opset: int = 17,
    overwrite: bool = False,
    check: bool = True,
    fixed_size: tuple[int, int] | None = None,
) -> Path:
    """Export the checkpoint at ``checkpoint_dir`` to the ONNX file ``out_path`` (atomically).

    Args:
        opset: ONNX opset version.
        check: run onnxruntime on a 1×1×24×20 and a 2×1×17×31 input (with ``fixed_size``:
            1×1×h×w and 2×1×h×w) and require max |ORT − PyTorch| ≤ 1e-4; nothing is written
            otherwise. Needs ``onnxruntime`` (``pip install 'mrisr[export]'``).
        fixed_size: LR (h, w) to export for; height and width are then fixed (batch stays
            dynamic). Required for models whose computation depends on the input size.

    The ONNX file carries the checkpoint's model, init_args, scale and normalisation as
    metadata (``mrisr_checkpoint``, JSON), which an ONNX consumer needs to pre/post-process.
    """
    if opset < MIN_OPSET:
        raise ConfigError(
            f"opset {opset} is too old for the zoo's layers; use {MIN_OPSET} or newer"
        )
    out = check_writable(out_path, overwrite)
    ort = _import_onnxruntime() if check else None
    model, ckpt = load_checkpoint(checkpoint_dir)
    if get_spec(ckpt.name).needs_guide:
        raise ConfigError(
            f"model '{ckpt.name}' needs a guide image; ONNX export supports "
            "single-contrast models only"
        )
    if fixed_size is not None:
        h, w = _check_size(fixed_size)
        shapes: Sequence[tuple[int, ...]] = ((1, 1, h, w), (2, 1, h, w))
    else:
        shapes = _PROBE_SHAPES
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.rand(s, generator=gen) for s in shapes]
    if fixed_size is None:
        _require_size_independent(model, inputs, ckpt.name)
    with atomic_outputs([out], overwrite=overwrite) as (tmp,):
        _export(model, inputs[0], tmp, opset, dynamic=fixed_size is None)
        _add_metadata(tmp, ckpt)
        if ort is not None:
            _compare(ort, tmp, model, inputs)
    return out


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "checking the ONNX export needs onnxruntime: pip install 'mrisr[export]' "
            "(or skip the check)"
        ) from None
    return onnxruntime


def _check_size(fixed_size: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in fixed_size)
    except (TypeError, ValueError):
        raise ConfigError(f"fixed_size must be (height, width), got {fixed_size!r}") from None
    if h < 1 or w < 1:
        raise ConfigError(f"fixed_size must be positive, got {fixed_size!r}")
    return h, w


def _require_size_independent(model: nn.Module, inputs: Sequence[torch.Tensor], name: str) -> None:
    """Trace at the first input's size and run the trace at the second; the export is traced
    the same way, so a mismatch means dynamic height/width would give wrong results."""
    with warnings.catch_warnings(), torch.no_grad():
        _ignore_export_warnings()
        try:
            traced = torch.jit.trace(model, (inputs[0],), check_trace=False)
            got, want = traced(inputs[1]), model(inputs[1])
            ok = got.shape == want.shape and bool((got - want).abs().max() <= TOLERANCE)
        except RuntimeError:
            ok = False
    if not ok:
        raise ConfigError(
            f"model '{name}' depends on the input size (e.g. a bicubic upsampling matrix built "
            "for one h×w), so it cannot be exported with dynamic height/width; export it with "
            "fixed_size=(h, w) for the LR size it will run on"
        )


def _ignore_export_warnings() -> None:
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    warnings.filterwarnings("ignore", message=".*opset version.*is not supported.*")


def _export(model: nn.Module, example: torch.Tensor, path: Path, opset: int, dynamic: bool) -> None:
    axes: dict[str, dict[int, str]] = {"lr": {0: "batch"}, "sr": {0: "batch"}}
    if dynamic:
        axes = {
            "lr": {0: "batch", 2: "height", 3: "width"},
            "sr": {0: "batch", 2: "out_height", 3: "out_width"},
        }
    kwargs: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # see the module docstring
    with warnings.catch_warnings(), torch.no_grad():
        _ignore_export_warnings()
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=["lr"],
                output_names=["sr"],
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
                **kwargs,
            )
        except (RuntimeError, ValueError) as e:  # OnnxExporterError is a RuntimeError
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "opset" not in first.lower():
                raise
            raise ConfigError(f"ONNX export at opset {opset} failed: {first}") from None


def _add_metadata(path: Path, ckpt: Checkpoint) -> None:
    try:
        import onnx
    except ImportError:  # the metadata is a convenience; the export itself needs no onnx
        return
    proto = onnx.load(str(path))
    card = {
        "model": ckpt.name,
        "init_args": ckpt.init_args,
        "scale": ckpt.scale,
        "normalisation": ckpt.config.get("normalisation"),
        "checkpoint_sha256": ckpt.sha256,
    }
    entry = proto.metadata_props.add()
    entry.key, entry.value = "mrisr_checkpoint", json.dumps(card)
    proto.doc_string = f"mrisr {ckpt.name} x{ckpt.scale}: lr [B,1,h,w] -> sr [B,1,sh,sw]"
    onnx.save(proto, str(path))


def _compare(ort: Any, path: Path, model: nn.Module, inputs: Sequence[torch.Tensor]) -> None:
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types
        raise OutputError(f"onnxruntime cannot load the export: {str(e)[:300]}") from None
    for x in inputs:
        shape = "x".join(map(str, x.shape))
        with torch.no_grad():
            want = model(x).numpy()
        try:
            got = session.run(["sr"], {"lr": x.numpy()})[0]
        except Exception as e:  # ORT raises its own exception types
            raise OutputError(
                f"onnxruntime cannot run the exported model on a {shape} input: {str(e)[:300]}; "
                "nothing was written"
            ) from None
        diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
        if not diff <= TOLERANCE:
            raise OutputError(
                f"ONNX check failed on a {shape} input: onnxruntime output {got.shape} differs "
                f"from PyTorch {want.shape} by {diff:.3g} (> {TOLERANCE}); nothing was written"
            )

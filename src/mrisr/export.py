"""Export a checkpoint to ONNX, with the checkpoint's intensity normalisation inside the graph.

The default graph takes the raw LR slices and the volume's normalisation statistics::

    lr    [B, 1, h, w]  float32, the scan's own intensities (slices along the slice axis)
    stats [N, 2]        float32, (offset, scale) of the whole volume; N = 1 (one volume) or B
    sr    [B, 1, s·h, s·w] = net((lr − offset) / scale) · scale + offset   (scan intensities)

The statistics are fitted once per volume (:meth:`mrisr.normalisation.Normalisation.fit`:
percentiles of every finite voxel of the whole LR volume for the shipped weights), so they
cannot be constants of the graph; the rule is written into the ONNX metadata
(``mrisr_normalisation``, JSON: mode, percentiles, the fit / apply / invert formulas) and
:func:`normalisation_stats` computes them. With ``bare=True`` the graph is the network alone:
``lr`` (already normalised) → ``sr`` (normalised).

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
from mrisr.normalisation import Normalisation

TOLERANCE = 1e-4  # max |onnxruntime − PyTorch| accepted by the check
MIN_OPSET = 11  # DepthToSpace (PixelShuffle) in CRD mode; the legacy exporter stops at 20
_PROBE_SHAPES = ((1, 1, 24, 20), (2, 1, 17, 31))


def export_onnx(
    checkpoint: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    opset: int = 17,
    overwrite: bool = False,
    check: bool = True,
    fixed_size: tuple[int, int] | None = None,
    bare: bool = False,
) -> Path:
    """Export ``checkpoint`` to the ONNX file ``out_path`` (atomically).

    Args:
        checkpoint: a checkpoint folder, or the name of shipped weights (``edsr-kspace-x2``,
            see :data:`mrisr.weights.SHIPPED`).
        opset: ONNX opset version.
        check: run onnxruntime on a 1×1×24×20 and a 2×1×17×31 input (with ``fixed_size``:
            1×1×h×w and 2×1×h×w) and require max |ORT − PyTorch| ≤ 1e-4 (in normalised units:
            the difference divided by the stats' scale); nothing is written otherwise. Needs
            ``onnxruntime`` (``pip install 'mrisr[export]'``).
        fixed_size: LR (h, w) to export for; height and width are then fixed (batch stays
            dynamic). Required for models whose computation depends on the input size.
        bare: export the network alone (``lr`` normalised → ``sr`` normalised) instead of
            the graph with the normalisation (``lr``, ``stats`` → ``sr``, see the module doc).

    The ONNX file carries the checkpoint's model, init_args, scale and normalisation as
    metadata (``mrisr_checkpoint``, JSON) and the normalisation rule (``mrisr_normalisation``,
    JSON, with ``in_graph`` true unless ``bare``).
    """
    from mrisr.weights import resolve_checkpoint

    if opset < MIN_OPSET:
        raise ConfigError(
            f"opset {opset} is too old for the zoo's layers; use {MIN_OPSET} or newer"
        )
    out = check_writable(out_path, overwrite)
    ort = _import_onnxruntime() if check else None
    model, ckpt = load_checkpoint(resolve_checkpoint(checkpoint))
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
    graph: nn.Module = model if bare else NormalisedSR(model, ckpt.normalisation)
    feeds = [(x,) for x in inputs] if bare else _with_stats(inputs, gen)
    with atomic_outputs([out], overwrite=overwrite) as (tmp,):
        _export(graph, feeds[0], tmp, opset, dynamic=fixed_size is None)
        _add_metadata(tmp, ckpt, bare)
        if ort is not None:
            _compare(ort, tmp, graph, feeds)
    return out


class NormalisedSR(nn.Module):
    """``net`` between a checkpoint's normalisation and its inverse, with the statistics as an
    input: ``(lr [B,1,h,w], stats [N,2]) → net(clip((lr − o) / s)) · s + o``, where
    ``stats[:, 0]`` is the offset o and ``stats[:, 1]`` the scale s (N = 1 or B): the same
    arithmetic, in the same order, as :meth:`Normalisation.apply` / :meth:`~Normalisation.invert`
    in :func:`mrisr.infer.upsample.upscale_volume`."""

    def __init__(self, net: nn.Module, normalisation: Normalisation) -> None:
        super().__init__()
        self.net = net
        self.bounds: tuple[float, float] | None = None
        if normalisation.clip and normalisation.mode in ("percentile", "max"):
            self.bounds = (0.0, 1.0)
        elif normalisation.clip and normalisation.mode == "zscore":
            self.bounds = (-6.0, 6.0)

    def forward(self, lr: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        offset = stats[:, 0].reshape(-1, 1, 1, 1)
        scale = stats[:, 1].reshape(-1, 1, 1, 1)
        x = (lr - offset) / scale
        if self.bounds is not None:
            x = x.clamp(*self.bounds)
        return self.net(x) * scale + offset


def normalisation_stats(volume_data: Any, normalisation: Normalisation) -> np.ndarray:
    """The ``stats`` input of a normalised export for one volume: ``[[offset, scale]]``
    (float32, shape [1, 2]) from :meth:`Normalisation.fit` on the whole volume."""
    st = normalisation.fit(volume_data)
    return np.array([[st["offset"], st["scale"]]], dtype=np.float32)


def fit_rule(normalisation: Normalisation) -> dict[str, Any]:
    """The normalisation as the ``mrisr_normalisation`` metadata states it (JSON-ready)."""
    n = normalisation
    voxels = "v = every finite voxel of the whole LR volume (all slices), in float64"
    fit = {
        "percentile": (
            f"offset = P({n.low}), scale = P({n.high}) - P({n.low}), where P(q) = "
            f"numpy.percentile(v, q) (linear interpolation) and {voxels}"
        ),
        "max": f"offset = 0, scale = max(|v|), {voxels}",
        "zscore": f"offset = mean(v), scale = std(v) (population, ddof = 0), {voxels}",
        "none": "offset = 0, scale = 1",
    }[n.mode]
    if n.mode != "none":
        fit += "; a scale that is not > 0 becomes 1; an empty v gives offset 0, scale 1"
    bounds = NormalisedSR(nn.Identity(), n).bounds
    apply = "x = (lr - offset) / scale"
    if bounds is not None:
        apply += f", then clipped to [{bounds[0]:g}, {bounds[1]:g}]"
    return {
        "mode": n.mode,
        "low": n.low,
        "high": n.high,
        "clip": n.clip,
        "fit": fit,
        "apply": apply,
        "invert": "sr = net(x) * scale + offset",
        "stats_input": "stats [N, 2] float32 = (offset, scale), N = 1 (broadcast) or B",
        "not_in_graph": (
            "mrisr upscale then clips sr to the input's range: >= 0 when the LR volume has no "
            "negative voxel, <= the integer storage maximum (e.g. 255 for uint8) when every "
            "value fits it (--no-clamp skips this)"
        ),
    }


def _with_stats(
    inputs: Sequence[torch.Tensor], gen: torch.Generator
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Probe feeds for the normalised graph: raw intensities of a scan (tens to hundreds)
    with one set of stats per batch (N = 1) and, for batches > 1, one per slice (N = B)."""
    feeds = []
    for x in inputs:
        b = x.shape[0]
        offsets = torch.rand(b, generator=gen) * 20.0
        scales = 300.0 + torch.rand(b, generator=gen) * 600.0
        raw = offsets[0] + x * scales[0]
        feeds.append((raw, torch.stack([offsets[:1], scales[:1]], dim=1)))
        if b > 1:
            raw = offsets.view(-1, 1, 1, 1) + x * scales.view(-1, 1, 1, 1)
            feeds.append((raw, torch.stack([offsets, scales], dim=1)))
    return feeds


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


def _export(
    model: nn.Module, example: tuple[torch.Tensor, ...], path: Path, opset: int, dynamic: bool
) -> None:
    axes: dict[str, dict[int, str]] = {"lr": {0: "batch"}, "sr": {0: "batch"}}
    if dynamic:
        axes = {
            "lr": {0: "batch", 2: "height", 3: "width"},
            "sr": {0: "batch", 2: "out_height", 3: "out_width"},
        }
    names = ["lr", "stats"][: len(example)]
    if len(example) > 1:
        axes["stats"] = {0: "stats_batch"}
    kwargs: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # see the module docstring
    with warnings.catch_warnings(), torch.no_grad():
        _ignore_export_warnings()
        try:
            torch.onnx.export(
                model,
                example,
                str(path),
                input_names=names,
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


def _add_metadata(path: Path, ckpt: Checkpoint, bare: bool) -> None:
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
    from mrisr import __version__

    rule = {"in_graph": not bare, **fit_rule(ckpt.normalisation)}
    for key, value in (
        ("mrisr_checkpoint", card),
        ("mrisr_normalisation", rule),
        ("mrisr_version", __version__),
    ):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    s = ckpt.scale
    proto.doc_string = (
        f"mrisr {ckpt.name} x{s}: lr [B,1,h,w] normalised -> sr [B,1,{s}h,{s}w] normalised"
        if bare
        else f"mrisr {ckpt.name} x{s}: lr [B,1,h,w] raw + stats [N,2] = (offset, scale) of "
        f"the volume -> sr [B,1,{s}h,{s}w] raw = net((lr - offset) / scale) * scale + offset; "
        "the fit rule of the stats: metadata mrisr_normalisation"
    )
    onnx.save(proto, str(path))


def _compare(
    ort: Any, path: Path, model: nn.Module, feeds: Sequence[tuple[torch.Tensor, ...]]
) -> None:
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types
        raise OutputError(f"onnxruntime cannot load the export: {str(e)[:300]}") from None
    for feed in feeds:
        x = feed[0]
        shape = "x".join(map(str, x.shape))
        with torch.no_grad():
            want = model(*feed).numpy()
        # differences in normalised units: divided by the scale the intensities were given
        unit = feed[1][:, 1].reshape(-1, 1, 1, 1).numpy() if len(feed) > 1 else 1.0
        inputs = {name: t.numpy() for name, t in zip(("lr", "stats"), feed, strict=False)}
        try:
            got = session.run(["sr"], inputs)[0]
        except Exception as e:  # ORT raises its own exception types
            raise OutputError(
                f"onnxruntime cannot run the exported model on a {shape} input: {str(e)[:300]}; "
                "nothing was written"
            ) from None
        diff = float((np.abs(got - want) / unit).max()) if got.shape == want.shape else np.inf
        if not diff <= TOLERANCE:
            raise OutputError(
                f"ONNX check failed on a {shape} input: onnxruntime output {got.shape} differs "
                f"from PyTorch {want.shape} by {diff:.3g} (> {TOLERANCE}); nothing was written"
            )

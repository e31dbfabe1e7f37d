"""``mrisr export CHECKPOINT --onnx OUT``: a checkpoint (or shipped weights by name) to ONNX."""

from __future__ import annotations

from pathlib import Path


def run_export(checkpoint: str, onnx: Path, opset: int, bare: bool, overwrite: bool) -> Path:
    from mrisr.export import export_onnx

    path = export_onnx(checkpoint, onnx, opset=opset, overwrite=overwrite, bare=bare)
    print(f"wrote {onnx}")
    return path

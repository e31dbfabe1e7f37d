"""ONNX export of checkpoints, checked against PyTorch with onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mrisr.checkpoint import load_checkpoint, save_checkpoint
from mrisr.errors import ConfigError, OutputError
from mrisr.export import export_onnx
from mrisr.models import build_model

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

TINY = {
    "edsr-baseline": {"n_resblocks": 2, "n_feats": 16},
    "seran": {"n_resblocks": 2, "n_feats": 16, "n_primitives": 8, "embed": 4},
    "srcnn": {"n1": 8, "n2": 4},
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    out = {}
    for name, kwargs in TINY.items():
        torch.manual_seed(0)
        model = build_model(name, scale=2, **kwargs)
        out[name] = save_checkpoint(model, name, {"scale": 2, **kwargs}, root / name).path
    return out


def run_both(ckpt: Path, onnx_path: Path, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    model, _ = load_checkpoint(ckpt)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.no_grad():
        want = model(x).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(["sr"], {"lr": x.numpy()})[0], want


@pytest.mark.parametrize("name", ["edsr-baseline", "seran"])
def test_export_matches_pytorch_on_other_sizes(
    name: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    out = export_onnx(checkpoints[name], tmp_path / f"{name}.onnx", bare=True)
    for shape in ((1, 1, 13, 9), (3, 1, 32, 40)):
        got, want = run_both(checkpoints[name], out, shape)
        assert got.shape == (shape[0], 1, 2 * shape[2], 2 * shape[3])
        assert np.abs(got - want).max() <= 1e-4
    proto = onnx.load(str(out))
    assert [i.name for i in proto.graph.input] == ["lr"]
    assert [o.name for o in proto.graph.output] == ["sr"]
    card = json.loads({p.key: p.value for p in proto.metadata_props}["mrisr_checkpoint"])
    assert card["model"] == name and card["scale"] == 2
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.onnx"]


def test_existing_output_refused(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")
    with pytest.raises(OutputError, match="exists already"):
        export_onnx(checkpoints["edsr-baseline"], out, check=False)
    assert out.read_bytes() == b"old"
    export_onnx(checkpoints["edsr-baseline"], out, overwrite=True, check=False)
    assert out.read_bytes() != b"old"


def test_size_dependent_model_needs_fixed_size(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"fixed_size=\(h, w\)"):
        export_onnx(checkpoints["srcnn"], tmp_path / "srcnn.onnx")
    assert list(tmp_path.iterdir()) == []
    out = export_onnx(checkpoints["srcnn"], tmp_path / "srcnn.onnx", fixed_size=(15, 11), bare=True)
    got, want = run_both(checkpoints["srcnn"], out, (2, 1, 15, 11))
    assert np.abs(got - want).max() <= 1e-4
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [1, 15, 11]

"""Checkpoint folders (safetensors + config.json), legacy conversion and normalisation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mrisr.checkpoint import (
    Normalisation,
    convert_legacy,
    load_checkpoint,
    save_checkpoint,
)
from mrisr.errors import ConfigError, InputError, OutputError
from mrisr.models import build_model, count_parameters
from mrisr.provenance import file_sha256

TINY = {"n_resblocks": 2, "n_feats": 16}
ARGS = {"scale": 2, **TINY}


def tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("edsr-baseline", scale=2, **TINY).eval()


@pytest.fixture
def lr() -> torch.Tensor:
    return torch.rand(2, 1, 12, 10, generator=torch.Generator().manual_seed(1))


def run(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def rewrite_weights(ckpt: Path, state: dict[str, torch.Tensor]) -> None:
    """Replace the weights and re-sign config.json, so only the tensor check can object."""
    save_file(state, str(ckpt / "model.safetensors"))
    config = json.loads((ckpt / "config.json").read_text())
    config["sha256"] = file_sha256(ckpt / "model.safetensors")
    (ckpt / "config.json").write_text(json.dumps(config))


# --- round trip ---------------------------------------------------------------------------------


def test_round_trip_float32_is_bit_exact(tmp_path: Path, lr: torch.Tensor) -> None:
    model = tiny()
    save_checkpoint(model, "edsr-baseline", ARGS, tmp_path / "ck")
    loaded, ckpt = load_checkpoint(tmp_path / "ck")  # no architecture flags
    assert type(loaded) is type(model) and len(loaded.body) == TINY["n_resblocks"] + 1
    assert not loaded.training
    assert torch.equal(run(loaded, lr), run(model, lr))
    assert ckpt.name == "edsr-baseline" and ckpt.scale == 2
    assert ckpt.init_args == {"scale": 2, "n_resblocks": 2, "n_feats": 16, "res_scale": 1.0}


def test_round_trip_float16_storage_is_close(tmp_path: Path, lr: torch.Tensor) -> None:
    model = tiny()
    save_checkpoint(model, "edsr-baseline", ARGS, tmp_path / "ck", dtype="float16")
    assert all(
        t.dtype == torch.float16 for t in load_file(str(tmp_path / "ck/model.safetensors")).values()
    )
    loaded, _ = load_checkpoint(tmp_path / "ck")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    want, got = run(model, lr), run(loaded, lr)
    assert float((got - want).norm() / want.norm()) <= 1e-3


def test_config_json_content(tmp_path: Path) -> None:
    model = tiny()
    norm = Normalisation("zscore")
    training = {"dataset": "ixi-t2", "epochs": 3, "val_psnr_db": 31.2}
    save_checkpoint(model, "edsr-baseline", ARGS, tmp_path / "ck", norm, training)
    config = json.loads((tmp_path / "ck/config.json").read_text())
    assert config["format"] == "mrisr-checkpoint" and config["format_version"] == 1
    assert config["model"] == "edsr-baseline" and config["scale"] == 2
    assert config["init_args"] == {"scale": 2, "n_resblocks": 2, "n_feats": 16, "res_scale": 1.0}
    assert config["normalisation"] == {"mode": "zscore", "low": 0.0, "high": 99.5, "clip": False}
    assert config["training"] == training
    assert config["sha256"] == file_sha256(tmp_path / "ck/model.safetensors")
    assert config["n_params"] == count_parameters(model)
    assert config["mrisr_version"] and config["created"]
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]


# --- refusing bad checkpoints -------------------------------------------------------------------


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    save_checkpoint(tiny(), "edsr-baseline", ARGS, tmp_path / "ck")
    weights = tmp_path / "ck/model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="weights do not match config.json"):
        load_checkpoint(tmp_path / "ck")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("missing", "lacks tensors the model needs: 'head.weight'"),
        ("extra", "does not have: 'sneaky.weight'"),
        ("shape", r"wrong shape: 'head.bias' \(15,\) vs model \(16,\)"),
    ],
)
def test_mismatching_tensors_are_named(tmp_path: Path, edit: str, message: str) -> None:
    save_checkpoint(tiny(), "edsr-baseline", ARGS, tmp_path / "ck")
    state = load_file(str(tmp_path / "ck/model.safetensors"))
    if edit == "missing":
        del state["head.weight"]
    elif edit == "extra":
        state["sneaky.weight"] = torch.zeros(3)
    else:
        state["head.bias"] = torch.zeros(15)
    rewrite_weights(tmp_path / "ck", state)
    with pytest.raises(InputError, match=message):
        load_checkpoint(tmp_path / "ck")


def test_bad_folders_and_configs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    ck = tmp_path / "ck"
    save_checkpoint(tiny(), "edsr-baseline", ARGS, ck)
    config = json.loads((ck / "config.json").read_text())
    for change, message in (
        ({"format_version": 2}, "format_version 2"),
        ({"format": "other"}, "not an mrisr checkpoint"),
        ({"model": "no-such-net"}, "unknown model 'no-such-net'"),
        ({"init_args": {"scale": 2, "n_layers": 3}}, "init_args do not build"),
    ):
        (ck / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(InputError, match=message):
            load_checkpoint(ck)
    (ck / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_checkpoint(ck)
    (ck / "config.json").unlink()
    with pytest.raises(InputError, match="has no config.json"):
        load_checkpoint(ck)


# --- writing ------------------------------------------------------------------------------------


def test_overwrite_refused_then_replaced_atomically(tmp_path: Path, lr: torch.Tensor) -> None:
    ck = tmp_path / "ck"
    save_checkpoint(tiny(0), "edsr-baseline", ARGS, ck)
    other = tiny(1)
    with pytest.raises(OutputError, match="exists already"):
        save_checkpoint(other, "edsr-baseline", ARGS, ck)
    save_checkpoint(other, "edsr-baseline", ARGS, ck, overwrite=True)
    loaded, _ = load_checkpoint(ck)
    assert torch.equal(run(loaded, lr), run(other, lr))
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temp or old folders left

    (tmp_path / "home").mkdir()
    (tmp_path / "home/notes.txt").write_text("precious")
    with pytest.raises(OutputError, match="not a checkpoint"):
        save_checkpoint(other, "edsr-baseline", ARGS, tmp_path / "home", overwrite=True)
    assert (tmp_path / "home/notes.txt").read_text() == "precious"


def test_failed_save_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError):  # not JSON serialisable
        save_checkpoint(tiny(), "edsr-baseline", ARGS, tmp_path / "ck", training={"x": object()})
    assert list(tmp_path.iterdir()) == []


# --- legacy .pth --------------------------------------------------------------------------------


def test_convert_prefixed_bare_state_dict(tmp_path: Path, lr: torch.Tensor) -> None:
    model = tiny()
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "w.pth")
    ckpt = convert_legacy(tmp_path / "w.pth", "edsr-baseline", ARGS, tmp_path / "ck")
    assert ckpt.training["converted_from"]["wrapper"] == "bare state dict"
    loaded, _ = load_checkpoint(tmp_path / "ck")
    assert torch.equal(run(loaded, lr), run(model, lr))
    # A bare safetensors state dict converts the same way.
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    convert_legacy(tmp_path / "w.safetensors", "edsr-baseline", ARGS, tmp_path / "ck2")
    assert torch.equal(run(load_checkpoint(tmp_path / "ck2")[0], lr), run(model, lr))


def test_convert_wrapped_state_dict_with_key_map(tmp_path: Path, lr: torch.Tensor) -> None:
    model = tiny()
    renamed = {re.sub(r"^body\.", "trunk.", k): v for k, v in model.state_dict().items()}
    torch.save({"state_dict": renamed, "epoch": 7, "lr": 1e-4}, tmp_path / "w.pt")
    with pytest.raises(InputError, match="lacks tensors the model needs: 'body.0.body.0.bias'"):
        convert_legacy(tmp_path / "w.pt", "edsr-baseline", ARGS, tmp_path / "ck")
    ckpt = convert_legacy(
        tmp_path / "w.pt", "edsr-baseline", ARGS, tmp_path / "ck", key_map=[(r"^trunk\.", "body.")]
    )
    assert ckpt.training["converted_from"]["wrapper"] == "state_dict"
    loaded, _ = load_checkpoint(tmp_path / "ck")
    assert torch.equal(run(loaded, lr), run(model, lr))


class Payload:
    """Unpickling this object creates ``marker`` — a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def test_pickle_with_objects_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    state = {k: v for k, v in tiny().state_dict().items()}
    torch.save({"state_dict": state, "hook": Payload(marker)}, tmp_path / "evil.pth")
    assert not marker.exists()
    with pytest.raises(InputError, match="holds more than tensors.*will not unpickle"):
        convert_legacy(tmp_path / "evil.pth", "edsr-baseline", ARGS, tmp_path / "ck")
    assert not marker.exists()
    assert not (tmp_path / "ck").exists()
    # Positive control: an unsafe load really would have run the payload.
    torch.load(tmp_path / "evil.pth", weights_only=False)
    assert marker.exists()


# --- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["percentile", "max", "zscore", "none"])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_normalisation_round_trip(mode: str, as_tensor: bool) -> None:
    rng = np.random.default_rng(0)
    vol = rng.gamma(2.0, 150.0, size=(6, 20, 20)).astype(np.float32)
    norm = Normalisation(mode, low=1.0, high=99.0, clip=False)
    stats = norm.fit(vol)
    assert json.loads(json.dumps(stats)) == stats
    x = torch.from_numpy(vol) if as_tensor else vol
    y = norm.apply(x, stats)
    back = np.asarray(norm.invert(y, stats))
    np.testing.assert_allclose(back, vol, rtol=1e-5, atol=1e-3)
    y = np.asarray(y)
    if mode == "percentile":
        assert np.isclose(np.percentile(y, 1.0), 0, atol=1e-5)
        assert np.isclose(np.percentile(y, 99.0), 1, atol=1e-5)
    elif mode == "max":
        assert np.isclose(y.max(), 1.0)
    elif mode == "zscore":
        assert abs(y.mean()) < 1e-4 and abs(y.std() - 1) < 1e-4
    else:
        np.testing.assert_array_equal(y, vol)


def test_normalisation_clip_and_validation() -> None:
    vol = np.linspace(0, 1000, 1001)
    norm = Normalisation("percentile", low=0.0, high=90.0, clip=True)
    stats = norm.fit(vol)
    y = norm.apply(vol, stats)
    assert y.min() == 0.0 and y.max() == 1.0
    np.testing.assert_allclose(norm.invert(y, stats)[:900], vol[:900])
    # The default keeps intensities above the percentile (no flattened bright structures).
    free = Normalisation("percentile", low=0.0, high=90.0)
    y = free.apply(vol, stats)
    assert y.max() > 1.1
    np.testing.assert_allclose(free.invert(y, stats), vol)
    assert Normalisation("max").fit(np.zeros(5)) == {"offset": 0.0, "scale": 1.0}
    with pytest.raises(ConfigError, match="unknown normalisation mode"):
        Normalisation("minmax")
    with pytest.raises(ConfigError, match="low < high"):
        Normalisation(low=99.0, high=1.0)


def test_zscore_clip_is_the_fastmri_clamp() -> None:
    """``zscore`` + ``clip``: (x − mean) / std clamped to ±6 (SANet's fastMRI transform)."""
    x = np.concatenate([np.zeros(999), [1000.0]])
    norm = Normalisation("zscore", clip=True)
    st = norm.fit(x)
    y = norm.apply(x, st)
    assert y.max() == 6.0 and y.min() == pytest.approx(-x.mean() / x.std())
    assert Normalisation("zscore").apply(x, st).max() > 30  # no clip: unchanged

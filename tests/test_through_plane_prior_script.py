"""scripts/train_through_plane_prior.py: a run exports a checkpoint with its card, and
``--init`` continues an exported prior (its architecture, its weights, the steps added up)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location(
        "train_tp_prior", ROOT / "scripts" / "train_through_plane_prior.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:40, :40, :40]
    data = 100.0 * (((zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2) < 15**2)
    data += rng.normal(0, 3, data.shape)
    p = tmp_path_factory.mktemp("scan") / "ball.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), p)
    return p


def test_export_then_warm_start_continues_the_same_network(tmp_path, scan) -> None:
    from mrisr.checkpoint import load_checkpoint

    mod = _script()
    torch.set_num_threads(1)
    common = ["--scans", str(scan), "--batch", "2", "--patch", "24", "--planes", "square"]
    first = tmp_path / "first"
    mod.main([*common, "--run-dir", str(tmp_path / "r1"), "--out", str(first), "--steps", "3",
              "--blocks", "1", "--feats", "8", "--unshuffle", "2"])  # fmt: skip
    net1, ck1 = load_checkpoint(first)
    assert ck1.training["steps"] == 3 and ck1.init_args["n_feats"] == 8

    # zero further steps: the export is the init's network, weights and all
    same = tmp_path / "same"
    mod.main([*common, "--run-dir", str(tmp_path / "r2"), "--out", str(same), "--steps", "0",
              "--init", str(first)])  # fmt: skip
    net2, ck2 = load_checkpoint(same)
    assert ck2.init_args == ck1.init_args
    for a, b in zip(net1.state_dict().values(), net2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert ck2.training["steps"] == 3
    assert ck2.training["warm_start"]["steps"] == 3
    sha = json.loads((first / "config.json").read_text())["sha256"]
    assert ck2.training["warm_start"]["sha256"] == sha

    # two more steps (bfloat16 autocast): the weights move and the card adds the steps up
    more = tmp_path / "more"
    mod.main([*common, "--run-dir", str(tmp_path / "r3"), "--out", str(more), "--steps", "2",
              "--init", str(first), "--bf16"])  # fmt: skip
    net3, ck3 = load_checkpoint(more)
    assert ck3.training["steps"] == 5 and ck3.training["warm_start"]["then_steps"] == 2
    assert ck3.training["precision"] == "bf16-mixed" and ck1.training["precision"] == "32"
    # the same run resumed with a longer budget: its schedule stretches to the new end
    mod.main([*common, "--run-dir", str(tmp_path / "r3"), "--out", str(more), "--steps", "4",
              "--init", str(first), "--bf16"])  # fmt: skip
    st = torch.load(tmp_path / "r3" / "state.pt", weights_only=True)
    assert st["step"] == 4 and st["sched"]["T_max"] == 4
    assert load_checkpoint(more)[1].training["warm_start"]["then_steps"] == 4
    pairs = zip(net1.state_dict().values(), net3.state_dict().values(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)

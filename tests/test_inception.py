"""The FID InceptionV3 written in the project: its size, its features against pytorch-fid, and
loading the published weight file safely; FID of slices through ``mrisr eval --fid`` and
``mrisr fid``.

Reference numbers: the features of a network with seeded weights (:func:`seeded_state`) on a
seeded input, computed once with pytorch-fid 0.3.0's FID InceptionV3 (built on torchvision
0.29.1's modules, its input resize and scaling) — the weights go into both networks by name.
Our network gives the same features to float precision (max |diff| 0.0 on that machine).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mrisr.errors import InputError
from mrisr.models.inception import TRUNK_PARAMETERS, FIDInceptionV3, load_fid_inception
from mrisr.models.registry import count_parameters

#: features [0, 1, 500, 1000, 1500, 2047] of the two seeded images, from pytorch-fid
REFERENCE = [
    [0.721047, 6.851534, 1.567527, 0.0, 20.10503, 13.639761],
    [0.628916, 6.878894, 1.515647, 0.003799, 19.462328, 13.113552],
]


def seeded_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Deterministic weights for every tensor (BN statistics kept well-conditioned)."""
    g = torch.Generator().manual_seed(2015)
    out = {}
    for k, v in net.state_dict().items():
        if k.endswith("num_batches_tracked"):
            out[k] = v.clone()
        elif k.endswith(("running_var", "bn.weight")):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith(("running_mean", "bn.bias")):
            out[k] = torch.randn(v.shape, generator=g) * 0.1
        else:
            out[k] = torch.randn(v.shape, generator=g) * (2.0 / v[0].numel()) ** 0.5
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory):
    """A weight file laid out like pt_inception-2015-12-05-6726825d.pth (with its fc, and
    without the num_batches_tracked counters, as in the published file)."""
    state = {k: v for k, v in seeded_state(FIDInceptionV3()).items() if "num_batches" not in k}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    path = tmp_path_factory.mktemp("fid") / "pt_inception-test.pth"
    torch.save(state, path)
    return path


def test_trunk_has_torchvisions_size_without_classifiers() -> None:
    net = FIDInceptionV3()
    # torchvision's InceptionV3: 27,161,264 with AuxLogits (3,326,696) and fc (2,049,000)
    assert count_parameters(net) == TRUNK_PARAMETERS == 27_161_264 - 3_326_696 - 2_049_000
    names = net.state_dict()
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in names
    assert names["Mixed_6e.branch7x7dbl_5.conv.weight"].shape == (192, 192, 1, 7)
    assert not any(k.startswith(("fc.", "AuxLogits")) for k in names)


def test_features_match_pytorch_fid(weights) -> None:
    net = load_fid_inception(weights)
    x = torch.rand(2, 1, 64, 72, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        f = net(x)
        f_rgb = net(x.expand(-1, 3, -1, -1).contiguous())
    assert f.shape == (2, 2048)
    got = f[:, [0, 1, 500, 1000, 1500, 2047]].numpy()
    np.testing.assert_allclose(got, REFERENCE, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(f, f_rgb)  # grey is the same image repeated to RGB
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_safetensors_and_bad_files(tmp_path, weights) -> None:
    from safetensors.torch import save_file

    state = torch.load(weights, weights_only=True)
    st = tmp_path / "w.safetensors"
    save_file(state, str(st))
    x = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(load_fid_inception(st)(x), load_fid_inception(weights)(x))
    with pytest.raises(InputError, match="not found; get the FID Inception weights"):
        load_fid_inception(tmp_path / "none.pth")
    short = tmp_path / "short.pth"
    torch.save({k: v for k, v in state.items() if not k.startswith("Mixed_7c")}, short)
    with pytest.raises(InputError, match="lacks Mixed_7c"):
        load_fid_inception(short)
    wrong = tmp_path / "wrong.pth"
    torch.save({**state, "Conv2d_1a_3x3.conv.weight": torch.zeros(32, 1, 3, 3)}, wrong)
    with pytest.raises(InputError, match="Conv2d_1a_3x3.conv.weight' has shape"):
        load_fid_inception(wrong)

    class Payload:
        def __reduce__(self):
            return (print, ("unpickled!",))

    code = tmp_path / "code.pth"
    torch.save({"x": Payload()}, code)
    with pytest.raises(InputError, match="will not unpickle"):
        load_fid_inception(code)


def test_fid_against_reference_orders_degradations(weights) -> None:
    from mrisr.metrics.fid import fid_against_reference

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    ref = np.stack([np.sin(xx / (3 + k)) * np.cos(yy / (4 + k)) + 2 for k in range(6)], -1)
    ref[..., 0] = 0  # a blank slice: left out of both sets
    mild = ref + rng.normal(0, 0.02, ref.shape)
    strong = ref + rng.normal(0, 0.3, ref.shape)
    out = fid_against_reference(ref, {"same": ref, "mild": mild, "strong": strong}, weights, 2)
    assert out["same"]["n"] == 5
    # identical sets: 0 up to round-off of the rank-5 covariances in 2048 dimensions
    assert abs(out["same"]["fid"]) < 1e-2
    assert 100 * abs(out["same"]["fid"]) < out["mild"]["fid"] < out["strong"]["fid"]


def test_eval_fid_and_fid_command(tmp_path, weights) -> None:
    import nibabel as nib
    from typer.testing import CliRunner

    from mrisr.cli import app

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:40, :44]
    ref = np.stack([np.sin(xx / (3 + k)) * np.cos(yy / 5) * 100 + 200 for k in range(5)], -1)
    paths = {}
    for name, vol in (("ref", ref), ("sr", ref + rng.normal(0, 5, ref.shape))):
        paths[name] = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(vol.astype(np.float32), np.eye(4)), paths[name])
    run = CliRunner().invoke
    res = run(
        app,
        [
            "eval",
            "--ref",
            str(paths["ref"]),
            "--pred",
            str(paths["sr"]),
            "--baseline",
            "bicubic",
            "--fid",
            str(weights),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    vols = [r["volume"] for r in rep["results"].values()]
    assert all(v["fid"] > 0 and v["fid_slices"] == 5 for v in vols)
    md = run(
        app, ["eval", "--ref", str(paths["ref"]), "--pred", str(paths["sr"]), "--fid", str(weights)]
    )
    assert "FID (slices)" in md.output and "(5) |" in md.output
    out = tmp_path / "fid.json"
    res = run(
        app,
        [
            "fid",
            "--a",
            str(paths["ref"]),
            "--b",
            str(paths["sr"]),
            "--weights",
            str(weights),
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    fid = json.loads(out.read_text())
    assert fid["slices"] == {"a": 5, "b": 5} and fid["fid"] > 0
    bad = run(
        app,
        [
            "eval",
            "--ref",
            str(paths["ref"]),
            "--pred",
            str(paths["sr"]),
            "--fid",
            str(tmp_path / "missing.pth"),
            "-o",
            str(tmp_path / "r.md"),
        ],
    )
    assert bad.exit_code != 0 and "pt_inception-2015-12-05" in str(bad.exception)
    assert not (tmp_path / "r.md").exists()

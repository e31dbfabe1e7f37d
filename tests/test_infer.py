"""Volume inference: tiling, self-ensemble, output geometry, the upscale command, rank split."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from mrisr.errors import ConfigError
from mrisr.infer import SelfEnsemble, tiled_forward
from mrisr.infer.upsample import UpscaleOptions, upscale_affine, upscale_volume
from mrisr.io import Volume


class LocalSR(nn.Module):
    """A small convolutional SR net with a known receptive field (radius 3 LR pixels)."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, scale * scale, 3, padding=1),
        )
        self.shuffle = nn.PixelShuffle(scale)
        self.scale = scale

    def forward(self, x, guide=None):
        up = torch.repeat_interleave(torch.repeat_interleave(x, self.scale, -2), self.scale, -1)
        return up + self.shuffle(self.body(x))


def test_tiled_equals_untiled_when_the_margin_covers_the_receptive_field() -> None:
    net = LocalSR(2).eval()
    x = torch.rand(2, 1, 70, 53)
    with torch.no_grad():
        full = net(x)
        for tile, blend in [(16, 4), (24, 8), (31, 0)]:
            tiled = tiled_forward(net, x, 2, tile=tile, margin=4, blend=blend)
            assert tiled.shape == full.shape
            assert float((tiled - full).abs().max()) < 1e-5
        # Without a margin the seams show: the tiled result is measurably different.
        seams = tiled_forward(net, x, 2, tile=16, margin=0, blend=0)
        assert float((seams - full).abs().max()) > 1e-3


def test_self_ensemble_of_an_equivariant_model_is_the_model() -> None:
    """Nearest-neighbour upsampling commutes with rotations and flips: the ×8 ensemble equals
    one pass; for a generic net it is the mean of the 8 transformed passes."""

    class Nearest(nn.Module):
        def forward(self, x, guide=None):
            return torch.repeat_interleave(torch.repeat_interleave(x, 2, -2), 2, -1)

    x = torch.rand(1, 1, 9, 12)
    torch.testing.assert_close(SelfEnsemble(Nearest())(x), Nearest()(x))
    net = LocalSR(2).eval()
    with torch.no_grad():
        ens = SelfEnsemble(net)(x)
        manual = torch.stack(
            [
                torch.rot90(
                    net(torch.rot90(x.flip(-1) if f else x, k, (-2, -1))), -k, (-2, -1)
                ).flip(-1)
                if f
                else torch.rot90(net(torch.rot90(x, k, (-2, -1))), -k, (-2, -1))
                for f in (False, True)
                for k in range(4)
            ]
        ).mean(0)
    torch.testing.assert_close(ens, manual)
    assert not torch.allclose(ens, net(x))


def oblique_lr(shape=(20, 16, 5), zooms=(1.6, 1.8, 3.0)) -> Volume:
    rot = np.linalg.qr(np.random.default_rng(7).normal(size=(3, 3)))[0]
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(zooms)
    aff[:3, 3] = [10.0, -20.0, 33.0]
    data = np.random.default_rng(1).random(shape).astype(np.float32) + 1
    return Volume(data, aff, {"format": "test"})


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_affine_keeps_the_field_of_view_on_an_oblique_grid(scale) -> None:
    lr = oblique_lr()
    hr, rec = upscale_volume(lr, LocalSR(scale), scale, options=UpscaleOptions(progress=False))
    assert hr.shape == (20 * scale, 16 * scale, 5) and rec["slice_axis"] == 2
    np.testing.assert_allclose(hr.zooms, (1.6 / scale, 1.8 / scale, 3.0), rtol=1e-9)
    # Same direction cosines.
    unit = lambda a: a[:3, :3] / np.linalg.norm(a[:3, :3], axis=0)  # noqa: E731
    np.testing.assert_allclose(unit(hr.affine), unit(lr.affine), atol=1e-12)
    # The outer corners of the first and last voxels coincide: the FOV is unchanged.
    for lo_hi in ((-0.5, -0.5), (19.5, 15.5)):
        lr_corner = lr.affine @ [*lo_hi, 0, 1]
        hr_corner = hr.affine @ [
            (lo_hi[0] + 0.5) * scale - 0.5,
            (lo_hi[1] + 0.5) * scale - 0.5,
            0,
            1,
        ]
        np.testing.assert_allclose(hr_corner, lr_corner, atol=1e-9)
    # The block of s×s HR voxels around LR voxel j is centred on it.
    centre = hr.affine @ [3 * scale + (scale - 1) / 2, 2 * scale + (scale - 1) / 2, 4, 1]
    np.testing.assert_allclose(centre, lr.affine @ [3, 2, 4, 1], atol=1e-9)


def test_kspace_grid_convention_from_the_training_card() -> None:
    lr = oblique_lr()
    aff = upscale_affine(lr.affine, [0, 1], 2, offset=0.0)
    # HR index 2j sits exactly on LR sample j (the centred-FFT grid of k-space truncation).
    np.testing.assert_allclose(aff @ [6, 4, 1, 1], lr.affine @ [3, 2, 1, 1], atol=1e-12)


def test_upscale_volume_axis_batch_and_tiles_agree() -> None:
    lr = oblique_lr(shape=(12, 18, 20), zooms=(2.0, 1.0, 1.0))  # slice axis 0 (coarsest)
    net = LocalSR(2)
    a, rec = upscale_volume(lr, net, 2, options=UpscaleOptions(progress=False, batch=3))
    assert rec["slice_axis"] == 0 and a.shape == (12, 36, 40)
    b, _ = upscale_volume(
        lr, net, 2, options=UpscaleOptions(progress=False, batch=7, tile=8, margin=4, blend=2)
    )
    np.testing.assert_allclose(a.data, b.data, atol=1e-5)
    # axis 2 makes a 2 mm x 1 mm plane: refused unless forced (issue 13)
    with pytest.raises(ConfigError, match="ratio 2.00"):
        upscale_volume(lr, net, 2, options=UpscaleOptions(progress=False, axis=2))
    opts = UpscaleOptions(progress=False, axis=2, force_plane=True)
    c, _ = upscale_volume(lr, net, 2, options=opts)
    assert c.shape == (24, 36, 20)


@pytest.fixture()
def tiny_checkpoint(tmp_path):
    """A real (untrained, tiny) EDSR checkpoint written by the checkpoint module."""
    from mrisr.checkpoint import Normalisation, save_checkpoint
    from mrisr.models import build_model
    from mrisr.models.registry import init_args

    args = init_args("edsr-baseline", 2, n_resblocks=1, n_feats=8)
    model = build_model("edsr-baseline", **args)
    path = tmp_path / "ckpt"
    save_checkpoint(
        model,
        "edsr-baseline",
        args,
        path,
        normalisation=Normalisation("percentile"),
        training={"note": "untrained, for tests"},
    )
    return path


def test_upscale_command_on_the_real_t2(shared_data, tmp_path, tiny_checkpoint) -> None:
    """The issue's acceptance check on the full IXI002 T2: in-plane shape × 2, orientation codes
    kept, field of view within half an input voxel, sidecar with model and checkpoint hash."""
    from tests.test_bad_input import run_cli

    src = shared_data / "ixi002" / "IXI002-Guys-0828-T2.nii.gz"
    out = tmp_path / "sr.nii.gz"
    res = run_cli(
        "upscale", src, out, "--checkpoint", tiny_checkpoint, "--batch", "16", "--no-progress"
    )
    assert res.returncode == 0, res.stderr
    lr, hr = nib.load(src), nib.load(out)
    assert hr.shape == (512, 512, 130)
    assert int(hr.header["qform_code"]) == int(lr.header["qform_code"])
    assert int(hr.header["sform_code"]) == int(lr.header["sform_code"])
    assert nib.aff2axcodes(hr.affine) == nib.aff2axcodes(lr.affine)
    # Field of view: the world positions of the outer voxel corners agree within half a voxel.
    for corner in ((-0.5, -0.5, 0), (255.5, 255.5, 129)):
        lr_c = lr.affine @ [*corner, 1]
        hr_c = hr.affine @ [(corner[0] + 0.5) * 2 - 0.5, (corner[1] + 0.5) * 2 - 0.5, corner[2], 1]
        assert np.linalg.norm(lr_c[:3] - hr_c[:3]) < 0.5 * min(lr.header.get_zooms())
    side = json.loads((tmp_path / "sr.nii.gz.json").read_text())
    assert side["model"] == "edsr-baseline" and len(side["checkpoint_sha256"]) == 64
    assert side["scale"] == 2 and side["slice_axis"] == 2
    # The normalisation fitted on the scan is recorded (the model is untrained: values are not
    # meaningful here; de-normalisation is pinned in test_checkpoint).
    assert side["normalisation_stats"]["scale"] > 0
    assert np.isfinite(np.asarray(hr.dataobj)).all()


def test_upscale_folder_split_across_ranks(tmp_path, test_data, tiny_checkpoint, monkeypatch):
    """Under torchrun each rank takes every WORLD_SIZE-th scan and writes only its own files."""
    from mrisr.infer.run import upscale

    scans = tmp_path / "scans"
    scans.mkdir()
    src = nib.load(test_data / "ixi002_t2_crop.nii.gz")
    for i in range(3):
        nib.save(src, scans / f"s{i}.nii.gz")
    out = tmp_path / "out"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    written = upscale(scans, out, checkpoint=tiny_checkpoint, progress=False)
    assert [p.name for p in written] == ["s1_sr_x2.nii.gz"]
    monkeypatch.setenv("RANK", "0")
    written = upscale(scans, out, checkpoint=tiny_checkpoint, progress=False)
    assert [p.name for p in written] == ["s0_sr_x2.nii.gz", "s2_sr_x2.nii.gz"]
    assert len(list(out.glob("*.nii.gz"))) == 3 and len(list(out.glob("*.json"))) == 3


def test_upscale_errors(tmp_path, test_data, tiny_checkpoint) -> None:
    from tests.test_bad_input import run_cli

    t2 = test_data / "ixi002_t2_crop.nii.gz"
    res = run_cli("upscale", t2, tmp_path / "a.nii.gz", "--scale", "3")
    assert res.returncode == 2 and "no default weights ship for x3" in res.stderr
    res = run_cli("upscale", t2, tmp_path / "a.nii.gz", "--weights", "nope")
    assert res.returncode == 2 and "edsr-kspace-x2" in res.stderr  # lists the shipped ones
    res = run_cli(
        "upscale", t2, tmp_path / "a.nii.gz", "--checkpoint", tiny_checkpoint, "--weights",
        "edsr-kspace-x2",
    )  # fmt: skip
    assert res.returncode == 2 and "not both" in res.stderr
    res = run_cli("upscale", t2, tmp_path / "a.nii.gz", "--model", "w2amsn")
    assert res.returncode == 2 and "no weights ship for model 'w2amsn'" in res.stderr
    assert not (tmp_path / "a.nii.gz").exists()
    res = run_cli(
        "upscale", t2, tmp_path / "a.nii.gz", "--checkpoint", tiny_checkpoint, "--scale", "4"
    )
    assert res.returncode == 2 and "x2" in res.stderr
    res = run_cli("upscale", t2, tmp_path / "a.nii.gz", "--model", "nope")
    assert res.returncode == 2 and "unknown model" in res.stderr
    (tmp_path / "a.nii.gz").write_bytes(b"keep")
    res = run_cli("upscale", t2, tmp_path / "a.nii.gz", "--checkpoint", tiny_checkpoint)
    assert res.returncode == 2 and (tmp_path / "a.nii.gz").read_bytes() == b"keep"


def test_upscale_takes_the_slice_axis_from_a_degrade_sidecar(tmp_path, test_data, tiny_checkpoint):
    """k-space ×2 of the T2 crop makes the in-plane spacing (1.875 mm) coarser than the slices
    (1.25 mm): the sidecar of `mrisr degrade` keeps upscale on the degraded axes; without it
    the shared-spacing rule finds them too, and an --axis across spacings is refused."""
    from tests.test_bad_input import run_cli

    hr = test_data / "ixi002_t2_crop.nii.gz"
    lr = tmp_path / "lr.nii.gz"
    assert run_cli("degrade", hr, lr, "--method", "kspace-truncate", "--scale", 2).returncode == 0
    res = run_cli("upscale", lr, tmp_path / "a.nii.gz", "--checkpoint", tiny_checkpoint)
    assert res.returncode == 0, res.stderr
    assert "slice axis 2 from its mrisr degrade sidecar" in res.stdout
    out, ref = nib.load(tmp_path / "a.nii.gz"), nib.load(hr)
    assert out.shape == ref.shape
    # The tiny checkpoint's card has no lr_grid_offset, so the model is taken to follow the
    # block-centred convention: its output voxel i lies at original index i − ½ in-plane
    # (a k-space-trained checkpoint, offset 0, lands on the original grid: test_weights).
    shift = np.eye(4)
    shift[:2, 3] = -0.5
    np.testing.assert_allclose(out.affine, ref.affine @ shift, atol=1e-4)
    (tmp_path / "lr.nii.gz.json").unlink()
    # Without the sidecar the two axes that share a spacing (1.875 mm) are the plane, not the
    # coarsest pair (which made 0.94 x 1.875 x 0.625 mm before issue 13) ...
    res = run_cli("upscale", lr, tmp_path / "b.nii.gz", "--checkpoint", tiny_checkpoint)
    assert res.returncode == 0 and nib.load(tmp_path / "b.nii.gz").shape == out.shape
    assert "plane of axes 0,1 (shared spacing)" in res.stdout
    # ... and a plane across 1.875 and 1.25 mm is refused unless forced.
    res = run_cli(
        "upscale", lr, tmp_path / "c.nii.gz", "--checkpoint", tiny_checkpoint, "--axis", 0
    )
    assert res.returncode == 2 and "--force-plane" in res.stderr
    assert not (tmp_path / "c.nii.gz").exists()


def test_memory_bound_picks_tiles_and_keeps_the_result() -> None:
    lr = oblique_lr(shape=(160, 150, 2), zooms=(1.0, 1.0, 3.0))
    net = LocalSR(2)
    full, rec_full = upscale_volume(lr, net, 2, options=UpscaleOptions(progress=False, batch=1))
    tiled, rec = upscale_volume(
        lr, net, 2, options=UpscaleOptions(progress=False, batch=1, max_memory_mb=2.0)
    )
    assert rec_full["tile"] == 0 and 0 < rec["tile"] < 150
    np.testing.assert_allclose(tiled.data, full.data, atol=1e-5)


def test_tiled_zoo_model_matches_untiled() -> None:
    """A real zoo network (tiny EDSR, receptive field < the 16-pixel margin)."""
    from mrisr.models import build_model

    torch.manual_seed(3)
    net = build_model("edsr-baseline", 2, n_resblocks=1, n_feats=8).eval()
    x = torch.rand(1, 1, 90, 77)
    with torch.no_grad():
        full = net(x)
        tiled = tiled_forward(net, x, 2, tile=32, margin=16, blend=8)
    assert float((tiled - full).abs().max()) < 1e-5


@pytest.mark.slow
def test_torchrun_two_ranks_split_a_folder(tmp_path, test_data, tiny_checkpoint) -> None:
    """A real ``torchrun --nproc_per_node 2``: each rank writes its own share of the scans."""
    import subprocess
    import sys

    scans = tmp_path / "scans"
    scans.mkdir()
    src = nib.load(test_data / "ixi002_t2_crop.nii.gz")
    for i in range(4):
        nib.save(src, scans / f"s{i}.nii.gz")
    out = tmp_path / "out"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "-m",
            "mrisr",
            "upscale",
            str(scans),
            str(out),
            "--checkpoint",
            str(tiny_checkpoint),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    ranks = {json.loads(p.read_text())["rank"] for p in out.glob("*.json")}
    assert len(list(out.glob("*.nii.gz"))) == 4 and ranks == {0, 1}


def test_python_api_is_lazy_and_complete() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mrisr; assert 'torch' not in sys.modules, 'import mrisr loaded torch'; "
        "assert callable(mrisr.upscale) and callable(mrisr.load_volume); print('ok')"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "ok", res.stderr

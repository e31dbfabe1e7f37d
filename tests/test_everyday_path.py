"""The everyday upscale path on real scans (issue 13): the ×8 ensemble on the model's own grid,
the choice of the image plane without a sidecar, clamping of magnitude outputs, and output
names checked before any work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from mrisr.checkpoint import load_checkpoint
from mrisr.degrade import degrade_volume, make_degradation
from mrisr.degrade.kspace import zerofill_upsample
from mrisr.errors import ConfigError
from mrisr.infer import SelfEnsemble
from mrisr.infer.ensemble import grid_shift
from mrisr.infer.upsample import UpscaleOptions, upscale_volume
from mrisr.io import Volume, load_volume
from mrisr.io.geometry import check_plane, choose_plane, slice_axis_for
from mrisr.metrics import psnr
from mrisr.weights import SHIPPED, shipped_path

SLICES = Path(__file__).parent / "data" / "ixi002_t2_slices.npy"


class ZerofillSR(nn.Module):
    """Sinc (zero-filled k-space) interpolation as an "SR model": exactly equivariant on the
    k-space grid, so a correct ensemble must return the single pass."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x, guide=None):
        return zerofill_upsample(x, self.scale)


@pytest.mark.parametrize(("scale", "m"), [(2, 24), (2, 23), (4, 12), (4, 11)])
def test_ensemble_of_a_grid_exact_model_is_the_single_pass(scale: int, m: int) -> None:
    """Zero-filled interpolation puts LR sample j at HR index N//2 + s(j − M//2), i.e. grid
    offset o = N//2 − s(M//2): 0 for even M, 1 (×2) or 2 (×4) for odd M. Its ×8 ensemble,
    told that offset, equals one pass (to float rounding); the plain flip-back of the old
    ensemble was |2o − (s − 1)| HR pixels off and far from it."""
    torch.manual_seed(0)
    x = torch.from_numpy(np.load(SLICES)[:1, None, 40 : 40 + m, 60 : 60 + m].astype(np.float32))
    net = ZerofillSR(scale)
    n = scale * m
    offset = n // 2 - scale * (m // 2)
    single = net(x)
    ens = SelfEnsemble(net, scale, offset)(x)
    assert ens.shape == single.shape
    rel = float((ens - single).abs().max() / single.abs().max())
    # odd M: exact; even M: the unpaired Nyquist coefficient (−M/2 has no +M/2 twin) makes
    # zero-filling itself not quite flip-symmetric, by < 0.1 % of the peak
    assert rel < (1e-6 if m % 2 else 1e-3)
    assert grid_shift(scale, offset) != 0
    # what the pre-fix ensemble did (plain flips back, no shift) is off by 5-22 % of the peak
    plain = SelfEnsemble(net, scale, (scale - 1) / 2)(x)
    assert float((plain - single).abs().max() / single.abs().max()) > 0.04


def _real_volume(hr_size: int) -> Volume:
    """Three real IXI002 T2 axial slices (192×192 centre), cropped to ``hr_size``."""
    s = np.load(SLICES).astype(np.float32).transpose(1, 2, 0)
    c = (192 - hr_size) // 2
    data = np.ascontiguousarray(s[c : c + hr_size, c : c + hr_size, :2])
    return Volume(data, np.diag([0.9375, 0.9375, 1.25, 1.0]), orig_dtype=np.int16)


def _aligned_psnr(sr: np.ndarray, ref: np.ndarray, d: int) -> float:
    """PSNR of SR output pixel i against reference pixel i + d (the grids differ by d HR
    pixels when a k-space LR has an odd matrix), over the common region, borders shaved."""
    n = ref.shape[0]
    a = sr[: n - d, : n - d][8:-8, 8:-8]
    b = ref[d:, d:][8:-8, 8:-8]
    return float(psnr(np.moveaxis(a, -1, 0), np.moveaxis(b, -1, 0), data_range=ref.max()).mean())


CASES = [
    (name, size)
    for name, w in SHIPPED.items()
    if w.model != "sanet"  # multi-contrast: --guide refuses --ensemble (tests/test_infer.py)
    for size in ((128, 126) if w.scale == 2 else (128, 124))  # LR even and odd
]


@pytest.mark.parametrize(("name", "hr_size"), CASES)
def test_ensemble_is_at_least_as_good_as_the_single_pass_on_a_real_scan(
    name: str, hr_size: int
) -> None:
    """Every shipped model, LR matrix even and odd: the ensemble scores at least the single
    pass against the real reference (before the fix: 4-5 dB below it on k-space models)."""
    w = SHIPPED[name]
    net, ckpt = load_checkpoint(shipped_path(name))
    hr = _real_volume(hr_size)
    lr, side = degrade_volume(hr, make_degradation(w.degradation, scale=w.scale), axis=2)
    o_ref = side["degradation"][0]["grid"]["axis0"]["offset_voxels"]
    o_model = ckpt.training["lr_grid_offset"]
    d = int(round(o_ref - o_model))
    assert d >= 0
    scores = {}
    for ens in (False, True):
        opts = UpscaleOptions(ensemble=ens, progress=False, device="cpu")
        sr, rec = upscale_volume(lr, net, ckpt.scale, ckpt.normalisation, ckpt.training, opts)
        scores[ens] = _aligned_psnr(sr.data, hr.data, d)
    assert scores[True] >= scores[False] - 0.01, scores
    if w.degradation == "kspace-truncate":
        assert rec["ensemble_grid_shift_px"] == -(w.scale - 1)


# ----------------------------------------------------------------------- the image plane


def test_plane_is_the_pair_of_axes_that_share_a_spacing() -> None:
    # an in-plane x2 LR of a 0.94 x 0.94 x 1.25 mm scan: the old "coarsest" rule took axis 1
    assert slice_axis_for((1.875, 1.875, 1.25)) == 2
    assert choose_plane((1.875, 1.875, 1.25)).rule == "shared spacing"
    assert slice_axis_for((1.2, 0.9375, 0.9375)) == 0  # sagittal T1
    assert slice_axis_for((0.88, 0.88, 5.0)) == 2
    iso = choose_plane((1.0, 1.0, 1.0))
    assert iso.slice_axis == 2 and iso.ambiguous and "isotropic" in iso.ambiguous
    assert choose_plane((0.9, 1.0, 3.0)).ambiguous is None  # clearly the 0.9 x 1.0 plane
    assert choose_plane((1.0, 1.5, 2.25)).ambiguous  # no clear plane: warned
    with pytest.raises(ConfigError, match="--axis 2"):
        check_plane(choose_plane((0.88, 0.88, 5.0), axis=0))
    check_plane(choose_plane((0.88, 0.88, 5.0), axis=0), force=True)


@pytest.fixture(scope="module")
def demo_lr(tmp_path_factory) -> tuple[Path, Path]:
    """The demo scan degraded by k-space x2 (1.875 x 1.875 x 1.25 mm) with no sidecar, as
    `mrisr.save_volume` or a copy leaves it, and the reference."""
    from mrisr.data import demo_scan_path
    from mrisr.io import save_volume

    ref = demo_scan_path()
    hr = load_volume(ref)
    c = hr.data[0:96, 48:144, 8:12]  # 96 x 96 x 4 crop with background keeps the test fast
    hr = hr.replace(
        c, hr.affine @ np.array([[1, 0, 0, 0], [0, 1, 0, 48], [0, 0, 1, 8], [0, 0, 0, 1.0]])
    )
    d = tmp_path_factory.mktemp("demo")
    save_volume(hr, d / "hr.nii.gz")
    lr, _ = degrade_volume(hr, make_degradation("kspace-truncate", scale=2), seed=0)
    save_volume(lr, d / "lr.nii.gz")
    assert not (d / "lr.nii.gz.json").exists()
    return d / "lr.nii.gz", d / "hr.nii.gz"


def test_upscale_without_sidecar_picks_the_in_plane_axes_and_says_so(demo_lr, tmp_path) -> None:
    from mrisr.cli import app

    lr, hr = demo_lr
    out = tmp_path / "sr.nii.gz"
    res = CliRunner().invoke(app, ["upscale", str(lr), str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "plane of axes 0,1 (shared spacing)" in res.output
    side = json.loads((tmp_path / "sr.nii.gz.json").read_text())
    assert side["plane"]["in_plane_axes"] == [0, 1] and side["plane"]["rule"] == "shared spacing"
    sr = load_volume(out)
    assert np.allclose(sr.zooms, load_volume(hr).zooms, atol=1e-4)  # 0.94 x 0.94 x 1.25 mm
    assert sr.shape == load_volume(hr).shape


def test_upscale_refuses_a_plane_across_very_different_spacings(demo_lr, tmp_path) -> None:
    from mrisr.cli import app

    lr, _ = demo_lr
    out = tmp_path / "sr.nii.gz"
    res = CliRunner().invoke(app, ["upscale", str(lr), str(out), "--axis", "0", "--no-progress"])
    assert res.exit_code != 0
    assert "ratio 1.50" in str(res.exception) and "--force-plane" in str(res.exception)
    assert not out.exists() and not (tmp_path / "sr.nii.gz.json").exists()


# ----------------------------------------------------------------------- clamping


def test_outputs_are_clamped_to_the_magnitude_range_and_score_no_worse(demo_lr, tmp_path) -> None:
    """By default no voxel is negative; --no-clamp keeps the network's raw undershoot; the
    clamped result is at least as close to the reference (the reference is >= 0)."""
    from mrisr.infer.run import upscale

    lr, hr = demo_lr
    (a,) = upscale(lr, tmp_path / "a.nii.gz", progress=False)
    (b,) = upscale(lr, tmp_path / "b.nii.gz", progress=False, clamp=False)
    ref, clamped, raw = (load_volume(p).data for p in (hr, a, b))
    assert clamped.min() >= 0 and raw.min() < 0
    side = json.loads((tmp_path / "a.nii.gz.json").read_text())
    assert side["clamp"]["range"] == [0.0, None] and side["clamp"]["voxels_below"] > 0
    assert side["clamp"]["voxels_below"] == int((raw < 0).sum())
    rng = float(ref.max())
    assert float(psnr(clamped, ref, data_range=rng).mean()) >= float(
        psnr(raw, ref, data_range=rng).mean()
    )


def test_uint8_scans_stay_within_their_storage_range(tmp_path) -> None:
    """A uint8 scan saturated at 255 comes back within [0, 255] (it overshot to ~317)."""
    from mrisr.infer.run import upscale
    from mrisr.io import save_volume

    flair = load_volume(Path(__file__).parent / "data" / "flair_crop.nii.gz")
    assert flair.orig_dtype == np.uint8
    data = np.clip(flair.data * (255.0 / np.percentile(flair.data, 99)), 0, 255).round()
    sat = flair.replace(data.astype(np.float32))
    save_volume(sat, tmp_path / "sat.nii.gz")
    lr, _ = degrade_volume(
        load_volume(tmp_path / "sat.nii.gz"), make_degradation("kspace-truncate", scale=2), axis=2
    )
    lr.orig_dtype = np.dtype(np.uint8)
    lr.data[...] = np.clip(np.round(lr.data), 0, 255)
    save_volume(lr, tmp_path / "lr.nii.gz", dtype=np.uint8)
    assert load_volume(tmp_path / "lr.nii.gz").orig_dtype == np.uint8
    (a,) = upscale(tmp_path / "lr.nii.gz", tmp_path / "a.nii.gz", progress=False, axis=2)
    (b,) = upscale(
        tmp_path / "lr.nii.gz", tmp_path / "b.nii.gz", progress=False, axis=2, clamp=False
    )
    assert load_volume(a).data.max() <= 255 and load_volume(a).data.min() >= 0
    assert load_volume(b).data.max() > 255


# ----------------------------------------------------------------------- outputs first


def test_a_bad_output_name_fails_before_any_work(demo_lr, tmp_path, monkeypatch) -> None:
    import mrisr.infer.upsample as resolver
    from mrisr.cli import app

    def boom(*a, **k):
        raise AssertionError("inference ran before the output name was checked")

    monkeypatch.setattr(resolver, "upscale_volume", boom)
    lr, _ = demo_lr
    res = CliRunner().invoke(app, ["upscale", str(lr), str(tmp_path / "x.png")])
    assert res.exit_code != 0
    assert "must end with .nii or .nii.gz" in str(res.exception)
    assert list(tmp_path.iterdir()) == []
    shutil.rmtree(tmp_path)


def test_the_ensemble_advances_the_progress_bar_after_every_pass(monkeypatch) -> None:
    """A slow x8 run showed no ETA for its whole run: the bar moved once per batch. Now it
    moves after each of the 8 passes (1/8 of the batch each), from a first sample at t0."""
    import mrisr.infer.upsample as resolver

    calls: list[float] = []

    def recorder(enabled, total):
        assert enabled and total == 2
        return lambda n, done=False: calls.append(-1.0 if done else n)

    monkeypatch.setattr(resolver, "_progress", recorder)
    vol = _real_volume(64)
    net, ckpt = load_checkpoint(shipped_path("edsr-kspace-x2"))
    opts = UpscaleOptions(ensemble=True, progress=True, batch=2, device="cpu")
    upscale_volume(vol, net, 2, ckpt.normalisation, ckpt.training, opts)
    assert calls[:8] == [0.25] * 8 and calls[-1] == -1.0 and sum(calls[:-1]) == 2

"""Through-plane SR of thick-slice scans (issue 16): the acquisition operator, data consistency,
the output grid on an oblique scan, per-scan training against the B-spline baseline, and the
inputs `upscale --through-plane` refuses."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import mrisr
from mrisr.degrade import degrade_volume, make_degradation
from mrisr.degrade.thickslice import slice_profile_matrix
from mrisr.degrade.through_plane import apply_along, operator, output_grid, project, residual
from mrisr.errors import ConfigError
from mrisr.infer.through_plane import ThroughPlaneOptions, restore
from mrisr.io import Volume, load_volume
from mrisr.metrics.scores import evaluate_volume
from tests.test_bad_input import run_cli

DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize(("k", "profile", "fwhm"), [(4, "rect", 4.0), (3, "gaussian", 3.6)])
def test_operator_is_the_thick_slice_degradation(k: int, profile: str, fwhm: float) -> None:
    """Training pairs and data consistency use the operator that simulates thick slices."""
    n, pos = output_grid(30, float(k))
    a = operator(n, pos, profile, fwhm)
    b, first = slice_profile_matrix(n, 1.0, fwhm, float(k), profile)
    np.testing.assert_allclose(a, b, atol=1e-12)
    assert first == pytest.approx(pos[0]) and np.allclose(a.sum(axis=1), 1.0)
    h = np.exp(-0.5 * (np.arange(-9, 10) / (fwhm / 2.3548)) ** 2)  # a sampled profile
    sampled = operator(n, pos, h / h.sum())
    assert np.abs(sampled - operator(n, pos, "gaussian", fwhm)).max() < 0.01


def test_projection_makes_the_output_reproduce_the_acquired_slices() -> None:
    """‖A·x − y‖/‖y‖ goes to float rounding, at a non-integer k with a gap (thickness 0.8·S)."""
    x = load_volume(DATA / "ixi002_t1_crop.nii.gz").data.astype(np.float64)  # 80×100×34
    k = 100 / 27  # 27 slices over 100 samples: k = 3.70
    n, pos = output_grid(27, k)
    a = operator(n, pos, "gaussian", 0.8 * k)
    y = apply_along(a, x[:, :n], 1)
    guess = np.repeat(y, 4, axis=1)[:, :n] * 0.9  # any volume of the output grid
    assert residual(a, guess, y, 1) > 0.05
    fixed = project(a, guess, y, 1)
    assert residual(a, fixed, y, 1) < 1e-13
    again = project(a, fixed, y, 1)  # a projection: idempotent
    np.testing.assert_allclose(again, fixed, atol=1e-9)


def _oblique_thick_slice_scan() -> tuple[Volume, Volume]:
    """The real 1 mm FLAIR crop (96×96×48) with a rotated header, and its 4 mm rect thick
    slices along axis 2 (k = 4: 12 slices)."""
    flair = load_volume(DATA / "flair_iso_crop.nii.gz")
    c, s = np.cos(0.3), np.sin(0.3)
    rot = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    hr = flair.replace(flair.data, rot @ flair.affine)
    thick = make_degradation("thick-slice", thickness=4.0, spacing=4.0)
    lr, _ = degrade_volume(hr, [thick], axis=2, seed=0)
    return hr, lr


def test_output_grid_puts_every_acquired_slice_where_it_was_on_an_oblique_scan() -> None:
    hr, lr = _oblique_thick_slice_scan()
    assert lr.shape == (96, 96, 12)
    out, rec = restore(lr, ThroughPlaneOptions(steps=0, progress=False, axis=2))
    tp = rec["through_plane"]
    assert tp["slice_axis"] == 2 and tp["output_slices"] == 48
    n, pos = output_grid(12, tp["k"])
    for j, p in enumerate(pos):  # output index p along z is acquired slice j, in scanner space
        np.testing.assert_allclose(out.affine @ [3, 7, p, 1], lr.affine @ [3, 7, j, 1], atol=1e-6)
    cos_in = lr.affine[:3, :3] / np.linalg.norm(lr.affine[:3, :3], axis=0)
    cos_out = out.affine[:3, :3] / np.linalg.norm(out.affine[:3, :3], axis=0)
    np.testing.assert_allclose(cos_out, cos_in, atol=1e-12)  # orientation kept
    # the output is the input's own HR grid (k = 4 exactly), field of view kept
    np.testing.assert_allclose(out.affine, hr.affine, atol=1e-4)


def test_untrained_network_is_the_bspline_baseline_and_training_beats_it() -> None:
    """steps=0 returns the B-spline interpolation; 80 steps on the scan's own in-plane slices
    score above it against the real HR volume."""
    hr, lr = _oblique_thick_slice_scan()
    base, rec0 = restore(lr, ThroughPlaneOptions(steps=0, progress=False, axis=2))
    sr, rec = restore(lr, ThroughPlaneOptions(steps=80, progress=False, axis=2, patience=1000))
    assert rec["through_plane"]["training"]["steps"] == 80
    s0 = evaluate_volume(base, hr)["volume"]
    s1 = evaluate_volume(sr, hr)["volume"]
    assert s1["psnr"] > s0["psnr"] and s1["ssim"] > s0["ssim"], (s0, s1)
    assert rec0["through_plane"]["consistency_residual"] < 0.05


def test_consistency_option_reaches_float_rounding_and_is_recorded(tmp_path: Path) -> None:
    hr, lr = _oblique_thick_slice_scan()
    src, out = tmp_path / "thick.nii.gz", tmp_path / "iso.nii.gz"
    mrisr.save_volume(lr, src)
    res = run_cli("upscale", src, out, "--through-plane", "--steps", "20", "--consistency",
                  "--no-progress", "--axis", "2")  # fmt: skip
    assert res.returncode == 0, res.stderr
    side = json.loads((tmp_path / "iso.nii.gz.json").read_text())
    tp = side["through_plane"]
    assert tp["consistency_projected"] and tp["consistency_residual_after"] < 1e-6
    assert tp["k"] == pytest.approx(4.0) and tp["thickness_source"] == "assumed = spacing"
    img = nib.load(out)
    assert img.shape == (96, 96, 48)
    assert int(img.header["sform_code"]) == int(nib.load(src).header["sform_code"])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda v: v, "nearly isotropic"),  # the 1 mm FLAIR crop itself: k = 1.0
        (lambda v: v.replace(v.data[:, :, :3], v.affine @ np.diag([1, 1, 9.0, 1])), "up to k = 8"),
        (lambda v: v.replace(v.data[:, :, :1]), "needs a 3-D scan"),
    ],
)
def test_inputs_that_cannot_work_are_one_line_errors(make, message, tmp_path: Path) -> None:
    vol = make(load_volume(DATA / "flair_iso_crop.nii.gz"))
    src, out = tmp_path / "in.nii.gz", tmp_path / "out.nii.gz"
    mrisr.save_volume(vol, src)
    res = run_cli("upscale", src, out, "--through-plane", "--steps", "0", "--no-progress")
    assert res.returncode == 2 and message in res.stderr and not out.exists()
    assert len(res.stderr.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match=message):
        restore(vol, ThroughPlaneOptions(steps=0, progress=False))


def test_an_existing_output_is_refused_before_any_work(tmp_path: Path) -> None:
    _, lr = _oblique_thick_slice_scan()
    src, out = tmp_path / "in.nii.gz", tmp_path / "out.nii.gz"
    mrisr.save_volume(lr, src)
    out.write_bytes(b"keep")
    res = run_cli("upscale", src, out, "--through-plane", "--no-progress")
    assert res.returncode == 2 and "--overwrite" in res.stderr and out.read_bytes() == b"keep"


def test_a_profile_file_from_learn_kernel_drives_the_restoration(tmp_path: Path) -> None:
    """`learn-kernel --through-plane --profile rect --thickness 4` writes the profile that
    `upscale --through-plane --profile P.npy` uses: nearly the operator of `--profile rect`
    (a profile sampled on the voxel grid cannot hold a rect's edges between voxels: residual
    0.048 vs 0.040 for the exact overlap integral), and bad profile files are one-line errors
    with no output."""
    _, lr = _oblique_thick_slice_scan()
    src, prof = tmp_path / "thick.nii.gz", tmp_path / "p.npy"
    mrisr.save_volume(lr, src)
    res = run_cli("learn-kernel", prof, "--through-plane", "--lr", src, "--profile", "rect",
                  "--thickness", "4")  # fmt: skip
    assert res.returncode == 0, res.stderr
    outs = {}
    for name, profile in (("file", str(prof)), ("rect", "rect")):
        out = tmp_path / f"{name}.nii.gz"
        res = run_cli("upscale", src, out, "--through-plane", "--profile", profile, "--steps",
                      "0", "--no-progress", "--axis", "2")  # fmt: skip
        assert res.returncode == 0, res.stderr
        outs[name] = json.loads((tmp_path / f"{name}.nii.gz.json").read_text())["through_plane"]
    assert outs["file"]["slice_model"]["profile"] == "sampled"
    r_file, r_rect = outs["file"]["consistency_residual"], outs["rect"]["consistency_residual"]
    assert abs(r_file - r_rect) < 0.01 and r_file < 0.06
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((3, 3), 1 / 9))  # 2-D
    out = tmp_path / "never.nii.gz"
    res = run_cli("upscale", src, out, "--through-plane", "--profile", bad, "--no-progress")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_voxel_option_resamples_the_slice_axis_over_the_same_field_of_view() -> None:
    _, lr = _oblique_thick_slice_scan()
    fine, _ = restore(lr, ThroughPlaneOptions(steps=0, progress=False, axis=2))
    coarse, rec = restore(lr, ThroughPlaneOptions(steps=0, progress=False, axis=2, voxel_mm=2.0))
    assert fine.shape[2] == 48 and coarse.shape[2] == 24
    assert coarse.zooms[2] == pytest.approx(2.0) and coarse.zooms[:2] == pytest.approx(
        fine.zooms[:2]
    )
    centre_fine = fine.affine @ [0, 0, (48 - 1) / 2, 1]
    centre_coarse = coarse.affine @ [0, 0, (24 - 1) / 2, 1]
    np.testing.assert_allclose(centre_coarse, centre_fine, atol=1e-6)  # same field of view
    # a coarse voxel lies halfway between two fine ones: close to their mean on smooth data
    mid = 0.5 * (fine.data[..., 20] + fine.data[..., 21])
    assert np.abs(coarse.data[..., 10] - mid).mean() < 0.05 * np.abs(mid).mean()
    with pytest.raises(ConfigError, match="--voxel"):
        restore(lr, ThroughPlaneOptions(steps=0, progress=False, axis=2, voxel_mm=-1.0))


@pytest.mark.parametrize("shape", [(37, 50), (48, 48), (21, 9)])
def test_unshuffled_network_keeps_any_size_and_starts_as_the_identity(shape) -> None:
    """The prior's network runs its body on 2 × 2 pixel blocks: any image size (odd ones are
    padded and cropped back) comes out the same size; untrained, it returns its input exactly
    (the B-spline baseline), and a pixel's output depends on its block neighbours only through
    the body (a change far away leaves it untouched)."""
    import torch

    from mrisr.models.registry import build_model, count_parameters

    torch.manual_seed(0)
    net = build_model("throughplane-resnet", 1, n_blocks=2, n_feats=8, unshuffle=2).eval()
    x = torch.rand(2, 1, *shape)
    with torch.no_grad():
        np.testing.assert_array_equal(net(x).numpy(), x.numpy())
        for p in net.tail.parameters():
            p.normal_(0, 0.1)
        y = net(x)
        assert y.shape == x.shape and not torch.equal(y, x)
        x2 = x.clone()
        x2[..., -1, -1] += 1.0  # the receptive field of 2 blocks of 3x3 at half size: 12 px
        y2 = net(x2)
        assert torch.equal(y2[..., : max(shape[0] - 14, 0), : max(shape[1] - 14, 0)],
                           y[..., : max(shape[0] - 14, 0), : max(shape[1] - 14, 0)])  # fmt: skip
    assert count_parameters(build_model("throughplane-resnet", 1)) == 1186372
    with pytest.raises(ValueError, match="unshuffle"):
        build_model("throughplane-resnet", 1, unshuffle=3)


def test_a_checkpoint_from_before_the_block_body_still_loads(tmp_path: Path) -> None:
    """Checkpoints written before ``unshuffle`` existed store no such argument; they load as
    the full-resolution network they were (the preset's new default would not fit them)."""
    import torch

    from mrisr.checkpoint import load_checkpoint, save_checkpoint
    from mrisr.models.registry import build_model

    torch.manual_seed(1)
    old = build_model("throughplane-resnet", 1, n_blocks=2, n_feats=8, unshuffle=1)
    for p in old.tail.parameters():
        torch.nn.init.normal_(p, 0, 0.1)
    save_checkpoint(old, "throughplane-resnet", {"scale": 1, "n_blocks": 2, "n_feats": 8,
                                                 "unshuffle": 1}, tmp_path / "old")  # fmt: skip
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    del cfg["init_args"]["unshuffle"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    net, ck = load_checkpoint(tmp_path / "old")
    assert ck.init_args["unshuffle"] == 1 and net.unshuffle == 1
    x = torch.rand(1, 1, 20, 17)
    with torch.no_grad():
        torch.testing.assert_close(net(x), old.eval()(x))


def test_per_scan_training_fine_tunes_the_checkpoints_own_network(tmp_path: Path) -> None:
    """A start checkpoint whose size is not the preset's (an older, smaller prior) is trained
    as the network it holds, not refused for not fitting the preset; with no checkpoint and
    no steps the B-spline comes back without a network or a warning."""
    import torch

    from mrisr.checkpoint import load_checkpoint, save_checkpoint
    from mrisr.models.registry import build_model

    torch.manual_seed(0)
    small = build_model("throughplane-resnet", 1, n_blocks=1, n_feats=8, unshuffle=1)
    args = {"scale": 1, "n_blocks": 1, "n_feats": 8, "unshuffle": 1}
    save_checkpoint(small, "throughplane-resnet", args, tmp_path / "small")
    lr = _oblique_thick_slice_scan()[1]
    opts = ThroughPlaneOptions(steps=3, progress=False, axis=2, run_dir=tmp_path / "run")
    _, rec = restore(lr, opts, tmp_path / "small")
    assert rec["through_plane"]["training"]["steps"] == 3
    net, ck = load_checkpoint(tmp_path / "run" / "final")
    assert {k: ck.init_args[k] for k in args} == args
    _, rec0 = restore(lr, ThroughPlaneOptions(steps=0, progress=False, axis=2), None)
    assert rec0["through_plane"]["self_check"] == {
        "used": "bspline", "why": "no checkpoint and no training"
    }  # fmt: skip

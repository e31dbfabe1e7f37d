"""Volume-level degradation: axes, geometry of the new grid, seeds, pipelines, thick slices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrisr.degrade import (
    Bicubic,
    Gaussian,
    KspaceTruncate,
    KspaceZerofill,
    Rician,
    ThickSlice,
    degrade_volume,
    from_config,
    make_degradation,
)
from mrisr.errors import ConfigError
from mrisr.io import Volume, load_volume
from mrisr.io.geometry import slice_axis_for


def oblique_volume(shape=(48, 40, 12), zooms=(0.8, 0.9, 2.5)) -> Volume:
    rot = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(zooms)
    aff[:3, 3] = [-12.3, 40.1, 7.7]
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    data = 100 + 50 * np.sin(i / 5.0) * np.cos(j / 7.0) + k
    return Volume(data, aff, {"format": "test"})


def test_slice_axis_is_the_coarsest() -> None:
    assert slice_axis_for((0.94, 0.94, 1.25)) == 2
    assert slice_axis_for((1.2, 0.94, 0.94)) == 0
    assert slice_axis_for((1.0, 1.0, 1.0)) == 2
    assert slice_axis_for((1.0, 1.0, 1.0), shape=(64, 1, 64)) == 1


@pytest.mark.parametrize(
    "step",
    [Bicubic(2), Gaussian(4, sigma=1.0), KspaceTruncate(2), KspaceZerofill(4)],
    ids=lambda s: s.method,
)
def test_new_grid_keeps_orientation_and_places_samples(step) -> None:
    vol = oblique_volume()
    out, side = degrade_volume(vol, step)
    s = step.scale
    assert out.shape == (48 // s, 40 // s, 12)
    # Same direction cosines, in-plane zooms × s, slice zoom unchanged.
    np.testing.assert_allclose(out.zooms, (0.8 * s, 0.9 * s, 2.5), rtol=1e-9)
    dirs = lambda a: a[:3, :3] / np.sqrt((a[:3, :3] ** 2).sum(0))  # noqa: E731
    np.testing.assert_allclose(dirs(out.affine), dirs(vol.affine), atol=1e-12)
    # LR voxel (j0, j1, k) sits at HR index offset + s·j, as the step's axis map says.
    grid = side["degradation"][0]["grid"]
    off0, off1 = grid["axis0"]["offset_voxels"], grid["axis1"]["offset_voxels"]
    for j0, j1, k in [(0, 0, 0), (3, 5, 7), (out.shape[0] - 1, out.shape[1] - 1, 11)]:
        hr_index = np.array([off0 + s * j0, off1 + s * j1, k, 1.0])
        np.testing.assert_allclose(out.affine @ [j0, j1, k, 1], vol.affine @ hr_index, atol=1e-9)
    if step.method in ("bicubic", "gaussian"):
        assert off0 == (s - 1) / 2  # block centres: the field of view is exactly the same
    else:
        assert off0 == 48 // 2 - s * ((48 // s) // 2)  # the centred-FFT grid


def test_field_of_view_is_unchanged_for_block_methods() -> None:
    vol = oblique_volume()
    out, _ = degrade_volume(vol, Bicubic(4))
    # The outer corner of the first HR voxel equals the outer corner of the first LR voxel.
    corner_hr = vol.affine @ [-0.5, -0.5, 0, 1]
    corner_lr = out.affine @ [-0.5, -0.5, 0, 1]
    np.testing.assert_allclose(corner_lr, corner_hr, atol=1e-9)


def test_axis_override_degrades_the_other_plane() -> None:
    vol = oblique_volume()
    out, side = degrade_volume(vol, Bicubic(2), axis=0)
    assert out.shape == (48, 20, 6) and side["slice_axis"] == 0


def test_scale_must_divide_unless_crop() -> None:
    vol = oblique_volume(shape=(50, 40, 12))
    with pytest.raises(ConfigError, match="does not divide.*--crop"):
        degrade_volume(vol, Bicubic(4))
    out, side = degrade_volume(vol, Bicubic(4), crop=True)
    assert out.shape == (12, 10, 12) and side["crop"] == {"0": [1, 49]}
    # The crop moved the origin by one HR voxel along axis 0, then the block centre offset.
    np.testing.assert_allclose(out.affine @ [0, 0, 0, 1], vol.affine @ [1 + 1.5, 1.5, 0, 1])


def test_rician_noise_is_seeded_and_hits_the_snr(test_data) -> None:
    vol = load_volume(test_data / "ixi002_t2_crop.nii.gz")
    a, sa = degrade_volume(vol, Rician(snr=20), seed=5)
    b, _ = degrade_volume(vol, Rician(snr=20), seed=5)
    c, _ = degrade_volume(vol, Rician(snr=20), seed=6)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    sigma = sa["degradation"][0]["sigma_used"]
    assert sigma == pytest.approx(sa["degradation"][0]["signal_mean"] / 20)
    # In bright tissue Rician ≈ Gaussian: the residual std is σ.
    bright = vol.data > np.percentile(vol.data, 90)
    assert np.std((a.data - vol.data)[bright]) == pytest.approx(sigma, rel=0.1)


def test_thick_slice_thickness_and_spacing_are_separate() -> None:
    vol = oblique_volume(shape=(8, 8, 60), zooms=(1.0, 1.0, 1.0))
    out, side = degrade_volume(vol, ThickSlice(thickness=5.0, spacing=3.0))
    assert out.shape == (8, 8, 20)
    np.testing.assert_allclose(out.zooms, (1.0, 1.0, 3.0), rtol=1e-9)
    # Data varies linearly with k (+1 per slice): a symmetric profile returns the centre position.
    first = side["degradation"][0]["grid"]["axis2"]["offset_voxels"]
    centres = out.data[4, 4, 2:-2] - vol.data[4, 4, 0]
    expected = first + 3.0 * np.arange(20)[2:-2]
    np.testing.assert_allclose(centres, expected, atol=1e-4)  # float32 data
    # The output grid is centred on the field of view.
    assert first == pytest.approx((60 - 1) / 2 - (20 - 1) / 2 * 3.0)
    thin, _ = degrade_volume(vol, ThickSlice(thickness=1.0, spacing=3.0))
    thick, _ = degrade_volume(vol, ThickSlice(thickness=9.0, spacing=3.0))
    # Along z the data are linear, so any symmetric slab returns the same interior values ...
    np.testing.assert_allclose(thin.data[..., 3:-3], thick.data[..., 3:-3], atol=1e-4)
    # ... while a z-varying pattern is averaged away more by a thicker slab.
    zz = np.sin(np.arange(60) * 2 * np.pi / 6.0)[None, None, :] * np.ones((8, 8, 1))
    wave = Volume(zz, vol.affine)
    amp = lambda t: np.abs(degrade_volume(wave, ThickSlice(t, 3.0))[0].data[..., 3:-3]).max()  # noqa: E731
    assert amp(1.0) > 0.85 and amp(6.0) < 1e-3  # a 6 mm slab spans one full period


def test_pipeline_records_its_draws_and_replays() -> None:
    cfg = {
        "steps": [
            {"method": "gaussian", "scale": 2, "sigma": [0.5, 1.5]},
            {"method": "rician", "snr": {"choice": [10, 20, 40]}},
        ],
        "seed": 11,
    }
    rp = from_config(cfg)
    p1 = rp.sample()
    p2 = from_config(cfg).sample()
    assert p1.params() == p2.params()
    sig = p1.steps[0].sigma
    assert 0.5 <= sig <= 1.5 and p1.steps[1].snr in (10, 20, 40)
    x = torch.rand(2, 32, 32)
    a, b = p1(x), p2(x)
    torch.testing.assert_close(a.image, b.image)
    assert a.image.shape == (2, 16, 16)
    assert a.params["steps"][0]["sigma_px"] == [sig, sig]
    draws = {from_config({**cfg, "seed": s}).sample().steps[0].sigma for s in range(20)}
    assert len(draws) == 20 and min(draws) >= 0.5 and max(draws) <= 1.5


def test_pipeline_errors_name_the_bad_key() -> None:
    with pytest.raises(ConfigError, match="sigmaa"):
        from_config([{"method": "gaussian", "sigmaa": 1.0}])
    with pytest.raises(ConfigError, match="unknown degradation method 'blurr'"):
        make_degradation("blurr")
    with pytest.raises(ConfigError, match="range"):
        from_config([{"method": "gaussian", "sigma": [2.0, 1.0]}]).sample()


@pytest.mark.parametrize("method", ["bicubic", "gaussian", "kspace-truncate", "kspace-zerofill"])
def test_full_ixi_t2_each_method(shared_data, tmp_path, method) -> None:
    """The issue's acceptance check: nibabel reads the output's affine as the input's with the
    in-plane zooms × scale, same orientation codes, and a sidecar naming every parameter."""
    import json

    import nibabel as nib

    from mrisr.commands.degrade import run_degrade

    src = shared_data / "ixi002" / "IXI002-Guys-0828-T2.nii.gz"
    out = tmp_path / f"{method}.nii.gz"
    run_degrade(
        src,
        out,
        method,
        {"scale": 2},
        axis=None,
        seed=0,
        crop=False,
        snr=None,
        volume_index=None,
        overwrite=False,
    )
    hr, lr = nib.load(src), nib.load(out)
    assert lr.shape == (128, 128, 130)
    np.testing.assert_allclose(
        lr.header.get_zooms(), np.array(hr.header.get_zooms()) * [2, 2, 1], rtol=1e-6
    )
    assert nib.aff2axcodes(lr.affine) == nib.aff2axcodes(hr.affine)
    assert int(lr.header["qform_code"]) == int(hr.header["qform_code"])
    assert int(lr.header["sform_code"]) == int(hr.header["sform_code"])
    side = json.loads((tmp_path / f"{method}.nii.gz.json").read_text())
    step = side["degradation"][0]
    expected = {f.name for f in __import__("dataclasses").fields(make_degradation(method, scale=2))}
    assert expected <= set(step) and step["method"] == method
    assert side["input_sha256"] and side["output_zooms_mm"][0] == pytest.approx(1.875)

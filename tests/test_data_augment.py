"""Stronger priors' data (issue 17): every well-sampled orientation of a scan
(``planes="all"``) and intensity augmentation (contrast, bias field, noise) that keeps each
pair an exact degradation pair."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from mrisr.data import SRSliceDataset
from mrisr.data.intensity import IntensityAugment, bias_field, from_config
from mrisr.degrade import KspaceTruncate, kspace_truncate
from mrisr.errors import ConfigError
from tests.test_data import one_thread  # noqa: F401  (autouse: small FFTs on one thread)


def _scan(path: Path, zooms: tuple[float, float, float], shape=(48, 48, 48)) -> Path:
    rng = np.random.default_rng(1)
    zz, yy, xx = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    head = (zz**2 + yy**2 + xx**2) < 0.8
    data = head * (100 + 60 * np.sin(6 * xx) * np.cos(5 * yy) + 30 * zz) + rng.normal(0, 1, shape)
    nib.save(nib.Nifti1Image(np.clip(data, 0, None).astype(np.float32), np.diag([*zooms, 1])), path)
    return path


def test_planes_all_uses_every_square_pixel_orientation(tmp_path: Path) -> None:
    iso = _scan(tmp_path / "iso.nii.gz", (1.0, 1.0, 1.0))
    thick = _scan(tmp_path / "thick.nii.gz", (1.0, 1.0, 2.0), (48, 48, 24))
    kw = {"patch_size": 16, "samples_per_epoch": 8, "cache_dir": tmp_path / "c"}
    one = SRSliceDataset([iso], 2, KspaceTruncate(2), **kw)
    every = SRSliceDataset([iso], 2, KspaceTruncate(2), planes="all", **kw)
    assert len(one.volumes) == 1 and [e.order[0] for e in every.volumes] == [0, 1, 2]
    assert every.card()["stacks"] == 3 and every.card()["planes"] == "all"
    # the 1 x 1 x 2 mm scan has one plane of square pixels: only that one
    aniso = SRSliceDataset([thick], 2, KspaceTruncate(2), planes="all", **kw)
    assert [e.order[0] for e in aniso.volumes] == [2]
    # items are drawn from every orientation
    vols = {every[i]["volume"] for i in range(8)}
    assert len(vols) >= 2
    with pytest.raises(ConfigError, match="planes"):
        SRSliceDataset([iso], 2, KspaceTruncate(2), planes="some", **kw)


def test_contrast_and_bias_keep_an_exact_degradation_pair(tmp_path: Path) -> None:
    iso = _scan(tmp_path / "iso.nii.gz", (1.0, 1.0, 1.0))
    aug = IntensityAugment(gamma=0.5, bias=0.4)
    kw = {"augment": False, "cache_dir": tmp_path / "c", "normalisation": _minmax()}
    plain = SRSliceDataset([iso], 2, KspaceTruncate(2), **kw)
    ds = SRSliceDataset([iso], 2, KspaceTruncate(2), intensity=aug, **kw)
    changed = 0
    for i in (10, 24, 30):
        a, p = ds[i], plain[i]
        # the LR image is the k-space truncation of the augmented HR (offset 0: linear scale)
        torch.testing.assert_close(
            a["lr"], kspace_truncate(a["hr"], 2), atol=2e-5, rtol=0
        )  # fmt: skip
        assert a["slice"] == p["slice"]
        # background stays background; the head's intensities moved
        assert torch.equal(a["hr"] == 0, p["hr"] == 0)
        changed += float((a["hr"] - p["hr"]).abs().max()) > 0.02
    assert changed == 3
    assert ds.card()["intensity"] == {"gamma": 0.5, "bias": 0.4, "noise": None, "noise_on": "hr"}


def test_noise_on_lr_goes_on_the_input_only_at_the_drawn_level(tmp_path: Path) -> None:
    iso = _scan(tmp_path / "iso.nii.gz", (1.0, 1.0, 1.0))
    kw = {"augment": False, "cache_dir": tmp_path / "c", "normalisation": _minmax()}
    plain = SRSliceDataset([iso], 2, KspaceTruncate(2), **kw)
    aug = IntensityAugment(noise=(0.05, 0.05), noise_on="lr")
    noisy = SRSliceDataset([iso], 2, KspaceTruncate(2), intensity=aug, **kw)
    a, p = noisy[24], plain[24]
    assert torch.equal(a["hr"], p["hr"])  # the target keeps the scan's own noise only
    bright = p["lr"] > 0.4  # Rician ≈ Gaussian where the signal is well above σ
    d = (a["lr"] - p["lr"])[bright]
    assert 0.045 < float(d.std()) < 0.055 and abs(float(d.mean())) < 0.01
    # seeded per item: the same item twice is the same draw, another item another
    torch.testing.assert_close(noisy[24]["lr"], a["lr"], atol=0, rtol=0)
    assert not torch.equal(noisy[25]["lr"] - plain[25]["lr"], a["lr"] - p["lr"])


def test_noise_on_hr_makes_a_noisy_scan_pair(tmp_path: Path) -> None:
    """The default: the HR slice gets the noise before it is degraded, so the target is a noisy
    scan (Rician floor in the background) and the input its exact k-space truncation."""
    iso = _scan(tmp_path / "iso.nii.gz", (1.0, 1.0, 1.0))
    kw = {"augment": False, "cache_dir": tmp_path / "c", "normalisation": _minmax()}
    plain = SRSliceDataset([iso], 2, KspaceTruncate(2), **kw)
    sigma = 0.05
    noisy = SRSliceDataset(
        [iso], 2, KspaceTruncate(2), intensity=IntensityAugment(noise=(sigma, sigma)), **kw
    )
    assert noisy.card()["intensity"]["noise_on"] == "hr"
    a, p = noisy[24], plain[24]
    torch.testing.assert_close(a["lr"], kspace_truncate(a["hr"], 2), atol=2e-5, rtol=0)
    bright = p["hr"] > 0.4
    d = (a["hr"] - p["hr"])[bright]
    assert 0.045 < float(d.std()) < 0.055 and abs(float(d.mean())) < 0.01
    # the background (zero in the scan, after the min-max scale) gets the Rician floor,
    # mean σ·sqrt(π/2); the LR input carries a quarter of the noise power (×2 truncation)
    bg = p["hr"] <= 0.0
    assert abs(float(a["hr"][bg].mean()) / (sigma * np.sqrt(np.pi / 2)) - 1) < 0.1
    lr_bright = p["lr"] > 0.4
    d_lr = (a["lr"] - p["lr"])[lr_bright]
    assert 0.4 < float(d_lr.std()) / sigma < 0.6


def test_bias_field_is_smooth_bounded_and_config_checks() -> None:
    f = bias_field((64, 80), 0.3, np.random.default_rng(0))
    assert f.shape == (64, 80) and np.exp(-0.3) - 1e-9 <= f.min() and f.max() <= np.exp(0.3) + 1e-9
    assert np.isclose(np.abs(np.log(f)).max(), 0.3)
    assert np.abs(np.diff(f, axis=0)).max() < 0.03  # smooth: no pixel-scale texture
    assert from_config(None) is None and from_config({"gamma": 0.0}) is None
    assert from_config({"gamma": 0.3, "noise": [0.0, 0.02]}).noise == (0.0, 0.02)
    with pytest.raises(ConfigError, match="noise"):
        IntensityAugment(noise=(0.3, 0.1))
    with pytest.raises(ConfigError, match="noise_on"):
        IntensityAugment(noise=(0.0, 0.1), noise_on="target")
    assert from_config({"noise": [0.0, 0.02], "noise_on": "lr"}).noise_on == "lr"
    with pytest.raises(ConfigError, match="gamma"):
        IntensityAugment(gamma=float("nan"))


def test_recipe_accepts_planes_and_intensity() -> None:
    from mrisr.train.config import load_config

    cfg = load_config(
        "default_kspace_x2",
        ["data.train=demo", "data.planes=all", "data.intensity.gamma=0.4",
         "data.intensity.noise=[0.0,0.03]"],
    )  # fmt: skip
    assert cfg.data.planes == "all" and cfg.data.intensity.gamma == 0.4
    with pytest.raises(ConfigError, match="planes"):
        load_config("default_kspace_x2", ["data.train=demo", "data.planes=both"])


def _minmax():
    from mrisr.normalisation import Normalisation

    return Normalisation("percentile", low=0.0, high=100.0)

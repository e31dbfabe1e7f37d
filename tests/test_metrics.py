"""Reference metrics on real MR slices, checked against skimage, torchmetrics, numpy and scipy.

``tests/data/ixi002_t2_slices.npy``: three real axial IXI002 T2 slices, (3, 192, 192) int16.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from mrisr.errors import ConfigError, InputError
from mrisr.metrics import evaluate_volume, nmse, paired_tests, psnr, ssim

# (blur sigma in pixels, noise sigma in grey levels): from mild to heavy distortion
LEVELS = [(0.5, 2.0), (1.0, 8.0), (2.0, 20.0)]


@pytest.fixture(scope="module")
def slices(test_data) -> np.ndarray:
    s = np.load(test_data / "ixi002_t2_slices.npy")
    assert s.shape == (3, 192, 192) and s.dtype == np.int16
    return s.astype(np.float64)


def distort(ref: np.ndarray, blur: float, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    axes = (0,) * (ref.ndim - 2) + (blur, blur)
    return gaussian_filter(ref, axes) + rng.normal(0.0, noise, ref.shape)


def sk_ssim(ref: np.ndarray, pred: np.ndarray, data_range: float, **kw):
    return structural_similarity(
        ref,
        pred,
        data_range=data_range,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        **kw,
    )


def np_psnr(pred: np.ndarray, ref: np.ndarray, data_range: float) -> float:
    return float(10 * np.log10(data_range**2 / np.mean((pred - ref) ** 2)))


# ----------------------------------------------------------------------------- SSIM


@pytest.mark.parametrize("blur,noise", LEVELS)
def test_ssim_matches_skimage_on_real_slices(slices, blur, noise) -> None:
    pred = distort(slices, blur, noise)
    dr = float(slices.max())
    ours = ssim(pred, slices, data_range=dr)
    assert ours.shape == (3,) and ours.dtype == torch.float64
    for i in range(3):
        assert float(ours[i]) == pytest.approx(sk_ssim(slices[i], pred[i], dr), abs=1e-4)
        # in fact equal to rounding: same window, constants and averaging region
        assert abs(float(ours[i]) - sk_ssim(slices[i], pred[i], dr)) < 1e-12


def test_ssim_matches_skimage_on_odd_crop_and_each_slice_range(slices) -> None:
    ref = slices[1, 20:171, 7:150]  # non-square, odd size
    pred = distort(ref, 1.0, 8.0, seed=3)
    dr = float(ref.max())
    assert float(ssim(pred, ref)) == pytest.approx(sk_ssim(ref, pred, dr), abs=1e-12)
    # int16 and float32 inputs are converted to float64
    assert float(ssim(pred.astype(np.float32), ref.astype(np.int16))) == pytest.approx(
        sk_ssim(ref, pred.astype(np.float32).astype(np.float64), dr), abs=1e-10
    )


def test_torchmetrics_ssim_differs_only_by_its_border_averaging(slices) -> None:
    """torchmetrics averages the SSIM map over the whole image (border included, computed on
    reflect-padded input); skimage drops the 5-pixel border. Cropped, its map equals ours."""
    diffs = []
    for blur, noise in LEVELS:
        pred = distort(slices, blur, noise)
        dr = float(slices.max())
        tm, tm_map = structural_similarity_index_measure(
            torch.from_numpy(pred)[:, None],
            torch.from_numpy(slices)[:, None],
            data_range=dr,
            reduction="none",
            return_full_image=True,
        )
        ours = ssim(pred, slices, data_range=dr)
        sk = np.array([sk_ssim(slices[i], pred[i], dr) for i in range(3)])
        diffs.append(np.abs(tm.numpy() - sk).max())
        cropped = tm_map[:, 0, 5:-5, 5:-5].mean(dim=(-2, -1))
        torch.testing.assert_close(cropped, ours, atol=1e-12, rtol=0)
    # the full-image average is off by 3e-3..8e-3 on these slices: not usable as "skimage SSIM"
    assert max(diffs) > 1e-3


def test_ssim_identical_is_one_and_batched_shapes(slices) -> None:
    batch = np.stack([slices, slices[::-1]])  # [2, 3, H, W]
    out = ssim(batch, batch)
    assert out.shape == (2, 3)
    torch.testing.assert_close(out, torch.ones(2, 3, dtype=torch.float64), atol=1e-12, rtol=0)
    pred = distort(batch, 1.0, 8.0)
    full = ssim(pred, batch, data_range=1000.0)
    flat = ssim(pred.reshape(6, 192, 192), batch.reshape(6, 192, 192), data_range=1000.0)
    torch.testing.assert_close(full.reshape(6), flat)
    assert float(ssim(pred, batch, data_range=1000.0, reduction="mean")) == pytest.approx(
        float(flat.mean())
    )


# ----------------------------------------------------------------------------- PSNR / NMSE


@pytest.mark.parametrize("blur,noise", LEVELS)
def test_psnr_matches_numpy_and_torchmetrics(slices, blur, noise) -> None:
    pred = distort(slices, blur, noise)
    dr = float(slices.max())
    ours = psnr(pred, slices)  # data_range None → ref.max() over the whole input
    assert ours.shape == (3,) and ours.dtype == torch.float64
    expected = [np_psnr(pred[i], slices[i], dr) for i in range(3)]
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-9)
    # torchmetrics computes the same formula, with float32 constants (hence 1e-5 dB)
    tm = peak_signal_noise_ratio(
        torch.from_numpy(pred),
        torch.from_numpy(slices),
        data_range=dr,
        dim=(-2, -1),
        reduction="none",
    )
    np.testing.assert_allclose(ours.numpy(), tm.numpy(), rtol=0, atol=1e-5)
    # a mask that keeps every pixel changes nothing
    masked = psnr(pred, slices, data_range=dr, mask=np.ones((192, 192), bool))
    np.testing.assert_allclose(masked.numpy(), ours.numpy(), rtol=0, atol=1e-12)
    assert float(psnr(pred, slices, reduction="mean")) == pytest.approx(np.mean(expected))
    # an explicit data range is used as given
    assert float(psnr(pred[0], slices[0], data_range=1000.0)) == pytest.approx(
        np_psnr(pred[0], slices[0], 1000.0), abs=1e-9
    )


def test_nmse_matches_numpy_whole_and_per_image(slices) -> None:
    pred = distort(slices, 1.0, 8.0)
    whole = np.sum((slices - pred) ** 2) / np.sum(slices**2)
    assert float(nmse(pred, slices)) == pytest.approx(whole, rel=1e-12)
    per = np.sum((slices - pred) ** 2, axis=(1, 2)) / np.sum(slices**2, axis=(1, 2))
    np.testing.assert_allclose(nmse(pred, slices, dim=(-2, -1)).numpy(), per, rtol=1e-12)


def test_identical_images(slices) -> None:
    assert torch.isinf(psnr(slices, slices)).all() and (psnr(slices, slices) > 0).all()
    assert torch.all(ssim(slices, slices) == 1.0)
    assert float(nmse(slices, slices)) == 0.0


# ----------------------------------------------------------------------------- mask, shave


def test_errors_outside_the_mask_do_not_count(slices) -> None:
    ref = slices[1]
    pred = ref.copy()
    pred[:, 110:] += 50.0  # corrupt the right part
    mask = np.zeros_like(ref, dtype=bool)
    mask[:, :96] = True  # score the left part; its SSIM windows reach column 100 at most
    assert float(psnr(pred, ref, mask=mask)) == float("inf")
    assert float(ssim(pred, ref, mask=mask)) == pytest.approx(1.0, abs=1e-12)
    assert float(nmse(pred, ref, mask=mask)) == 0.0
    assert float(psnr(pred, ref)) < 40 and float(ssim(pred, ref)) < 1


def test_masked_metrics_follow_their_definition(slices, test_data) -> None:
    ref = slices[0]
    pred = distort(ref, 1.0, 8.0)
    dr = float(ref.max())
    mask = gaussian_filter(ref, 2) > 0.1 * dr  # a real head mask
    assert 0.2 < mask.mean() < 0.9
    mse = np.mean((pred - ref)[mask] ** 2)
    assert float(psnr(pred, ref, mask=mask)) == pytest.approx(10 * np.log10(dr**2 / mse), abs=1e-9)
    # SSIM with a mask: skimage's map, interior only (5-pixel border dropped), mask pixels
    _, smap = sk_ssim(ref, pred, dr, full=True)
    expected = smap[5:-5, 5:-5][mask[5:-5, 5:-5]].mean()
    assert float(ssim(pred, ref, mask=mask)) == pytest.approx(expected, abs=1e-12)
    assert float(nmse(pred, ref, mask=mask)) == pytest.approx(
        np.sum((ref - pred)[mask] ** 2) / np.sum(ref[mask] ** 2), rel=1e-12
    )
    # an image with no mask pixel gets NaN
    none = np.zeros_like(mask)
    assert torch.isnan(psnr(pred, ref, mask=none)) and torch.isnan(ssim(pred, ref, mask=none))


def test_shave_removes_a_corrupted_border(slices) -> None:
    ref = slices[2]
    pred = ref.copy()
    pred[:4] = pred[-4:] = pred[:, :4] = pred[:, -4:] = 999.0
    assert float(psnr(pred, ref, shave=4)) == float("inf")
    assert float(ssim(pred, ref, shave=4)) == pytest.approx(1.0, abs=1e-12)
    assert float(nmse(pred, ref, shave=4)) == 0.0
    assert np.isfinite(float(psnr(pred, ref))) and float(ssim(pred, ref)) < 1
    # shave = computing on the cropped images
    noisy = distort(ref, 1.0, 8.0)
    dr = float(ref.max())
    c = (slice(8, -8), slice(8, -8))
    assert float(ssim(noisy, ref, data_range=dr, shave=8)) == pytest.approx(
        sk_ssim(ref[c], noisy[c], dr), abs=1e-12
    )
    assert float(psnr(noisy, ref, data_range=dr, shave=8)) == pytest.approx(
        np_psnr(noisy[c], ref[c], dr), abs=1e-9
    )


def test_bad_arguments_are_clear_errors(slices) -> None:
    a = slices[0]
    with pytest.raises(ConfigError, match="shape"):
        psnr(a[:100], a)
    with pytest.raises(ConfigError, match="shave"):
        ssim(a, a, shave=91)
    with pytest.raises(ConfigError, match="11×11"):
        ssim(a[:8, :8], a[:8, :8])
    with pytest.raises(ConfigError, match="data_range"):
        psnr(a, a, data_range=0)
    with pytest.raises(InputError, match="data_range"):
        psnr(a, np.zeros_like(a))
    with pytest.raises(ConfigError, match="mask"):
        psnr(a, a, mask=np.ones((5, 5), bool))
    with pytest.raises(ConfigError, match="reduction"):
        psnr(a, a, reduction="sum")
    bad = a.copy()
    bad[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        ssim(bad, a)
    with pytest.raises(InputError, match="complex"):
        nmse(a.astype(np.complex128), a)


# ----------------------------------------------------------------------------- volumes


def test_evaluate_volume_structure_and_global_mse(slices) -> None:
    ref = np.concatenate([slices, np.zeros((1, 192, 192))]).transpose(1, 2, 0)  # (192,192,4)
    # noise only, a different level per slice; slice 3 has a zero reference
    pred = ref + np.random.default_rng(7).normal(0.0, 1.0, ref.shape) * [3.0, 6.0, 15.0, 6.0]
    res = evaluate_volume(pred, ref)
    v = res["volume"]
    dr = float(ref.max())
    mse = np.mean((pred - ref) ** 2)  # over the whole volume, the empty slice included
    assert v["psnr"] == pytest.approx(10 * np.log10(dr**2 / mse), abs=1e-9)
    assert v["nmse"] == pytest.approx(np.sum((pred - ref) ** 2) / np.sum(ref**2), rel=1e-12)
    assert v["data_range"] == dr and v["shave"] == 0
    assert v["n_slices"] == 3 and v["n_skipped"] == 1
    assert [s["index"] for s in res["slices"]] == [0, 1, 2]
    assert res["skipped"] == [{"index": 3, "reason": "reference is zero in the scored region"}]
    for s in res["slices"]:
        i = s["index"]
        assert set(s) == {"index", "psnr", "ssim", "nmse"}
        assert s["psnr"] == pytest.approx(np_psnr(pred[..., i], ref[..., i], dr), abs=1e-9)
        assert s["ssim"] == pytest.approx(sk_ssim(ref[..., i], pred[..., i], dr), abs=1e-12)
    assert v["ssim"] == pytest.approx(np.mean([s["ssim"] for s in res["slices"]]))
    assert v["psnr_mean_slices"] == pytest.approx(np.mean([s["psnr"] for s in res["slices"]]))
    assert abs(v["psnr"] - v["psnr_mean_slices"]) > 0.5  # not the mean of slice PSNRs
    assert all(type(x) is float for x in (v["psnr"], v["ssim"], v["nmse"], v["data_range"]))

    # another slice axis, torch input, a mask and a shave
    moved = evaluate_volume(
        torch.from_numpy(np.moveaxis(pred, -1, 0)), np.moveaxis(ref, -1, 0), slice_axis=0
    )
    assert moved["volume"] == pytest.approx(v)
    mask = np.zeros(ref.shape, bool)
    mask[40:150, 30:170, :] = True
    shaved = evaluate_volume(pred, ref, mask=mask, shave=4)
    assert shaved["volume"]["psnr"] == pytest.approx(
        10 * np.log10(dr**2 / np.mean((pred - ref)[mask] ** 2)), abs=1e-9
    )
    assert shaved["volume"]["shave"] == 4


def test_evaluate_volume_errors(slices) -> None:
    ref = slices.transpose(1, 2, 0)
    with pytest.raises(ConfigError, match=r"\(96, 96, 3\).*\(192, 192, 3\).*reference"):
        evaluate_volume(ref[::2, ::2], ref)
    bad = ref.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        evaluate_volume(bad, ref)
    with pytest.raises(InputError, match="NaN"):
        evaluate_volume(ref, bad)
    with pytest.raises(ConfigError, match="3-D"):
        evaluate_volume(ref[..., 0], ref[..., 0])
    with pytest.raises(ConfigError, match="mask"):
        evaluate_volume(ref, ref, mask=np.ones((192, 192), bool))
    with pytest.raises(InputError, match="mask is empty"):
        evaluate_volume(ref, ref, mask=np.zeros(ref.shape, bool))


# ----------------------------------------------------------------------------- statistics


def test_paired_tests_match_scipy() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(30, 2, 40)
    b = a + rng.normal(0.3, 1.0, 40)
    r = paired_tests(a, b)
    d = a - b
    t = stats.ttest_rel(a, b)
    w = stats.wilcoxon(a, b)
    assert r["n"] == 40
    assert r["mean_diff"] == pytest.approx(d.mean()) and r["std_diff"] == pytest.approx(
        d.std(ddof=1)
    )
    assert r["t"] == pytest.approx(t.statistic) and r["t_p"] == pytest.approx(t.pvalue)
    assert r["wilcoxon_stat"] == pytest.approx(w.statistic)
    assert r["wilcoxon_p"] == pytest.approx(w.pvalue)
    assert r["cohens_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    ci = stats.t.interval(0.95, 39, loc=d.mean(), scale=stats.sem(d))
    assert r["ci95"] == pytest.approx(list(ci))


def test_paired_tests_known_outcomes() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(30, 2, 30)
    b = a + 1 + rng.normal(0, 0.1, 30)
    r = paired_tests(a, b)
    assert r["t_p"] < 1e-3 and r["wilcoxon_p"] < 1e-3
    assert r["mean_diff"] == pytest.approx(-1, abs=0.1) and r["ci95"][1] < 0 < -r["ci95"][0]
    assert r["cohens_dz"] < -3
    same = paired_tests(a, a)
    assert same["wilcoxon_p"] == 1.0 and same["t_p"] == 1.0 and same["mean_diff"] == 0.0
    shifted = paired_tests(np.arange(10.0), np.arange(10.0) - 2)  # every difference is 2
    assert shifted["t"] == np.inf and shifted["t_p"] == 0.0 and shifted["ci95"] == [2.0, 2.0]


def test_paired_tests_errors() -> None:
    with pytest.raises(ConfigError, match="same number"):
        paired_tests([1, 2, 3], [1, 2])
    with pytest.raises(ConfigError, match="at least 2"):
        paired_tests([1.0], [2.0])
    with pytest.raises(InputError, match="inf"):
        paired_tests([1.0, 2.0, np.inf], [1.0, 2.5, 3.0])
    r = paired_tests([1.0, 2.0, 3.0, np.inf], [1.5, 2.4, 3.7, 3.0], nonfinite="drop")
    assert r["n"] == 3 and r["n_dropped"] == 1


def test_import_mrisr_stays_light() -> None:
    code = "import sys, mrisr; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)

"""No-reference quality: MSCN (Eq. 4-6), GGD / AGGD fits, BRISQUE features and NIQE.

Real data: ``tests/data/ixi002_t2_slices.npy`` (IXI002 T2 axial slices 60, 65, 70), which the
shipped pristine NIQE model was not fitted on (it leaves out IXI002 T2 slices 50-89).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from scipy.ndimage import gaussian_filter
from scipy.special import gamma

from mrisr.errors import ConfigError, InputError
from mrisr.metrics import noref


@pytest.fixture(scope="module")
def slices(test_data) -> np.ndarray:
    return np.load(test_data / "ixi002_t2_slices.npy").astype(np.float64)


@pytest.fixture(scope="module")
def model() -> noref.NiqeModel:
    return noref.load_niqe_model()


# ----------------------------------------------------------------------------- MSCN


def test_mscn_of_a_constant_image_is_zero() -> None:
    for c in (0.0, 3.0, 1234.5):
        m = noref.mscn(np.full((20, 30), c))
        assert m.shape == (20, 30)
        np.testing.assert_allclose(m, 0.0, atol=1e-9)
        np.testing.assert_allclose(noref.mscn(np.full((9, 9), c), window=None), 0.0, atol=1e-6)


def _direct_mscn(img: np.ndarray, m: int, n: int, c: float = 1.0) -> float:
    """Eq. 4-6 at one pixel: 7×7 Gaussian weights (σ 1), edge pixels replicated."""
    k = np.arange(-3, 4)
    w = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / 2.0)
    w /= w.sum()
    pad = np.pad(img, 3, mode="edge")
    patch = pad[m : m + 7, n : n + 7]  # rows m-3..m+3 of the image
    mu = float((w * patch).sum())
    sd = math.sqrt(float((w * (patch - mu) ** 2).sum()))
    return (img[m, n] - mu) / (sd + c)


def test_mscn_matches_a_direct_per_pixel_computation(slices) -> None:
    img = slices[1]
    m = noref.mscn(img, window=None)  # raw intensities, as Eq. 4-6 are written
    for i, j in [(96, 96), (40, 120), (0, 0), (191, 5), (100, 191)]:
        assert m[i, j] == pytest.approx(_direct_mscn(img, i, j), abs=1e-9)
    # C enters the denominator: a larger C shrinks the coefficients.
    m5 = noref.mscn(img, C=5.0, window=None)
    assert m5[96, 96] == pytest.approx(_direct_mscn(img, 96, 96, c=5.0), abs=1e-9)


def test_intensity_scaling_makes_raw_units_irrelevant(slices) -> None:
    img = slices[0]
    a = noref.mscn(img)
    np.testing.assert_allclose(noref.mscn(img * 7.5 + 100.0), a, atol=1e-9)
    # "auto": min → 0 and 99.5th percentile → 255, clipped
    x = noref.to_byte_scale(img)
    assert x.min() == 0 and x.max() == 255
    assert np.mean(x == 255) == pytest.approx(0.005, abs=0.002)
    np.testing.assert_allclose(noref.to_byte_scale(img, (0, 510)), np.clip(img / 2, 0, 255))
    with pytest.raises(ConfigError):
        noref.to_byte_scale(img, (5, 5))


def test_paired_products_follow_the_definitions() -> None:
    rng = np.random.default_rng(0)
    c = rng.normal(size=(6, 7))
    p = noref.paired_products(c)
    assert p["horizontal"].shape == (6, 6) and p["vertical"].shape == (5, 7)
    assert p["horizontal"][2, 3] == c[2, 3] * c[2, 4]
    assert p["vertical"][2, 3] == c[2, 3] * c[3, 3]
    # D(m, n) = Î(m, n) Î(m − 1, n − 1), stored at [m − 1, n − 1]
    assert p["diagonal"][2, 3] == c[3, 4] * c[2, 3]
    # Î(m, n) Î(m − 1, n + 1), stored at [m − 1, n]
    assert p["off_diagonal"][2, 3] == c[3, 3] * c[2, 4]
    mask = np.ones((6, 7), bool)
    mask[0] = False
    pm = noref.paired_products(c, mask)
    assert pm["vertical"].shape == (4 * 7,) and pm["horizontal"].shape == (5 * 6,)


# ----------------------------------------------------------------------------- fits


@pytest.mark.parametrize("alpha", [0.6, 1.0, 2.0, 3.0])
def test_ggd_fit_recovers_shape_and_variance(alpha) -> None:
    scale = 0.7
    x = stats.gennorm.rvs(alpha, scale=scale, size=200_000, random_state=1)
    a, var = noref.ggd_fit(x)
    assert a == pytest.approx(alpha, rel=0.03)
    assert var == pytest.approx(scale**2 * gamma(3 / alpha) / gamma(1 / alpha), rel=0.02)


def _aggd_samples(nu, bl, br, n, seed):
    rng = np.random.default_rng(seed)
    left = rng.random(n) < bl / (bl + br)  # P(x < 0) = βl / (βl + βr)
    mag = np.abs(stats.gennorm.rvs(nu, size=n, random_state=rng))
    return np.where(left, -bl * mag, br * mag)


@pytest.mark.parametrize(("nu", "bl", "br"), [(0.8, 0.5, 1.5), (1.5, 1.2, 0.4), (2.0, 1, 1)])
def test_aggd_fit_recovers_asymmetric_parameters(nu, bl, br) -> None:
    x = _aggd_samples(nu, bl, br, 300_000, seed=2)
    shape, mean, var_l, var_r = noref.aggd_fit(x)
    k = gamma(3 / nu) / gamma(1 / nu)
    assert shape == pytest.approx(nu, rel=0.04)
    assert var_l == pytest.approx(bl**2 * k, rel=0.02)
    assert var_r == pytest.approx(br**2 * k, rel=0.02)
    eta = (br - bl) * gamma(2 / nu) / gamma(1 / nu)
    assert mean == pytest.approx(eta, abs=0.02 * (bl + br))
    assert mean == pytest.approx(x.mean(), abs=0.01 * (bl + br))  # η is the AGGD's mean


def test_fits_refuse_degenerate_samples() -> None:
    for fit in (noref.ggd_fit, noref.aggd_fit):
        with pytest.raises(ConfigError):
            fit(np.zeros(100))
        with pytest.raises(ConfigError):
            fit([1.0])


# ----------------------------------------------------------------------------- features


def test_brisque_features_are_36_finite_numbers(slices) -> None:
    f = noref.brisque_features(slices[1])
    assert f.shape == (36,) and len(noref.FEATURE_NAMES) == 36
    assert np.isfinite(f).all()
    named = dict(zip(noref.FEATURE_NAMES, f, strict=True))
    assert 0.2 <= named["s1_mscn_shape"] <= 10 and named["s1_mscn_var"] > 0
    assert all(named[f"s2_{o}_var_left"] > 0 for o in noref.ORIENTATIONS)
    with pytest.raises(InputError):
        noref.brisque_features(np.zeros((64, 64)))


def test_niqe_ranks_sharp_slices_better_than_blurred_ones(slices, model) -> None:
    """Real slices: NIQE rises and the MSCN GGD variance and shape fall with the blur."""
    for img in slices:
        versions = [img, gaussian_filter(img, 1.0), gaussian_filter(img, 2.0)]
        q = [noref.niqe(v, model) for v in versions]
        f = [noref.brisque_features(v) for v in versions]
        assert q[0] < q[1] < q[2], q
        assert q[1] - q[0] > 2 and q[0] < 5
        # Blur lowers the local contrast against C and makes the coefficients peakier.
        assert f[0][1] > f[1][1] > f[2][1]  # MSCN variance
        assert f[0][0] > f[1][0] > f[2][0]  # MSCN GGD shape


def test_niqe_rises_with_noise(slices, model) -> None:
    rng = np.random.default_rng(0)
    img = slices[1]
    q = [noref.niqe(img + rng.normal(0, s, img.shape), model) for s in (0, 10, 25)]
    assert q[0] < q[1] < q[2], q


def test_niqe_needs_usable_patches(model) -> None:
    img = np.zeros((64, 64))
    img[:10, :10] = 100
    with pytest.raises(InputError, match="patch"):
        noref.niqe(img, model)


def test_shipped_model_and_its_metadata(model) -> None:
    assert model.mean.shape == (36,) and model.cov.shape == (36, 36)
    assert np.allclose(model.cov, model.cov.T) and np.linalg.eigvalsh(model.cov).min() > 0
    meta = model.meta
    assert meta["n_patches"] > 1000 and meta["command"].startswith("python scripts/fit_niqe.py")
    scans = {s["path"]: s for s in meta["scans"]}
    assert len(scans) >= 4 and sum(s["n_patches"] for s in scans.values()) == meta["n_patches"]
    t2 = scans["ixi002/IXI002-Guys-0828-T2.nii.gz"]
    assert t2["slice_axis"] == 2 and [50, 90] in t2["excluded_slices"]  # the test slices
    assert model.patch_size == noref.NIQE_PATCH


def test_fit_and_reload_a_model(tmp_path, slices) -> None:
    rng = np.random.default_rng(3)
    imgs = [gaussian_filter(s, 0.5) + rng.normal(0, 2, s.shape) for s in slices for _ in (0, 1)]
    m = noref.fit_niqe_model(imgs, sharpness=0.0, meta={"note": "test"})
    assert m.meta["n_images"] == 6 and m.meta["n_patches"] >= 72
    path = tmp_path / "m.json"
    path.write_text(json.dumps(m.to_json()))
    m2 = noref.load_niqe_model(path)
    np.testing.assert_array_equal(m2.cov, m.cov)
    assert noref.niqe(slices[0], m2) == pytest.approx(noref.niqe(slices[0], m))
    with pytest.raises(InputError, match="pristine patches"):
        noref.fit_niqe_model(slices[:1], sharpness=0.0)


def test_model_file_errors_are_one_line(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        noref.load_niqe_model(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="cannot be read"):
        noref.load_niqe_model(bad)
    d = noref.load_niqe_model().to_json()
    d["cov"] = d["cov"][:3]
    bad.write_text(json.dumps(d))
    with pytest.raises(InputError, match="not a valid") as exc:
        noref.load_niqe_model(bad)
    assert "\n" not in str(exc.value)


def test_niqe_volume_per_slice_and_pooled(test_data, model) -> None:
    from mrisr.io import load_volume

    vol = load_volume(test_data / "ixi002_t2_crop.nii.gz").data
    data = np.concatenate([np.zeros(vol.shape[:2] + (1,), np.float32), vol], axis=2)
    r = noref.niqe_volume(data, 2, model)
    v = r["volume"]
    assert v["n_slices"] == 6 and v["n_skipped"] == 1 and r["skipped"][0]["index"] == 0
    assert [s["index"] for s in r["slices"]] == list(range(1, 7))
    assert v["n_patches"] == sum(s["n_patches"] for s in r["slices"])
    assert np.isfinite(v["niqe"]) and 0 < v["niqe"] < 10
    assert len(v["brisque_mean"]) == 36 and v["mscn_shape"] == v["brisque_mean"]["s1_mscn_shape"]
    # one window per volume: raw units do not matter
    r10 = noref.niqe_volume(data * 10.0 + 3.0, 2, model)
    assert r10["volume"]["niqe"] == pytest.approx(v["niqe"], abs=1e-4)
    with pytest.raises(InputError, match="mostly background"):
        noref.niqe_volume(np.zeros((70, 70, 3)), 2, model)
    # too small for two patches: said so, not blamed on the background
    small = np.random.default_rng(0).random((58, 30, 4)) * 100
    with pytest.raises(InputError, match="58×30 voxels hold fewer than 2 32×32"):
        noref.niqe_volume(small, 2, model)


def test_mscn_histograms_and_plot(tmp_path, slices) -> None:
    from mrisr.report.figures import mscn_histogram_plot

    h = {
        "sharp": noref.mscn_histograms(slices),
        "blurred σ 2": noref.mscn_histograms([gaussian_filter(s, 2.0) for s in slices]),
    }
    for panel, (x, d) in h["sharp"].items():
        lo, hi = noref.HISTOGRAM_RANGES[panel]
        assert 0.95 < float(d.sum() * (hi - lo) / len(x)) <= 1.0 + 1e-9
    # blurred coefficients concentrate near zero
    x, d_sharp = h["sharp"]["mscn"]
    assert h["blurred σ 2"]["mscn"][1][np.abs(x) < 0.1].mean() > d_sharp[np.abs(x) < 0.1].mean()
    out = mscn_histogram_plot(h, tmp_path / "mscn.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["mscn.png"]


# ----------------------------------------------------------------------------- CLI


def test_cli_no_reference_json_and_plot(tmp_path, test_data, model) -> None:
    from mrisr.io import load_volume
    from tests.test_bad_input import run_cli

    t2, flair = test_data / "ixi002_t2_crop.nii.gz", test_data / "flair_crop.nii.gz"
    out, png = tmp_path / "q.json", tmp_path / "mscn.png"
    res = run_cli(
        "eval", "--no-reference", t2, flair, "--format", "json", "-o", out, "--mscn-plot", png
    )
    assert res.returncode == 0, res.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    rep = json.loads(out.read_text())
    assert rep["mode"] == "no-reference" and set(rep["results"]) == {str(t2), str(flair)}
    direct = noref.niqe_volume(load_volume(t2).data, 2, model)
    got = rep["results"][str(t2)]
    # mrisr's MR NIQE is reported as niqe_mr (niqe is the standard one: test_standard_iqa)
    assert got["volume"]["niqe_mr"] == pytest.approx(direct["volume"]["niqe"], rel=1e-12)
    assert got["volume"]["slice_axis"] == 2 and len(got["slices"]) == 6
    assert [s["niqe_mr"] for s in got["slices"]] == pytest.approx(
        [s["niqe"] for s in direct["slices"]]
    )
    # one scan: the single-result layout; markdown and csv through the same renderers
    md = run_cli("eval", "--no-reference", t2, "--slices")
    assert md.returncode == 0 and "| NIQE-MR |" in md.stdout and "Slices of" in md.stdout
    csv_ = run_cli("eval", "--no-reference", t2, "--format", "csv")
    rows = csv_.stdout.strip().splitlines()
    assert rows[0].startswith("image,slice,brisque,niqe,niqe_mr") and len(rows) == 1 + 1 + 6


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ref", "{t2}"], "drop --ref"),
        (["--pred", "{t2}", "--shave", "2"], "drop --pred, --shave"),
        ([], "needs images"),
    ],
)
def test_cli_no_reference_option_errors(tmp_path, test_data, extra, message) -> None:
    from tests.test_bad_input import run_cli

    t2 = test_data / "ixi002_t2_crop.nii.gz"
    args = [a.format(t2=t2) for a in extra] + ([t2] if "needs" not in message else [])
    out = tmp_path / "q.json"
    res = run_cli("eval", "--no-reference", *args, "-o", out)
    assert res.returncode == 2 and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_reference_mode_errors_mention_no_reference(tmp_path, test_data) -> None:
    from tests.test_bad_input import run_cli

    t2 = test_data / "ixi002_t2_crop.nii.gz"
    for args, message in (
        ([t2], "only with --no-reference"),
        (["--ref", t2, "--pred", t2, "--mscn-plot", tmp_path / "m.png"], "--mscn-plot is for"),
        (["--pred", t2], "--ref HR"),
    ):
        res = run_cli("eval", *args)
        assert res.returncode == 2 and message in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_no_reference_leaves_no_partial_output(tmp_path, test_data) -> None:
    from unittest import mock

    from tests.test_bad_input import run_cli

    t2 = test_data / "ixi002_t2_crop.nii.gz"
    out, png = tmp_path / "q.json", tmp_path / "m.png"
    blank = tmp_path / "blank.nii.gz"
    import nibabel as nib

    data = np.zeros((70, 70, 3), np.float32)  # room for 4 patches, none of them tissue
    data[5, 5, 1] = 1.0  # not all-zero (load_volume refuses that), but no tissue
    nib.save(nib.Nifti1Image(data, np.eye(4)), blank)
    res = run_cli("eval", "--no-reference", t2, blank, "-o", out, "--mscn-plot", png)
    assert res.returncode == 2 and "background" in res.stderr
    assert not out.exists() and not png.exists()
    res = run_cli("eval", "--no-reference", t2, tmp_path / "none.nii.gz", "-o", out)
    assert res.returncode == 2 and "does not exist" in res.stderr and not out.exists()
    with mock.patch.object(noref.niqe_model, "PRISTINE_FILE", tmp_path / "gone.json"):
        res = run_cli("eval", "--no-reference", t2, "-o", out)
    assert res.returncode == 2 and "NIQE model" in res.stderr and not out.exists()
    assert len(res.stderr.strip().splitlines()) == 1
    out.write_text("keep")
    res = run_cli("eval", "--no-reference", t2, "-o", out)
    assert res.returncode == 2 and "--overwrite" in res.stderr and out.read_text() == "keep"
    res = run_cli("eval", "--no-reference", t2, "-o", out, "--overwrite", "--format", "json")
    assert res.returncode == 0
    assert json.loads(out.read_text())["mode"] == "no-reference"

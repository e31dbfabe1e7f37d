"""Standard BRISQUE and NIQE (:mod:`mrisr.metrics.noref.standard`) against implementations
mrisr did not write.

1. The ``brisque`` package (PyPI 0.2.0, the ``dev`` extra: libsvm + OpenCV), live: the
   shipped model files are its ``svm.txt`` and ``normalize.pickle`` (read without pickle
   here), its libsvm scores the same 36 features as mrisr's SVR to 1e-6 (measured 3e-11),
   and its MSCN coefficients (zero padding, C = 1/255 on [0, 1]) are mrisr's BRISQUE MSCN
   to 1e-9 (measured 6e-11). Its end-to-end score is *not* MATLAB's definition (OpenCV
   bicubic halving without antialiasing, a continuous AGGD fit for every feature, no
   wrap-around pairs, zeros counted as positive): it differs from MATLAB's by up to 8 points
   on the natural images below (18 on skimage's ``moon``) and 25 on the MR slices, so it is
   not compared.
2. ``tests/data/standard_iqa_reference.json``, made by
   ``tests/data/make_standard_iqa_reference.py`` from the source of pyiqa 0.1.16 (MATLAB-
   faithful BRISQUE features, then libsvm's ``svm_predict`` on the shipped model; its NIQE)
   and BasicSR 8d56e3a0 (``calculate_niqe``, which reproduces MATLAB R2021a ``niqe`` on its
   baboon.png: 5.72957 vs 5.72957338). Neither installs next to mrisr (torchvision, timm,
   transformers, lmdb, ...), hence the fixture. Images: 12 slices of 4 real MR scans (the
   shipped crops, the 192×192 IXI slices and the demo scan) and 5 natural photographs that
   ship with scikit-image and matplotlib.

Tolerances (measured maximum in brackets, MR / natural):

- BRISQUE score: 0.05 on its roughly 0-100 scale (1.3e-4 / 0.029). The shape parameters are
  looked up on the grid 0.2:0.001:10; float-level differences between implementations
  (pyiqa builds its tables with lgamma/exp in torch, MATLAB and mrisr with gamma) move a
  shape across a grid boundary now and then: on ``camera`` one shape moves by one grid step
  and the score by 0.03. Features: 1.5e-3 (one grid step; 2.9e-6 / 1.0e-3).
- NIQE vs BasicSR: 2e-3 (5e-6 / 8.6e-4). BasicSR computes in float32 (as MATLAB's ``niqe``
  evidently does: float32 gives its baboon value to 1e-6, float64, mrisr's precision, gives
  5.72996, 4e-4 away); float32 rounding moves some shapes by a grid step.
- NIQE vs pyiqa: 5e-3 (9e-6 / 1.9e-3), for the same reasons; pyiqa also covers the
  single-block slices (96×96), where MATLAB's covariance of one block is 0 and BasicSR's
  ``np.cov`` is NaN.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from mrisr.errors import ConfigError, InputError
from mrisr.metrics.noref import standard as st
from tests.conftest import TEST_DATA

REFERENCE = json.loads((TEST_DATA / "standard_iqa_reference.json").read_text())
ROWS = {r["name"]: r for r in REFERENCE["rows"]}
BRISQUE_TOL, FEATURE_TOL, NIQE_BASICSR_TOL, NIQE_PYIQA_TOL = 0.05, 1.5e-3, 2e-3, 5e-3


def _images() -> dict[str, np.ndarray]:
    """The reference images as mrisr makes them: ``to_luminance`` (MR: the scan's window)."""
    sys.path.insert(0, str(TEST_DATA))
    try:
        import make_standard_iqa_reference as maker
    finally:
        sys.path.remove(str(TEST_DATA))
    out = {}
    for name, _, img, hi in maker.raw_images():
        out[name] = st.to_luminance(img, None if hi is None else (0.0, hi))
    return out


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    return _images()


@pytest.fixture(scope="module")
def pkg():
    brisque = pytest.importorskip(
        "brisque", reason="the independent BRISQUE (pip install -c constraints.txt -e .[dev])"
    )
    return brisque.BRISQUE()


# ----------------------------------------------------------------------------- models


def test_models_read_as_text() -> None:
    m = st.load_brisque_model()
    assert m.sv.shape == (770, 36) and m.coef.shape == (770,)
    assert (m.gamma, m.rho) == (0.05, -155.845)
    assert np.all(m.feature_max > m.feature_min)
    mu, cov, win = st.load_niqe_params()
    assert mu.shape == (36,) and cov.shape == (36, 36) and np.allclose(cov, cov.T)
    np.testing.assert_allclose(win, st._brisque_window(), atol=1e-15)  # fspecial 7, 7/6
    assert (st.MODEL_DIR / "NOTICE.md").read_text().count("Apache-2.0") >= 2


def test_models_are_the_brisque_package_files(pkg) -> None:
    from brisque.models import MODEL_PATH

    from mrisr.metrics.noref.standard_models import BRISQUE_MODEL_FILE

    with open(f"{MODEL_PATH}/svm.txt", "rb") as f:
        assert BRISQUE_MODEL_FILE.read_bytes() == f.read()
    m = st.load_brisque_model()
    np.testing.assert_array_equal(m.feature_min, np.asarray(pkg.scale_params["min_"], float))
    np.testing.assert_array_equal(m.feature_max, np.asarray(pkg.scale_params["max_"], float))


# ----------------------------------------------------------------------------- brisque pkg


def test_svr_stage_matches_libsvm(pkg, images) -> None:
    """mrisr's scaling + SVR against the package's libsvm on the same 36 features."""
    for name in ("flair_iso_crop[24]", "ixi002_t1_crop[17]", "camera", "grace_hopper"):
        f = st.brisque_features(images[name])
        ours = st.brisque_from_features(f)
        theirs = pkg.calculate_image_quality_score([float(v) for v in f])
        assert ours == pytest.approx(theirs, abs=1e-6), name


def test_mscn_matches_brisque_package(pkg, images) -> None:
    for name in ("ixi002_t2_slices[1]", "chelsea"):
        x = images[name]
        ours = st._mscn(x, st._brisque_window(), "constant")
        theirs = pkg.calculate_mscn_coefficients(x / 255.0, 7, 7 / 6)
        np.testing.assert_allclose(ours, theirs, atol=1e-9, err_msg=name)


# ----------------------------------------------------------------------------- reference


@pytest.mark.parametrize("name", list(ROWS))
def test_agrees_with_independent_implementations(images, name) -> None:
    row, x = ROWS[name], images[name]
    # mrisr's 8-bit image is byte for byte the one the references scored
    assert hashlib.sha256(x.astype(np.uint8).tobytes()).hexdigest() == row["sha256_uint8"]
    f = st.brisque_features(x)
    np.testing.assert_allclose(f, row["brisque_features"], atol=FEATURE_TOL, rtol=0)
    assert st.brisque(x) == pytest.approx(row["brisque"], abs=BRISQUE_TOL)
    if min(x.shape) < st.NIQE_BLOCK:
        assert row["niqe_pyiqa"] is None
        with pytest.raises(InputError, match="96×96"):
            st.niqe(x)
        return
    q = st.niqe(x)
    if row["niqe_basicsr"] is not None:
        assert q == pytest.approx(row["niqe_basicsr"], abs=NIQE_BASICSR_TOL)
    assert q == pytest.approx(row["niqe_pyiqa"], abs=NIQE_PYIQA_TOL)


def test_reference_covers_mr_and_natural_images() -> None:
    kinds = [r["kind"] for r in REFERENCE["rows"]]
    assert kinds.count("mr") == 12 and kinds.count("natural") == 5
    assert sum(r["niqe_basicsr"] is not None for r in REFERENCE["rows"]) >= 10
    b = REFERENCE["baboon_check"]
    assert b["basicsr"] == pytest.approx(b["matlab_r2021a_published"], abs=1e-5)


# ----------------------------------------------------------------------------- API


def test_luminance_windows_and_errors() -> None:
    rng = np.random.default_rng(0)
    mr = rng.uniform(0, 900, (40, 40))
    x = st.to_luminance(mr, "mr")
    assert x.min() >= 0 and x.max() == 255 and np.all(x == np.round(x))
    assert np.array_equal(st.to_luminance(mr * 10, "mr"), x)
    assert np.array_equal(st.to_luminance(-mr, (-900, 0)), st.to_luminance(900 - mr, (0, 900)))
    with pytest.raises(InputError, match="window='mr'"):
        st.brisque(mr)  # MR units are not grey levels
    with pytest.raises(InputError, match="magnitude"):
        st.mr_window(-mr)
    with pytest.raises(ConfigError):
        st.to_luminance(mr, "auto")
    with pytest.raises(ConfigError):
        st.to_luminance(mr, (5, 5))
    with pytest.raises(InputError, match="flat"):
        st.brisque(np.full((64, 64), 7.0))
    with pytest.raises(InputError, match="flat"):
        st.niqe(np.full((96, 96), 7.0))
    with pytest.raises(ConfigError, match="8×8"):
        st.brisque(np.zeros((5, 40)))


def test_standard_volume(test_data) -> None:
    import nibabel as nib

    vol = nib.load(test_data / "flair_iso_crop.nii.gz").get_fdata()[:, :, 20:26]
    data = np.concatenate([np.zeros(vol.shape[:2] + (1,)), vol], axis=2)
    r = st.standard_volume(data, 2)
    v = r["volume"]
    assert r["skipped"][0]["index"] == 0 and "background" in r["skipped"][0]["reason"]
    assert [s["index"] for s in r["slices"]] == list(range(1, 7))
    assert v["n_brisque"] == v["n_niqe"] == 6 and v["window"][0] == 0.0
    assert v["brisque"] == pytest.approx(np.mean([s["brisque"] for s in r["slices"]]))
    assert v["niqe"] == pytest.approx(np.mean([s["niqe"] for s in r["slices"]]))
    # one window per scan, shared by its slices
    win = tuple(v["window"])
    assert r["slices"][2]["brisque"] == pytest.approx(st.brisque(data[:, :, 3], win))
    # raw units do not matter (x4 is exact in floating point: no rounding tie moves)
    assert st.standard_volume(data * 4.0, 2)["volume"]["brisque"] == v["brisque"]
    small = st.standard_volume(nib.load(test_data / "flair_crop.nii.gz").get_fdata(), 2)
    assert small["volume"]["niqe"] is None and "96×96" in small["volume"]["notes"][0]
    assert small["volume"]["n_brisque"] == 4 and math.isfinite(small["volume"]["brisque"])


def test_cli_reports_standard_scores_next_to_niqe_mr(tmp_path, test_data) -> None:
    from mrisr.io import load_volume
    from tests.test_bad_input import run_cli

    t2 = test_data / "ixi002_t2_crop.nii.gz"
    out = tmp_path / "q.json"
    res = run_cli("eval", "--no-reference", t2, "--format", "json", "-o", out)
    assert res.returncode == 0, res.stderr
    rep = json.loads(out.read_text())
    assert set(rep["metrics"]) == {"brisque", "niqe", "niqe_mr"}
    v = rep["volume"]
    direct = st.standard_volume(load_volume(t2).data, 2)["volume"]
    assert v["brisque"] == pytest.approx(direct["brisque"], rel=1e-12)
    assert v["niqe"] == pytest.approx(direct["niqe"], rel=1e-12)
    assert v["niqe_mr"] > 0 and v["niqe_mr"] != v["niqe"]
    assert all({"brisque", "niqe", "niqe_mr"} <= set(s) for s in rep["slices"])
    md = run_cli("eval", "--no-reference", t2)
    assert "| BRISQUE | NIQE | NIQE-MR |" in md.stdout


def test_import_stays_light() -> None:
    code = "import sys, mrisr.metrics.noref.standard; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_damaged_model_is_a_one_line_error(tmp_path) -> None:
    from unittest import mock

    from mrisr.metrics.noref import standard_models as sm

    bad = tmp_path / "svm.txt"
    bad.write_text("svm_type c_svc\nkernel_type linear\nSV\n1 1:0.5\n")
    for attr, path in (("BRISQUE_MODEL_FILE", tmp_path / "gone.txt"), ("BRISQUE_MODEL_FILE", bad)):
        sm.load_brisque_model.cache_clear()
        with mock.patch.object(sm, attr, path), pytest.raises(InputError, match="reinstall"):
            sm.load_brisque_model()
    sm.load_brisque_model.cache_clear()
    sm.load_niqe_params.cache_clear()
    with mock.patch.object(sm, "NIQE_PARAMS_FILE", bad), pytest.raises(InputError) as exc:
        sm.load_niqe_params()
    assert "\n" not in str(exc.value)
    sm.load_niqe_params.cache_clear()

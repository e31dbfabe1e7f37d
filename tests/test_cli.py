"""The command line end to end: eval (results, baselines, paired tests), info and demo."""

from __future__ import annotations

import csv
import io
import json

import nibabel as nib
import numpy as np
import pytest

from mrisr.io import load_volume
from tests.test_bad_input import run_cli


@pytest.fixture()
def t2(test_data):
    return test_data / "ixi002_t2_crop.nii.gz"


def _noisy_copy(src, dst, sigma, seed=0):
    img = nib.load(src)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data = data + np.random.default_rng(seed).normal(0, sigma, data.shape).astype(np.float32)
    hdr = img.header.copy()
    hdr.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(data, img.affine, hdr), dst)
    return data


def test_eval_json_has_volume_and_slices(tmp_path, t2) -> None:
    ref = load_volume(t2).data
    pred = _noisy_copy(t2, tmp_path / "sr.nii.gz", 5.0)
    res = run_cli("eval", "--pred", tmp_path / "sr.nii.gz", "--ref", t2, "--format", "json")
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    v = rep["volume"]
    mse = float(((pred.astype(np.float64) - ref) ** 2).mean())
    assert v["psnr"] == pytest.approx(10 * np.log10(float(ref.max()) ** 2 / mse), abs=1e-6)
    nmse = float(((pred.astype(np.float64) - ref) ** 2).sum() / (ref.astype(np.float64) ** 2).sum())
    assert v["nmse"] == pytest.approx(nmse, rel=1e-6)
    assert 0 < v["ssim"] < 1
    assert [s["index"] for s in rep["slices"]] == list(range(6))  # slice axis 2 (1.25 mm)
    assert set(rep["slices"][0]) >= {"index", "psnr", "ssim", "nmse"}


def test_eval_two_results_paired_tests_and_formats(tmp_path, t2) -> None:
    _noisy_copy(t2, tmp_path / "a.nii.gz", 2.0, seed=1)
    _noisy_copy(t2, tmp_path / "b.nii.gz", 8.0, seed=2)
    args = ["eval", "--ref", t2, "--pred", tmp_path / "a.nii.gz", "--pred", tmp_path / "b.nii.gz"]
    rep = json.loads(run_cli(*args, "--format", "json").stdout)
    assert rep["paired"]["psnr"]["n"] == 6
    assert rep["paired"]["psnr"]["mean_diff"] > 5  # a is far less noisy than b
    md = run_cli(*args, "--format", "md").stdout
    assert "| result | PSNR (dB)" in md and "Paired tests" in md
    rows = list(csv.DictReader(io.StringIO(run_cli(*args, "--format", "csv").stdout)))
    assert len(rows) == 2 * 7 and rows[0]["slice"] == "volume"
    out = tmp_path / "r.md"
    assert run_cli(*args, "-o", out).returncode == 0 and out.read_text().startswith("Reference")
    res = run_cli(*args, "-o", out)
    assert res.returncode == 2 and "--overwrite" in res.stderr


def test_eval_mask_and_shave_change_the_numbers(tmp_path, t2) -> None:
    """Errors placed only outside a mask / inside the shaved border do not count."""
    img = nib.load(t2)
    ref = np.asarray(img.dataobj, dtype=np.float32)
    pred = ref.copy()
    pred[:10] += 50.0  # corrupt the first 10 rows of every slice
    hdr = img.header.copy()
    hdr.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(pred, img.affine, hdr), tmp_path / "sr.nii.gz")
    mask = np.zeros(ref.shape, np.uint8)
    mask[20:80, 20:80] = 1
    nib.save(nib.Nifti1Image(mask, img.affine), tmp_path / "mask.nii.gz")
    base = ["eval", "--ref", t2, "--pred", tmp_path / "sr.nii.gz", "--format", "json"]
    plain = json.loads(run_cli(*base).stdout)["volume"]
    masked = json.loads(run_cli(*base, "--mask", tmp_path / "mask.nii.gz").stdout)["volume"]
    shaved = json.loads(run_cli(*base, "--shave", "10").stdout)["volume"]
    assert plain["psnr"] < 40 and plain["ssim"] < 0.99
    # PSNR is +inf there: strict JSON writes it as null (md and csv write inf)
    assert masked["psnr"] is None and masked["nmse"] == 0.0 and masked["ssim"] == 1.0
    assert shaved["psnr"] is None and shaved["ssim"] == 1.0


def test_eval_shape_mismatch_is_a_clear_error(tmp_path, t2) -> None:
    run_cli("degrade", t2, tmp_path / "lr.nii.gz", "-m", "bicubic", "-s", "2")
    res = run_cli("eval", "--ref", t2, "--pred", tmp_path / "lr.nii.gz")
    assert res.returncode == 2 and "shape" in res.stderr and "reference" in res.stderr


def test_eval_refuses_a_prediction_on_a_shifted_grid(tmp_path, t2) -> None:
    """Same shape, voxels 2 mm away (what an odd-size k-space LR grid gives): refused, since
    voxel-wise scores would compare misaligned voxels; a sub-tolerance shift is accepted."""
    img = nib.load(t2)
    for name, mm, ok in (("far.nii.gz", 2.0, False), ("near.nii.gz", 0.01, True)):
        aff = img.affine.copy()
        aff[:3, 3] += aff[:3, 1] / np.linalg.norm(aff[:3, 1]) * mm
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj), aff, img.header), tmp_path / name)
        out = tmp_path / f"{name}.json"
        res = run_cli("eval", "--ref", t2, "--pred", tmp_path / name, "--format", "json", "-o", out)
        assert (res.returncode == 0) is ok, res.stderr
        if not ok:
            assert "mm away from its grid" in res.stderr and not out.exists()
            assert len(res.stderr.strip().splitlines()) == 1


def test_baselines_on_kspace_truncation(shared_data) -> None:
    """IXI002 T2, k-space truncation ×2: zero-filled (sinc) interpolation ≈ 37.7 dB; bicubic on
    the LR grid's true sample positions ≈ 36.6 dB; plain imresize ×2 (the papers' bicubic, which
    assumes block-centred samples) ≈ 33.6 dB — the DESIGN's "bicubic 33.1, zero-fill 37.2" gap
    is mostly that half-pixel shift."""
    ref = shared_data / "ixi002" / "IXI002-Guys-0828-T2.nii.gz"
    base = ["eval", "--ref", ref, "--method", "kspace-truncate", "--scale", "2", "--format", "json"]
    res = run_cli(*base, "--baseline", "bicubic", "--baseline", "zerofill")
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    bic, zf = (r["volume"]["psnr"] for r in rep["results"].values())
    assert 36.0 < bic < 37.2 and 37.2 < zf < 38.3
    assert rep["paired"]["psnr"]["mean_diff"] < 0 and rep["paired"]["psnr"]["t_p"] < 1e-6
    naive = json.loads(run_cli(*base, "--baseline", "bicubic-naive").stdout)["volume"]["psnr"]
    assert 33.0 < naive < 34.2


def test_info_prints_geometry(t2) -> None:
    res = run_cli("info", t2)
    assert res.returncode == 0 and "(96, 96, 6)" in res.stdout and "LAS" in res.stdout


def test_demo_writes_volumes_metrics_and_figure(tmp_path) -> None:
    out = tmp_path / "demo"
    res = run_cli("demo", out)
    assert res.returncode == 0, res.stderr
    names = {p.name for p in out.iterdir()}
    assert {
        "demo_lr_kspace_x2.nii.gz",
        "demo_lr_kspace_x2.nii.gz.json",
        "demo_sr_x2.nii.gz",
        "demo_sr_x2.nii.gz.json",
        "demo_metrics.json",
        "demo_metrics.md",
        "demo_comparison.png",
        "report.html",  # opened in headless Chromium by tests/test_report_browser.py
    } <= names
    rep = json.loads((out / "demo_metrics.json").read_text())
    sr, bicubic, zerofill = (r["volume"]["psnr"] for r in rep["results"].values())
    assert zerofill > bicubic  # zero-fill beats bicubic on k-space truncation
    assert sr > zerofill + 0.5  # the shipped x2 model beats both on a subject it never saw
    assert "edsr-kspace-x2" in (out / "demo_metrics.md").read_text()
    from PIL import Image

    assert Image.open(out / "demo_comparison.png").size[0] > 800
    assert run_cli("demo", out).returncode == 2  # not empty: refuses without --overwrite


def test_models_lists_every_preset_with_counts_next_to_the_paper() -> None:
    res = run_cli("models", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert {
        "edsr-baseline",
        "edsr-40",
        "srcnn",
        "vdsr",
        "seran",
        "w2amsn",
        "w2amsn-s",
        "w2amsn-literal",
        "w2amsn-s-literal",
    } <= set(rows)
    seran = rows["seran"]
    assert seran["params"] == {"2": 3_158_817, "3": 3_343_457, "4": 3_306_529}
    assert seran["params"] == seran["paper_params"] and seran["param_status"] == "matched"
    w2 = rows["w2amsn"]
    assert w2["param_status"] == "not matched" and w2["paper_params"]["2"] == 11_670_000
    assert w2["params"]["2"] == 9_462_313 and rows["w2amsn-literal"]["params"]["2"] == 53_930_793
    md = run_cli("models").stdout
    assert "| seran | x4 | 3,306,529 | 3,306,529 | matched |" in md

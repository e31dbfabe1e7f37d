"""What ``mrisr report`` puts next to the viewers (no browser needed): the paired tests over
slices from an ``mrisr eval`` report, and a ``mrisr learn-kernel`` output's PSF plot and
sidecar (``--kernel``)."""

from __future__ import annotations

import base64
import html
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.ndimage import gaussian_filter

from mrisr.io import load_volume, save_volume
from tests.test_bad_input import run_cli

DATA = Path(__file__).parent / "data"
REF = DATA / "ixi002_t1_crop.nii.gz"


def _paired_rows(text: str) -> dict[tuple[str, str], list[str]]:
    """(comparison, metric) → the cells of the report's paired-tests table."""
    m = re.search(r'<table class="metrics paired">(.*?)</table>', text, re.S)
    assert m, "no paired-tests table"
    rows = {}
    for row in re.findall(r"<tr><th>([^<]*)</th><td>(PSNR|SSIM)</td>(.*?)</tr>", m.group(1)):
        cells = re.findall(r"<td>([^<]*)</td>", row[2])
        rows[(html.unescape(row[0]), row[1])] = [html.unescape(c) for c in cells]
    return rows


def test_the_report_shows_paired_tests_from_an_eval_report(tmp_path: Path) -> None:
    """Two blurs of a real scan scored by `mrisr eval`: the report's paired test of the first
    against the second is the per-slice PSNR difference, recomputed here with scipy."""
    ref = load_volume(REF)
    a, b = tmp_path / "sharp.nii.gz", tmp_path / "blurred.nii.gz"
    save_volume(ref.replace(gaussian_filter(ref.data, 0.7)), a)
    save_volume(ref.replace(gaussian_filter(ref.data, 1.4)), b)
    ev = tmp_path / "eval.json"
    res = run_cli(
        "eval", "--ref", REF, "--pred", a, "--pred", b, "--format", "json", "--output", ev
    )
    assert res.returncode == 0, res.stderr
    out = tmp_path / "r.html"
    res = run_cli("report", out, a, b, "--ref", REF, "--metrics", ev)
    assert res.returncode == 0, res.stderr
    text = out.read_text(encoding="utf-8")
    assert "Paired tests over slices" in text
    rows = _paired_rows(text)
    rep = json.loads(ev.read_text())
    results = rep["results"]
    sa, sb = (results[str(p)]["slices"] for p in (a, b))
    da = np.array([s["psnr"] for s in sa]) - np.array([s["psnr"] for s in sb])
    n, diff, ci, t_p, w_p = rows[("sharp − blurred", "PSNR")]
    assert int(n) == da.size == load_volume(REF).shape[rep["slice_axis"]]
    assert float(diff) == pytest.approx(da.mean(), rel=1e-3)
    assert da.mean() > 1.0  # the lighter blur is closer to the reference on every slice
    assert float(t_p) == pytest.approx(stats.ttest_rel(da, np.zeros_like(da)).pvalue, rel=1e-2)
    assert float(w_p) < 0.05
    lo, hi = (float(x) for x in ci.strip("[]").split(","))
    assert lo < da.mean() < hi
    assert ("sharp − blurred", "SSIM") in rows


@pytest.fixture(scope="module")
def thick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The FLAIR crop made 4 mm thick along axis 2 (a real scan, a known protocol)."""

    out = tmp_path_factory.mktemp("thick") / "thick.nii.gz"
    res = run_cli(
        "degrade", DATA / "flair_iso_crop.nii.gz", out, "--method", "thick-slice",
        "--thickness", "4", "--spacing", "4", "--axis", "2",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return out


def test_the_report_shows_a_learned_profile_and_its_scan(thick: Path, tmp_path: Path) -> None:
    """`mrisr report OUT --kernel P.npy`: the PSF plot written by learn-kernel (byte for byte),
    the sidecar's FWHM in the provenance, and the scan it came from in the viewer."""
    prof = tmp_path / "profile.npy"
    res = run_cli(
        "learn-kernel", prof, "--lr", thick, "--through-plane", "--profile", "rect",
        "--thickness", "4",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = tmp_path / "k.html"
    res = run_cli("report", out, "--kernel", prof)
    assert res.returncode == 0, res.stderr
    text = out.read_text(encoding="utf-8")
    assert base64.b64encode(prof.with_suffix(".png").read_bytes()).decode() in text
    assert "slice profile (PSF along the slice axis)" in text
    side = json.loads(prof.with_suffix(".json").read_text())
    assert f"<th>kernel.fwhm_mm</th><td>{side['fwhm_mm']:.4g}</td>" in text
    data = json.loads(
        re.search(r'id="mrisr-data">(.*?)</script>', text, re.S).group(1).replace("<\\/", "</")
    )
    assert [v["label"] for v in data["volumes"]] == ["thick"]


def test_the_report_draws_a_2d_kernel_without_its_png(tmp_path: Path) -> None:
    """A 2-D kernel whose .png is gone: the plot is drawn again; volumes given explicitly."""
    from mrisr.degrade.kernel import save_kernel

    k = np.outer(*(2 * [np.array([1.0, 4.0, 6.0, 4.0, 1.0])]))
    kp = tmp_path / "k.npy"
    save_kernel(kp, k / k.sum(), {"scale": 2, "title": "test kernel"})
    kp.with_suffix(".png").unlink()
    out = tmp_path / "k.html"
    res = run_cli("report", out, REF, "--kernel", kp)
    assert res.returncode == 0, res.stderr
    text = out.read_text(encoding="utf-8")
    assert "learned kernel (PSF)" in text and "<th>kernel.scale</th><td>2</td>" in text
    assert text.count('<figure class="fig"><img alt="learned kernel (PSF)"') == 1


def test_bad_kernels_are_one_line_errors_with_no_report(tmp_path: Path) -> None:
    pickled = tmp_path / "p.npy"
    np.save(pickled, np.array([pickle.dumps(1)], dtype=object), allow_pickle=True)
    k1 = tmp_path / "nosrc.npy"
    np.save(k1, np.array([0.25, 0.5, 0.25]))
    k1.with_suffix(".json").write_text(json.dumps({"scan": str(tmp_path / "gone.nii.gz")}))
    cases = [
        (("--kernel", pickled), "pickled"),
        (("--kernel", tmp_path / "missing.npy"), "does not exist"),
        (("--kernel", k1), "names no scan"),
        ((), "at least one VOLUME"),
    ]
    for args, msg in cases:
        out = tmp_path / "r.html"
        res = run_cli("report", out, *args)
        assert res.returncode != 0 and msg in res.stderr, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not out.exists()

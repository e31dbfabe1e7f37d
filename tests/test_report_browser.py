"""``mrisr report``: a self-contained HTML report with linked niivue viewers.

The browser tests open the report in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium; WebGL 2 through SwiftShader, no GPU) and check that
every viewer loaded its volume, that moving the crosshair in one viewer moves it in the others,
and that the canvases are not blank. Without the browser they are skipped, saying why; with
``MRISR_REQUIRE_BROWSER=1`` (set by .ci/run once it installed Chromium) they fail instead.
The other tests need no browser: the file is self-contained and bounded in size, the embedded
volumes decode to the inputs, and bad input gives one line and no file.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from mrisr.io import load_volume
from mrisr.io.volume import Volume
from mrisr.report.html import MAX_BYTES, build_html, write_report
from tests.test_bad_input import run_cli

DATA = Path(__file__).parent / "data"
REF = DATA / "ixi002_t1_crop.nii.gz"  # 80 x 100 x 34: all three views show tissue


def four_volumes() -> list[tuple[str, Volume]]:
    """LR (2x2 in-plane block means, shown by nearest neighbour), two blurs, the reference."""
    ref = load_volume(REF)
    d = ref.data
    i, j = (d.shape[0] // 2) * 2, (d.shape[1] // 2) * 2
    lr = d.copy()
    blocks = d[:i, :j].reshape(i // 2, 2, j // 2, 2, -1).mean(axis=(1, 3))
    lr[:i, :j] = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)
    return [
        ("LR", ref.replace(lr)),
        ("blur 0.8", ref.replace(gaussian_filter(d, 0.8))),
        ("blur 1.5", ref.replace(gaussian_filter(d, 1.5))),
        ("reference", ref),
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    metrics = {"blur 0.8": {"psnr": 35.1, "ssim": 0.95}, "LR": {"psnr": 30.0, "ssim": 0.9}}
    prov = {"model": "test", "weights_sha256": "0" * 64, "parameters": {"scale": 2}}
    return write_report(out, four_volumes(), "reference", metrics, prov, notes=["a note"])


def _data(text: str) -> dict:
    m = re.search(r'<script type="application/json" id="mrisr-data">(.*?)</script>', text, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_the_report_is_self_contained_and_small(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert len(text.encode()) < MAX_BYTES
    # Nothing is fetched: no external script, stylesheet, image or frame.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert not re.search(r"<script[^>]*\ssrc\s*=", text, re.I)
    assert not re.search(r"<link[^>]*stylesheet", text, re.I)
    assert "BSD-2-Clause" in text and "@niivue/niivue" in text
    for part in ("Metrics", "Provenance", "weights_sha256", "a note", "blur 0.8"):
        assert part in text


def test_embedded_volumes_decode_to_the_inputs(report: Path) -> None:
    """Each embedded NIfTI has the input's grid and intensities to within half a level."""
    data = _data(report.read_text(encoding="utf-8"))
    vols = four_volumes()
    assert [v["label"] for v in data["volumes"]] == [lab for lab, _ in vols]
    for emb, (_, vol) in zip(data["volumes"], vols, strict=True):
        img = nib.Nifti1Image.from_bytes(gzip.decompress(base64.b64decode(emb["nii"])))
        got = np.asarray(img.dataobj, dtype=np.float64)
        assert got.shape == vol.shape
        np.testing.assert_allclose(img.affine, vol.affine, atol=1e-4)
        step = float(vol.data.max() - vol.data.min()) / 1023
        assert np.abs(got - vol.data).max() <= 0.51 * step + 1e-3
        assert (emb["err"] is None) == emb["reference"]


def test_large_volumes_are_cropped_and_the_report_says_so() -> None:
    ref = load_volume(REF)
    rng = np.random.default_rng(0)
    big = ref.replace(np.tile(ref.data, (2, 2, 2)) + rng.normal(0, 5, (160, 200, 68)))
    vols = [("a", big), ("b", big.replace(big.data * 1.1))]
    limit = 2_284_381 + 200_000 + 1_500_000  # the viewer + 1.5 MB of volumes
    text = build_html(vols, "b", max_bytes=limit)
    assert len(text.encode()) <= limit
    assert "shown cropped to" in text and "of the 160x200x68 grid" in text
    assert "shown cropped" not in build_html(vols[:1])


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    other = tmp_path / "other.nii.gz"
    bad_json = tmp_path / "eval.json"
    bad_json.write_text("{}")
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), other)
    cases = {
        "does not exist": ["report", out, REF, tmp_path / "missing.nii.gz"],
        "is not on the grid": ["report", out, REF, other],
        "labels": ["report", out, REF, REF, "--labels", "a"],
        "is not an mrisr eval JSON report": ["report", out, REF, "--metrics", bad_json],
    }
    for expect, args in cases.items():
        res = run_cli(*args)
        assert res.returncode == 2, (expect, res.stderr)
        assert expect in res.stderr and len(res.stderr.strip().splitlines()) == 1
        assert not out.exists()
        assert not list(tmp_path.glob(".r.html*"))  # no temporary left behind
    out.write_text("keep")
    res = run_cli("report", out, REF)
    assert res.returncode == 2 and "exists already" in res.stderr
    assert out.read_text() == "keep"
    res = run_cli("report", out, REF, other, "--resample", "--ref", REF, "--overwrite")
    assert res.returncode == 0, res.stderr
    assert "resampled (nearest neighbour)" in out.read_text()
    # --metrics: an eval report's table (results named by a volume's path get its label)
    slices = [{"index": 0, "psnr": 30.0, "ssim": 0.9}, {"index": 1, "psnr": 31.0, "ssim": 0.91}]
    good = {"results": {str(REF): {"volume": {"psnr": 30.5, "ssim": 0.905}, "slices": slices}}}
    (tmp_path / "good.json").write_text(json.dumps(good))
    res = run_cli(
        "report", out, REF, "--labels", "T1", "--metrics", tmp_path / "good.json", "--overwrite"
    )
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    assert "<tr><th>T1</th><td>30.5</td>" in text and "PSNR and SSIM per slice" in text


# -- the browser --------------------------------------------------------------------------


def _chromium() -> tuple[str, str] | str:
    """(browser, driver) paths, or why there is none."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -c constraints.txt -e '.[dev]')"
    browser = next(
        (
            p
            for p in ("/usr/lib/chromium/chromium", shutil.which("chromium"))
            if p and Path(p).exists()
        ),
        None,
    )
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        return "Chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    found = _chromium()
    if isinstance(found, str):
        if os.environ.get("MRISR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MRISR_REQUIRE_BROWSER=1 but {found}")
        pytest.skip(f"no headless browser: {found}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--use-angle=swiftshader",  # WebGL 2 on the CPU
        "--enable-unsafe-swiftshader",
        "--ignore-gpu-blocklist",
        "--window-size=1400,1000",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(found[1]))
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def _wait_loaded(driver, n: int, timeout: float = 45.0) -> dict:
    t0 = time.monotonic()
    state: dict = {}
    while time.monotonic() - t0 < timeout:
        state = driver.execute_script(
            "const R = window.mrisrReport;"
            "return R ? {loaded: R.loaded, ready: R.ready, error: R.error} : {};"
        )
        if state.get("error"):
            pytest.fail(f"the viewer failed: {state['error']}")
        if state.get("ready"):
            break
        time.sleep(0.2)
    assert state.get("ready") and state.get("loaded") == n, state
    return state


def _crosshairs(driver) -> np.ndarray:
    return np.array(
        driver.execute_script(
            "const R = window.mrisrReport; return R.viewers.map((_, i) => R.crosshair(i));"
        )
    )


def test_the_viewers_load_link_and_draw(report: Path, browser) -> None:
    check_linked_views(browser, report, load_volume(REF).shape)


def test_the_demo_report_shows_four_linked_volumes(browser, tmp_path: Path) -> None:
    """`mrisr demo` writes report.html: LR, bicubic, SR and the reference, linked."""
    from mrisr.data import demo_scan_path

    res = run_cli("demo", tmp_path / "demo")
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "demo" / "report.html").read_text(encoding="utf-8")
    for part in ("checkpoint_sha256", "PSNR and SSIM per slice", "data:image/png;base64,",
                 "Paired tests over slices", " − bicubic</th><td>PSNR"):  # fmt: skip
        assert part in text
    check_linked_views(
        browser, tmp_path / "demo" / "report.html", load_volume(demo_scan_path()).shape
    )


def check_linked_views(browser, report: Path, shape: tuple[int, ...]) -> None:
    """Four viewers (the last the reference) loaded, linked by the crosshair, not blank."""
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(report.as_uri())
    _wait_loaded(browser, 4)
    shapes = browser.execute_script(
        "return window.mrisrReport.viewers.map(nv => "
        "[nv.volumes.length, Array.from(nv.volumes[0].dims).slice(1, 4)]);"
    )
    # Every viewer holds its volume on the shared grid; all but the reference an error map.
    assert [s[0] for s in shapes] == [2, 2, 2, 1]
    assert all(s[1] == list(shape) for s in shapes)

    # A real click in viewer 0 moves its crosshair, and the link moves the three others.
    before = _crosshairs(browser)
    assert np.allclose(before, before[0], atol=1e-3)
    canvas = browser.find_element(By.ID, "mrisr-view-0")
    w, h = canvas.size["width"], canvas.size["height"]
    ActionChains(browser).move_to_element_with_offset(canvas, -w // 5, h // 5).click().perform()
    time.sleep(0.3)
    after = _crosshairs(browser)
    assert np.abs(after[0] - before[0]).max() > 1.0, (before[0], after[0])
    np.testing.assert_allclose(after[1:], np.repeat(after[:1], 3, axis=0), atol=1e-3)

    # The page's hook: viewer 2 to a chosen point (mm); the others follow.
    target = (after[0] + before[0]) / 2
    browser.execute_script("window.mrisrReport.setCrosshair(2, arguments[0]);", target.tolist())
    moved = _crosshairs(browser)
    np.testing.assert_allclose(moved, np.repeat(target[None], 4, axis=0), atol=0.6)

    # A right-drag in viewer 1 sets a new display window there (niivue's contrast drag), and
    # the link gives the others the same window.
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.mouse_button import MouseButton

    cal_js = (
        "return window.mrisrReport.viewers.map("
        "nv => [nv.volumes[0].cal_min, nv.volumes[0].cal_max]);"
    )
    win0 = np.array(browser.execute_script(cal_js))
    c1 = browser.find_element(By.ID, "mrisr-view-1")
    # The centre of viewer 1's first tile (niivue's screenSlices, device pixels), relative
    # to the canvas centre in CSS pixels: the drag box covers tissue, not background.
    x, y = browser.execute_script(
        "const nv = window.mrisrReport.viewers[1], t = nv.screenSlices[0].leftTopWidthHeight;"
        "const r = nv.uiData.dpr || window.devicePixelRatio || 1;"
        "return [(t[0] + t[2] / 2) / r, (t[1] + t[3] / 2) / r];"
    )
    dx, dy = int(x - c1.size["width"] / 2), int(y - c1.size["height"] / 2)
    drag = ActionBuilder(browser)
    drag.pointer_action.move_to(c1, dx - 20, dy - 20).pointer_down(MouseButton.RIGHT).move_by(
        20, 20
    ).move_by(20, 20).pointer_up(MouseButton.RIGHT)
    drag.perform()
    time.sleep(0.3)
    win1 = np.array(browser.execute_script(cal_js))
    assert np.abs(win1[1] - win0[1]).max() > 1.0, (win0, win1)
    np.testing.assert_allclose(win1, np.repeat(win1[1:2], 4, axis=0), rtol=1e-6)

    # Not blank: each canvas shows an image with structure (not one flat colour).
    for i in range(4):
        png = browser.find_element(By.ID, f"mrisr-view-{i}").screenshot_as_png
        px = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
        assert px.std() > 20 and (px > 40).mean() > 0.05, (i, px.std(), (px > 40).mean())


def test_upscale_report_shows_the_input_and_the_result_with_provenance(tmp_path: Path) -> None:
    """`mrisr upscale LR OUT --report` writes OUT.html next to OUT: the LR (on the result's
    grid) and the result, with the model and its sha256; refused before any work for two
    inputs or an existing OUT.html."""
    from mrisr.degrade import KspaceTruncate, degrade_volume
    from mrisr.io import load_volume, save_volume
    from tests.test_bad_input import run_cli

    hr = load_volume(Path(__file__).parent / "data" / "ixi002_t2_crop.nii.gz")
    lr, _ = degrade_volume(hr.replace(hr.data[:, :, :4]), [KspaceTruncate(scale=2)], seed=0)
    src, out = tmp_path / "lr.nii.gz", tmp_path / "sr.nii.gz"
    save_volume(lr, src)
    res = run_cli("upscale", src, out, "--report", "--no-progress", "--axis", "2")
    assert res.returncode == 0, res.stderr
    html = (tmp_path / "sr.html").read_text()
    sha = json.loads(Path(f"{out}.json").read_text())["checkpoint_sha256"]
    assert sha in html and "edsr-baseline" in html
    data = _data(html)
    assert [v["label"] for v in data["volumes"]] == ["input", "result"]
    (tmp_path / "sr2.html").write_text("keep")
    for args in ((src, src, tmp_path / "two"), (src, tmp_path / "sr2.nii.gz")):
        res = run_cli("upscale", *args, "--report", "--no-progress")
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "sr2.nii.gz").exists() and not (tmp_path / "two").exists()
    assert (tmp_path / "sr2.html").read_text() == "keep"

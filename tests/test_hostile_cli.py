"""Hostile input to the command line: every failure is ONE line on stderr
(``mrisr: error: ...``, naming the option for usage errors), a non-zero exit (2 for usage and
input errors), no traceback, no output or temporary file left, an existing output unchanged,
and no hang. Plus the policies behind them: strict JSON (``null`` for inf), no non-finite
voxel in any output, disk-full writes, ``.txt`` lists that loop, partial batches."""

from __future__ import annotations

import errno
import json
import math
import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.test_bad_input import run_cli

DATA = Path(__file__).parent / "data"
T2 = DATA / "ixi002_t2_crop.nii.gz"  # 96 x 96 x 6, 0.94 x 0.94 x 1.25 mm
LIMIT_S = 10.0


def _save(data: np.ndarray, path: Path, like: Path = T2) -> Path:
    img = nib.load(like)
    hdr = img.header.copy()
    hdr.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), img.affine, hdr), path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A 32 x 32 x 4 crop of the real T2 crop: upscaled in about a second."""
    d = tmp_path_factory.mktemp("tiny")
    data = np.asarray(nib.load(T2).dataobj, dtype=np.float32)[32:64, 32:64, 1:5]
    return _save(data, d / "tiny.nii.gz")


@pytest.fixture(scope="module")
def huge(tmp_path_factory) -> Path:
    """The T2 crop scaled so that its maximum is 3e38 (float32 ends at 3.4e38)."""
    d = tmp_path_factory.mktemp("huge")
    data = np.asarray(nib.load(T2).dataobj, dtype=np.float64)
    return _save((data / data.max() * 3e38).astype(np.float32), d / "huge.nii.gz")


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*tmp*"))


def assert_one_line(res, code: int | None = 2, *names: str) -> str:
    """One ``mrisr: error:`` line on stderr naming every one of ``names``; no traceback."""
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    assert res.returncode != 0, res.stdout
    if code is not None:
        assert res.returncode == code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("mrisr: error: "), lines[0]
    for n in names:
        assert n.lower() in lines[0].lower(), lines[0]
    return lines[0]


def run_timed(*args, limit: float = LIMIT_S):
    t0 = time.monotonic()
    res = run_cli(*args)
    took = time.monotonic() - t0
    assert took < limit, f"took {took:.1f} s: {args}"
    return res


# ----------------------------------------------------------------------- usage errors

IN, OUT = "{IN}", "{OUT}"
DEG = ["degrade", IN, OUT]
UP = ["upscale", IN, OUT, "--no-progress"]
LK = ["learn-kernel", "{DIR}/k.npy", "--hr", IN, "--lr", IN]

USAGE = {
    # id: (argv, words the line must contain)
    "degrade-scale-0": ([*DEG, "-m", "bicubic", "--scale", "0"], ["--scale", ">= 1", "'0'"]),
    "degrade-scale-neg": ([*DEG, "-m", "bicubic", "--scale", "-2"], ["--scale", "'-2'"]),
    "degrade-scale-float": ([*DEG, "-m", "bicubic", "--scale", "1.5"], ["--scale", "integer"]),
    "degrade-scale-text": ([*DEG, "-m", "bicubic", "-s", "two"], ["--scale", "integer"]),
    "degrade-method-unknown": ([*DEG, "-m", "nope"], ["--method", "bicubic", "kspace-truncate"]),
    "degrade-method-missing": ([*DEG, "--scale", "2"], ["--method", "bicubic"]),
    "degrade-method-no-value": ([*DEG, "--method"], ["--method"]),
    "degrade-out-missing": (["degrade", IN, "-m", "bicubic"], ["OUT"]),
    "degrade-no-args": (["degrade"], ["IN"]),
    "degrade-unknown-option": ([*DEG, "-m", "bicubic", "--bogus"], ["--bogus"]),
    "degrade-axis-text": ([*DEG, "-m", "bicubic", "--axis", "z"], ["--axis"]),
    "degrade-snr-text": ([*DEG, "-m", "bicubic", "--snr", "high"], ["--snr"]),
    "degrade-volume-index-neg": ([*DEG, "-m", "bicubic", "--volume-index", "-1"], ["--volume"]),
    "degrade-extra-arg": ([*DEG, "extra", "-m", "bicubic"], ["extra"]),
    "upscale-batch-0": ([*UP, "--batch", "0"], ["--batch", ">= 1"]),
    "upscale-batch-neg": ([*UP, "--batch", "-3"], ["--batch"]),
    "upscale-scale-0": ([*UP, "--scale", "0"], ["--scale", ">= 1"]),
    "upscale-scale-neg": ([*UP, "--scale", "-2"], ["--scale"]),
    "upscale-scale-float": ([*UP, "--scale", "1.5"], ["--scale", "integer"]),
    "upscale-tile-text": ([*UP, "--tile", "big"], ["--tile"]),
    "upscale-max-memory-text": ([*UP, "--max-memory", "lots"], ["--max-memory"]),
    "upscale-unknown-option": ([*UP, "--tiles", "4"], ["--tiles"]),
    "upscale-out-missing": (["upscale", IN], ["missing"]),
    "eval-scale-0": (["eval", "--ref", IN, "--baseline", "bicubic", "--scale", "0"], ["--scale"]),
    "eval-shave-neg": (["eval", "--ref", IN, "--pred", IN, "--shave", "-1"], ["--shave"]),
    "eval-format": (["eval", "--ref", IN, "--pred", IN, "--format", "xml"], ["--format", "json"]),
    "eval-baseline": (["eval", "--ref", IN, "--baseline", "cubic"], ["--baseline", "zerofill"]),
    "learn-kernel-steps-0": ([*LK, "--scale", "2", "--steps", "0"], ["--steps", ">= 1"]),
    "learn-kernel-steps-neg": ([*LK, "--scale", "2", "--steps", "-5"], ["--steps"]),
    "learn-kernel-slice-neg": ([*LK, "--scale", "2", "--slice", "-1"], ["--slice"]),
    "learn-kernel-no-scale": (LK, ["--scale"]),
    "learn-kernel-no-hr": (["learn-kernel", "{DIR}/k.npy", "--lr", IN, "-s", "2"], ["--hr"]),
    "models-format": (["models", "--format", "xml"], ["--format", "csv"]),
    "train-stop-at-0": (["train", "smoke", "--stop-at", "0"], ["--stop-at"]),
    "convert-no-model": (["convert-pth", "{DIR}/w.pth", "{DIR}/ck", "--scale", "2"], ["--model"]),
    "export-opset-text": (["export", "x", "--onnx", "{DIR}/m.onnx", "--opset", "new"], ["--opset"]),
    "fid-no-sets": (["fid", "--weights", "{DIR}/w.pth"], ["--a"]),
    "info-no-input": (["info"], ["IN"]),
    "unknown-command": (["upscal", IN, OUT], ["upscal"]),
}


def _fill(argv: list[str], d: Path, inp: Path) -> list[str]:
    return [a.replace(IN, str(inp)).replace(OUT, str(d / "out.nii.gz")).replace("{DIR}", str(d))
            for a in argv]  # fmt: skip


@pytest.mark.parametrize("case", list(USAGE), ids=list(USAGE))
def test_usage_errors_are_one_line(case, tmp_path) -> None:
    argv, words = USAGE[case]
    res = run_timed(*_fill(argv, tmp_path, T2))
    line = assert_one_line(res, 2, *words)
    assert "Usage:" not in res.stderr and "╭" not in res.stderr and "│" not in res.stderr, line
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file


# ----------------------------------------------------------------------- values refused

BIG = str(2**64)
VALUES = {
    "seed-2**64": ([*DEG, "-m", "bicubic", "--seed", BIG], ["--seed", "2**63 - 1", BIG]),
    "seed-2**63": ([*DEG, "-m", "bicubic", "--seed", str(2**63)], ["--seed", "2**63 - 1"]),
    "seed-negative": ([*DEG, "-m", "bicubic", "--seed", "-1"], ["--seed", "from 0"]),
    "seed-noise-2**100": (
        [*DEG, "-m", "bicubic", "--snr", "20", "--seed", str(2**100)],
        ["--seed"],
    ),
    "snr-nan": ([*DEG, "-m", "bicubic", "--snr", "nan"], ["--snr", "> 0", "nan"]),
    "snr-inf": ([*DEG, "-m", "bicubic", "--snr", "inf"], ["--snr", "finite"]),
    "snr-minus-inf": ([*DEG, "-m", "bicubic", "--snr", "-inf"], ["--snr"]),
    "snr-zero": ([*DEG, "-m", "bicubic", "--snr", "0"], ["--snr", "> 0"]),
    "snr-negative": ([*DEG, "-m", "bicubic", "--snr", "-5"], ["--snr", "> 0"]),
    "sigma-nan": ([*DEG, "-m", "gaussian", "--sigma", "nan"], ["sigma", "finite"]),
    "fwhm-inf": ([*DEG, "-m", "gaussian", "--fwhm-mm", "inf"], ["fwhm_mm", "finite"]),
    "thickness-nan": ([*DEG, "-m", "thick-slice", "--thickness", "nan"], ["thickness"]),
    "spacing-inf": ([*DEG, "-m", "thick-slice", "--spacing", "inf"], ["spacing"]),
    "thick-slice-scale": ([*DEG, "-m", "thick-slice", "-s", "2"], ["--scale", "--thickness"]),
    "fermi-radius-nan": ([*DEG, "-m", "kspace-zerofill", "--fermi-radius", "nan"], ["radius"]),
    "fermi-width-inf": ([*DEG, "-m", "kspace-zerofill", "--fermi-width", "inf"], ["width"]),
    "max-memory-0": ([*UP, "--max-memory", "0"], ["--max-memory", "> 0"]),
    "max-memory-neg": ([*UP, "--max-memory", "-100"], ["--max-memory", "> 0"]),
    "max-memory-nan": ([*UP, "--max-memory", "nan"], ["--max-memory", "nan"]),
    "max-memory-inf": ([*UP, "--max-memory", "inf"], ["--max-memory", "finite"]),
    "tile-1": ([*UP, "--tile", "1"], ["--tile 1", "at least 32"]),
    "tile-7": ([*UP, "--tile", "7"], ["--tile 7", "at least 32"]),
    "tile-31": ([*UP, "--tile", "31"], ["--tile 31", "at least 32"]),
    "tile-1-with-memory": ([*UP, "--tile", "1", "--max-memory", "64"], ["--tile 1"]),
    "tile-minus-1-alone": ([*UP, "--tile", "-1"], ["--tile -1", "--max-memory"]),
    "tile-minus-2": ([*UP, "--tile", "-2"], ["--tile -2", "-1 (automatic"]),
    "tile-minus-big": ([*UP, "--tile", "-1000"], ["--tile -1000"]),
    "device-unknown": ([*UP, "--device", "tpu"], ["--device", "cpu"]),
    "weights-unknown": ([*UP, "--weights", "edsr-x3"], ["edsr-x3", "edsr-kspace-x2"]),
    "upscale-scale-3": ([*UP, "--scale", "3"], ["x3", "x2"]),
    "learn-kernel-seed-neg": ([*LK, "-s", "2", "--seed", "-1"], ["--seed", "2**32 - 1"]),
    "learn-kernel-seed-2**32": ([*LK, "-s", "2", "--seed", str(2**32)], ["--seed", "2**32 - 1"]),
    "learn-kernel-scale-3": ([*LK, "-s", "3", "--steps", "1"], ["--scale 3"]),
    "degrade-axis-7": ([*DEG, "-m", "bicubic", "--axis", "7"], ["--axis", "got 7"]),
    "degrade-scale-not-dividing": ([*DEG, "-m", "bicubic", "--scale", "7"], ["--crop"]),
}


@pytest.mark.parametrize("case", list(VALUES), ids=list(VALUES))
def test_values_that_make_no_sense_are_refused_before_any_work(case, tmp_path) -> None:
    argv, words = VALUES[case]
    res = run_timed(*_fill(argv, tmp_path, T2))
    assert_one_line(res, 2, *words)
    assert list(tmp_path.iterdir()) == []


def test_a_tiny_tile_is_refused_at_once_on_a_small_scan(tiny, tmp_path) -> None:
    """``--tile 1`` on 32 x 32 x 4 ran 75-120 s; now it is refused before the model loads."""
    res = run_timed("upscale", tiny, tmp_path / "sr.nii.gz", "--tile", "1", limit=5.0)
    assert_one_line(res, 2, "--tile 1")
    assert list(tmp_path.iterdir()) == []


def test_a_value_error_leaves_an_existing_output_unchanged(tmp_path) -> None:
    out = tmp_path / "out.nii.gz"
    out.write_bytes(b"precious")
    (tmp_path / "out.nii.gz.json").write_text("{}")
    for extra in (["--snr", "nan"], ["--seed", BIG], ["--scale", "0"]):
        res = run_timed("degrade", T2, out, "-m", "bicubic", "--overwrite", *extra)
        assert_one_line(res, 2, extra[0])
        assert out.read_bytes() == b"precious" and _temps(tmp_path) == []


def test_the_library_checks_the_same_values() -> None:
    from mrisr.degrade import degrade_volume, make_degradation
    from mrisr.errors import ConfigError
    from mrisr.infer.upsample import UpscaleOptions
    from mrisr.io import load_volume

    vol = load_volume(T2)
    for seed in (-1, 2**63, 2**64):
        with pytest.raises(ConfigError, match="seed"):
            degrade_volume(vol, make_degradation("bicubic", scale=2), seed=seed)
    for snr in (math.nan, math.inf, 0.0, -1.0):
        with pytest.raises(ConfigError, match="snr"):
            make_degradation("rician", snr=snr)
    with pytest.raises(ConfigError, match="sigma"):
        make_degradation("rician", sigma=math.nan)
    for bad in ({"tile": 1}, {"tile": -2}, {"tile": -1}, {"batch": 0}, {"max_memory_mb": -1.0}):
        with pytest.raises(ConfigError):
            UpscaleOptions(**bad)
    assert UpscaleOptions(tile=8, margin=4).tile == 8  # >= max(8, 2 x margin)
    assert UpscaleOptions(tile=-1, max_memory_mb=64).tile == -1


# ----------------------------------------------------------------------- missing inputs

INPUTS = {
    "degrade-missing": (["degrade", "{DIR}/none.nii.gz", OUT, "-m", "bicubic"], "does not exist"),
    "upscale-missing": (["upscale", "{DIR}/none.nii.gz", OUT], "does not exist"),
    "info-missing": (["info", "{DIR}/none.nii"], "does not exist"),
    "eval-pred-missing": (["eval", "--ref", IN, "--pred", "{DIR}/none.nii.gz"], "does not exist"),
    "eval-ref-missing": (["eval", "--ref", "{DIR}/none.nii.gz", "--pred", IN], "does not exist"),
    "degrade-empty-file": (["degrade", "{DIR}/empty.nii.gz", OUT, "-m", "bicubic"], "empty"),
    "upscale-empty-file": (["upscale", "{DIR}/empty.nii.gz", OUT], "empty"),
    "degrade-output-folder-missing": (
        ["degrade", IN, "{DIR}/no/out.nii.gz", "-m", "bicubic"],
        "does not exist",
    ),
    "degrade-output-png": (["degrade", IN, "{DIR}/out.png", "-m", "bicubic"], ".nii"),
    "eval-output-folder-missing": (
        ["eval", "--ref", IN, "--pred", IN, "-o", "{DIR}/no/r.json"],
        "does not exist",
    ),
}


@pytest.mark.parametrize("case", list(INPUTS), ids=list(INPUTS))
def test_missing_or_unreadable_inputs_are_one_line(case, tmp_path) -> None:
    argv, word = INPUTS[case]
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    res = run_timed(*_fill(argv, tmp_path, T2))
    assert_one_line(res, 2, word)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.nii.gz"]


# ----------------------------------------------------------------------- disk full / no access


def _failing_writer(monkeypatch, target, attr: str, code: int, after: int = 0) -> None:
    """Make ``target.attr`` write a partial file, then fail with ``code`` (after ``after``
    successful calls)."""
    real = getattr(target, attr)
    calls = {"n": 0}

    def fake(first, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= after:
            return real(first, *args, **kwargs)
        path = Path(args[0]) if attr == "save" else Path(first)  # nib.save(img, path)
        Path.write_bytes(path, b"partial")  # the disk fills up half-way through
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(target, attr, fake)


DISK = {
    "degrade-volume-enospc": ("degrade", "nib", errno.ENOSPC, "No space left"),
    "degrade-sidecar-enospc": ("degrade", "text", errno.ENOSPC, "No space left"),
    "degrade-volume-eacces": ("degrade", "nib", errno.EACCES, "Permission denied"),
    "degrade-volume-erofs": ("degrade", "nib", errno.EROFS, "Read-only"),
    "upscale-volume-enospc": ("upscale", "nib", errno.ENOSPC, "No space left"),
    "upscale-sidecar-edquot": ("upscale", "text", errno.EDQUOT, "quota"),
    "eval-report-enospc": ("eval", "text", errno.ENOSPC, "No space left"),
    "eval-report-eacces": ("eval", "text", errno.EACCES, "Permission denied"),
}


@pytest.mark.parametrize("case", list(DISK), ids=list(DISK))
@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
def test_a_failing_disk_is_one_line_and_leaves_nothing(case, existing, tiny, tmp_path, monkeypatch):
    command, where, code, word = DISK[case]
    out = tmp_path / ("report.json" if command == "eval" else "out.nii.gz")
    side = out.with_name(out.name + ".json")
    if existing:
        out.write_bytes(b"old output")
        if command != "eval":
            side.write_text('{"old": true}')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    if where == "nib":
        _failing_writer(monkeypatch, nib, "save", code)
    else:
        _failing_writer(monkeypatch, Path, "write_text", code)
    argv = {
        "degrade": ["degrade", tiny, out, "-m", "bicubic"],
        "upscale": ["upscale", tiny, out, "--no-progress"],
        "eval": ["eval", "--ref", tiny, "--pred", tiny, "--format", "json", "-o", out],
    }[command] + (["--overwrite"] if existing else [])
    res = run_timed(*argv, limit=60)
    line = assert_one_line(res, 2, word, str(out.name), "nothing was written")
    assert errno.errorcode[code] in line
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # unchanged, no temp
    assert _temps(tmp_path) == []


def test_a_failing_rename_is_one_line(tmp_path, monkeypatch) -> None:
    def fail(src, dst):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src))

    monkeypatch.setattr(os, "replace", fail)
    res = run_timed("degrade", T2, tmp_path / "out.nii.gz", "-m", "bicubic")
    assert_one_line(res, 2, "cannot write", "EXDEV")
    assert list(tmp_path.iterdir()) == []


def test_an_oserror_outside_the_writers_is_one_line_without_traceback(monkeypatch) -> None:
    import mrisr.commands.info as info

    def boom(_inp, **_kw):
        raise OSError(errno.EIO, "Input/output error", "/mnt/scan.nii")

    monkeypatch.setattr(info, "run_info", boom)
    res = run_cli("info", T2)
    assert_one_line(res, 1, "Input/output error", "/mnt/scan.nii", "EIO")


# ----------------------------------------------------------------------- non-finite output


def _strict(text: str):
    def no(c):
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=no)


@pytest.mark.parametrize(
    "method",
    ["bicubic", "gaussian", "kspace-truncate", "kspace-zerofill", "thick-slice", "bicubic+snr"],
)
def test_near_float32_max_degrades_to_finite_voxels(method, huge, tmp_path, recwarn) -> None:
    out = tmp_path / "lr.nii.gz"
    extra = {"gaussian": ["--sigma", "1"], "bicubic+snr": ["--snr", "20", "--seed", "1"]}
    res = run_timed("degrade", huge, out, "-m", method.split("+")[0], *extra.get(method, []))
    assert res.returncode == 0, res.stderr
    assert not _overflow_warnings(recwarn)
    data = np.asarray(nib.load(out).dataobj)
    assert np.isfinite(data).all() and float(data.max()) > 1e38
    side = _strict(out.with_name("lr.nii.gz.json").read_text())
    assert side["working_gain"] < 1e-20


def test_near_float32_max_matches_the_scaled_result(huge, tmp_path) -> None:
    """The working gain is exact: the result is the ordinary scan's result, scaled."""
    a, b = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    assert run_cli("degrade", huge, a, "-m", "kspace-truncate").returncode == 0
    assert run_cli("degrade", T2, b, "-m", "kspace-truncate").returncode == 0
    x = np.asarray(nib.load(a).dataobj, np.float64)
    y = np.asarray(nib.load(b).dataobj, np.float64)
    y *= 3e38 / float(np.asarray(nib.load(T2).dataobj).max())
    assert np.abs(x - y).max() < 1e-4 * np.abs(y).max()


def _overflow_warnings(recwarn) -> list[str]:
    return [str(w.message) for w in recwarn if "overflow" in str(w.message) or "invalid value"
            in str(w.message)]  # fmt: skip


def test_near_float32_max_upscales_to_finite_voxels(tmp_path, recwarn) -> None:
    data = np.asarray(nib.load(T2).dataobj, dtype=np.float64)[32:64, 32:64, 1:5]
    src = _save((data / data.max() * 3e38).astype(np.float32), tmp_path / "huge.nii.gz")
    out = tmp_path / "sr.nii.gz"
    res = run_timed("upscale", src, out, "--no-progress", limit=60)
    assert res.returncode == 0, res.stderr
    assert not _overflow_warnings(recwarn)
    sr = np.asarray(nib.load(out).dataobj)
    assert np.isfinite(sr).all() and float(sr.max()) > 1e38
    side = _strict(out.with_name("sr.nii.gz.json").read_text())
    assert side["clamp"]["raw_max"] > 1e38


def test_an_output_beyond_float32_is_refused_and_nothing_written(tmp_path) -> None:
    """A sharp edge at the float32 maximum overshoots past it under bicubic: refused."""
    data = np.zeros((96, 96, 6), np.float32)
    data[:, 48:] = np.finfo(np.float32).max
    src = _save(data, tmp_path / "edge.nii.gz")
    out = tmp_path / "lr.nii.gz"
    for method in ("bicubic", "kspace-truncate"):
        res = run_timed("degrade", src, out, "-m", method)
        assert_one_line(res, 2, "beyond the float32 range", "nothing was written")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["edge.nii.gz"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_the_writer_refuses_non_finite_voxels(bad, tmp_path) -> None:
    from mrisr.errors import OutputError
    from mrisr.io import load_volume
    from mrisr.provenance import write_volume_with_sidecar

    vol = load_volume(T2)
    vol = vol.replace(vol.data.copy())
    vol.data[3, 4, 5] = bad
    with pytest.raises(OutputError, match="1 non-finite voxel"):
        write_volume_with_sidecar(vol, tmp_path / "o.nii.gz", {"x": 1}, overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_sidecars_never_hold_nan_or_infinity(tmp_path) -> None:
    from mrisr.io import load_volume
    from mrisr.io.atomic import write_json_atomic
    from mrisr.provenance import write_volume_with_sidecar

    side = {"a": float("nan"), "b": [np.float32("inf"), -math.inf], "c": np.array([1.0, np.nan])}
    write_volume_with_sidecar(load_volume(T2), tmp_path / "o.nii.gz", side, overwrite=False)
    got = _strict((tmp_path / "o.nii.gz.json").read_text())
    assert got == {"a": None, "b": [None, None], "c": [1.0, None]}
    write_json_atomic(tmp_path / "x.json", side)
    assert _strict((tmp_path / "x.json").read_text()) == got


# ----------------------------------------------------------------------- eval: inf in reports


def test_eval_of_a_perfect_prediction_is_strict_json_with_null(tmp_path) -> None:
    res = run_cli("eval", "--ref", T2, "--pred", T2, "--format", "json")
    assert res.returncode == 0, res.stderr
    rep = _strict(res.stdout)
    assert rep["volume"]["psnr"] is None and rep["volume"]["ssim"] == 1.0
    assert all(s["psnr"] is None for s in rep["slices"])
    out = tmp_path / "r.json"
    assert run_cli("eval", "--ref", T2, "--pred", T2, "--format", "json", "-o", out).returncode == 0
    assert _strict(out.read_text())["volume"]["psnr"] is None
    assert "Infinity" not in out.read_text() and "NaN" not in out.read_text()


def test_eval_md_and_csv_write_inf(tmp_path) -> None:
    md = run_cli("eval", "--ref", T2, "--pred", T2, "--slices").stdout
    assert "| inf |" in md
    csv = run_cli("eval", "--ref", T2, "--pred", T2, "--format", "csv").stdout.splitlines()
    assert csv[1].split(",")[2] == "inf" and all(r.split(",")[2] == "inf" for r in csv[1:])


def test_two_results_one_perfect_still_strict_json(tmp_path) -> None:
    res = run_cli("eval", "--ref", T2, "--pred", T2, "--baseline", "bicubic", "--format", "json")
    assert res.returncode == 0, res.stderr
    rep = _strict(res.stdout)
    assert rep["results"][str(T2)]["volume"]["psnr"] is None
    assert "paired" in rep


# ----------------------------------------------------------------------- .txt input lists


def _lists(d: Path, kind: str) -> Path:
    a, b = d / "a.txt", d / "b.txt"
    if kind == "self":
        a.write_text(f"{T2}\n{a}\n")
    elif kind == "mutual":
        a.write_text(f"{b}\n")
        b.write_text(f"# b names a\n{a}\n")
    elif kind == "three-cycle":
        c = d / "c.txt"
        a.write_text(f"{b}\n")
        b.write_text(f"{c}\n")
        c.write_text(f"{T2}\n{a}\n")
    elif kind == "deep":
        paths = [d / f"l{i}.txt" for i in range(12)]
        for p, q in zip(paths, paths[1:], strict=False):
            p.write_text(f"{q}\n")
        paths[-1].write_text(f"{T2}\n")
        return paths[0]
    elif kind == "binary":
        a.write_bytes(b"\xff\xfe\x00\x01" * 64)
    elif kind == "missing-entry":
        a.write_text(f"{d / 'gone.nii.gz'}\n")
    elif kind == "empty":
        a.write_text("# nothing here\n\n")
    return a


LISTS = {
    "self": "includes itself",
    "mutual": "includes itself",
    "three-cycle": "includes itself",
    "deep": "nested more than",
    "binary": "cannot read input list",
    "missing-entry": "does not exist",
    "empty": "no input scans",
}


@pytest.mark.parametrize("kind", list(LISTS), ids=list(LISTS))
def test_input_lists_that_loop_or_nest_too_deep_are_one_line(kind, tmp_path) -> None:
    lst = _lists(tmp_path, kind)
    out = tmp_path / "out"
    out.mkdir()
    res = run_timed("upscale", lst, out, "--no-progress")
    assert_one_line(res, 2, LISTS[kind])
    assert list(out.iterdir()) == []


def test_nested_lists_within_the_limit_expand(tmp_path) -> None:
    from mrisr.infer.run import expand_inputs

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    b.write_text(f"{T2}\n")
    a.write_text(f"{b}\n{b}\n")  # the same list twice is not a loop
    assert expand_inputs([a]) == [T2, T2]


# ----------------------------------------------------------------------- partial batches


@pytest.mark.parametrize("bad", ["zero-byte", "truncated"])
def test_a_batch_with_a_corrupt_scan_writes_the_good_ones_and_exits_2(bad, tiny, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for name in ("a.nii.gz", "c.nii.gz"):
        (src / name).write_bytes(tiny.read_bytes())
    raw = tiny.read_bytes()
    (src / "b.nii.gz").write_bytes(b"" if bad == "zero-byte" else raw[: len(raw) // 2])
    res = run_timed("upscale", src, out, "--no-progress", limit=90)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if not ln.startswith("warning: ")]
    assert len(lines) == 2 and all(ln.startswith("mrisr: error: ") for ln in lines), lines
    assert str(src / "b.nii.gz") in lines[0]
    assert "1 of 3 scans failed (b.nii.gz)" in lines[1] and "wrote the other 2" in lines[1]
    assert sorted(p.name for p in out.iterdir()) == [
        "a_sr_x2.nii.gz",
        "a_sr_x2.nii.gz.json",
        "c_sr_x2.nii.gz",
        "c_sr_x2.nii.gz.json",
    ]
    for name in ("a", "c"):
        assert nib.load(out / f"{name}_sr_x2.nii.gz").shape == (64, 64, 4)
        _strict((out / f"{name}_sr_x2.nii.gz.json").read_text())
    assert _temps(tmp_path) == []


def test_the_python_api_reports_what_a_partial_batch_wrote(tiny, tmp_path) -> None:
    from mrisr.errors import InputError
    from mrisr.infer.run import upscale

    src = tmp_path / "in"
    src.mkdir()
    (src / "a.nii.gz").write_bytes(tiny.read_bytes())
    (src / "b.nii.gz").write_bytes(b"")
    with pytest.raises(InputError, match="1 of 2 scans failed") as exc:
        upscale(src, tmp_path / "out", progress=False)
    assert [p.name for p in exc.value.written] == ["a_sr_x2.nii.gz"]  # type: ignore[attr-defined]
    assert [p.name for p in exc.value.failed] == ["b.nii.gz"]  # type: ignore[attr-defined]


# ----------------------------------------------------------------------- positive controls


@pytest.mark.parametrize(
    "argv", [["--help"], ["degrade", "--help"], ["upscale", "--help"], ["eval", "--help"]]
)
def test_help_still_prints_help(argv) -> None:
    res = run_cli(*argv)
    assert res.returncode == 0 and "Usage" in res.stdout and res.stderr == ""


def test_version_and_bare_mrisr() -> None:
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("mrisr ")
    bare = run_cli()
    assert bare.returncode == 2 and "Usage" in bare.stdout and "Traceback" not in bare.stderr


def test_valid_commands_still_work(tiny, tmp_path) -> None:
    lr = tmp_path / "lr.nii.gz"
    res = run_cli("degrade", T2, lr, "-m", "bicubic", "--snr", "30", "--seed", str(2**63 - 1))
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert _strict(lr.with_name("lr.nii.gz.json").read_text())["seed"] == 2**63 - 1
    sr = tmp_path / "sr.nii.gz"
    res = run_cli("upscale", tiny, sr, "--tile", "32", "--batch", "2", "--no-progress")
    assert res.returncode == 0, res.stderr
    res = run_cli("upscale", tiny, tmp_path / "sr2.nii.gz", "--tile", "-1", "--max-memory", "64",
                  "--no-progress")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert _temps(tmp_path) == []


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch) -> None:
    import mrisr.commands.info as info

    def interrupted(_inp, **_kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "run_info", interrupted)
    res = run_cli("info", T2)
    assert res.returncode == 130 and res.stderr.strip() == "mrisr: interrupted"

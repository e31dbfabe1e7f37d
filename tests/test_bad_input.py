"""Every kind of bad input: one line on stderr, exit status 2, and no partial output."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import nibabel as nib
import numpy as np
import pytest


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    """Run ``mrisr`` in this process (fast) exactly as the console script does."""
    from mrisr.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["mrisr", *map(str, args)]
    code = 0
    with mock.patch.object(sys, "argv", argv), redirect_stdout(out), redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def test_console_script_entry_point(tmp_path) -> None:
    """The real process: ``python -m mrisr`` exits 2 with one line for a missing input."""
    res = subprocess.run(
        [sys.executable, "-m", "mrisr", "info", str(tmp_path / "none.nii")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert "does not exist" in res.stderr


def assert_clean_failure(
    res: subprocess.CompletedProcess, outdir: Path, before: set[str], match: str
) -> None:
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr  # one line, no traceback
    assert lines[0].startswith("mrisr: error: ")
    assert match.lower() in lines[0].lower(), lines[0]
    assert {p.name for p in outdir.iterdir()} == before  # nothing new, nothing left behind


@pytest.fixture()
def t2(test_data) -> Path:
    return test_data / "ixi002_t2_crop.nii.gz"


def _degrade(inp, out, *extra):
    return run_cli("degrade", inp, out, "--method", "bicubic", "--scale", "2", *extra)


def test_corrupt_gzip(tmp_path) -> None:
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"not really gzip" * 20)
    res = _degrade(bad, tmp_path / "out.nii.gz")
    assert_clean_failure(res, tmp_path, {"bad.nii.gz"}, "corrupt")


def test_truncated_gzip(tmp_path, t2) -> None:
    data = t2.read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    res = _degrade(tmp_path / "cut.nii.gz", tmp_path / "out.nii.gz")
    assert_clean_failure(res, tmp_path, {"cut.nii.gz"}, "truncated")


def test_4d_without_index(tmp_path, t2) -> None:
    img = nib.load(t2)
    four = np.stack([np.asarray(img.dataobj)] * 3, -1)
    nib.save(nib.Nifti1Image(four, img.affine), tmp_path / "4d.nii.gz")
    res = _degrade(tmp_path / "4d.nii.gz", tmp_path / "out.nii.gz")
    assert_clean_failure(res, tmp_path, {"4d.nii.gz"}, "--volume-index")
    ok = _degrade(tmp_path / "4d.nii.gz", tmp_path / "out.nii.gz", "--volume-index", "2")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_nonfinite_voxels(tmp_path, t2, bad_value) -> None:
    img = nib.load(t2)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data[10, 10, 2] = bad_value
    nib.save(nib.Nifti1Image(data, img.affine), tmp_path / "nan.nii.gz")
    res = _degrade(tmp_path / "nan.nii.gz", tmp_path / "out.nii.gz")
    assert_clean_failure(res, tmp_path, {"nan.nii.gz"}, "1 NaN/Inf voxels")


def test_all_zero_volume(tmp_path, t2) -> None:
    img = nib.load(t2)
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.int16), img.affine), tmp_path / "z.nii.gz")
    res = _degrade(tmp_path / "z.nii.gz", tmp_path / "out.nii.gz")
    assert_clean_failure(res, tmp_path, {"z.nii.gz"}, "all zero")


def test_scale_not_dividing(tmp_path, t2) -> None:
    shutil.copy(t2, tmp_path / "in.nii.gz")  # 96×96 in-plane
    res = run_cli(
        "degrade", tmp_path / "in.nii.gz", tmp_path / "o.nii.gz", "-m", "bicubic", "-s", "5"
    )
    assert_clean_failure(res, tmp_path, {"in.nii.gz"}, "does not divide")
    res = run_cli(
        "degrade",
        tmp_path / "in.nii.gz",
        tmp_path / "o.nii.gz",
        "-m",
        "bicubic",
        "-s",
        "5",
        "--crop",
    )
    assert res.returncode == 0 and nib.load(tmp_path / "o.nii.gz").shape == (19, 19, 6)


def test_unreadable_dicom_folder(tmp_path) -> None:
    series = tmp_path / "series"
    series.mkdir()
    (series / "IM0001.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage" * 10)
    (series / "README").write_text("not DICOM")
    res = _degrade(series, tmp_path / "out.nii.gz")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"series"}
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _degrade(empty, tmp_path / "out.nii.gz")
    assert_clean_failure(res, tmp_path, {"series", "empty"}, "no DICOM")


def test_existing_output_is_not_touched(tmp_path, t2) -> None:
    out = tmp_path / "out.nii.gz"
    out.write_bytes(b"precious")
    res = _degrade(t2, out)
    assert_clean_failure(res, tmp_path, {"out.nii.gz"}, "--overwrite")
    assert out.read_bytes() == b"precious"
    # An existing sidecar alone also blocks (the pair is written together).
    out.unlink()
    (tmp_path / "out.nii.gz.json").write_text("{}")
    res = _degrade(t2, out)
    assert_clean_failure(res, tmp_path, {"out.nii.gz.json"}, "--overwrite")
    res = _degrade(t2, out, "--overwrite")
    assert res.returncode == 0 and nib.load(out).shape == (48, 48, 6)


def test_missing_output_folder(tmp_path, t2) -> None:
    res = _degrade(t2, tmp_path / "no" / "such" / "out.nii.gz")
    assert_clean_failure(res, tmp_path, set(), "does not exist")


def test_missing_input_and_unknown_format(tmp_path) -> None:
    res = _degrade(tmp_path / "nope.nii.gz", tmp_path / "o.nii.gz")
    assert_clean_failure(res, tmp_path, set(), "does not exist")
    (tmp_path / "x.txt").write_text("hello")
    res = _degrade(tmp_path / "x.txt", tmp_path / "o.nii.gz")
    assert_clean_failure(res, tmp_path, {"x.txt"}, "cannot tell the format")


def test_output_must_be_nifti(tmp_path, t2) -> None:
    res = _degrade(t2, tmp_path / "out.png")
    assert_clean_failure(res, tmp_path, set(), ".nii")


def test_gzip_of_a_non_nifti(tmp_path) -> None:
    with gzip.open(tmp_path / "g.nii.gz", "wb") as fh:
        fh.write(b"hello world, I am not a NIfTI header" * 20)
    res = _degrade(tmp_path / "g.nii.gz", tmp_path / "o.nii.gz")
    assert_clean_failure(res, tmp_path, {"g.nii.gz"}, "cannot read")

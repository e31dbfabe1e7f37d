"""Issue 15: the generated hostile corpus, through the commands that WRITE.

Every hostile file of :mod:`tests.test_hostile_readers` (corrupt, truncated, geometry-less,
absurd headers, wrong formats: 150+ files, all made here from the shipped real crops) is fed
to ``degrade``, ``upscale`` and ``eval`` with an output that already exists and ``--overwrite``.
Each run must: exit 2, print exactly one ``mrisr: error:`` line naming the input, print no
traceback, leave the pre-existing output byte-for-byte unchanged, leave no temporary or partial
file beside it, and finish within a time limit (no hang).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.test_bad_input import run_cli
from tests.test_hostile_readers import CASES, T2_GZ, Case

SECONDS = 20  # per command; a hostile input must be refused long before that
OLD = b"an earlier result that must survive\n"


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""

    def expired(_signum, _frame):
        raise TimeoutError(f"no answer within {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _outputs(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def run_refused(c: Case, tmp_path: Path, command: str) -> str:
    src = tmp_path / "in"
    src.mkdir()
    path = c.build(src)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "result.nii.gz"
    out.write_bytes(OLD)
    (out_dir / "result.nii.gz.json").write_bytes(OLD)
    before = _outputs(out_dir)
    args = {
        "degrade": ["degrade", path, out, "--method", "bicubic", "--scale", "2", "--overwrite"],
        "upscale": ["upscale", path, out, "--overwrite", "--no-progress"],
        "eval-pred": ["eval", "--ref", T2_GZ, "--pred", path, "-o", out, "--overwrite"],
        "eval-ref": ["eval", "--ref", path, "--pred", T2_GZ, "-o", out, "--overwrite"],
    }[command]
    with deadline(SECONDS):
        res = run_cli(*args)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert len(lines) == 1 and lines[0].startswith("mrisr: error:"), res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert (c.names or path.name) in lines[0], lines[0]
    assert out.read_bytes() == OLD  # the earlier result survives
    assert (out_dir / "result.nii.gz.json").read_bytes() == OLD
    assert _outputs(out_dir) == before  # no temporary, partial or extra file
    return lines[0]


def test_the_write_corpus_is_large() -> None:
    assert len(CASES) * 2 + len(CASES[::3]) * 2 >= 150


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_degrade_refuses_in_one_line_and_keeps_the_old_output(c: Case, tmp_path: Path) -> None:
    run_refused(c, tmp_path, "degrade")


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_eval_refuses_a_hostile_prediction(c: Case, tmp_path: Path) -> None:
    run_refused(c, tmp_path, "eval-pred")


# upscale loads the shipped weights for each case (~0.2 s), eval --ref the same reader path as
# --pred: every third file of the corpus is enough for those two.
@pytest.mark.parametrize("c", CASES[::3], ids=[c.id for c in CASES[::3]])
def test_upscale_refuses_in_one_line_and_keeps_the_old_output(c: Case, tmp_path: Path) -> None:
    run_refused(c, tmp_path, "upscale")


@pytest.mark.parametrize("c", CASES[1::3], ids=[c.id for c in CASES[1::3]])
def test_eval_refuses_a_hostile_reference(c: Case, tmp_path: Path) -> None:
    run_refused(c, tmp_path, "eval-ref")


# --- missing geometry: refused, or read with --assume-geometry and recorded ----------------------


def test_assume_geometry_reads_and_records_what_was_assumed(tmp_path: Path) -> None:
    import json

    from tests.test_hostile_readers import GEOMETRY_NII, nii_with, write

    scan = write(tmp_path, "t2.nii", nii_with(**GEOMETRY_NII["pixdim-zero"]))
    res = run_cli("info", scan)
    assert res.returncode == 2 and "--assume-geometry" in res.stderr
    res = run_cli("info", scan, "--assume-geometry")
    assert res.returncode == 0, res.stderr
    assert "assumed     pixdim[1] = 0" in res.stdout
    lr, sr = tmp_path / "lr.nii.gz", tmp_path / "sr.nii.gz"
    res = run_cli("degrade", scan, lr, "--method", "kspace-truncate", "--assume-geometry")
    assert res.returncode == 0, res.stderr
    side = json.loads((tmp_path / "lr.nii.gz.json").read_text())
    assert side["input_assumed_geometry"][0].endswith("1 mm assumed")
    res = run_cli("upscale", scan, sr, "--assume-geometry", "--no-progress")
    assert res.returncode == 0, res.stderr
    side = json.loads((tmp_path / "sr.nii.gz.json").read_text())
    assert side["input_assumed_geometry"][0].endswith("1 mm assumed")
    out = tmp_path / "eval.json"
    res = run_cli("eval", "--ref", scan, "--pred", scan, "--assume-geometry", "--format", "json",
                  "-o", out)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert list(json.loads(out.read_text())["assumed_geometry"]) == [str(scan)]

"""Slice profiles (``mrisr learn-kernel --through-plane``): analytic profiles and their FWHM,
the profile file and its reader's refusals, the command line, and the known answer: the
profile learned from a simulated thick-slice scan alone against the one that made it.

Why a mirrored volume for the known answer: learning a profile from the scan itself assumes the
object looks alike along every axis, and the shipped crops do not. Blurred and sampled at
3.75 mm, A-P lines of the IXI002 crops carry 1.3–1.5× less power than L-R or S-I lines at the
slice scale (measured), and a profile learned from the T1 crop thick-sliced along L-R (the only
in-plane axis long enough is A-P) came out 27 % too narrow (k = 4, Gaussian). The packaged
IXI002 T2's in-plane square stacked with its own transpose has real anatomy with the same
statistics along its two 0.94 mm axes by construction, so the test measures the learner, not
the anatomy.

Measured (600 steps of 32 segments, 2 CPU cores, 15–20 s alone). Gaussian FWHM = S: k = 4,
−1 to −3 % (seeds 0–2); k = 3.5, −2 %. Rect FWHM = S: k = 4, −30 to −35 %; k = 3.5, −26 %.
For a rect the RMS width is right (−3 to −7 %) but its flat top and sharp edges hardly show in
slices one FWHM apart, so the learned profile is rounder; ``fwhm_mm_if_rect`` (the FWHM of the
rect with that RMS width) is within 15 %. The rect FWHM itself misses the bar (xfail, slow).
"""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightning")
pytest.importorskip("pydantic")

from mrisr.degrade.profile import (  # noqa: E402
    analytic_profile,
    fwhm_of,
    profile_length,
    read_profile,
    rms_width,
    save_profile,
)
from mrisr.errors import ConfigError, InputError  # noqa: E402

DATA = Path(__file__).parent / "data"
T2 = DATA / "ixi002_t2_crop.nii.gz"  # 0.94 × 0.94 × 1.25 mm: k = 1.33
FLAIR = DATA / "flair_crop.nii.gz"  # 1 mm isotropic: k = 1
D = 0.9375  # in-plane spacing of the mirrored volume (mm)
BAR = 0.15  # the bar on the learned FWHM


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mrisr", *(str(a) for a in args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def one_line(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrisr: error: "), res.stderr
    assert all(w.lower() in lines[0].lower() for w in words), lines[0]


@pytest.fixture(scope="module")
def thick(tmp_path_factory: pytest.TempPathFactory):
    """``thick(k, kind)``: the mirrored IXI002 T2 thick-sliced along L-R, slices every
    ``k·0.9375`` mm with a ``kind`` profile of FWHM = that spacing (``ThickSlice``)."""
    from mrisr.data import demo_scan_path
    from mrisr.degrade import degrade_volume
    from mrisr.degrade.thickslice import ThickSlice
    from mrisr.io import load_volume, save_volume

    folder = tmp_path_factory.mktemp("thick")
    vol = load_volume(demo_scan_path())  # 176 × 192 × 24 at 0.94 × 0.94 × 1.25 mm
    square = vol.data[:176, :176]
    both = np.concatenate([square, square.transpose(1, 0, 2)], axis=2)  # 176 × 176 × 48
    mirrored = vol.replace(np.ascontiguousarray(both))
    made: dict[tuple[float, str], Path] = {}

    def make(k: float, kind: str) -> Path:
        if (k, kind) not in made:
            s = k * D
            out, _ = degrade_volume(mirrored, ThickSlice(s, s, kind), axis=0)
            made[k, kind] = save_volume(out, folder / f"{kind}_k{k}.nii.gz")
        return made[k, kind]

    return make


# ----------------------------------------------------------------------------- analytic


@pytest.mark.parametrize(
    ("kind", "fwhm", "tol"),
    [("gaussian", 2.5, 0.05), ("gaussian", 4.0, 1e-9), ("gaussian", 5.56, 0.01),
     ("rect", 2.0, 1e-9), ("rect", 4.0, 1e-9), ("rect", 6.0, 1e-9), ("rect", 3.5, 0.05)],
)  # fmt: skip
def test_analytic_profiles_have_their_fwhm(kind: str, fwhm: float, tol: float) -> None:
    """Sampled profiles measured by interpolated half-maximum crossings: exact for a rect of
    an integer width and a Gaussian of FWHM 4, a few % off for the rest (sampling)."""
    n = profile_length(fwhm, fwhm)
    h = analytic_profile(kind, fwhm, n)
    assert n % 2 == 1 and h.shape == (n,) and h.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(h, h[::-1]) and h.min() >= 0 and h[0] < 5e-3 * h.max()
    assert fwhm_of(h) == pytest.approx(fwhm, rel=tol)
    if kind == "rect":  # the ThickSlice rect: a slab convolved with the voxel (+ sampling)
        assert rms_width(h) ** 2 == pytest.approx((fwhm**2 + 1) / 12, abs=0.09)


def test_fwhm_of_edge_cases() -> None:
    assert fwhm_of(np.array([0.0, 1.0, 0.0])) == pytest.approx(1.0)
    assert fwhm_of(np.ones(5)) == 5.0  # above half maximum to both ends: measured to the edges
    assert fwhm_of(np.array([0.0, 1.0, 0.2, 0.9, 0.0])) == pytest.approx(3.0, abs=0.1)  # outer
    with pytest.raises(ConfigError):
        fwhm_of(np.zeros(5))
    with pytest.raises(ConfigError):
        analytic_profile("sinc", 4, 13)
    with pytest.raises(ConfigError):
        analytic_profile("rect", float("nan"), 13)


# ----------------------------------------------------------------------------- the file


def test_save_and_read_a_profile(tmp_path: Path) -> None:
    h = analytic_profile("gaussian", 4, 13) * 3  # normalised on saving
    outs = save_profile(tmp_path / "p.npy", h, {"k": 4, "d_mm": 0.9, "title": "t"})
    assert [p.suffix for p in outs] == [".npy", ".json", ".png"]
    assert all(p.is_file() for p in outs)
    back, meta = read_profile(tmp_path / "p.npy")
    assert back.dtype == np.float64 and back.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(back, h / h.sum()) and meta["k"] == 4
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(Exception, match="exists already"):
        save_profile(tmp_path / "p.npy", h, {})


@pytest.mark.parametrize("case", ["object-array", "raw-pickle", "2-D", "nan", "sum-0.8", "missing"])
def test_read_profile_refuses_bad_files(case: str, tmp_path: Path) -> None:
    p = tmp_path / "bad.npy"
    good = analytic_profile("rect", 4, 9)
    if case == "object-array":
        np.save(p, np.array([0.5, 0.5, None], dtype=object), allow_pickle=True)
    elif case == "raw-pickle":
        p.write_bytes(pickle.dumps([0.25, 0.5, 0.25]))
    elif case == "2-D":
        np.save(p, np.outer(good, good))
    elif case == "nan":
        np.save(p, np.where(np.arange(9) == 4, np.nan, good))
    elif case == "sum-0.8":
        np.save(p, 0.8 * good)
    with pytest.raises(InputError) as e:
        read_profile(p)
    msg = str(e.value)
    assert "\n" not in msg and "bad.npy" in msg
    word = {"object-array": "pickled", "raw-pickle": "not a readable", "2-D": "1-D",
            "nan": "NaN", "sum-0.8": "sums to 0.8", "missing": "does not exist"}[case]  # fmt: skip
    assert word in msg


# ----------------------------------------------------------------------------- command line


@pytest.mark.parametrize("kind", ["gaussian", "rect"])
def test_cli_writes_a_known_profile_without_learning(kind: str, tmp_path: Path) -> None:
    out = tmp_path / "p.npy"
    r = cli("learn-kernel", out, "--through-plane", "--profile", kind, "--thickness", 5,
            "--lr", T2)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert all(out.with_suffix(s).is_file() for s in (".npy", ".json", ".png"))
    h, meta = read_profile(out)
    assert h.sum() == pytest.approx(1.0, abs=1e-9) and h.size % 2 == 1
    assert meta["mode"] == "analytic" and meta["profile"] == kind and meta["steps"] is None
    assert meta["fwhm_mm"] == pytest.approx(5.0, rel=0.05 if kind == "rect" else 0.01)
    assert meta["fwhm_vox"] == pytest.approx(meta["fwhm_mm"] / 0.9375, rel=1e-3)
    assert meta["k"] == pytest.approx(1.25 / 0.9375, rel=1e-4)
    assert meta["d_mm"] == pytest.approx(0.9375) and meta["slice_spacing_mm"] == pytest.approx(1.25)
    assert meta["slice_axis"] == 2 and len(meta["scan_sha256"]) == 64
    assert meta["centre_of_mass"] == pytest.approx((h.size - 1) / 2)


def test_cli_refusals_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "p.npy"
    one_line(cli("learn-kernel", out, "--through-plane", "--lr", FLAIR), "near-isotropic", "1.2")
    one_line(cli("learn-kernel", out, "--through-plane", "--profile", "rect", "--lr", T2),
             "--thickness")  # fmt: skip
    one_line(cli("learn-kernel", out, "--through-plane", "--profile", "sinc", "--thickness", 5,
                 "--lr", T2), "--profile")  # fmt: skip
    one_line(cli("learn-kernel", out, "--through-plane", "--hr", T2, "--lr", T2), "--hr")
    one_line(cli("learn-kernel", out, "--through-plane", "-s", 2, "--lr", T2), "--scale")
    one_line(cli("learn-kernel", out, "--profile", "rect", "--thickness", 3, "--lr", T2),
             "--through-plane")  # fmt: skip
    one_line(cli("learn-kernel", out, "--lr", T2, "-s", 2), "--hr", "--through-plane")
    assert list(tmp_path.iterdir()) == []


def test_learning_runs_through_the_engine(thick, tmp_path: Path) -> None:
    """A short run: the machinery, the files, a normalised profile of bounded support."""
    out = tmp_path / "p.npy"
    r = cli("learn-kernel", out, "--through-plane", "--lr", thick(4.0, "gaussian"), "--steps", 30)
    assert r.returncode == 0, r.stderr
    h, meta = read_profile(out)
    assert h.size == 2 * math.ceil(1.5 * 4) + 1 == meta["length"]
    assert h.sum() == pytest.approx(1.0, abs=1e-9) and h.min() >= 0
    peak = int(np.argmax(h))
    assert peak == h.size // 2 and np.all(np.diff(h[: peak + 1]) >= 0)  # unimodal
    assert np.all(np.diff(h[peak:]) <= 0)
    assert meta["mode"] == "learned" and meta["steps"] == 30 and meta["wall_s"] > 0
    assert meta["k"] == pytest.approx(4.0) and meta["slice_axis"] == 0
    assert meta["fwhm_mm"] == pytest.approx(meta["fwhm_vox"] * D, rel=1e-3)
    assert meta["training"]["task"] == "profile" and meta["scan_sha256"]
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".mrisr-profile-*"))  # the temporary run is removed


# ----------------------------------------------------------------------------- known answer


def _learn(scan: Path, out: Path, seed: int = 0) -> dict:
    from mrisr.commands.learn_kernel import run_learn_profile

    return run_learn_profile(scan, out, seed=seed)


def test_learned_gaussian_profile_has_the_true_fwhm(thick, tmp_path: Path) -> None:
    """k = 4, Gaussian FWHM = slice spacing (4 voxels): the recipe's 600 steps."""
    meta = _learn(thick(4.0, "gaussian"), tmp_path / "p.npy")
    err = meta["fwhm_vox"] / 4.0 - 1
    print(f"k = 4 gaussian: FWHM {meta['fwhm_vox']:.3f} voxels ({err:+.1%}), {meta['wall_s']} s")
    assert abs(err) < BAR
    assert json.loads((tmp_path / "p.json").read_text())["fwhm_mm"] == meta["fwhm_mm"]


@pytest.mark.slow
@pytest.mark.parametrize(("k", "kind"), [(3.5, "gaussian"), (4.0, "rect"), (3.5, "rect")])
def test_learned_profile_known_answer_slow(thick, tmp_path: Path, k: float, kind: str) -> None:
    """Non-integer k, and rect profiles: the RMS width (what the data pin down) and, for a
    Gaussian, the FWHM within the bar; for a rect, the FWHM its width implies if the shape is
    known (``fwhm_mm_if_rect``)."""
    truth = analytic_profile(kind, k, profile_length(k, k))
    meta = _learn(thick(k, kind), tmp_path / "p.npy")
    h, _ = read_profile(tmp_path / "p.npy")
    width_err = rms_width(h) / rms_width(truth) - 1
    fwhm_err = meta["fwhm_vox"] / k - 1
    print(f"k = {k} {kind}: FWHM {fwhm_err:+.1%}, RMS width {width_err:+.1%}")
    assert abs(width_err) < BAR
    if kind == "gaussian":
        assert abs(fwhm_err) < BAR
    else:
        assert abs(meta["fwhm_mm_if_rect"] / (k * D) - 1) < BAR


@pytest.mark.slow
@pytest.mark.xfail(
    reason="a rect profile's shape hardly shows in slices one FWHM apart: the learned FWHM is "
    "~30 % short (its RMS width is right)",
    strict=False,
)
def test_learned_rect_profile_fwhm_meets_the_bar(thick, tmp_path: Path) -> None:
    meta = _learn(thick(4.0, "rect"), tmp_path / "p.npy")
    assert abs(meta["fwhm_vox"] / 4.0 - 1) < BAR

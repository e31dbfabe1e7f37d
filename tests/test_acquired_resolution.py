"""Issue 13 item 5: a scan that the scanner already interpolated has nothing to gain from SR.
Its acquired resolution (DICOM header, else the k-space spectrum) is reported by `mrisr info`
and in the degrade / upscale sidecars, and `upscale` warns about it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mrisr.io import load_volume
from mrisr.metrics.acquired import acquired_resolution
from tests.test_bad_input import run_cli


def test_dicom_header_gives_the_acquired_matrix(shared_data: Path) -> None:
    """The VS-SEG MPRAGE is 512² at 0.41 mm, acquired 256² (AcquisitionMatrix 0\\256\\256\\0):
    its spectrum shows no clear cutoff (processing refilled it), the header says 2x."""
    series = shared_data / "dicom" / "vs-seg-001-subset"
    vol = load_volume(series)
    assert vol.meta["acquisition_matrix"] == [0, 256, 256, 0]
    assert vol.meta["phase_encoding_direction"] == "ROW" and vol.meta["acquired_matrix"] == [
        256,
        256,
    ]
    acq = acquired_resolution(vol.data, vol.zooms, 2, vol.meta)
    assert acq["source"] == "header" and acq["interpolated"] and acq["bandwidth"] == 0.5
    assert [e["effective_mm"] for e in acq["axes"].values()] == pytest.approx([0.8203, 0.8203])
    assert acq["spectrum"]["interpolated"] is False  # what the spectrum alone would miss
    res = run_cli("info", series)
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("acquired"))
    assert "0.82 x 0.82 mm on a 0.41 x 0.41 mm grid" in line and "acquired 256x256" in line
    assert "interpolated by 2x" in line


@pytest.fixture(scope="module")
def interpolated(tmp_path_factory: pytest.TempPathFactory, test_data: Path) -> Path:
    """The real IXI002 T2 crop zero-filled x2 on its own grid (Fermi window): what a scanner
    writes when it reconstructs a 48² acquisition on a 96² matrix."""
    out = tmp_path_factory.mktemp("acq") / "zf.nii.gz"
    res = run_cli("degrade", test_data / "ixi002_t2_crop.nii.gz", out, "--method",
                  "kspace-zerofill", "--scale", "2", "--same-grid")  # fmt: skip
    assert res.returncode == 0, res.stderr
    return out


def test_degrade_sidecar_records_the_inputs_acquired_resolution(interpolated: Path) -> None:
    side = json.loads(interpolated.with_name("zf.nii.gz.json").read_text())
    rec = side["input_acquired_resolution"]  # of the IXI crop: 192 of 256 acquired (~0.73)
    assert rec["source"] == "spectrum" and rec["interpolated"] is False
    assert 0.68 <= rec["bandwidth"] <= 0.8
    assert set(rec["spectrum"]) == {"0", "1"} and rec["spectrum"]["0"]["cliff"] is True


def test_upscale_warns_on_an_interpolated_scan_and_records_it(interpolated, test_data, tmp_path):
    sr = tmp_path / "sr.nii.gz"
    res = run_cli("upscale", interpolated, sr)
    assert res.returncode == 0, res.stderr
    warn = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: zf.nii.gz:")]
    assert len(warn) == 1 and "interpolated by ~2.0x" in warn[0] and "zero-fill" in warn[0]
    rec = json.loads(sr.with_name("sr.nii.gz.json").read_text())["input_acquired_resolution"]
    assert rec["interpolated"] is True and rec["bandwidth"] == pytest.approx(0.5, abs=0.05)
    assert [e["effective_mm"] for e in rec["axes"].values()] == pytest.approx([1.875] * 2, rel=0.1)
    # the natively sampled crop: no warning, recorded as not interpolated
    sr2 = tmp_path / "sr2.nii.gz"
    res = run_cli("upscale", test_data / "ixi002_t2_crop.nii.gz", sr2)
    assert res.returncode == 0 and "warning" not in res.stderr
    rec = json.loads(sr2.with_name("sr2.nii.gz.json").read_text())["input_acquired_resolution"]
    assert rec["interpolated"] is False


def test_info_reports_the_spectrum_of_a_nifti(interpolated: Path) -> None:
    res = run_cli("info", interpolated)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert any("acquired resolution ~1.8" in ln and "interpolated by ~2.0x" in ln for ln in lines)
    spec = [ln for ln in lines if ln.strip().startswith("spectrum")]
    assert len(spec) == 2 and all("cutoff at 5" in ln for ln in spec)  # 50 % of Nyquist


def test_the_spectrum_module_does_not_import_torch() -> None:
    code = "import sys, mrisr.metrics.spectrum; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

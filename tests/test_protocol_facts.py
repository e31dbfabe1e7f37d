"""Through-plane protocol facts: DICOM slice thickness vs measured spacing, and ``mrisr info``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mrisr.errors import ConfigError
from mrisr.io import load_volume
from mrisr.io.protocol import through_plane_facts
from tests.test_bad_input import run_cli
from tests.test_hostile_readers import T2_GZ, dicom_slices, save, series_folder

T2_ZOOMS = (0.9375, 0.9374999699177574, 1.250000038872528)  # the real T2 crop's, float32


def strict_json(obj: dict) -> None:
    json.dumps(obj, allow_nan=False)


# --- the real VS-SEG series --------------------------------------------------------------------


def test_vs_seg_series_is_contiguous_with_k_3_66(shared_data: Path) -> None:
    import pydicom

    folder = shared_data / "dicom" / "vs-seg-001-subset"
    ds = pydicom.dcmread(sorted(folder.iterdir())[0], stop_before_pixels=True)
    header_between = ds.get("SpacingBetweenSlices")
    assert float(ds.SliceThickness) == 1.5 and header_between is None  # what the files say
    vol = load_volume(folder)
    assert vol.meta["slice_thickness"] == 1.5
    assert vol.meta["slice_spacing"] == pytest.approx(1.5, abs=1e-4)  # measured from positions
    assert vol.meta["spacing_between_slices"] is None and "notes" not in vol.meta
    facts = through_plane_facts(vol.zooms, 2, vol.meta)
    strict_json(facts)
    assert facts["in_plane_mm"] == pytest.approx([0.41015625] * 2, abs=1e-6)
    assert facts["slice_spacing_mm"] == pytest.approx(1.5, abs=1e-4)
    assert facts["slice_thickness_mm"] == 1.5 and facts["thickness_source"] == "header"
    assert facts["k"] == pytest.approx(3.657) and facts["kind"] == "contiguous"
    assert facts["gap_mm"] == pytest.approx(0.0, abs=1e-4)
    assert facts["summary"] == (
        "slices every 1.5 mm, 1.5 mm thick (contiguous) on a 0.41 x 0.41 mm plane: k = 3.66"
    )
    res = run_cli("info", folder)
    assert res.returncode == 0, res.stderr
    assert f"  slices      {facts['summary']}" in res.stdout.splitlines()


# --- synthetic series: the real T2 crop as DICOM slices with chosen thickness and positions ---


def thick_series(d: Path, thickness: float, every: float, between: float | None = None) -> Path:
    """The 6-slice T2 series with SliceThickness ``thickness`` and positions ``every`` mm apart
    along the slice normal (and SpacingBetweenSlices ``between`` when given)."""
    first = dicom_slices()[0]
    iop = np.array([float(v) for v in first.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    origin = np.array([float(v) for v in first.ImagePositionPatient])

    def edit(i: int, ds) -> None:
        ds.ImagePositionPatient = [f"{v:.6f}" for v in origin + i * every * normal]
        ds.SliceThickness = f"{thickness:g}"
        if between is not None:
            ds.SpacingBetweenSlices = f"{between:g}"

    d.mkdir(parents=True, exist_ok=True)
    return series_folder(d, edit)


@pytest.mark.parametrize(
    "thickness, gap, kind, words",
    [
        (3.0, 1.0, "gap", "3 mm thick (1 mm gap)"),
        (5.0, -1.0, "overlap", "5 mm thick (1 mm overlap)"),
        (4.03, -0.03, "contiguous", "4.03 mm thick (contiguous)"),  # within 1 % of the spacing
    ],
)
def test_thickness_and_measured_spacing_give_gap_or_overlap(
    tmp_path: Path, thickness: float, gap: float, kind: str, words: str
) -> None:
    vol = load_volume(thick_series(tmp_path, thickness, every=4.0))
    meta = vol.meta
    assert meta["slice_thickness"] == thickness
    assert meta["slice_spacing"] == pytest.approx(4.0, abs=1e-5)
    assert vol.zooms[2] == pytest.approx(4.0, abs=1e-5)  # the grid follows the positions
    assert meta["spacing_between_slices"] is None and "notes" not in meta
    strict_json(meta)
    facts = through_plane_facts(vol.zooms, 2, meta)
    strict_json(facts)
    assert facts["slice_spacing_mm"] == pytest.approx(4.0, abs=1e-5)
    assert facts["slice_thickness_mm"] == thickness and facts["thickness_source"] == "header"
    assert facts["gap_mm"] == pytest.approx(gap, abs=1e-5) and facts["kind"] == kind
    assert facts["k"] == pytest.approx(4.0 / 0.9375, abs=1e-3)
    assert facts["summary"] == f"slices every 4 mm, {words} on a 0.938 x 0.938 mm plane: k = 4.27"


def test_spacing_between_slices_is_recorded_and_a_disagreement_noted(tmp_path: Path) -> None:
    agree = load_volume(thick_series(tmp_path / "a", 3.0, every=4.0, between=4.03))  # 0.75 %
    assert agree.meta["spacing_between_slices"] == 4.03 and "notes" not in agree.meta
    vol = load_volume(thick_series(tmp_path / "b", 3.0, every=4.0, between=3.0))
    meta = vol.meta
    assert meta["spacing_between_slices"] == 3.0  # the header's, as written
    assert meta["slice_spacing"] == pytest.approx(4.0, abs=1e-5)  # measured, not the header's
    assert vol.zooms[2] == pytest.approx(4.0, abs=1e-5)  # recorded, not refused nor used
    (note,) = meta["notes"]
    assert "SpacingBetweenSlices (0018,0088) is 3 mm" in note and "4 mm apart" in note
    assert "-25.0 %" in note and "measured spacing is used" in note
    strict_json(meta)
    facts = through_plane_facts(vol.zooms, 2, meta)
    assert facts["gap_mm"] == pytest.approx(1.0, abs=1e-5) and facts["kind"] == "gap"


def test_single_slice_uses_the_header_step_without_a_note(tmp_path: Path) -> None:
    ds = dicom_slices()[2]
    ds.SliceThickness, ds.SpacingBetweenSlices = "3", "2"
    meta = load_volume(save(ds, tmp_path / "one.dcm")).meta
    assert meta["slice_thickness"] == 3.0 and meta["spacing_between_slices"] == 2.0
    assert meta["slice_spacing"] == 2.0 and "notes" not in meta  # nothing measured to compare


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
def test_non_finite_thickness_is_unknown_not_nan(tmp_path: Path) -> None:
    def edit(i: int, ds) -> None:
        ds.SliceThickness, ds.SpacingBetweenSlices = "nan", "inf"

    vol = load_volume(series_folder(tmp_path, edit))
    assert vol.meta["slice_thickness"] is None and vol.meta["spacing_between_slices"] is None
    strict_json(vol.meta)
    assert through_plane_facts(vol.zooms, 2, vol.meta)["kind"] == "unknown"


# --- NIfTI: no thickness in the file; a user's value ------------------------------------------


def test_nifti_facts_without_and_with_a_user_thickness() -> None:
    meta = {"format": "nifti"}
    facts = through_plane_facts(T2_ZOOMS, 2, meta)
    strict_json(facts)
    assert facts == {
        "slice_axis": 2,
        "in_plane_mm": [0.9375, 0.9375],
        "slice_spacing_mm": 1.25,
        "slice_thickness_mm": None,
        "thickness_source": None,
        "k": 1.333,
        "gap_mm": None,
        "kind": "unknown",
        "summary": "slices every 1.25 mm, thickness unknown on a 0.938 x 0.938 mm plane: k = 1.33",
    }
    user = through_plane_facts(T2_ZOOMS, 2, meta, thickness_mm=1.25)
    assert (user["slice_thickness_mm"], user["thickness_source"]) == (1.25, "user")
    assert user["kind"] == "contiguous" and user["gap_mm"] == pytest.approx(0.0)
    thick = through_plane_facts(T2_ZOOMS, 2, meta, thickness_mm=2.5)
    assert thick["kind"] == "overlap" and thick["gap_mm"] == pytest.approx(-1.25)
    assert "2.5 mm thick (1.25 mm overlap)" in thick["summary"]
    across = through_plane_facts((5.0, 0.5, 0.5), 0, meta, thickness_mm=4.0)  # a sagittal stack
    assert across["in_plane_mm"] == [0.5, 0.5] and across["k"] == 10.0
    assert across["kind"] == "gap" and across["summary"].endswith("0.5 x 0.5 mm plane: k = 10")
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="positive number of mm"):
            through_plane_facts(T2_ZOOMS, 2, meta, thickness_mm=bad)


def test_user_thickness_overrides_the_header_and_the_header_applies_to_axis_2_only() -> None:
    meta = {"format": "dicom", "slice_thickness": 3.0, "slice_spacing": 4.0}
    zooms = (0.5, 0.5, 4.0)
    assert through_plane_facts(zooms, 2, meta)["thickness_source"] == "header"
    user = through_plane_facts(zooms, 2, meta, thickness_mm=4.0)
    assert user["thickness_source"] == "user" and user["kind"] == "contiguous"
    other = through_plane_facts(zooms, 0, meta)  # the header's slices are along axis 2
    assert other["thickness_source"] is None and other["slice_spacing_mm"] == 0.5


def test_info_prints_the_slices_line() -> None:
    res = run_cli("info", T2_GZ)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    want = "  slices      slices every 1.25 mm, thickness unknown on a 0.938 x 0.938 mm plane: k = "
    want += "1.33"
    assert want in lines
    assert lines.index(want) == next(i for i, s in enumerate(lines) if s.startswith("  plane")) + 1

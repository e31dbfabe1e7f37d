"""DICOM reader: geometry against dcm2niix, ordering, multi-frame files and bad input.

The dcm2niix reference JSON is regenerated (only when the loader or data change) with::

    python -m tests.test_dicom [SHARED_DATA_DIR]
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mrisr.errors import InputError
from mrisr.io.dicom import MISSING_GEOMETRY, load_dicom

SERIES = Path("dicom") / "vs-seg-001-subset"
PYDICOM_DATA = Path("dicom") / "pydicom-data"
REF_JSON = Path(__file__).resolve().parent / "data" / "vs_seg_dcm2niix_reference.json"
# Voxel indices in the canonical (RAS) voxel order of the 512×512×24 vs-seg series: spread over
# the volume and chosen off every symmetry axis, so any flip or slice reversal changes them.
# fmt: off
PROBES = [(256, 256, 12), (200, 310, 0), (330, 180, 23), (150, 250, 5),
          (300, 400, 17), (260, 120, 9), (380, 290, 20), (120, 330, 2)]
# fmt: on


def canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder voxels to the closest RAS axis order (as ``nibabel.as_closest_canonical``)."""
    from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation

    ornt = io_orientation(affine)
    return apply_orientation(data, ornt), affine @ inv_ornt_aff(ornt, data.shape)


def run_dcm2niix(series: Path, out_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Convert ``series`` with dcm2niix; (data float64 with scl_slope/inter applied, affine)."""
    import nibabel as nib

    subprocess.run(
        ["dcm2niix", "-z", "n", "-b", "n", "-f", "ref", "-o", str(out_dir), str(series)],
        check=True,
        capture_output=True,
    )
    img = nib.load(str(out_dir / "ref.nii"))
    slope, inter = img.header.get_slope_inter()
    raw = np.asanyarray(img.dataobj.get_unscaled(), dtype=np.float64)
    data = raw * (1.0 if slope is None else slope) + (0.0 if inter is None else inter)
    return data, img.affine


def summary(data: np.ndarray, affine: np.ndarray) -> dict:
    """Facts of a volume in canonical RAS voxel order, as stored in the reference JSON."""
    cdata, caff = canonical(data, affine)
    grid = np.indices(cdata.shape).reshape(3, -1)
    weights = cdata.reshape(-1).astype(np.float64)
    return {
        "canonical_affine": caff.tolist(),
        "shape": list(cdata.shape),
        "voxel_sum": float(weights.sum()),
        "center_of_mass_ijk": (grid @ weights / weights.sum()).tolist(),
        "sum_per_slice": cdata.sum(axis=(0, 1), dtype=np.float64).tolist(),
        "probes": [[*ijk, float(cdata[ijk])] for ijk in PROBES],
    }


def make_dcm2niix_reference(shared: Path, out: Path = REF_JSON) -> dict:
    """Write the dcm2niix facts of the vs-seg series to ``out`` (needs dcm2niix on PATH)."""
    import tempfile

    version = subprocess.run(["dcm2niix", "-v"], capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        ref = summary(*run_dcm2niix(shared / SERIES, Path(tmp)))
    ref = {
        "source": f"dcm2niix -z n -b n on {SERIES.as_posix()} (24 slices, T1 MPRAGE)",
        "dcm2niix": version.strip().splitlines()[-1],
        "voxel_order": "canonical RAS (nibabel io_orientation)",
        **ref,
    }
    out.write_text(json.dumps(ref, indent=1) + "\n")
    return ref


@pytest.fixture(scope="module")
def series(shared_data: Path) -> Path:
    p = shared_data / SERIES
    if not p.is_dir():
        pytest.skip(f"DICOM series not found at {p}")
    return p


@pytest.fixture(scope="module")
def vol(series: Path):
    return load_dicom(series)


def _copy(series: Path, dest: Path, names: list[str] | None = None) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    files = sorted(series.iterdir())
    names = names or [f.name for f in files]
    return [Path(shutil.copyfile(f, dest / n)) for f, n in zip(files, names, strict=True)]


def test_series_geometry_and_meta(vol, series):
    assert vol.shape == (512, 512, 24)
    assert vol.orig_dtype == np.uint16 and vol.header is None
    assert np.allclose(vol.zooms, (0.41015625, 0.41015625, 1.5), atol=1e-6)
    # First slice (lowest z) at IPP (-106.33, -123.07, -32.00) LPS -> RAS flips x and y.
    assert np.allclose(vol.affine[:3, 3], [106.32680907019, 123.07443807356, -32.000669002533])
    expected = {"format": "dicom", "n_files": 24, "modality": "MR", "manufacturer": "SIEMENS",
                "series_description": "t1_mpr_tra_gk_v4", "slice_thickness": 1.5,
                "multiframe": False, "rescale_applied": False}  # fmt: skip
    assert {k: vol.meta[k] for k in expected} == expected
    assert vol.meta["slice_spacing"] == pytest.approx(1.5)
    assert vol.meta["path"] == str(series) and vol.meta["series_uid"].startswith("1.3.6.1.4.1.")
    json.dumps(vol.meta)


def test_matches_dcm2niix(vol, series, tmp_path):
    if shutil.which("dcm2niix") is None:
        if os.environ.get("MRISR_REQUIRE_DCM2NIIX") == "1":
            pytest.fail("dcm2niix is not on PATH but MRISR_REQUIRE_DCM2NIIX=1")
        pytest.skip("dcm2niix is not on PATH")
    ref_data, ref_aff = run_dcm2niix(series, tmp_path)
    ours, our_aff = canonical(vol.data, vol.affine)
    theirs, their_aff = canonical(ref_data, ref_aff)
    assert ours.shape == theirs.shape == (512, 512, 24)
    np.testing.assert_allclose(our_aff, their_aff, atol=1e-3)
    np.testing.assert_array_equal(ours, theirs)
    # The comparison is strong: a reversed slice order or flipped rows (same affine) differ.
    for bad in (vol.data[:, :, ::-1], vol.data[:, ::-1, :], vol.data[::-1]):
        assert not np.array_equal(canonical(bad, vol.affine)[0], theirs)


def test_matches_stored_dcm2niix_reference(vol):
    ref = json.loads(REF_JSON.read_text())
    got = summary(vol.data, vol.affine)
    np.testing.assert_allclose(got["canonical_affine"], ref["canonical_affine"], atol=1e-3)
    assert got["shape"] == ref["shape"]
    assert got["voxel_sum"] == pytest.approx(ref["voxel_sum"], rel=1e-9)
    np.testing.assert_allclose(got["center_of_mass_ijk"], ref["center_of_mass_ijk"], atol=1e-6)
    np.testing.assert_allclose(got["sum_per_slice"], ref["sum_per_slice"], rtol=1e-9)
    assert got["probes"] == ref["probes"]
    assert len({p[3] for p in ref["probes"]}) == len(PROBES)  # distinct values: flips show


def test_order_comes_from_positions_not_names(vol, series, tmp_path):
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MediaStorageDirectoryStorage

    rng = random.Random(0)
    names = [f"{rng.getrandbits(64):016x}" + rng.choice(["", ".dcm", ".IMA"]) for _ in range(24)]
    _copy(series, tmp_path / "sub" / "dir", names)
    (tmp_path / "README").write_text("not DICOM\n")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dicomdir = pydicom.Dataset()
    dicomdir.file_meta = meta
    dicomdir.SOPClassUID = MediaStorageDirectoryStorage
    dicomdir.save_as(tmp_path / "DICOMDIR", enforce_file_format=True)
    again = load_dicom(tmp_path)
    np.testing.assert_array_equal(again.data, vol.data)
    np.testing.assert_array_equal(again.affine, vol.affine)


def test_two_series_rejected(series, shared_data, tmp_path):
    _copy(series, tmp_path)
    for f in sorted(tmp_path.iterdir())[3:]:
        f.unlink()
    shutil.copyfile(shared_data / PYDICOM_DATA / "MR_small.dcm", tmp_path / "x")
    with pytest.raises(InputError, match=r"2 DICOM series .*t1_mpr_tra_gk_v4.*one series"):
        load_dicom(tmp_path)


def test_empty_and_non_dicom_folders_rejected(tmp_path):
    with pytest.raises(InputError, match="no DICOM files found"):
        load_dicom(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="no DICOM files found"):
        load_dicom(tmp_path)


def test_truncated_files_rejected(series, tmp_path):
    raw = (series / "1-041.dcm").read_bytes()
    (tmp_path / "head.dcm").write_bytes(raw[:200])
    with pytest.raises(InputError):
        load_dicom(tmp_path / "head.dcm")
    (tmp_path / "garbage.dcm").write_bytes(os.urandom(400))
    with pytest.raises(InputError, match="cannot read"):
        load_dicom(tmp_path / "garbage.dcm")
    files = _copy(series, tmp_path / "copy")
    cut = files[5].read_bytes()
    files[5].write_bytes(cut[: len(cut) // 2])  # header intact, pixel data cut short
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_dicom(tmp_path / "copy")


def test_missing_middle_slice_rejected(series, tmp_path):
    files = _copy(series, tmp_path)
    files[10].unlink()
    with pytest.raises(InputError, match=r"irregular gap of 3\.000 mm .*missing or uneven"):
        load_dicom(tmp_path)


def test_duplicate_and_mixed_orientation_rejected(series, tmp_path):
    import pydicom

    files = _copy(series, tmp_path / "dup")
    shutil.copyfile(files[4], tmp_path / "dup" / "again")
    with pytest.raises(InputError, match="same position.*more than one series or echo"):
        load_dicom(tmp_path / "dup")
    files = _copy(series, tmp_path / "ori")
    ds = pydicom.dcmread(files[7])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(files[7])
    with pytest.raises(InputError, match="orientations"):
        load_dicom(tmp_path / "ori")


def test_undecodable_pixel_data_names_transfer_syntax(shared_data, tmp_path):
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLSLossless

    ds = pydicom.dcmread(shared_data / PYDICOM_DATA / "MR_small.dcm")
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    ds.PixelData = encapsulate([b"\0" * 64])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "jls.dcm", enforce_file_format=True)
    with pytest.raises(InputError, match="JPEG-LS Lossless.*pylibjpeg.*gdcm"):
        load_dicom(tmp_path / "jls.dcm")


def test_single_slice_file_with_rescale(shared_data, tmp_path):
    import pydicom

    path = shared_data / PYDICOM_DATA / "MR_small.dcm"
    ds = pydicom.dcmread(path)
    v = load_dicom(path)
    assert v.shape == (64, 64, 1) and v.orig_dtype == np.int16
    ipp = np.array([float(x) for x in ds.ImagePositionPatient])
    np.testing.assert_allclose(v.affine[:3, 3], ipp * [-1, -1, 1])
    np.testing.assert_allclose(v.affine[:3, :3], np.diag([-0.3125, -0.3125, 0.8]))  # K=1: thickness
    assert "RescaleSlope" not in ds and v.meta["rescale_applied"] is False
    np.testing.assert_array_equal(v.data[:, :, 0], ds.pixel_array.T)
    ds.RescaleSlope, ds.RescaleIntercept = "2.5", "-10"
    ds.save_as(tmp_path / "scaled.dcm")
    s = load_dicom(tmp_path / "scaled.dcm")
    assert s.meta["rescale_applied"] is True and s.data.dtype == np.float32
    np.testing.assert_allclose(s.data[:, :, 0], ds.pixel_array.T * 2.5 - 10)


def test_geometry_less_multiframe(shared_data):
    import pydicom

    path = shared_data / PYDICOM_DATA / "emri_small.dcm"
    # Verified by inspection: Enhanced MR, 10 frames of 64×64 uint16, no functional groups, no
    # position/orientation/PixelSpacing anywhere; only SpacingBetweenSlices = 1.2.
    # mrisr does not invent geometry: refused, naming the tags, unless asked to assume it.
    with pytest.raises(InputError, match="PixelSpacing.*ImagePositionPatient.*assume-geometry"):
        load_dicom(path)
    v = load_dicom(path, assume_geometry=True)
    assert v.shape == (64, 64, 10) and v.orig_dtype == np.uint16
    assert v.meta["multiframe"] is True and v.meta["geometry"] == MISSING_GEOMETRY
    assert v.meta["assumed_geometry"] == [
        "PixelSpacing missing: 1 mm assumed",
        "ImagePositionPatient/ImageOrientationPatient missing: identity (axial, LPS) orientation "
        "and origin 0 assumed",
    ]
    np.testing.assert_array_equal(v.affine, np.diag([-1.0, -1.0, 1.2, 1.0]))
    frames = pydicom.dcmread(path).pixel_array
    np.testing.assert_array_equal(v.data, frames.transpose(2, 1, 0))


def test_enhanced_multiframe_geometry_matches_classic(series, tmp_path):
    """An enhanced file built from 6 classic slices (frames shuffled, rescale in the shared
    functional group) loads like the classic files with the rescale applied."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    (tmp_path / "classic").mkdir()
    files = [shutil.copy(f, tmp_path / "classic") for f in sorted(series.iterdir())[6:12]]
    classic = load_dicom(tmp_path / "classic")
    dss = [pydicom.dcmread(f) for f in files]
    order = [3, 0, 5, 1, 4, 2]
    pixels = np.stack([dss[i].pixel_array for i in order])
    mf = dss[0]
    mf.NumberOfFrames, mf.PixelData = len(order), pixels.tobytes()

    def item(**kw) -> Sequence:
        d = Dataset()
        d.update(kw)
        return Sequence([d])

    shared = Dataset()
    shared.PlaneOrientationSequence = item(ImageOrientationPatient=mf.ImageOrientationPatient)
    shared.PixelMeasuresSequence = item(PixelSpacing=mf.PixelSpacing, SliceThickness=1.5)
    shared.PixelValueTransformationSequence = item(RescaleSlope=2, RescaleIntercept=1)
    mf.SharedFunctionalGroupsSequence = Sequence([shared])
    positions = [item(ImagePositionPatient=dss[i].ImagePositionPatient) for i in order]
    mf.PerFrameFunctionalGroupsSequence = Sequence(
        [item(PlanePositionSequence=p)[0] for p in positions]
    )
    for kw in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        delattr(mf, kw)
    mf.save_as(tmp_path / "enhanced.dcm")
    v = load_dicom(tmp_path / "enhanced.dcm")
    assert v.meta["multiframe"] is True and v.meta["rescale_applied"] is True
    np.testing.assert_allclose(v.affine, classic.affine, atol=1e-9)
    np.testing.assert_array_equal(v.data, classic.data * 2 + 1)


def test_import_mrisr_stays_light():
    code = "import sys, mrisr; assert 'pydicom' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    shared = Path(sys.argv[1] if len(sys.argv) > 1 else root.parent / "shared" / "data")
    print(json.dumps(make_dcm2niix_reference(shared), indent=1)[:400])

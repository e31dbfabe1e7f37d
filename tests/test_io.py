"""NIfTI / MGZ / PNG / NPY / fastMRI-h5 reading and atomic NIfTI writing."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from mrisr.errors import InputError, OutputError
from mrisr.io import Volume, load_volume, save_volume


@pytest.fixture()
def t2(test_data) -> Volume:
    return load_volume(test_data / "ixi002_t2_crop.nii.gz")


def test_nifti_load_keeps_geometry_and_dtype(test_data, t2) -> None:
    img = nib.load(test_data / "ixi002_t2_crop.nii.gz")
    assert t2.data.dtype == np.float32 and t2.shape == (96, 96, 6)
    np.testing.assert_array_equal(t2.affine, img.affine)
    np.testing.assert_array_equal(t2.data, np.asarray(img.dataobj, dtype=np.float32))
    assert t2.orig_dtype == np.int16
    assert t2.meta["qform_code"] == 1 and t2.meta["sform_code"] == 1
    assert t2.zooms == pytest.approx((0.9375, 0.9375, 1.25), rel=1e-6)


def test_save_round_trip_keeps_affine_codes_units(tmp_path, t2) -> None:
    out = save_volume(t2, tmp_path / "rt.nii.gz")
    back = nib.load(out)
    np.testing.assert_allclose(back.affine, t2.affine, atol=1e-6)
    assert int(back.header["qform_code"]) == 1 and int(back.header["sform_code"]) == 1
    assert back.header.get_xyzt_units() == ("mm", "sec")
    assert nib.aff2axcodes(back.affine) == nib.aff2axcodes(t2.affine)
    np.testing.assert_array_equal(np.asarray(back.dataobj), t2.data)
    # qform agrees with the sform (both carry the oblique orientation).
    np.testing.assert_allclose(back.get_qform(), t2.affine, atol=1e-4)


def test_save_refuses_overwrite_and_leaves_no_temp(tmp_path, t2) -> None:
    out = tmp_path / "x.nii"
    save_volume(t2, out)
    before = out.read_bytes()
    with pytest.raises(OutputError, match="--overwrite"):
        save_volume(t2.replace(t2.data * 2), out)
    assert out.read_bytes() == before
    save_volume(t2.replace(t2.data * 2), out, overwrite=True)
    assert np.asarray(nib.load(out).dataobj).max() == pytest.approx(2 * t2.data.max())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nii"]


def test_save_into_missing_folder_is_a_clear_error(tmp_path, t2) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        save_volume(t2, tmp_path / "nope" / "x.nii.gz")


def test_any_orientation_round_trips(tmp_path, t2) -> None:
    """Flip/permute the voxel axes (LPS, PIR, ...): data and world positions survive."""
    for ornt in (
        [[0, -1], [1, -1], [2, 1]],
        [[1, 1], [2, -1], [0, 1]],
    ):
        img = nib.Nifti1Image(t2.data, t2.affine).as_reoriented(np.array(ornt))
        nib.save(img, tmp_path / "o.nii.gz")
        vol = load_volume(tmp_path / "o.nii.gz")
        save_volume(vol, tmp_path / "o2.nii.gz", overwrite=True)
        back = nib.load(tmp_path / "o2.nii.gz")
        np.testing.assert_allclose(back.affine, img.affine, atol=1e-6)
        # the world position of voxel (1, 2, 3) of the original is unchanged
        world = t2.affine @ [1, 2, 3, 1]
        ijk = np.linalg.solve(back.affine, world)
        assert np.asarray(back.dataobj)[tuple(np.round(ijk[:3]).astype(int))] == t2.data[1, 2, 3]
        (tmp_path / "o2.nii.gz").unlink()


def test_mgz_reads_with_its_affine(tmp_path, t2) -> None:
    mgh = nib.MGHImage(t2.data.astype(np.float32), t2.affine)
    nib.save(mgh, tmp_path / "t2.mgz")
    vol = load_volume(tmp_path / "t2.mgz")
    assert vol.meta["format"] == "mgz"
    np.testing.assert_allclose(vol.affine, nib.load(tmp_path / "t2.mgz").affine, atol=1e-5)
    np.testing.assert_array_equal(vol.data, t2.data)
    save_volume(vol, tmp_path / "t2.nii.gz")
    np.testing.assert_allclose(nib.load(tmp_path / "t2.nii.gz").affine, vol.affine, atol=1e-5)


def test_format_table_detects_by_folder_suffix_then_magic(tmp_path) -> None:
    from mrisr.io.formats import format_of, is_scan_file, scan_suffixes, split_suffix

    names = {"a.nii.gz": "nifti", "B.NII": "nifti", "c.MGZ": "mgh", "d.mgh": "mgh",
             "e.hdf5": "h5", "f.png": "png", "g.npy": "npy", "h.IMA": "dicom"}  # fmt: skip
    for name, want in names.items():
        assert format_of(tmp_path / name).name == want, name  # by name: nothing is read
    assert format_of(tmp_path).name == "dicom"  # a folder is one series
    (tmp_path / "slice0001").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)
    (tmp_path / "kspace").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 200)
    assert format_of(tmp_path / "slice0001").name == "dicom"
    assert format_of(tmp_path / "kspace").name == "h5"
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="cannot tell the format"):
        format_of(tmp_path / "notes.txt")
    assert split_suffix("sub-01_T1w.nii.gz") == ("sub-01_T1w", ".nii.gz")
    assert split_suffix("x.IMA") == ("x", ".IMA") and split_suffix("x.txt") == ("x.txt", "")
    assert ".mgh" in scan_suffixes() and ".dcm" not in scan_suffixes()
    assert not is_scan_file(tmp_path / "slice0001") and not is_scan_file(tmp_path / "x.dcm")


def test_a_folder_of_mgh_scans_is_two_scans_for_train_and_upscale(tmp_path, t2) -> None:
    """It used to be one DICOM series for ``train`` (its suffix list lacked .mgh)."""
    pytest.importorskip("pydantic")
    from mrisr.infer.run import expand_inputs
    from mrisr.train.config import load_config

    folder = tmp_path / "mgh"
    folder.mkdir()
    scans = [folder / "s1.mgh", folder / "s2.mgh"]
    for i, p in enumerate(scans):
        nib.save(nib.MGHImage(t2.data * (i + 1), t2.affine), p)
    (folder / "notes.txt").write_text("not a scan")
    assert expand_inputs([folder]) == scans
    cfg = load_config("smoke", [f"data.train={folder}"])
    assert cfg.data.train == [str(p) for p in scans]
    np.testing.assert_array_equal(load_volume(cfg.data.train[1]).data, 2 * t2.data)


def test_4d_needs_a_volume_index(tmp_path, t2) -> None:
    four = np.stack([t2.data, 2 * t2.data], axis=-1)
    nib.save(nib.Nifti1Image(four, t2.affine), tmp_path / "4d.nii.gz")
    with pytest.raises(InputError, match="4-D with 2 volumes.*--volume-index"):
        load_volume(tmp_path / "4d.nii.gz")
    vol = load_volume(tmp_path / "4d.nii.gz", volume_index=1)
    np.testing.assert_array_equal(vol.data, 2 * t2.data)
    with pytest.raises(InputError, match="out of range"):
        load_volume(tmp_path / "4d.nii.gz", volume_index=5)
    # a trailing singleton 4th dimension is just 3-D
    nib.save(nib.Nifti1Image(t2.data[..., None], t2.affine), tmp_path / "3d1.nii.gz")
    assert load_volume(tmp_path / "3d1.nii.gz").shape == t2.shape


def test_png_and_npy_slices(tmp_path, test_data, shared_data) -> None:
    png = load_volume(shared_data / "brainweb2d" / "BrainT1Slice.png")
    assert png.shape[2] == 1 and png.meta["format"] == "png"
    from PIL import Image

    raw = np.asarray(Image.open(shared_data / "brainweb2d" / "BrainT1Slice.png"))
    grey = raw if raw.ndim == 2 else raw[..., 0]  # stored as RGB with equal channels
    np.testing.assert_array_equal(png.data[:, :, 0], grey)
    sl = np.load(test_data / "ixi002_t2_slices.npy")
    np.save(tmp_path / "s.npy", sl[0])
    vol = load_volume(tmp_path / "s.npy")
    assert vol.shape == (*sl[0].shape, 1)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError):
        load_volume(tmp_path / "obj.npy")  # never unpickles


def _write_fastmri(path, kspace, recon=None, fov=(200.0, 160.0, 4.0)):
    import h5py

    xml = (
        "<ismrmrdHeader><encoding><encodedSpace><matrixSize><x>{}</x><y>{}</y><z>1</z>"
        "</matrixSize><fieldOfView_mm><x>{}</x><y>{}</y><z>{}</z></fieldOfView_mm></encodedSpace>"
        "</encoding></ismrmrdHeader>"
    ).format(kspace.shape[-2], kspace.shape[-1], *fov)
    with h5py.File(path, "w") as f:
        f["kspace"] = kspace
        f["ismrmrd_header"] = xml.encode()
        if recon is not None:
            f["reconstruction_rss"] = recon
        f.attrs["acquisition"] = "CORPD_FBK"


def test_fastmri_single_and_multicoil(tmp_path, test_data) -> None:
    """Images made from real slices: k-space by centred orthonormal FFT; multi-coil with smooth
    sensitivity maps normalised so that RSS gives back the magnitude image."""
    import torch

    from mrisr.degrade import fft2c

    img = np.load(test_data / "ixi002_t2_slices.npy").astype(np.float32)  # [S, H, W]
    k1 = fft2c(torch.from_numpy(img).to(torch.complex64)).numpy()
    _write_fastmri(tmp_path / "sc.h5", k1)
    vol = load_volume(tmp_path / "sc.h5")
    assert vol.shape == (img.shape[1], img.shape[2], img.shape[0])
    np.testing.assert_allclose(vol.data, np.moveaxis(img, 0, -1), atol=1e-2 * img.max() * 1e-2)
    assert vol.zooms == pytest.approx((200 / img.shape[1], 160 / img.shape[2], 4.0))

    yy, xx = np.mgrid[0 : img.shape[1], 0 : img.shape[2]] / img.shape[1]
    maps = np.stack(
        [
            np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2)) * np.exp(1j * (cy + xx))
            for cy, cx in [(0, 0), (0, 1), (1, 0), (1, 1)]
        ]
    )
    maps /= np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True))
    coils = img[:, None] * maps[None]
    km = fft2c(torch.from_numpy(coils.astype(np.complex64))).numpy()
    _write_fastmri(tmp_path / "mc.h5", km)
    vol = load_volume(tmp_path / "mc.h5")
    assert vol.meta["n_coils"] == 4
    np.testing.assert_allclose(vol.data, np.moveaxis(img, 0, -1), rtol=1e-4, atol=1e-2)

    recon = img[:, 10:-10, 10:-10] * 0.5
    _write_fastmri(tmp_path / "rc.h5", km, recon=recon)
    # the header has no reconSpace field of view: the reconstruction's voxel size is unknown
    with pytest.raises(InputError, match="reconSpace fieldOfView_mm.*assume-geometry"):
        load_volume(tmp_path / "rc.h5")
    vol = load_volume(tmp_path / "rc.h5", assume_geometry=True)
    assert vol.meta["source_dataset"] == "reconstruction_rss"
    assert vol.meta["assumed_geometry"] == [
        "ismrmrd_header reconSpace fieldOfView_mm missing: 1 mm assumed"
    ]
    np.testing.assert_array_equal(vol.data, np.moveaxis(recon, 0, -1))

"""Training datasets: aligned LR/HR pairs, foreground sampling, augmentation, determinism,
memmap cache, subject splits and the IXI CSN / fastMRI protocol helpers (real crops)."""

from __future__ import annotations

import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import mrisr.data.volumes as volumes_mod
from mrisr.data import (
    SRSliceDataset,
    VolumeCache,
    fastmri_folder,
    ixi_csn,
    split_by_subject,
    subject_of,
    worker_init_fn,
)
from mrisr.data.volumes import apply_transform, map_point, save_npy_atomic
from mrisr.degrade import Bicubic, KspaceTruncate, ThickSlice, bicubic_downsample, kspace_truncate
from mrisr.errors import ConfigError, InputError
from mrisr.io import load_volume
from mrisr.normalisation import Normalisation

ALL_TRANSFORMS = [(fh, fw, k) for fh in (False, True) for fw in (False, True) for k in range(4)]
TRANSFORMS = [(fh, False, k) for fh in (False, True) for k in range(4)]  # the 8 distinct ones


@pytest.fixture(autouse=True)
def one_thread():
    """Small FFTs and matrix products: one thread (a thread pool only waits on a busy CPU)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def ixi(test_data: Path) -> Path:
    return test_data / "ixi002_t2_crop.nii.gz"


@pytest.fixture(scope="module")
def padded_flair(test_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The FLAIR crop centred in a 128×128 zero background (75 % background)."""
    img = nib.load(test_data / "flair_crop.nii.gz")
    data = np.zeros((128, 128, 4), np.float32)
    data[32:96, 32:96] = np.asarray(img.dataobj, dtype=np.float32)
    out = tmp_path_factory.mktemp("flair") / "flair_padded.nii"
    nib.save(nib.Nifti1Image(data, img.affine), out)
    return out


def raw_slices(path: Path) -> np.ndarray:
    """[K, H, W] of a test volume (slice axis 2 for every file here)."""
    return np.transpose(load_volume(path).data, (2, 0, 1))


def locate(patch: torch.Tensor, full: torch.Tensor, s: int) -> tuple[int, int] | None:
    """HR position (multiple of ``s``) where ``patch`` [p, p] equals a crop of ``full``."""
    p = patch.shape[-1]
    win = full.unfold(0, p, s).unfold(1, p, s)  # [ny, nx, p, p]
    hit = (win == patch).flatten(2).all(-1).nonzero()
    return None if len(hit) == 0 else (int(hit[0, 0]) * s, int(hit[0, 1]) * s)


def test_whole_slices_bicubic_pairs(ixi: Path, tmp_path: Path) -> None:
    ds = SRSliceDataset([ixi], 2, Bicubic(2), augment=False, cache_dir=tmp_path)
    raw = raw_slices(ixi)
    assert len(ds) == 6 and ds.lr_grid_offset == 0.5
    norm, st = ds.normalisation, ds.stats(0)
    assert st == Normalisation("percentile").fit(raw)
    for i in range(len(ds)):
        it = ds[i]
        assert it["lr"].shape == (1, 48, 48) and it["hr"].shape == (1, 96, 96)
        assert it["lr"].dtype == torch.float32 and it["subject"] == "ixi002_t2_crop"
        assert it["slice"] == i and it["volume"] == 0
        torch.testing.assert_close(it["lr"], bicubic_downsample(it["hr"], 2), atol=1e-5, rtol=0)
        # normalised with the volume's stats; invert gives the scan back
        torch.testing.assert_close(norm.invert(it["hr"][0], st), torch.from_numpy(raw[i]))
    # the same pairs when every slice is degraded on the fly instead of the cached LR volume
    fly = SRSliceDataset(
        [ixi], 2, Bicubic(2), augment=False, cache_dir=tmp_path, fixed_degradation=False
    )
    assert fly.volumes[0].lr is None and ds.volumes[0].lr is not None
    torch.testing.assert_close(fly[3]["lr"], ds[3]["lr"], atol=1e-5, rtol=0)


def test_patches_are_crops_of_the_degraded_whole_slice(ixi: Path, tmp_path: Path) -> None:
    kw = {"augment": False, "cache_dir": tmp_path}
    full = SRSliceDataset([ixi], 2, KspaceTruncate(2), **kw)
    ds = SRSliceDataset([ixi], 2, KspaceTruncate(2), patch_size=32, samples_per_epoch=12, **kw)
    assert ds.lr_grid_offset == 0.0 and len(ds) == 12
    norm, st = ds.normalisation, ds.stats(0)
    raw = raw_slices(ixi)
    differs = 0
    for i in range(len(ds)):
        it = ds[i]
        k = it["slice"]
        assert it["lr"].shape == (1, 16, 16) and it["hr"].shape == (1, 32, 32)
        ref = full[k]
        yx = locate(it["hr"][0], ref["hr"][0], 2)
        assert yx is not None
        y, x = yx[0] // 2, yx[1] // 2
        assert torch.equal(it["lr"][0], ref["lr"][0, y : y + 16, x : x + 16])
        # and the reference is k-space truncation of the raw slice, normalised afterwards
        lr_ref = norm.apply(kspace_truncate(torch.from_numpy(raw[k]), 2), st)
        torch.testing.assert_close(ref["lr"][0], lr_ref, atol=1e-4, rtol=0)
        patch_degraded = norm.apply(kspace_truncate(norm.invert(it["hr"], st), 2), st)
        differs += not torch.allclose(patch_degraded, it["lr"], atol=1e-3)
    assert differs == len(ds)  # truncating a patch is not a crop of the truncated slice


def test_foreground_weighting(padded_flair: Path, tmp_path: Path) -> None:
    def fg_share(fraction: float) -> tuple[float, int]:
        ds = SRSliceDataset(
            [padded_flair],
            2,
            Bicubic(2),
            patch_size=16,
            cache_dir=tmp_path,
            foreground_fraction=fraction,
            samples_per_epoch=400,
            seed=5,
        )
        norm, st, thr = ds.normalisation, ds.stats(0), ds.volumes[0].threshold
        has = [bool((norm.invert(ds[i]["hr"], st) > thr).any()) for i in range(len(ds))]
        return float(np.mean(has)), len(has) - sum(has)

    share, background_only = fg_share(0.9)
    assert share > 0.85 and background_only >= 3  # rare, not absent
    uniform_share, _ = fg_share(0.0)
    assert uniform_share < share - 0.2


def test_transforms_map_points() -> None:
    img = torch.arange(5 * 7).reshape(5, 7)
    for t in ALL_TRANSFORMS:
        out = apply_transform(img, t)
        for y, x in [(0, 0), (1, 5), (4, 6), (3, 2)]:
            assert out[map_point(y, x, (5, 7), t)] == img[y, x]


def test_augmentation_keeps_pairs_aligned(ixi: Path, tmp_path: Path) -> None:
    plain = SRSliceDataset([ixi], 2, Bicubic(2), augment=False, cache_dir=tmp_path)
    ds = SRSliceDataset([ixi], 2, Bicubic(2), augment=True, cache_dir=tmp_path)
    used = set()
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            it, ref = ds[i], plain[i]["hr"][0]
            torch.testing.assert_close(it["lr"], bicubic_downsample(it["hr"], 2), atol=1e-5, rtol=0)
            match = [t for t in TRANSFORMS if torch.equal(apply_transform(ref, t), it["hr"][0])]
            assert match
            used.add(match[0])
    assert len(used) >= 4


def test_augmented_kspace_patches_keep_the_grid(ixi: Path, tmp_path: Path) -> None:
    """k-space grids are not flip-symmetric (offset 0): the HR slice is transformed first and
    degraded after, so every augmented patch is a crop of truncate(transformed slice)."""
    ds = SRSliceDataset(
        [ixi], 2, KspaceTruncate(2), patch_size=32, samples_per_epoch=12, cache_dir=tmp_path
    )
    norm, st = ds.normalisation, ds.stats(0)
    raw = torch.from_numpy(raw_slices(ixi))
    used = set()
    for i in range(len(ds)):
        it = ds[i]
        for t in TRANSFORMS:
            full = apply_transform(raw[it["slice"]], t)
            yx = locate(it["hr"][0], norm.apply(full, st), 2)
            if yx is not None:
                break
        assert yx is not None
        used.add(t)
        lr_full = norm.apply(kspace_truncate(full, 2), st)
        y, x = yx[0] // 2, yx[1] // 2
        torch.testing.assert_close(it["lr"][0], lr_full[y : y + 16, x : x + 16], atol=1e-4, rtol=0)
    assert len(used) >= 3


RANDOM_CFG = {
    "steps": [
        {"method": "gaussian", "scale": 2, "sigma": [0.5, 1.5]},
        {"method": "rician", "sigma": [2.0, 8.0]},
    ]
}


def _same(a: dict, b: dict) -> bool:
    return torch.equal(a["lr"], b["lr"]) and torch.equal(a["hr"], b["hr"])


def test_items_are_reproducible_and_epoch_dependent(
    ixi: Path, padded_flair: Path, tmp_path: Path
) -> None:
    kw = {"patch_size": 16, "samples_per_epoch": 8, "seed": 3, "cache_dir": tmp_path}
    a = SRSliceDataset([ixi, padded_flair], 2, RANDOM_CFG, **kw)
    b = SRSliceDataset([ixi, padded_flair], 2, RANDOM_CFG, **kw)
    assert all(_same(a[i], b[i]) for i in range(len(a)))
    assert not _same(a[0], a[1])
    b.set_epoch(1)
    assert not any(_same(a[i], b[i]) for i in range(len(a)))
    c = pickle.loads(pickle.dumps(a))
    assert len(pickle.dumps(a)) < 50_000  # paths and small arrays, never the volumes
    assert all(_same(a[i], c[i]) for i in range(len(a)))
    serial = list(DataLoader(a, batch_size=4, num_workers=0))
    parallel = list(DataLoader(a, batch_size=4, num_workers=2, worker_init_fn=worker_init_fn))
    for x, y in zip(serial, parallel, strict=True):
        assert torch.equal(x["lr"], y["lr"]) and torch.equal(x["hr"], y["hr"])
        assert x["subject"] == y["subject"] and torch.equal(x["slice"], y["slice"])


def test_random_pipeline_draws(ixi: Path, tmp_path: Path) -> None:
    ds = SRSliceDataset([ixi], 2, RANDOM_CFG, augment=False, cache_dir=tmp_path, seed=1)
    again = SRSliceDataset([ixi], 2, RANDOM_CFG, augment=False, cache_dir=tmp_path, seed=1)
    assert ds.random and ds.lr_grid_offset == 0.5
    sigmas = [ds.degradation_for(i).steps[0].sigma for i in range(len(ds))]
    assert all(0.5 <= s <= 1.5 for s in sigmas) and len(set(sigmas)) == len(sigmas)
    assert sigmas == [again.degradation_for(i).steps[0].sigma for i in range(len(ds))]
    noise = [ds.degradation_for(i).steps[1].sigma for i in range(len(ds))]
    assert all(2.0 <= s <= 8.0 for s in noise)
    norm, st = ds.normalisation, ds.stats(0)
    for i in range(len(ds)):
        it = ds[i]
        assert _same(it, again[i])
        # the item is the recorded draw applied to the whole raw slice (noise replayed too)
        replay = ds.degradation_for(i)(norm.invert(it["hr"], st)).image
        torch.testing.assert_close(it["lr"], norm.apply(replay, st), atol=1e-4, rtol=0)
    ds.set_epoch(1)
    assert [ds.degradation_for(i).steps[0].sigma for i in range(len(ds))] != sigmas


def test_cache_decodes_once_and_writes_atomically(
    ixi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = volumes_mod.load_volume
    monkeypatch.setattr(volumes_mod, "load_volume", lambda p: calls.append(p) or real(p))
    cache = VolumeCache(tmp_path)
    first = cache.get(ixi)
    assert cache.get(ixi) is first
    second = VolumeCache(tmp_path).get(ixi)  # another process: reads the files
    assert len(calls) == 1
    assert isinstance(second.data, np.memmap) and not second.data.flags.writeable
    np.testing.assert_array_equal(second.data, real(ixi).data)
    np.testing.assert_allclose(second.affine, real(ixi).affine)
    assert len(pickle.dumps(second)) < 10_000  # pickles the file name, not the array
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(second)).data, second.data)
    SRSliceDataset([ixi], 2, Bicubic(2), cache_dir=tmp_path)
    assert len(calls) == 1
    with pytest.raises(ValueError):  # object arrays cannot be saved without pickle
        save_npy_atomic(tmp_path / "bad.npy", np.array([object()]))
    assert not (tmp_path / "bad.npy").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") or "tmp" in p.name]


def test_split_by_subject() -> None:
    scans = [
        Path(f"/d/IXI{n:03d}-Guys-0828-{c}.nii.gz")
        for n in (2, 12, 13, 14)
        for c in "T1 T2".split()
    ]
    for seed in range(8):
        tr, va, te = split_by_subject(scans, val=1, test=1, seed=seed)
        assert sorted(tr + va + te) == sorted(scans)
        for part in (tr, va, te):
            ids = {subject_of(p) for p in part}
            assert all(p in part for p in scans if subject_of(p) in ids)
        assert len({subject_of(p) for p in va}) == 1 and len(te) == 2
    assert split_by_subject(scans, val=0.25, seed=4) == split_by_subject(scans, val=1, seed=4)
    assert split_by_subject(scans, val=2)[1] != []
    with pytest.raises(ConfigError):
        split_by_subject(scans, val=3, test=1)
    assert subject_of("/x/sub-01_T1w.nii.gz") == "sub-01_T1w"
    assert subject_of("/x/file1000001.h5") == "file1000001"


def test_stats_are_per_volume(ixi: Path, test_data: Path, tmp_path: Path) -> None:
    flair = test_data / "flair_crop.nii.gz"
    norm = Normalisation("percentile", 1.0, 99.0)
    ds = SRSliceDataset(
        [ixi, flair], 2, Bicubic(2), normalisation=norm, augment=False, cache_dir=tmp_path
    )
    assert ds.stats(0) == norm.fit(load_volume(ixi).data)
    assert ds.stats(1) == norm.fit(load_volume(flair).data) != ds.stats(0)
    it = ds[len(ds) - 1]
    assert it["volume"] == 1 and it["subject"] == "flair_crop"
    back = norm.invert(it["hr"][0], ds.stats(1))
    np.testing.assert_allclose(back.numpy(), raw_slices(flair)[it["slice"]], rtol=1e-5)


def test_scale_not_dividing_crops_centrally(test_data: Path, tmp_path: Path) -> None:
    flair = test_data / "flair_crop.nii.gz"
    ds = SRSliceDataset([flair], 3, Bicubic(3), augment=False, cache_dir=tmp_path)
    it = ds[0]
    assert it["hr"].shape == (1, 63, 63) and it["lr"].shape == (1, 21, 21)
    back = ds.normalisation.invert(it["hr"][0], ds.stats(0)).numpy()
    np.testing.assert_allclose(back, raw_slices(flair)[0, :63, :63], rtol=1e-5)


def test_bad_configurations(ixi: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="in-plane"):
        SRSliceDataset([ixi], 2, ThickSlice(), cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="larger"):
        SRSliceDataset([ixi], 2, Bicubic(2), patch_size=128, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="scale"):
        SRSliceDataset([ixi], 4, Bicubic(2), cache_dir=tmp_path)
    with pytest.raises(InputError, match="ixi002_t2_crop"):
        SRSliceDataset([ixi], 2, Bicubic(2), crop=(96, 96, 8), cache_dir=tmp_path)


def test_ixi_csn_protocol(ixi: Path, tmp_path: Path) -> None:
    img = nib.load(ixi)
    big = np.zeros((242, 244, 98), np.int16)
    big[100:196, 80:176, 40:46] = np.asarray(img.dataobj)
    scans = []
    for n in (1, 2, 3):
        p = tmp_path / f"IXI{n:03d}-Guys-0001-T2.nii"
        nib.save(nib.Nifti1Image(big, img.affine), p)
        scans.append(p)
    split = ixi_csn(scans, cache_dir=tmp_path / "cache", seed=0)
    train, val, test = split
    assert sorted(train + val + test) == scans and len(train) == len(val) == len(test) == 1
    common = {"crop": split.crop, "cache_dir": split.cache_dir}  # as train.builders passes
    tr = SRSliceDataset(train, 2, Bicubic(2), patch_size=32, **common)
    va = SRSliceDataset(val, 2, Bicubic(2), augment=False, **common)
    assert va.volumes[0].shape == (96, 240, 240) and not va.augment and tr.augment
    assert len(va) == 6  # the six slices with signal out of 96
    it = va[0]
    assert it["hr"].shape == (1, 240, 240) and it["lr"].shape == (1, 120, 120)
    back = va.normalisation.invert(it["hr"][0], va.stats(0)).numpy()
    np.testing.assert_allclose(back, big[1:241, 2:242, it["slice"]], atol=1e-3)
    assert it["slice"] == 40 and tr[0]["hr"].shape == (1, 32, 32)
    small = tmp_path / "IXI004-Guys-0001-T2.nii.gz"
    nib.save(img, small)
    with pytest.raises(InputError, match="IXI004-Guys-0001-T2"):
        ixi_csn([*scans, small], cache_dir=tmp_path / "cache")


def test_fastmri_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        fastmri_folder(tmp_path)
    for name in ("file_b.h5", "file_a.h5", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert fastmri_folder(tmp_path) == [tmp_path / "file_a.h5", tmp_path / "file_b.h5"]
    with pytest.raises(InputError):
        fastmri_folder(tmp_path / "missing")

"""Multi-contrast training (``task: multicontrast``, SANet): guide scans paired with the
targets across grids, the α-weighted loss of both outputs, validation with the guide, and the
config errors of mismatched pairs.

The target is the IXI002 T2 test crop (axial grid), the guide the same subject's T1 crop on
its own sagittal grid (``tests/data/ixi002_t1_crop.nii.gz``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightning")

import torch  # noqa: E402

from mrisr.errors import ConfigError  # noqa: E402
from mrisr.train.config import load_config  # noqa: E402
from tests.test_train import DATA, FLAIR, IXI, fast, metric_rows  # noqa: E402

T1 = DATA / "ixi002_t1_crop.nii.gz"
RECIPE = """\
name: sanet_test
base: smoke
task: multicontrast
model:
  name: sanet
  args: {n_groups: 2, n_rcab: 1, n_feats: 16, reduction: 4}
data: {lr_patch: 12}
"""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("volume-cache")


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    p = tmp_path / "sanet_test.yaml"
    p.write_text(RECIPE)
    return p


def pairs(cache_dir: Path, *extra: str) -> list[str]:
    return fast(cache_dir, f"data.guide=[{T1}]", f"data.val=[{IXI}]", f"data.val_guide=[{T1}]",
                *extra)  # fmt: skip


def test_dataset_pairs_guide_patches_with_target_patches(cache_dir: Path) -> None:
    from mrisr.data import SRSliceDataset
    from mrisr.data.pairs import pair_guide
    from mrisr.io import load_volume

    ds = SRSliceDataset([IXI], 2, [{"method": "kspace-truncate", "scale": 2}], patch_size=24,
                        guides=[T1], cache_dir=cache_dir, samples_per_epoch=8)  # fmt: skip
    whole = SRSliceDataset([IXI], 2, [{"method": "kspace-truncate", "scale": 2}],
                           guides=[T1], cache_dir=cache_dir, augment=False)  # fmt: skip
    on, report = pair_guide(load_volume(IXI), load_volume(T1))
    assert ds.card()["alignment"][0]["nmi"] == pytest.approx(report["nmi"])
    item = ds[3]
    assert item["guide"].shape == item["hr"].shape == (1, 24, 24)
    assert item["lr"].shape == (1, 12, 12)
    sl = whole[2]  # a whole slice: the guide is pair_guide's resampled T1, normalised
    e = whole.volumes[0]
    want = whole.normalisation.apply(torch.from_numpy(on.data[:, :, sl["slice"]]), e.guide_stats)
    torch.testing.assert_close(sl["guide"][0], want.float())
    # the guide patch moves with the target patch: it correlates with it in every item
    for i in range(4):
        it = ds[i]
        g, h = it["guide"].flatten().numpy(), it["hr"].flatten().numpy()
        if g.std() > 0 and h.std() > 0:
            assert abs(np.corrcoef(g, h)[0, 1]) > 0.2


def test_multicontrast_run_and_its_checkpoint(
    tmp_path: Path, recipe: Path, cache_dir: Path
) -> None:
    from mrisr.checkpoint import load_checkpoint
    from mrisr.train import train

    run = train(load_config(recipe, pairs(cache_dir)), run_dir=tmp_path / "run")
    tar, aux, tot = (metric_rows(run, k) for k in ("loss/target", "loss/guide", "loss"))
    assert [s for s, _ in tot] == list(range(1, 9))
    for (_, t), (_, a), (_, total) in zip(tar, aux, tot, strict=True):
        assert total == pytest.approx(0.7 * t + 0.3 * a, rel=1e-5)
    assert [s for s, _ in metric_rows(run, "val/psnr")] == [4, 8]
    model, ck = load_checkpoint(run / "final")
    assert ck.name == "sanet" and ck.training["task"] == "multicontrast"
    assert ck.training["data"]["guide"] == [T1.name]
    assert ck.training["dataset"]["alignment"][0]["overlap"] == 1.0
    with torch.no_grad():
        assert model(torch.rand(1, 1, 6, 8), torch.rand(1, 1, 12, 16)).shape == (1, 1, 12, 16)
    guided_upscale(tmp_path, run / "final")


def guided_upscale(tmp_path: Path, ckpt: Path) -> None:
    """``mrisr upscale LR OUT --guide T1``: the T1 (its own grid) lands on the output grid."""
    import json

    from mrisr.commands.degrade import run_degrade
    from mrisr.errors import ConfigError
    from mrisr.infer.run import upscale
    from mrisr.io import load_volume

    lr = tmp_path / "lr.nii.gz"
    run_degrade(IXI, lr, "kspace-truncate", {"scale": 2}, axis=None, seed=0, crop=False,
                snr=None, volume_index=None, overwrite=False)  # fmt: skip
    out = tmp_path / "sr.nii.gz"
    upscale(lr, out, checkpoint=ckpt, guide=T1, progress=False)
    sr, ref = load_volume(out), load_volume(IXI)
    assert sr.shape == ref.shape
    np.testing.assert_allclose(sr.affine, ref.affine, atol=1e-4)  # the HR grid of the T2
    side = json.loads((tmp_path / "sr.nii.gz.json").read_text())
    assert side["guide"] == str(T1) and side["guide_alignment"]["overlap"] == 1.0
    with pytest.raises(ConfigError, match="multi-contrast: give the high-resolution guide"):
        upscale(lr, tmp_path / "x.nii.gz", checkpoint=ckpt)
    with pytest.raises(ConfigError, match="single-contrast and takes no --guide"):
        upscale(lr, tmp_path / "y.nii.gz", weights="edsr-kspace-x2", guide=T1)
    with pytest.raises(ConfigError, match="--guide goes with one input scan"):
        upscale([lr, lr], tmp_path / "many", checkpoint=ckpt, guide=T1)
    assert not any((tmp_path / n).exists() for n in ("x.nii.gz", "y.nii.gz", "many"))


def test_pair_config_errors(recipe: Path, cache_dir: Path) -> None:
    with pytest.raises(ConfigError, match="task: multicontrast needs a guide scan"):
        load_config(recipe, fast(cache_dir))
    with pytest.raises(ConfigError, match="data.guide: 2 guide scans for 1 data.train scans"):
        load_config(recipe, fast(cache_dir, f"data.guide=[{T1},{T1}]"))
    with pytest.raises(ConfigError, match="val_guide: 0 guide scans for 1 data.val"):
        load_config(recipe, fast(cache_dir, f"data.guide=[{T1}]"))
    with pytest.raises(ConfigError, match="guide scans are for task: multicontrast"):
        load_config("smoke", pairs(cache_dir))
    with pytest.raises(ConfigError, match="sanet is multi-contrast .* use task: multicontrast"):
        load_config(recipe, fast(cache_dir, "task=supervised"))
    with pytest.raises(ConfigError, match="edsr-baseline is single-contrast"):
        load_config(recipe, [*pairs(cache_dir), "model.name=edsr-baseline", "model.args={}"])
    flair_pair = pairs(cache_dir, f"data.guide=[{FLAIR}]")  # FLAIR lies elsewhere in space
    from mrisr.errors import InputError
    from mrisr.train import train

    with pytest.raises(InputError, match="fields of view do not overlap enough"):
        train(load_config(recipe, flair_pair), run_dir=Path(str(cache_dir) + "-flair"))


def test_fastmri_h5_pairs_share_the_grid(tmp_path: Path, cache_dir: Path) -> None:
    """fastMRI-style pairs (PD guide, PD-FS target): two k-space h5 files of one grid pass
    through unresampled, and the z-scored pairs are clamped to ±6 (the fastMRI transform)."""
    from mrisr.data import SRSliceDataset
    from mrisr.data.pairs import pair_guide
    from mrisr.degrade import fft2c
    from mrisr.io import load_volume
    from mrisr.normalisation import Normalisation
    from tests.test_io import _write_fastmri

    img = np.load(DATA / "ixi002_t2_slices.npy").astype(np.float32)  # [S, H, W]
    for name, x in (("pdfs", img), ("pd", img.max() - img)):
        _write_fastmri(
            tmp_path / f"{name}.h5", fft2c(torch.from_numpy(x).to(torch.complex64)).numpy()
        )
    tar, gui = load_volume(tmp_path / "pdfs.h5"), load_volume(tmp_path / "pd.h5")
    on, rep = pair_guide(tar, gui)
    assert rep["same_grid"] and rep["interpolation"] == "none"
    np.testing.assert_array_equal(on.data, gui.data)
    ds = SRSliceDataset([tmp_path / "pdfs.h5"], 2, [{"method": "kspace-truncate", "scale": 2}],
                        guides=[tmp_path / "pd.h5"], cache_dir=cache_dir, augment=False,
                        normalisation=Normalisation("zscore", clip=True))  # fmt: skip
    item = ds[1]
    assert item["lr"].shape == (1, 96, 96) and item["guide"].shape == item["hr"].shape
    assert item["guide"].abs().max() <= 6.0 and item["hr"].abs().max() <= 6.0


def test_normalisation_stats_match_what_inference_fits(cache_dir: Path) -> None:
    """``stats_from="lr"``: the target is normalised with its LR volume's statistics, and the
    guide with its whole native volume's — the statistics ``upscale --guide`` fits."""
    from mrisr.data import SRSliceDataset
    from mrisr.io import load_volume
    from mrisr.normalisation import Normalisation

    norm = Normalisation("zscore", clip=True)
    deg = [{"method": "kspace-truncate", "scale": 2}]
    ds = SRSliceDataset([IXI], 2, deg, guides=[T1], cache_dir=cache_dir, normalisation=norm,
                        stats_from="lr", augment=False)  # fmt: skip
    e = ds.volumes[0]
    assert e.stats == pytest.approx(norm.fit(np.asarray(e.lr.array)))
    assert e.guide_stats == pytest.approx(norm.fit(load_volume(T1).data))
    hr_stats = SRSliceDataset([IXI], 2, deg, cache_dir=cache_dir, normalisation=norm).volumes[0]
    assert hr_stats.stats["scale"] > e.stats["scale"]  # truncation lowers the std
    with pytest.raises(ConfigError, match="stats_from 'lr' needs a fixed degradation"):
        SRSliceDataset([IXI], 2, {"steps": [{"method": "gaussian", "scale": 2,
                       "sigma": [0.5, 1.0]}]}, cache_dir=cache_dir, stats_from="lr")  # fmt: skip

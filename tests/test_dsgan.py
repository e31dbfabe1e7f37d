"""DSGAN (learned degradation): networks, equivalent kernel, regularisers and their schedule,
the kernel degradation, unpaired crops, the engine task and ``mrisr learn-kernel``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mrisr.degrade import make_degradation
from mrisr.degrade.kernel import Kernel, centre_offset, kernel_downsample, read_kernel
from mrisr.errors import ConfigError, InputError
from mrisr.models.dsgan import (
    DSGANDiscriminator,
    DSGANGenerator,
    KernelRegularisers,
    centre_of_mass,
    equivalent_kernel,
    kernel_centre,
)
from mrisr.train.tasks.dsgan import LambdaSchedule

DATA = Path(__file__).parent / "data"


def gauss(sigma: tuple[float, float], n: int = 13, centre: float = 6.5) -> np.ndarray:
    x = np.arange(n) - centre
    k = np.exp(-(x[:, None] ** 2) / (2 * sigma[0] ** 2) - x[None, :] ** 2 / (2 * sigma[1] ** 2))
    return k / k.sum()


def save_k(path: Path, k: np.ndarray, scale: int | None = 2) -> Path:
    np.save(path, k.astype(np.float32), allow_pickle=False)
    if scale:
        path.with_suffix(".json").write_text(json.dumps({"scale": scale}))
    return path


def test_parameter_counts_match_the_spec() -> None:
    g, d = DSGANGenerator(2), DSGANDiscriminator()
    assert sum(p.numel() for p in g.parameters()) == 150_656  # spec §5.2
    assert sum(p.numel() for p in d.parameters()) == 30_977  # spec §5.3
    assert all(m.bias is None for m in g.layers)
    x = torch.randn(2, 1, 64, 64)
    assert g(x).shape == (2, 1, 26, 26) and g.kernel_size == 13
    assert d(g(x)).shape == (2, 1, 20, 20)


@pytest.mark.parametrize("scale", [2, 4])
def test_generator_is_one_explicit_kernel(scale: int) -> None:
    torch.manual_seed(0)
    g = DSGANGenerator(scale, n_feats=16)
    for m in g.layers:  # larger weights than the 0.1-gain init, so the check is not trivial
        torch.nn.init.normal_(m.weight, 0.0, 0.3)
    x = torch.randn(3, 1, 64, 64, dtype=torch.float64)
    g = g.double()
    k = equivalent_kernel(g)
    assert k.shape == (13, 13)
    want = g(x)
    got = F.conv2d(x, k[None, None], stride=scale)
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-9 * float(want.detach().abs().max()))


def test_bicubic_regulariser_is_aligned_with_matlab_imresize() -> None:
    """G's output sample j sits at crop coordinate 2j + 6.5; the bicubic target must be the
    MATLAB antialiased ×½ image (mrisr's Bicubic, an independent implementation) there."""
    torch.manual_seed(1)
    hr = torch.rand(1, 1, 64, 64, dtype=torch.float64)
    reg = KernelRegularisers(13, 2).double()
    full = make_degradation("bicubic", scale=2)(hr[0, 0]).image  # 32×32, sample j at 2j + 0.5
    aligned = full[3:29, 3:29][None, None]  # crop coordinate 2(j+3) + 0.5 = 2j + 6.5
    assert float(reg.bicubic_loss(hr, aligned)) < 1e-20
    assert float(reg.bicubic_loss(hr, full[2:28, 2:28][None, None])) > 1e-3


def test_kernel_regularisers() -> None:
    reg = KernelRegularisers(13, 2).double()
    k = torch.tensor(gauss((1.2, 0.9)))
    assert kernel_centre(13, 2) == 6.5 and kernel_centre(13, 4) == 7.5
    assert float(reg.centre_loss(k)) < 1e-10  # truncation on the 13-grid: ~4e-13
    assert float(reg.centre_loss(torch.tensor(gauss((1.2, 0.9), centre=5.5)))) == pytest.approx(1.0)
    assert float(reg.sum2one(k)) < 1e-12 and float(reg.sum2one(2 * k)) == pytest.approx(1.0)
    m = reg.mask
    assert float(m[2:11, 2:11].abs().max()) == 0 and float(m[0].min()) > 2.0
    ring = torch.zeros(13, 13, dtype=torch.float64)
    ring[0, 6] = 1.0
    assert float(reg.boundaries(ring)) > float(reg.boundaries(k)) * 10
    spread = torch.full((13, 13), 1 / 169, dtype=torch.float64)
    assert float(reg.sparse(k)) < float(reg.sparse(spread))


def test_lambda_schedule_follows_kernelgan() -> None:
    c = SimpleNamespace(
        lambda_bicubic=5.0, lambda_sum2one=0.5, lambda_boundaries=0.5, lambda_centre=1.0,
        lambda_sparse=5.0, bicubic_threshold=0.4, bicubic_patience=3, decay_every=200,
        decay_rate=100.0, lambda_bicubic_min=5e-6, constraints_below=5e-3,
    )  # fmt: skip
    s = LambdaSchedule(c)
    s.update(1, 0.5)
    s.update(2, 0.1)
    s.update(3, 0.1)
    assert not s.similar
    s.update(4, 0.1)
    assert s.similar and s.bicubic == 5.0
    seen = {}
    for step in range(5, 1001):
        s.update(step, 0.01)
        seen[step] = (s.bicubic, s.centre, s.sparse)
    assert seen[199][0] == 5.0 and seen[200][0] == pytest.approx(0.05)
    assert seen[399] == (pytest.approx(0.05), 0.0, 0.0)
    assert seen[400] == (pytest.approx(5e-4), 1.0, 5.0)  # < 5e-3: centre and sparse switch on
    assert seen[600][0] == pytest.approx(5e-6) and seen[1000][0] == pytest.approx(5e-6)
    restored = LambdaSchedule(c)
    restored.load_state_dict(s.state_dict())
    assert restored.state_dict() == s.state_dict()


def test_kernel_degradation_equals_the_gaussian_method(tmp_path: Path) -> None:
    """A sampled Gaussian kernel centred on the 2×2 block = mrisr's Gaussian decimation."""
    k = save_k(tmp_path / "g.npy", gauss((1.0, 1.0)))
    torch.manual_seed(2)
    x = torch.rand(2, 48, 40, dtype=torch.float64)
    a = make_degradation("kernel", kernel=str(k))(x)
    b = make_degradation("gaussian", scale=2, sigma=1.0, truncate=7.0)(x)  # no 4σ cut
    assert a.image.shape == b.image.shape == (2, 24, 20)
    inner = (slice(None), slice(4, -4), slice(4, -4))  # boundaries are handled differently
    assert torch.allclose(a.image[inner], b.image[inner], atol=2e-6)
    assert a.axes == b.axes  # the same LR grid: sample j at 2j + 0.5
    assert a.params["kernel_sha256"] and a.params["scale"] == 2


def test_kernel_offset_and_normalisation(tmp_path: Path) -> None:
    delta = np.zeros((13, 13))
    delta[6, 6] = 3.0  # raw sum 3: used normalised
    x = torch.arange(16 * 16, dtype=torch.float64).reshape(16, 16)
    y = Kernel(str(save_k(tmp_path / "d.npy", delta)), 2)(x)
    assert torch.equal(y.image, x[::2, ::2])
    assert y.axes[0].offset == 0.0 and y.params["kernel_raw_sum"] == pytest.approx(3.0)
    assert centre_offset(gauss((1.0, 1.0)), 2) == 0.5
    assert kernel_downsample(torch.rand(3, 32, 32), gauss((1, 1)), 2).shape == (3, 16, 16)


def test_kernel_file_errors(tmp_path: Path) -> None:
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="not a readable"):
        read_kernel(obj)  # never unpickled
    np.save(tmp_path / "rect.npy", np.ones((3, 5)))
    with pytest.raises(InputError, match="square"):
        read_kernel(tmp_path / "rect.npy")
    nan = np.ones((3, 3))
    nan[1, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(InputError, match="NaN"):
        read_kernel(tmp_path / "nan.npy")
    k = save_k(tmp_path / "k.npy", gauss((1, 1)), scale=None)
    with pytest.raises(ConfigError, match="scale"):
        Kernel(str(k))(torch.rand(16, 16))
    save_k(tmp_path / "k.npy", gauss((1, 1)), scale=2)
    with pytest.raises(ConfigError, match="learned at ×2"):
        Kernel(str(k), 4)(torch.rand(16, 16))
    with pytest.raises(ConfigError, match="does not exist"):
        Kernel(str(tmp_path / "missing.npy"), 2)(torch.rand(16, 16))


def test_degrade_cli_kernel(tmp_path: Path) -> None:
    import nibabel as nib

    from mrisr.data import demo_scan_path

    k = save_k(tmp_path / "k.npy", gauss((1.0, 1.0)))
    run = [sys.executable, "-m", "mrisr", "degrade", str(demo_scan_path())]
    out = tmp_path / "lr.nii.gz"
    r = subprocess.run([*run, str(out), "--method", "kernel", "--kernel", str(k)],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    g = tmp_path / "g.nii.gz"
    subprocess.run([*run, str(g), "--method", "gaussian", "--sigma", "1.0"], check=True,
                   capture_output=True)  # fmt: skip
    a, b = nib.load(out), nib.load(g)
    assert a.shape == b.shape and np.allclose(a.affine, b.affine, atol=1e-6)
    side = json.loads((tmp_path / "lr.nii.gz.json").read_text())
    assert side["degradation"][0]["kernel_sha256"]
    bad = subprocess.run([*run, str(tmp_path / "x.nii.gz"), "--method", "kernel"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "needs --kernel" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.nii.gz").exists()


def _real_pair(tmp_path: Path, kernel: np.ndarray) -> tuple[Path, Path, Path]:
    from mrisr.data import demo_scan_path

    k = save_k(tmp_path / "hidden.npy", kernel)
    lr = tmp_path / "real_lr.nii.gz"
    subprocess.run([sys.executable, "-m", "mrisr", "degrade", str(demo_scan_path()), str(lr),
                    "--method", "kernel", "--kernel", str(k), "--snr", "60", "--seed", "0"],
                   check=True, capture_output=True)  # fmt: skip
    return demo_scan_path(), lr, k


def test_unpaired_crops(tmp_path: Path) -> None:
    from mrisr.data.unpaired import UnpairedCrops, gradient_probability

    hr, lr, _ = _real_pair(tmp_path, gauss((1.2, 0.8)))
    ds = UnpairedCrops([hr], [lr], 2, hr_crop=32, kernel_size=13, samples_per_epoch=20, seed=3)
    assert ds.lr_crop == (32 - 13) // 2 + 1 == 10
    a, b = ds[5], ds[5]
    assert a["hr"].shape == (1, 32, 32) and a["lr"].shape == (1, 10, 10)
    assert torch.equal(a["hr"], b["hr"]) and torch.equal(a["lr"], b["lr"])
    ds.set_epoch(1)
    assert not torch.equal(ds[5]["hr"], a["hr"])
    assert 0.0 <= float(a["hr"].min()) and float(a["hr"].max()) < 2.0  # [0, 1] scale
    card = ds.card()
    assert card["mode"] == "per-volume" and card["lr_real"] == ["real_lr.nii.gz"]
    # the crop probability follows edges; corners on the stride grid
    img = np.zeros((64, 64))
    img[:, 40:] = 1.0
    p = gradient_probability(img, 16, step=2).reshape(64, 64)
    assert p.sum() == pytest.approx(1.0)
    ys, xs = np.nonzero(p)
    assert np.all(ys % 2 == 0) and np.all(xs % 2 == 0) and xs.max() <= 48
    assert p[:, 26:40].sum() > 0.9  # crops whose centre window holds the edge at x = 40
    one = UnpairedCrops([hr], [lr], 2, hr_crop=32, slice_index=12, samples_per_epoch=4)
    assert one.card()["hr_slice"] == 12 and one.card()["lr_slice"] == 12
    with pytest.raises(ConfigError, match="outside"):
        UnpairedCrops([hr], [lr], 2, hr_crop=32, slice_index=99)
    with pytest.raises(ConfigError, match="not ×4"):
        UnpairedCrops([hr], [lr], 4, hr_crop=32)


def test_learn_kernel_cli(tmp_path: Path) -> None:
    """A short run through the engine writes the kernel, its sidecar and the PSF plot; the
    kernel is normalised and usable by `mrisr degrade` (what 30 steps learn is not checked
    here: benchmarks/realistic_degradation.py measures a full run against a known kernel)."""
    hr, lr, _ = _real_pair(tmp_path, gauss((1.2, 0.8)))
    out = tmp_path / "k.npy"
    cmd = [sys.executable, "-m", "mrisr", "learn-kernel", str(out), "--hr", str(hr), "--lr",
           str(lr), "--scale", "2", "--steps", "30"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    k, meta = read_kernel(out)
    assert k.shape == (13, 13) and k.sum() == pytest.approx(1.0, abs=1e-5)
    assert meta["scale"] == 2 and meta["mode"] == "per-volume" and meta["steps"] == 30
    assert meta["hr_sha256"] and meta["lr_sha256"]
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert meta["centre_of_mass"] == pytest.approx(list(centre_of_mass(k)), abs=1e-3)
    use = subprocess.run([sys.executable, "-m", "mrisr", "degrade", str(hr),
                          str(tmp_path / "s.nii"), "--method", "kernel", "--kernel", str(out)],
                         capture_output=True)  # fmt: skip
    assert use.returncode == 0, use.stderr
    assert not list(tmp_path.glob(".mrisr-kernel-*"))  # the temporary run is removed
    before = out.read_bytes()
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 2 and "exists already" in again.stderr
    assert out.read_bytes() == before
    cmd[4] = str(tmp_path / "k3.npy")
    bad = subprocess.run([*cmd[:-4], "--scale", "3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "×2 or ×4" in bad.stderr


def test_dsgan_config_errors() -> None:
    from mrisr.train.config import load_config

    ixi = str(DATA / "ixi002_t1_crop.nii.gz")
    with pytest.raises(ConfigError, match="lr_real"):
        load_config("dsgan_x2", [f"data.train=[{ixi}]"])
    with pytest.raises(ConfigError, match="lr_real"):
        load_config("smoke", [f"data.lr_real=[{ixi}]"])
    cfg = load_config("dsgan_x2", [f"data.train=[{ixi}]", f"data.lr_real=[{ixi}]"])
    assert cfg.task == "dsgan" and cfg.optim.betas == (0.5, 0.999)
    assert cfg.sched.every == 750 and cfg.sched.gamma == 0.1 and cfg.train.steps == 3000

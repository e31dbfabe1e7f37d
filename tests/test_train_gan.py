"""GAN training (``task: gan``): recipe inheritance and errors, the warm-up / adversarial
phases, exact resume, the VGG content path, and the FA-GAN recipes.

Runs use a one-LFFB, 16-channel FA-GAN on the shipped crops (seconds on CPU).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lightning")

import torch  # noqa: E402

from mrisr.errors import ConfigError  # noqa: E402
from mrisr.train.config import load_config, recipe_names  # noqa: E402
from tests.test_train import IXI, fast, metric_rows, weights  # noqa: E402

GAN_RECIPE = """\
name: gan_test
base: smoke
task: gan
model:
  name: fagan
  args: {n_blocks: 1, n_feats: 16}
data: {lr_patch: 12}
train: {loss: l2}
gan: {content: l2, pixel: none, pretrain_steps: 4, adv_weight: 0.01}
"""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("volume-cache")


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    p = tmp_path / "gan_test.yaml"
    p.write_text(GAN_RECIPE)
    return p


def test_base_recipes_merge_and_gan_errors(tmp_path: Path, recipe: Path) -> None:
    cfg = load_config(recipe, ["train.progress=off"])
    assert cfg.base == "smoke" and cfg.task == "gan"
    assert cfg.model.args == {"n_blocks": 1, "n_feats": 16}  # replaced, not merged with EDSR's
    assert cfg.data.lr_patch == 12 and cfg.data.crop == (128, 128, 12)  # section merged
    assert cfg.gan is not None and cfg.gan.discriminator_norm == "spectral"
    assert (cfg.gan.adv_weight, cfg.gan.d_optim.lr, cfg.gan.d_optim.betas[0]) == (0.01, 1e-4, 0.9)
    with pytest.raises(ConfigError, match="gan: task: gan needs a gan section"):
        load_config("smoke", ["task=gan"])
    with pytest.raises(ConfigError, match="gan: this section is for task: gan"):
        load_config("smoke", ["gan.content=l2"])
    with pytest.raises(ConfigError, match=r"gan.vgg_weights: content: vgg needs .*vgg19-dcbb9e9d"):
        load_config(recipe, ["gan.content=vgg"])
    with pytest.raises(ConfigError, match="gan.vgg_weights: 'no.pth' does not exist"):
        load_config(recipe, ["gan.content=vgg", "gan.vgg_weights=no.pth"])
    with pytest.raises(ConfigError, match="gan.vgg_layer: must be one of"):
        load_config(recipe, ["gan.vgg_layer=relu9_9"])
    loop = tmp_path / "loop.yaml"
    loop.write_text("name: loop\nbase: loop.yaml\n")
    with pytest.raises(ConfigError, match="extends itself"):
        load_config(loop)
    orphan = tmp_path / "orphan.yaml"
    orphan.write_text("name: orphan\nbase: nowhere\n")
    with pytest.raises(ConfigError, match="orphan.yaml: base: no recipe 'nowhere'"):
        load_config(orphan)


def test_fagan_recipes_follow_the_paper() -> None:
    names = set(recipe_names())
    presets = {
        "fagan_x2": "fagan", "fagan_x4": "fagan", "fagan_x8": "fagan", "srgan_x4": "srgan",
        "ca_sr_gan_x4": "ca-sr-gan", "sa_sr_gan_x4": "sa-sr-gan",
        "fagan_direct_x4": "fagan-direct", "fagan_no_sa_x4": "fagan-no-sa",
        "fagan_no_ca_x4": "fagan-no-ca", "fagan_no_lffb_x4": "fagan-no-lffb",
        "fagan_no_sa_ca_x4": "fagan-no-sa-ca", "fagan_no_sa_lffb_x4": "fagan-no-sa-lffb",
        "fagan_no_ca_lffb_x4": "fagan-no-ca-lffb",
    }  # fmt: skip
    assert set(presets) <= names
    vgg = str(IXI)  # any existing file: the recipe check only needs a path
    for name, model in presets.items():
        cfg = load_config(name, [f"data.train=[{IXI}]", f"gan.vgg_weights={vgg}"])
        g = cfg.gan
        assert cfg.task == "gan" and cfg.model.name == model, name
        assert cfg.data.lr_patch * cfg.data.scale == 96 and cfg.data.batch_size == 16, name
        assert cfg.data.degradation == [{"method": "bicubic", "scale": cfg.data.scale}], name
        assert (g.content, g.vgg_layer, g.adv_weight, g.pixel, g.pixel_weight) == (
            "vgg", "relu5_4", 1e-3, "l2", 1.0,
        ), name  # fmt: skip
        assert (cfg.optim.lr, cfg.optim.betas[0], g.d_optim.lr, g.d_optim.betas[0]) == (
            1e-4, 0.9, 1e-4, 0.9,
        ), name  # fmt: skip
        assert g.discriminator_norm == ("batch" if model == "srgan" else "spectral"), name
    assert {load_config(f"fagan_x{s}", [f"data.train=[{IXI}]", f"gan.vgg_weights={vgg}"])
            .data.scale for s in (2, 4, 8)} == {2, 4, 8}  # fmt: skip


def test_gan_run_warm_up_then_adversarial(tmp_path: Path, recipe: Path, cache_dir: Path) -> None:
    from mrisr.checkpoint import load_checkpoint
    from mrisr.train import train
    from mrisr.train.state import load_state

    args = fast(cache_dir, "train.ckpt_every=2", "train.keep_states=4")
    run = train(load_config(recipe, args), run_dir=tmp_path / "run")
    assert [s for s, _ in metric_rows(run, "g/loss")] == list(range(1, 9))
    assert [s for s, _ in metric_rows(run, "d/loss")] == [5, 6, 7, 8]  # after the warm-up
    assert [s for s, _ in metric_rows(run, "g/adv")] == [5, 6, 7, 8]
    real, fake = metric_rows(run, "d/real"), metric_rows(run, "d/fake")
    assert all(0 < v < 1 for _, v in real + fake)
    s2, s4, s6 = (load_state(run / "state" / f"step_000000{i}.pt")["task"] for i in (2, 4, 6))
    d2, d4, d6 = (s["nets"]["discriminator"] for s in (s2, s4, s6))
    assert all(torch.equal(d2[k], d4[k]) for k in d2)  # D untouched during the warm-up
    assert s4["optimizers"]["discriminator"]["state"] == {}
    assert not all(torch.equal(d4[k], d6[k]) for k in d4)  # and trained after it
    assert set(s6["nets"]) == {"generator", "discriminator"}
    assert any(k.endswith("parametrizations.weight.original") for k in d6)  # spectral norm
    model, ck = load_checkpoint(run / "final")  # the generator, as a zoo model
    assert ck.name == "fagan" and ck.training["task"] == "gan"
    assert ck.training["gan"]["pretrain_steps"] == 4 and "vgg_weights" not in ck.training["gan"]
    with torch.no_grad():
        assert model(torch.rand(1, 1, 10, 12)).shape == (1, 1, 20, 24)
    from PIL import Image

    assert Image.open(run / "curves.png").size[0] > Image.open(run / "curves.png").size[1] * 3


def test_gan_resume_is_exact(tmp_path: Path, recipe: Path, cache_dir: Path) -> None:
    from mrisr.train import train
    from mrisr.train.state import load_state

    args = fast(cache_dir, "train.ckpt_every=2")
    straight = train(load_config(recipe, args), run_dir=tmp_path / "a")
    broken = train(load_config(recipe, args), run_dir=tmp_path / "b", stop_at=7)
    resumed = train(load_config(recipe, args), resume=True, run_dir=broken)  # from step 6
    wa, wb = weights(straight / "final"), weights(resumed / "final")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    da, db = (load_state(r / "state" / "step_0000008.pt")["task"]["nets"]["discriminator"]
              for r in (straight, resumed))  # fmt: skip
    assert all(torch.equal(da[k], db[k]) for k in da)
    assert metric_rows(straight, "d/loss") == metric_rows(resumed, "d/loss")


def test_gan_with_vgg_content_and_batch_norm_discriminator(
    tmp_path: Path, recipe: Path, cache_dir: Path
) -> None:
    from mrisr.models.vgg import VGG19Features
    from mrisr.train import train

    torch.manual_seed(0)
    vgg = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in VGG19Features("relu1_2").features.state_dict()
                .items()}, vgg)  # fmt: skip
    over = ["gan.content=vgg", f"gan.vgg_weights={vgg}", "gan.vgg_layer=relu1_2",
            "gan.pixel=l1", "gan.discriminator_norm=batch", "train.steps=6"]  # fmt: skip
    run = train(load_config(recipe, fast(cache_dir, *over)), run_dir=tmp_path / "run")
    content = metric_rows(run, "g/content")
    pixel = metric_rows(run, "g/pixel")
    assert [s for s, _ in content] == [5, 6] and all(v > 0 for _, v in content)
    assert [s for s, _ in pixel] == list(range(1, 7))


_DDP_GAN = """
import sys, torch
import mrisr.train.engine as engine
from mrisr.train import load_config, train

run = engine._Loop.run
def run_and_dump(self, *a, **k):  # each rank writes the weights it ends with
    run(self, *a, **k)
    nets = {f"{n}.{k}": v for n, net in self.task.nets.items() for k, v in net.state_dict().items()}
    torch.save(nets, f"{sys.argv[1]}.rank{self.fabric.global_rank}")
engine._Loop.run = run_and_dump
train(load_config(sys.argv[3], sys.argv[4:]), run_dir=sys.argv[2])
"""


def test_gan_ddp_two_processes_match_one(tmp_path: Path, recipe: Path, cache_dir: Path) -> None:
    """2 CPU processes (gloo): both ranks end with the same G and D, and the losses of the
    warm-up and of the first adversarial step are those of one process with the whole batch."""
    import os
    import subprocess
    import sys

    from mrisr.train import train
    from tests.test_train import free_port

    args = fast(cache_dir, "train.steps=3", "train.val_every=3", "train.ckpt_every=0",
                "gan.pretrain_steps=1")  # fmt: skip
    single = train(load_config(recipe, args), run_dir=tmp_path / "one")
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_GAN)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={free_port()}", str(script), str(tmp_path / "w"),
           str(tmp_path / "two"), str(recipe), *args, "trainer.devices=2",
           "trainer.strategy=ddp"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"w.rank{r}", weights_only=True) for r in (0, 1))
    assert any(k.startswith("discriminator.") for k in r0)
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    two = tmp_path / "two"
    for name in ("g/loss", "d/loss", "d/real"):
        a, b = metric_rows(single, name)[0], metric_rows(two, name)[0]
        assert a[0] == b[0] and abs(a[1] - b[1]) < 1e-5, name

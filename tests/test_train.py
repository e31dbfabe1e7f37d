"""Training: recipes and their errors, the smoke run's folder, exact resume, DDP on CPU (gloo).

The runs use the smoke recipe on the shipped crops (IXI002 T2 96×96×6 for training, the FLAIR
64×64×4 for validation) with a tiny EDSR, so each takes a second or two after the imports.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("lightning")
pytest.importorskip("pydantic")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mrisr.errors import ConfigError, InputError, OutputError  # noqa: E402
from mrisr.train.config import RECIPES, load_config, recipe_names  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
IXI, FLAIR = DATA / "ixi002_t2_crop.nii.gz", DATA / "flair_crop.nii.gz"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("volume-cache")


def fast(cache_dir: Path, *extra: str) -> list[str]:
    """Overrides that make the smoke recipe run on the test crops in about a second."""
    return [
        f"data.train=[{IXI}]",
        f"data.val=[{FLAIR}]",
        "data.crop=null",
        f"data.cache_dir={cache_dir}",
        "data.samples_per_epoch=16",
        "train.progress=off",
        "train.steps=8",
        "train.val_every=4",
        "train.ckpt_every=4",
        "train.log_every=1",
        "val.batch_size=4",
        *extra,
    ]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def metric_rows(run: Path, name: str) -> list[tuple[int, float]]:
    with open(run / "metrics.csv", newline="") as f:
        return [(int(r["step"]), float(r["value"])) for r in csv.DictReader(f) if r["name"] == name]


# ----------------------------------------------------------------------------- recipes


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.stepz=3", "train.stepz: unknown key"),
        ("optim.lr=-1", "optim.lr: input should be greater than 0"),
        ("trainer.precision=8-bit", "trainer.precision"),
        ("model.args.n_featz=3", "model.args.n_featz"),
        ("model.name=nope", "model.name"),
        ("data.scale=3", "data.degradation"),
        ("data.degradation=[{method: blurr}]", "data.degradation"),
        ("train.epochs=3", "train.steps: give exactly one"),
        ("sched.name=linear", "sched.name"),
    ],
)
def test_config_errors_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config("smoke", [override])
    assert key in str(e.value) and "\n" not in str(e.value)


def test_config_errors_for_files_and_missing_data(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.train: give the training scans"):
        load_config("seran_ixi_x2")
    with pytest.raises(ConfigError, match="data.train: 'nowhere.nii.gz' does not exist"):
        load_config("smoke", ["data.train=nowhere.nii.gz"])
    with pytest.raises(ConfigError, match="no recipe 'smokey'"):
        load_config("smokey")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {name: edsr-baseline}\ndata: {train: [demo]}\ntrain: {}\n")
    with pytest.raises(ConfigError, match="bad.yaml: train.steps"):
        load_config(bad)
    with pytest.raises(ConfigError, match="must look like key.sub=value"):
        load_config("smoke", ["optim.lr"])


def test_overrides_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    cfg = load_config(
        "smoke",
        [
            "optim.lr=2e-4",
            "optim.betas=[0.8, 0.99]",
            "train.deterministic=false",
            "data.train=ixi002_t2_crop.nii.gz",
            "train.progress=off",
            "trainer.devices=auto",
        ],
    )
    assert cfg.optim.lr == 2e-4 and cfg.optim.betas == (0.8, 0.99)
    assert cfg.train.deterministic is False and cfg.train.progress == "off"
    assert cfg.data.train == [str(IXI)]  # an override path is relative to the working dir
    assert Path(cfg.data.val[0]).name == "IXI002-T2-demo.nii.gz"  # "demo"
    recipe = tmp_path / "r.yaml"  # a recipe's own paths are relative to the recipe file
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "a.nii.gz").write_bytes(IXI.read_bytes())
    recipe.write_text(
        (RECIPES / "smoke.yaml").read_text().replace("train: [demo]", "train: [scans]")
    )
    assert load_config(recipe).data.train == [str(tmp_path / "scans" / "a.nii.gz")]


def test_recipes_load_and_configs_are_copies(tmp_path: Path) -> None:
    names = recipe_names()
    for want in (
        "smoke",
        "edsr_baseline_ixi_x2",
        "seran_ixi_x2",
        "seran_ixi_x3",
        "seran_ixi_x4",
        "w2amsn_ixi_x2",
        "w2amsn_s_ixi_x2",
    ):
        assert want in names
    from mrisr.train.config import _read_recipe

    for name in names:
        task = _read_recipe(RECIPES / f"{name}.yaml").get("task")
        extra = [f"gan.vgg_weights={IXI}"] if task == "gan" and name != "fagan_cpu_x4" else []
        if task == "multicontrast":
            t1 = DATA / "ixi002_t1_crop.nii.gz"
            extra = [f"data.guide=[{t1}]", f"data.val=[{IXI}]", f"data.val_guide=[{t1}]"]
        if task == "dsgan":
            extra = [f"data.lr_real=[{IXI}]"]
        if name == "edsr_realistic_kernel_x2":
            k = tmp_path / "k.npy"
            np.save(k, np.full((13, 13), 1 / 169), allow_pickle=False)
            extra = [f"data.degradation=[{{method: kernel, kernel: {k}, scale: 2}}]"]
        cfg = load_config(name, [f"data.train=[{IXI}]", *extra])
        assert cfg.name == name
        copy = REPO / "configs" / f"{name}.yaml"
        assert copy.read_text() == (RECIPES / f"{name}.yaml").read_text(), f"configs/{name}.yaml"
    seran = load_config("seran_ixi_x4", [f"data.train=[{IXI}]"])
    assert (seran.data.batch_size, seran.data.lr_patch, seran.data.scale) == (96, 32, 4)
    assert (seran.optim.lr, seran.optim.betas, seran.sched.every, seran.sched.gamma) == (
        1e-4,
        (0.9, 0.999),
        200,
        0.5,
    )


def test_sampler_global_batches_and_lr_schedule() -> None:
    from mrisr.train.state import GlobalBatchSampler
    from mrisr.train.tasks.base import lr_factor

    one = list(GlobalBatchSampler(20, 4, seed=3, epoch=1))
    two = [list(GlobalBatchSampler(20, 4, r, 2, seed=3, epoch=1)) for r in range(2)]
    for b in range(5):  # the same samples in every global batch, whatever the world size
        assert sorted(one[4 * b : 4 * b + 4]) == sorted(
            two[0][2 * b : 2 * b + 2] + two[1][2 * b : 2 * b + 2]
        )
    assert list(GlobalBatchSampler(20, 4, seed=3, epoch=1, start_batch=2)) == one[8:]
    assert one != list(GlobalBatchSampler(20, 4, seed=3, epoch=2))
    cfg = load_config("smoke", ["sched.name=step", "sched.every=2", "sched.unit=epochs"])
    f = lr_factor(cfg, steps_per_epoch=10, total_steps=100)
    assert [f(s) for s in (0, 19, 20, 45)] == [1.0, 1.0, 0.5, 0.25]


def test_rng_state_round_trips_with_weights_only(tmp_path: Path) -> None:
    import random

    import numpy as np

    from mrisr.train.state import capture_rng, restore_rng

    state = capture_rng()
    torch.save({"rng": state}, tmp_path / "s.pt")
    a = (random.random(), np.random.rand(), torch.rand(1))  # noqa: NPY002
    restore_rng(torch.load(tmp_path / "s.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == a  # noqa: NPY002


# ----------------------------------------------------------------------------- runs


def test_smoke_run_folder(tmp_path: Path, cache_dir: Path) -> None:
    from mrisr.checkpoint import load_checkpoint
    from mrisr.train import train
    from mrisr.train.state import load_state

    run = train(load_config("smoke", fast(cache_dir)), run_dir=tmp_path / "run")
    for f in ("config.yaml", "metrics.csv", "curves.png", "validation.json"):
        assert (run / f).is_file(), f
    assert any((run / "tb").iterdir())
    assert [p.name for p in sorted((run / "state").iterdir())] == [
        "step_0000004.pt",
        "step_0000008.pt",
    ]
    assert load_config(run / "config.yaml") == load_config("smoke", fast(cache_dir))
    state = load_state(run / "state" / "step_0000008.pt")  # weights_only=True inside
    assert state["step"] == 8 and state["epoch"] == 2 and len(state["rng"]) == 1
    model, ck = load_checkpoint(run / "final")
    assert ck.name == "edsr-baseline" and ck.init_args["n_feats"] == 16
    card = ck.training
    assert card["recipe"] == "smoke" and card["lr_grid_offset"] == 0.0 and card["steps"] == 8
    assert card["data"]["train"] == [IXI.name] and card["weights"] == "ema"
    assert set(card["val"]["baselines"]) == {"bicubic", "zerofill"}
    assert card["val"]["best"]["psnr"] > 0 and "cpu" in card["hardware"]
    assert load_checkpoint(run / "best")[1].training["val"]["best"] == card["val"]["best"]
    assert [s for s, _ in metric_rows(run, "loss")] == list(range(1, 9))
    assert [s for s, _ in metric_rows(run, "val/psnr")] == [4, 8]
    with pytest.raises(OutputError, match="pass --resume"):
        train(load_config("smoke", fast(cache_dir)), run_dir=run)


def test_kill_and_resume_gives_identical_weights(tmp_path: Path, cache_dir: Path) -> None:
    """8 steps straight vs. killed after step 5 (newest state: step 4) and resumed."""
    from mrisr.train import train
    from mrisr.train.state import load_state

    args = fast(cache_dir, "train.ckpt_every=2")
    straight = train(load_config("smoke", args), run_dir=tmp_path / "a")
    assert not torch.are_deterministic_algorithms_enabled()  # restored after the run
    broken = train(load_config("smoke", args), run_dir=tmp_path / "b", stop_at=5)
    assert not (broken / "final").exists()
    assert [s for s, _ in metric_rows(broken, "loss")] == [1, 2, 3, 4, 5]
    resumed = train(load_config("smoke", args), resume=True, run_dir=broken)
    wa, wb = weights(straight / "final"), weights(resumed / "final")  # EMA weights
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa, sb = (load_state(r / "state" / "step_0000008.pt")["task"] for r in (straight, resumed))
    net_a, net_b = sa["nets"]["model"], sb["nets"]["model"]
    assert all(torch.equal(net_a[k], net_b[k]) for k in net_a)
    adam_a, adam_b = sa["optimizers"]["model"]["state"], sb["optimizers"]["model"]["state"]
    assert all(torch.equal(adam_a[i]["exp_avg_sq"], adam_b[i]["exp_avg_sq"]) for i in adam_a)
    assert metric_rows(straight, "loss") == metric_rows(resumed, "loss")  # step 5 not twice
    assert metric_rows(straight, "val/psnr") == metric_rows(resumed, "val/psnr")
    with pytest.raises(ConfigError, match="optim.lr"):
        train(load_config("smoke", [*args, "optim.lr=1e-3"]), resume=True, run_dir=broken)
    with pytest.raises(InputError, match="nothing to resume"):
        train(load_config("smoke", args), resume=True, run_dir=tmp_path / "c")


@pytest.mark.slow
def test_smoke_preset_killed_and_resumed_from_the_command_line(tmp_path: Path) -> None:
    """What a user does: train the smoke preset, kill -9 it mid-run, resume, compare."""
    import signal
    import time

    from mrisr.commands.train import run_train

    args = [f"data.cache_dir={tmp_path / 'cache'}", "train.progress=off"]
    straight = run_train("smoke", args, run_dir=tmp_path / "a")
    cmd = [sys.executable, "-m", "mrisr.train", "smoke", *args, "--run-dir", str(tmp_path / "b")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (tmp_path / "b" / "state" / "step_0000010.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "b" / "final").exists()
    res = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    wa, wb = weights(straight / "final"), weights(tmp_path / "b" / "final")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_bf16_mixed_precision_runs_on_cpu(tmp_path: Path, cache_dir: Path) -> None:
    from mrisr.train import train

    args = fast(
        cache_dir,
        "trainer.precision=bf16-mixed",
        "train.steps=2",
        "train.val_every=0",
        "train.ckpt_every=0",
        "train.deterministic=false",
    )
    run = train(load_config("smoke", args), run_dir=tmp_path / "bf16")
    assert (run / "final" / "model.safetensors").is_file()
    assert all(v == v for _, v in metric_rows(run, "loss"))  # finite, not NaN


_DDP_SCRIPT = """
import sys, torch
import mrisr.train.engine as engine
from mrisr.train import load_config, train

run = engine._Loop.run
def run_and_dump(self, *a, **k):  # each rank writes the weights it ends with
    run(self, *a, **k)
    torch.save(self.task.nets["model"].state_dict(), f"{sys.argv[1]}.rank{self.fabric.global_rank}")
engine._Loop.run = run_and_dump
train(load_config("smoke", sys.argv[3:]), run_dir=sys.argv[2])
"""


def test_ddp_two_processes_match_one(tmp_path: Path, cache_dir: Path) -> None:
    """2 CPU processes (gloo) × batch 2 against 1 process × batch 4: same samples per step."""
    from mrisr.train import train

    args = fast(cache_dir, "train.steps=3", "train.val_every=3", "train.ckpt_every=0")
    single = train(load_config("smoke", args), run_dir=tmp_path / "one")
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(_DDP_SCRIPT))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        str(script),
        str(tmp_path / "w"),
        str(tmp_path / "two"),
        *args,
        "trainer.devices=2",
        "trainer.strategy=ddp",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"w.rank{r}", weights_only=True) for r in (0, 1))
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    loss_one, loss_two = metric_rows(single, "loss"), metric_rows(tmp_path / "two", "loss")
    assert loss_one[0][0] == loss_two[0][0] == 1
    assert abs(loss_one[0][1] - loss_two[0][1]) < 1e-5
    state = torch.load(tmp_path / "two" / "state" / "step_0000003.pt", weights_only=True)
    assert len(state["rng"]) == 2 and state["world_size"] == 2


def test_warm_start_copies_matching_tensors_into_a_larger_scale(tmp_path: Path, cache_dir: Path):
    """model.init_from: a ×2 run starts a ×4 network (head, body and the first upsampling
    stage copied; the second stage and the tail stay fresh), recorded in the card; a
    checkpoint of another model is refused with the key named."""
    from mrisr.checkpoint import load_checkpoint
    from mrisr.train import train

    x2 = train(load_config("smoke", fast(cache_dir)), run_dir=tmp_path / "x2")
    src = weights(x2 / "final")
    args = fast(
        cache_dir,
        "data.scale=4",
        "data.degradation=[{method: kspace-truncate, scale: 4}]",
        "data.lr_patch=16",
        f"model.init_from={x2 / 'final'}",
        "train.steps=1",
        "optim.lr=1e-12",  # one step that moves nothing: the start is what we look at
        "train.ema_decay=null",
        "train.grad_clip=null",
    )
    cfg = load_config("smoke", args)
    assert cfg.model.init_from == str(x2 / "final")
    x4 = train(cfg, run_dir=tmp_path / "x4")
    net, ck = load_checkpoint(x4 / "final")
    dst = net.state_dict()
    card = ck.training["init_from"]
    copied = [k for k in dst if k in src and src[k].shape == dst[k].shape]
    assert card["tensors_copied"] == len(copied) and card["scale"] == 2
    x2_steps = load_checkpoint(x2 / "final")[1].training["steps"]
    assert card["start"]["steps"] == card["start"]["total_steps"] == x2_steps > 1
    assert card["start"]["recipe"] == "smoke" and card["start"]["scale"] == 2
    assert set(card["new"]) == set(dst) - set(copied) and card["new"]
    assert any(k.startswith("head") for k in copied) and any(k.startswith("body") for k in copied)
    for k in copied:
        torch.testing.assert_close(dst[k], src[k].float(), rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="model.init_from"):
        load_config("smoke", [*fast(cache_dir), f"model.init_from={tmp_path / 'nowhere'}"])
    from mrisr.checkpoint import warm_start
    from mrisr.models.registry import build_model

    with pytest.raises(ConfigError, match="holds a 'edsr-baseline' model, not 'vdsr'"):
        warm_start(build_model("vdsr", 2), "vdsr", x2 / "final")
    # a start that was itself warm-started: the steps add up along the chain
    again = warm_start(net, ck.name, x4 / "final")["start"]
    assert again["steps"] == 1 and again["total_steps"] == 1 + x2_steps


@pytest.mark.parametrize("mode", ["percentile", "zscore"])
def test_validation_baselines_do_not_depend_on_the_normalisation(mode: str, cache_dir) -> None:
    """The bicubic / zero-fill baselines are computed in the scan's intensities: a z-scored LR
    (negative background) must give the zero-fill score `mrisr eval` gives, not a magnitude
    of negative values (found at 16.6 dB against 32.8 for bicubic)."""
    from mrisr.data import SRSliceDataset
    from mrisr.io import load_volume
    from mrisr.metrics import evaluate_volume
    from mrisr.metrics.baselines import baseline_volume
    from mrisr.normalisation import Normalisation
    from mrisr.train.validation import Validator

    deg = [{"method": "kspace-truncate", "scale": 2}]
    ds = SRSliceDataset([IXI], 2, deg, augment=False, cache_dir=cache_dir,
                        normalisation=Normalisation(mode))  # fmt: skip
    got = Validator(ds, True, 0, 4, torch.device("cpu"), 0, 1).baselines()["mean"]
    ref = load_volume(IXI)
    for name in ("bicubic", "zerofill"):
        want = evaluate_volume(baseline_volume(ref, name, "kspace-truncate", 2, None).data,
                               ref.data)["volume"]  # fmt: skip
        assert got[name]["psnr"] == pytest.approx(want["psnr"], abs=0.05), name

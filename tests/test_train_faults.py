"""Faults in training and checkpoints.

- A run killed or failed at any moment goes on with one obvious command — ``--resume``, or
  the same command while it has saved no state — to bit-identical final weights.
- Temporaries of killed saves are removed at the next start (ours only) and never resumed.
- The same weights give the same ``model.safetensors`` bytes (the README's sha256 check).
- Absurd checkpoint configs are refused before anything is built.

The runs use the smoke recipe on the shipped crops (8 steps, a state every 4), in process; the
slow test kills ``python -m mrisr.train smoke`` itself with SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import random
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("lightning")
pytest.importorskip("pydantic")

import torch  # noqa: E402

from mrisr.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from mrisr.errors import ConfigError, InputError, OutputError  # noqa: E402
from mrisr.models.registry import build_model  # noqa: E402
from mrisr.safetensors_file import write_safetensors  # noqa: E402
from mrisr.train.config import load_config  # noqa: E402
from tests.test_train import fast  # noqa: E402  (the smoke recipe on the test crops)

DATA = Path(__file__).resolve().parent / "data"
IXI, FLAIR = DATA / "ixi002_t2_crop.nii.gz", DATA / "flair_crop.nii.gz"
ARGS = {"scale": 2, "n_resblocks": 2, "n_feats": 16}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(run: Path) -> list[str]:
    """Anything under ``run`` that looks like a temporary (whoever wrote it)."""
    return sorted(
        str(p.relative_to(run)) for p in run.rglob("*") if ".tmp" in p.name or ".old" in p.name
    )


def loss_steps(run: Path) -> list[int]:
    import csv

    with open(run / "metrics.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r["name"] == "loss"]


def same_final(run: Path, reference: Path) -> None:
    """Bit-identical final (and best) weights, hence the same file hash in config.json (the
    README's check) and the same bytes."""
    for name in ("final/model.safetensors", "best/model.safetensors"):
        assert sha(run / name) == sha(reference / name), name
    cards = [json.loads((r / "final" / "config.json").read_text()) for r in (run, reference)]
    assert cards[0]["sha256"] == cards[1]["sha256"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("volume-cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """An uninterrupted run."""
    from mrisr.train import train

    return train(
        load_config("smoke", fast(cache_dir)), run_dir=tmp_path_factory.mktemp("ref") / "a"
    )


# ----------------------------------------------------------------------------- stuck runs


def test_a_run_without_state_restarts_with_either_command(
    tmp_path: Path, cache_dir: Path, reference: Path
) -> None:
    """Killed after config.yaml, before the first state (here: --stop-at 3 of a run that saves
    every 4): ``--resume`` starts from step 0 with the frozen config, and so does the same
    command; errors name the exact command to run."""
    from mrisr.commands.train import run_train
    from mrisr.train import train

    args = fast(cache_dir)
    for name in ("resumed", "again"):
        train(load_config("smoke", args), run_dir=tmp_path / name, stop_at=3)
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [
            "config.yaml",
            "metrics.csv",
            "tb",
        ]
    stuck = tmp_path / "resumed"
    base = ["mrisr", "train", "smoke", *args]
    with pytest.raises(ConfigError) as e:  # another recipe: nothing saved, so start it over
        run_train("smoke", [*args, "optim.lr=1e-3"], resume=True, run_dir=stuck)
    assert "optim.lr" in str(e.value) and "\n" not in str(e.value)
    again = shlex.join([*base, "optim.lr=1e-3", "--run-dir", str(stuck)])
    assert str(e.value).endswith(f"without --resume: {again}")

    train(load_config("smoke", args), resume=True, run_dir=stuck)
    same_final(stuck, reference)
    assert loss_steps(stuck) == list(range(1, 9))  # every step once

    train(load_config("smoke", args), run_dir=tmp_path / "again")
    same_final(tmp_path / "again", reference)
    assert loss_steps(tmp_path / "again") == list(range(1, 9))

    with pytest.raises(OutputError) as e:  # states now: the same command says --resume
        run_train("smoke", args, run_dir=stuck)
    assert str(e.value).count("\n") == 0
    assert shlex.join([*base, "--run-dir", str(stuck), "--resume"]) in str(e.value)
    with pytest.raises(InputError) as e:  # an empty folder: nothing to resume, start it
        run_train("smoke", args, resume=True, run_dir=tmp_path / "empty")
    assert str(e.value).endswith(shlex.join([*base, "--run-dir", str(tmp_path / "empty")]))
    assert not (tmp_path / "empty").exists()


def test_leftover_temporaries_are_removed_and_never_resumed(
    tmp_path: Path, cache_dir: Path, reference: Path
) -> None:
    """A run killed mid-save (state, config, checkpoint, logs) leaves temporaries: the next
    start removes ours (by their exact naming) and keeps anything else; the resume continues
    from the newest real state, never from a temporary."""
    from mrisr.train import train
    from mrisr.train.state import list_states, stale_temps

    args = fast(cache_dir)
    run = train(load_config("smoke", args), run_dir=tmp_path / "b", stop_at=5)  # state: 4
    state4 = (run / "state" / "step_0000004.pt").read_bytes()
    ours = {
        "state/.step_0000008.pt.deadbeef.tmp": state4[: len(state4) // 2],  # torn, newer
        ".config.yaml.0123abcd.tmp.yaml": b"name: half",
        ".metrics.csv.a1b2c3d4.tmp": b"step,",
        ".curves.png.a1b2c3d4.tmp.png": b"\x89PNG",
        ".validation.json.a1b2c3d4.tmp.json": b"{",
        ".final.0123abcd.tmp/model.safetensors": b"\0" * 8,
        ".best.89abcdef.old/model.safetensors": b"\0" * 8,  # incomplete: no config.json
    }
    theirs = {"keep.tmp": b"mine", "state/.step_10.tmp": b"mine", ".final.tmp/x": b"mine"}
    for rel, body in {**ours, **theirs}.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(body)
    assert [s for s, _ in list_states(run)] == [4]
    assert {str(p.relative_to(run)) for p in stale_temps(run)} == {
        "state/.step_0000008.pt.deadbeef.tmp",
        ".config.yaml.0123abcd.tmp.yaml",
        ".metrics.csv.a1b2c3d4.tmp",
        ".curves.png.a1b2c3d4.tmp.png",
        ".validation.json.a1b2c3d4.tmp.json",
        ".final.0123abcd.tmp",
        ".best.89abcdef.old",
    }

    train(load_config("smoke", args), resume=True, run_dir=run)
    same_final(run, reference)
    assert leftovers(run) == [".final.tmp", "keep.tmp", "state/.step_10.tmp"]  # theirs only
    assert loss_steps(run) == list(range(1, 9))

    # No state at all, a torn one under a temporary name: resume starts from step 0.
    run = train(load_config("smoke", args), run_dir=tmp_path / "c", stop_at=3)
    (run / "state").mkdir()
    (run / "state" / ".step_0000004.pt.0badf00d.tmp").write_bytes(state4)
    train(load_config("smoke", args), resume=True, run_dir=run)
    same_final(run, reference)
    assert leftovers(run) == []


def test_a_checkpoint_replaced_halfway_comes_back(tmp_path: Path) -> None:
    """Killed between the two renames that replace best/ (old moved aside, new not yet in
    place): the next start puts the previous checkpoint back rather than deleting it."""
    from mrisr.train.state import remove_temps

    model = build_model("edsr-baseline", **ARGS)
    save_checkpoint(model, "edsr-baseline", ARGS, tmp_path / "best")
    (tmp_path / "best").rename(tmp_path / ".best.0123abcd.old")
    (tmp_path / ".best.0123abcd.tmp").mkdir()
    remove_temps(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]
    load_checkpoint(tmp_path / "best")


def test_a_failed_start_does_not_block_the_retry(
    tmp_path: Path, cache_dir: Path, reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while building the data leaves no folder; one after the config is frozen (here
    the logger) leaves a run without state, which the same command starts over."""
    import mrisr.train.engine as engine
    from mrisr.train import train

    args = fast(cache_dir)
    with pytest.raises(ConfigError, match="data.batch_size"):
        train(load_config("smoke", [*args, "data.samples_per_epoch=2"]), run_dir=tmp_path / "d")
    assert not (tmp_path / "d").exists()

    def broken(*a: object, **k: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(engine, "Monitor", broken)
        with pytest.raises(OSError, match="disk full"):
            train(load_config("smoke", args), run_dir=tmp_path / "d")
    assert (tmp_path / "d" / "config.yaml").is_file()
    train(load_config("smoke", args), run_dir=tmp_path / "d")
    same_final(tmp_path / "d", reference)


# ----------------------------------------------------------------------------- checkpoints


def test_the_same_weights_give_the_same_bytes(tmp_path: Path) -> None:
    """20 saves of one state dict, and one in another process: one sha256. The library's own
    writer orders its header by a Rust HashMap (found: 2 hashes in 20 saves)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    torch.manual_seed(0)
    model = build_model("edsr-baseline", **ARGS)
    hashes = set()
    for i in range(20):
        card = {"wall_time_s": float(i)}  # differs between runs; not part of the weights' hash
        ck = save_checkpoint(model, "edsr-baseline", ARGS, tmp_path / f"ck{i}", training=card)
        assert ck.sha256 == sha(tmp_path / f"ck{i}" / "model.safetensors")
        hashes.add(ck.sha256)
    assert len(hashes) == 1
    script = (
        "import sys, torch\nfrom mrisr.checkpoint import save_checkpoint\n"
        "from mrisr.models.registry import build_model\ntorch.manual_seed(0)\n"
        f"m = build_model('edsr-baseline', **{ARGS!r})\n"
        f"print(save_checkpoint(m, 'edsr-baseline', {ARGS!r}, sys.argv[1]).sha256)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "other")], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == [hashes.pop()]

    state = model.state_dict()
    back = load_file(str(tmp_path / "ck0" / "model.safetensors"))
    assert back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in state)
    with safe_open(str(tmp_path / "ck0" / "model.safetensors"), framework="pt") as f:
        assert f.metadata() == {"format": "pt", "mrisr": "mrisr-checkpoint"}
    odd = {  # every dtype a checkpoint may hold, 0-d and empty tensors, in any order
        "z": torch.randn(3, 2, dtype=torch.float64),
        "b16": torch.randn(5, dtype=torch.bfloat16),
        "h": torch.randn(2, 2).half(),
        "i": torch.arange(7),
        "u": torch.arange(5, dtype=torch.uint8),
        "flag": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
    }
    write_safetensors(odd, tmp_path / "odd.safetensors", {"k": "v"})
    back = load_file(str(tmp_path / "odd.safetensors"))
    for k, v in odd.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and torch.equal(back[k], v)
    raw = (tmp_path / "odd.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0 and json.loads(raw[8 : 8 + n]) is not None
    write_safetensors(dict(reversed(odd.items())), tmp_path / "rev.safetensors", {"k": "v"})
    assert (tmp_path / "rev.safetensors").read_bytes() == raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_resblocks": 10**6}, "init_args.n_resblocks = 1000000 is out of range"),
        ({"n_feats": 10**6}, "init_args.n_feats = 1000000 is out of range"),
        ({"n_feats": -1}, "init_args.n_feats = -1 is out of range"),
        ({"n_resblocks": 1600, "n_feats": 1600}, "parameters; check init_args.n_resblocks"),
        ({"n_feats": 17}, r"wrong shape: 'head.weight' \(16, 1, 3, 3\) vs model \(17, 1, 3, 3\)"),
        ({"scale": 4, "top": 4}, "scale 4 in config.json disagrees with the weights, which are "),
        ({"top": 4}, "scale 4 disagrees with init_args.scale 2"),
        ({"scale": "2"}, "init_args.scale must be a positive integer"),
    ],
)
def test_absurd_checkpoint_configs_are_refused_before_building(
    tmp_path: Path, change: dict, message: str
) -> None:
    ck = tmp_path / "ck"
    save_checkpoint(build_model("edsr-baseline", **ARGS), "edsr-baseline", ARGS, ck)
    config = json.loads((ck / "config.json").read_text())
    change = dict(change)
    if "top" in change:  # the top-level "scale" of config.json
        config["scale"] = change.pop("top")
    config["init_args"].update(change)
    (ck / "config.json").write_text(json.dumps(config))  # the weights (and their hash) as saved
    t0 = time.monotonic()
    with pytest.raises(InputError, match=message) as e:
        load_checkpoint(ck)
    assert "\n" not in str(e.value) and time.monotonic() - t0 < 20


def test_too_many_modules_stop_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import mrisr.model_guard as guard

    ck = tmp_path / "ck"
    save_checkpoint(build_model("edsr-baseline", **ARGS), "edsr-baseline", ARGS, ck)
    monkeypatch.setattr(guard, "MAX_MODULES", 10)  # the guard reads it at each build
    with pytest.raises(InputError, match="of more than 10 modules; check init_args"):
        load_checkpoint(ck)


# ----------------------------------------------------------------------------- kill -9

_KILLER = """
import fnmatch, io, os, signal, sys

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def hit(path):
    return fnmatch.fnmatch(os.path.basename(os.fspath(path)), pattern)

kind, _, pattern = sys.argv[1].partition(":")
if kind in ("replace", "rename"):  # killed just before an atomic rename (temporary complete)
    original = getattr(os, kind)
    def patched(src, dst, *a, **k):
        if hit(dst):
            die()
        return original(src, dst, *a, **k)
    setattr(os, kind, patched)
elif kind == "save":  # killed halfway through writing a state
    import torch
    original_save = torch.save
    def save(obj, f, *a, **k):
        if isinstance(f, (str, os.PathLike)) and hit(f):
            buf = io.BytesIO()
            original_save(obj, buf, *a, **k)
            with open(f, "wb") as fh:
                fh.write(buf.getvalue()[: buf.tell() // 2])
            die()
        return original_save(obj, f, *a, **k)
    torch.save = save
from mrisr.train.__main__ import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_smoke_killed_at_random_moments_recovers_bit_identically(tmp_path: Path) -> None:
    """``python -m mrisr.train smoke --run-dir R`` under SIGKILL at seeded random moments (from
    the imports on) and inside its writes (the config, a state half written, a state before
    its rename, best/ and final/ between their renames); after each kill the obvious command
    (``--resume`` once there is a config.yaml — or, while there is no state, the same command
    every other time — else the same command) until it completes: final weights identical to
    an uninterrupted run, no temporaries left."""
    killer = tmp_path / "killer.py"
    killer.write_text(textwrap.dedent(_KILLER))
    out = open(tmp_path / "log.txt", "ab")  # noqa: SIM115 (closed at the end)

    def start(run: Path, extra: list[str], event: str = "none:") -> subprocess.Popen:
        cmd = [sys.executable, str(killer), event, "smoke", "--run-dir", str(run), *extra]
        out.write(f"\n$ {shlex.join(cmd)}\n".encode())
        out.flush()
        return subprocess.Popen(cmd, stdout=out, stderr=out)

    t0 = time.monotonic()
    ref = start(tmp_path / "ref", [])
    while not (tmp_path / "ref" / "config.yaml").exists():
        assert ref.poll() is None, (tmp_path / "log.txt").read_text()[-3000:]
        time.sleep(0.02)
    t_config = time.monotonic() - t0
    assert ref.wait(timeout=600) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    t_total = time.monotonic() - t0
    reference = {k: sha(tmp_path / "ref" / k / "model.safetensors") for k in ("final", "best")}

    # Chains of kills, each in a new folder: a write-time kill (it always fires in a fresh
    # run) or one during the imports, then kills at seeded random moments of the recovery
    # commands, then recovery until a run completes. "frac" is a moment as a fraction of what
    # is left of the run (estimated from the reference run and the newest state).
    rng = random.Random(1234)
    early = f"time:{rng.uniform(0.05, 0.8 * t_config)}"
    chains = [
        [early, "replace:config.yaml", "frac"],
        ["save:.step_0000010.pt.*.tmp", "frac", "frac"],
        ["replace:step_0000020.pt", "frac"],
        ["rename:best", "replace:config.yaml", "frac"],
        ["rename:final", "frac"],
        ["rename:.best.*.old", "frac"],
    ]
    wanted = {e for chain in chains for e in chain if e != "frac"}
    kills, skipped, n = [], [], 0
    for c, plan in enumerate(chains):
        run = tmp_path / f"r{c}"
        while True:
            event = plan.pop(0) if plan else "none:"
            states = sorted((run / "state").glob("step_*.pt")) if (run / "state").is_dir() else []
            resume = (run / "config.yaml").exists() and (bool(states) or n % 2 == 0)
            n += 1
            if event == "frac":
                done = int(states[-1].name[5:12]) if states else 0
                left = t_config + (t_total - t_config) * (30 - done) / 30
                event = f"time:{rng.random() * 0.95 * left:.2f}"
            proc = start(run, ["--resume"] if resume else [], event)
            if event.startswith("time:"):
                try:
                    proc.wait(timeout=float(event[5:]))
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
            rc = proc.wait(timeout=600)
            assert rc in (0, -signal.SIGKILL), (tmp_path / "log.txt").read_text()[-3000:]
            if rc:
                kills.append(event)
                continue
            assert {k: sha(run / k / "model.safetensors") for k in reference} == reference
            assert leftovers(run) == [], leftovers(run)
            skipped += [e for e in [event, *plan] if e != "none:"]  # the run ended first
            break
    out.close()
    print(f"\nkilled at {kills}; the run completed before {skipped}")
    print(f"{len(kills)} kills, {n} processes, {time.monotonic() - t0:.0f} s")
    assert len(kills) >= 8
    assert wanted <= set(kills)  # every write-time kill (and the early one) fired

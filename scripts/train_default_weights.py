"""Train, test and package the weights that ship in ``mrisr/weights/`` (see that package).

For each entry of ``mrisr.weights.SHIPPED`` (or those named with ``--only``):

1. ``mrisr train <recipe>`` on the real scans of the shared data folder *without* subject IXI002
   (FLAIR, MR_Gd and the VS-SEG DICOM series), validated on the packaged demo crop of IXI002 T2;
   the x4 and bicubic models warm-start from the k-space x2 run (``model.init_from``);
2. the test: the whole IXI002 T2 (held out: no slice of that subject was trained on) is degraded
   with the recipe's degradation by ``mrisr degrade``, super-resolved by ``mrisr upscale
   --checkpoint <run>/final`` and scored by ``mrisr eval`` against the original, next to the
   bicubic and zero-filled interpolation baselines on the true LR grid, over the whole volume and
   inside the HD-BET brain mask, with paired tests over slices;
3. the final (EMA) weights are stored in float16 with the test results in the training card, and
   ``MODEL_CARD.md`` is written from those numbers.

A run folder that already has ``final/`` is not retrained; one with ``state/`` is resumed.
``--run NAME=DIR`` packages the run in DIR (e.g. a continuation of the shipped weights by
``scripts/train_inplane_loo.py --folds IXI002 --init-shipped``, which trains on the same scans
without IXI002) instead of training one.

    python scripts/train_default_weights.py --data ../shared/data --work /tmp/mrisr-weights
    python scripts/train_default_weights.py --only edsr-kspace-x4 ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = "ixi002/IXI002-Guys-0828-T2.nii.gz"
HELD_OUT_MASK = "ixi002/IXI002-Guys-0828-T2_brainmask.nii.gz"
TRAIN_SCANS = ("flair/FLAIR.nii.gz", "mr_gd/MR_Gd.nii.gz", "dicom/vs-seg-001-subset")


def mrisr(*args: object, capture: bool = False) -> str:
    cmd = [sys.executable, "-m", "mrisr", *map(str, args)]
    print("+ mrisr " + " ".join(map(str, args)), flush=True)
    res = subprocess.run(cmd, check=False, text=True, capture_output=capture)
    if res.returncode:
        sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr if capture else ''}")
    return res.stdout if capture else ""


def train(name: str, data: Path, work: Path) -> Path:
    from mrisr.weights import SHIPPED

    w = SHIPPED[name]
    run = work / w.recipe
    if (run / "final" / "config.json").is_file():
        print(f"{name}: {run}/final exists, not retrained")
        return run
    scans = ",".join(str(data / s) for s in TRAIN_SCANS)
    args: list[object] = [
        "train",
        w.recipe,
        f"data.train=[{scans}]",
        "train.progress=off",
        "--run-dir",
        run,
    ]
    if w.init_from:  # the warm start is this script's own run of those weights
        args.insert(3, f"model.init_from={work / SHIPPED[w.init_from].recipe / 'final'}")
    if (run / "state").is_dir():
        args.append("--resume")
    mrisr(*args)
    return run


def test(name: str, ckpt: Path, data: Path, work: Path) -> dict:
    """Degrade the held-out scan, upscale it, score it with `mrisr eval`."""
    from mrisr.weights import SHIPPED

    w = SHIPPED[name]
    hr, mask = data / HELD_OUT, data / HELD_OUT_MASK
    t = work / f"test-{name}"
    t.mkdir(parents=True, exist_ok=True)
    lr, sr = t / "lr.nii.gz", t / "sr.nii.gz"
    method = w.degradation
    mrisr("degrade", hr, lr, "--method", method, "--scale", w.scale, "--overwrite")
    t0 = time.time()
    mrisr("upscale", lr, sr, "--checkpoint", ckpt, "--no-progress", "--overwrite")
    seconds = time.time() - t0
    results: dict[str, dict] = {}
    baselines = ["bicubic", "zerofill"] if method.startswith("kspace") else ["bicubic"]
    for region, extra in (("volume", []), ("brain", ["--mask", mask])):
        for b in baselines:
            out = t / f"eval-{region}-{b}.json"
            mrisr(
                "eval", "--ref", hr, "--pred", sr, "--baseline", b, "--method", method,
                "--scale", w.scale, *extra, "--format", "json", "-o", out, "--overwrite",
            )  # fmt: skip
            rep = json.loads(out.read_text())
            (sr_key, sr_res), (b_key, b_res) = rep["results"].items()
            entry = results.setdefault(region, {"sr": sr_res["volume"], "slices": None})
            entry["slices"] = len(sr_res["slices"])
            entry[b] = b_res["volume"]
            paired = dict(rep.get("paired") or {})
            if paired:  # name the model, not this machine's temporary file
                paired["a"] = f"{name} ({sr.name})"
            entry[f"paired_vs_{b}"] = paired
    return {
        "scan": HELD_OUT.split("/")[-1],
        "held_out": "subject IXI002 (T1 and T2): no slice of it was trained on",
        "degradation": f"mrisr degrade --method {method} --scale {w.scale}",
        "upscale_seconds": round(seconds, 1),
        "results": results,
    }


def package(name: str, src: Path, test_res: dict | None, out_root: Path, card=None) -> Path:
    """Store ``src``'s weights in float16 under ``out_root/name`` (with the test results and
    the model card once they are known). The fp16 → fp32 → fp16 round trip is exact, so the
    tested folder and the final one hold the same weights."""
    from mrisr.checkpoint import load_checkpoint, save_checkpoint

    net, ck = load_checkpoint(src)
    training = dict(ck.training)
    training.setdefault("model_args", dict(ck.init_args))
    training.setdefault("parameters", sum(p.numel() for p in net.parameters()))
    if test_res is not None:
        training["test"] = test_res
    out = out_root / name
    save_checkpoint(
        net,
        ck.name,
        ck.init_args,
        out,
        normalisation=ck.normalisation,
        training=training,
        dtype="float16",
        overwrite=True,
    )
    if test_res is not None:
        text = card(training, out) if card else model_card(name, training, out)
        (out / "MODEL_CARD.md").write_text(text)
    return out


def _sampling(ds: dict) -> list[str]:
    """The card's line on what the slices were (orientations, intensity augmentation)."""
    bits = []
    if ds.get("planes") == "all":
        bits.append("slices along every axis with square pixels (`data.planes: all`)")
    if ia := ds.get("intensity"):
        bits.append(f"intensity augmentation {json.dumps(ia)} (`data.intensity`)")
    return [f"- Sampling: {'; '.join(bits)}."] if bits else []


def _f(x: float, nd: int = 2) -> str:
    return f"{x:.{nd}f}"


def model_card(name: str, tr: dict, out: Path) -> str:
    from mrisr.weights import DEFAULTS, SHIPPED

    w = SHIPPED[name]
    te = tr["test"]
    hw = tr.get("hardware") or {}
    hw_text = ", ".join(f"{k} {v}" for k, v in hw.items()) if isinstance(hw, dict) else str(hw)
    val = tr.get("val", {})
    size = (out / "model.safetensors").stat().st_size / 1e6
    lines = [
        f"# {name}",
        "",
        f"{w.summary}. Model `{w.model}` ×{w.scale}; weights stored in float16 "
        f"({size:.1f} MB), read back as float32.",
        "",
        "Default for `mrisr upscale --scale " + str(w.scale) + "`."
        if DEFAULTS.get(w.scale) == name
        else f"Use with `mrisr upscale IN OUT --weights {name}`.",
        "",
        "## Training",
        "",
        f"- Recipe: `{w.recipe}` (`configs/{w.recipe}.yaml`), made by "
        "`scripts/train_default_weights.py`.",
        f"- Data: {', '.join(Path(x).name for x in tr['data']['train'])} from the project's "
        "shared real data (FLAIR: niivue sample, BSD-2; MR_Gd: figshare 7472168, CC BY 4.0; "
        "VS-SEG-001 subset: TCIA, CC BY 4.0). "
        + (
            "Validation during training: the packaged demo crop of IXI002 T2."
            if tr["data"].get("val")
            else "No validation set during training (nothing of IXI002 steered it)."
        ),
        *_sampling(tr.get("dataset") or {}),
        f"- Degradation: {json.dumps(tr['degradation'])}; LR grid offset "
        f"{tr.get('lr_grid_offset')} HR px.",
        f"- {tr['steps']} steps of batch {tr['global_batch']} (LR patches "
        f"{tr['lr_patch']}²), {tr['optim']['name']} lr {tr['optim']['lr']:g}, "
        f"{tr['sched']['name']} schedule, {tr['loss']} loss, EMA {tr['ema_decay']}; "
        f"weights: {tr['weights']}.",
    ]
    if tr.get("init_from") and (st := tr["init_from"].get("start")) and st["scale"] == w.scale:
        i = tr["init_from"]
        lines.append(
            f"- Continued from `{i['checkpoint']}` (sha256 {i['sha256'][:12]}…: "
            f"{st['total_steps']} steps of `{st['recipe']}` on "
            f"{', '.join(Path(x).name for x in st['data'] or [])}): a warm restart (fresh "
            f"optimiser and schedule), **{st['total_steps'] + tr['steps']} steps in all**."
        )
    elif tr.get("init_from"):
        i = tr["init_from"]
        lines.append(
            f"- Warm start: {i['tensors_copied']} tensors copied from the x{i['scale']} "
            f"checkpoint ({i['tensors_new']} new: {', '.join(i['new']) or 'none'})."
        )
    lines += [
        f"- Wall time {tr['wall_time_s'] / 60:.1f} min on {hw_text} "
        f"(precision {tr['precision']}, world size {tr['world_size']}). CPU-sized: a longer "
        "run (a GPU) would score higher.",
        *(
            [
                f"- Validation (demo crop, last): PSNR {_f(val['last']['psnr'])} dB, SSIM "
                f"{_f(val['last']['ssim'], 4)}; baselines "
                + ", ".join(
                    f"{k} {_f(v['psnr'])} dB / {_f(v['ssim'], 4)}"
                    for k, v in val["baselines"].items()
                )
                + "."
            ]
            if val.get("last")
            else []
        ),
        "",
        "## Test on the held-out subject",
        "",
        f"{te['scan']} ({te['held_out']}), degraded with `{te['degradation']}`, "
        "super-resolved with `mrisr upscale`, scored by `mrisr eval` against the original "
        "(PSNR with the volume's data range; slices without signal are skipped). Baselines "
        "interpolate the same LR samples from their true positions. Brain: inside the HD-BET "
        "mask.",
        "",
        "| region | slices | method | PSNR (dB) | SSIM | NMSE |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for region, r in te["results"].items():
        for key, label in (
            ("sr", f"**{name}**"),
            ("bicubic", "bicubic"),
            ("zerofill", "zero-fill"),
        ):
            if key in r:
                v = r[key]
                lines.append(
                    f"| {region} | {r['slices']} | {label} | {_f(v['psnr'])} | "
                    f"{_f(v['ssim'], 4)} | {v['nmse']:.5f} |"
                )
    lines += ["", "Gain of the model (paired over slices, t-test p):", ""]
    for region, r in te["results"].items():
        for b in ("bicubic", "zerofill"):
            if b in r:
                p = r.get(f"paired_vs_{b}") or {}
                pp = p.get("psnr", {}) if isinstance(p, dict) else {}
                ptxt = f", p = {pp['t_p']:.2g}" if isinstance(pp, dict) and "t_p" in pp else ""
                lines.append(
                    f"- {region}, vs {b}: {r['sr']['psnr'] - r[b]['psnr']:+.2f} dB PSNR, "
                    f"{r['sr']['ssim'] - r[b]['ssim']:+.4f} SSIM{ptxt}"
                )
    lines += [
        "",
        f"Upscaling the whole scan took {te['upscale_seconds']} s (same machine, CPU).",
        "",
        "## Limits",
        "",
        "- Trained on three scans (FLAIR, contrast T1, MPRAGE) of three subjects for minutes on a "
        "CPU; it is a working default, not a converged model. Retrain on your own data with the "
        "recipe (raise `train.steps`).",
        "- Magnitude images, in-plane only; no noise model in training (noisy inputs are "
        "upscaled with their noise).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    from mrisr.weights import SHIPPED

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    shared = Path(os.environ.get("MRISR_SHARED_DATA", REPO.parent / "shared" / "data"))
    ap.add_argument("--data", type=Path, default=shared)
    ap.add_argument("--work", type=Path, default=Path("runs/default-weights"))
    ap.add_argument("--out", type=Path, default=REPO / "src" / "mrisr" / "weights")
    ap.add_argument("--only", nargs="*", choices=list(SHIPPED), default=list(SHIPPED))
    ap.add_argument("--no-train", action="store_true", help="test and package existing runs")
    ap.add_argument(
        "--run", action="append", default=[], metavar="NAME=DIR",
        help="package the run in DIR (its final/) as NAME instead of training",
    )  # fmt: skip
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.work / "fp16").mkdir(exist_ok=True)
    given = dict(r.split("=", 1) for r in a.run)
    for name in a.only:
        if name in given:
            run = Path(given[name])
        else:
            run = a.work / SHIPPED[name].recipe if a.no_train else train(name, a.data, a.work)
        fp16 = package(name, run / "final", None, a.work / "fp16")
        res = test(name, fp16, a.data, a.work)  # the weights as shipped (float16)
        (a.work / f"test-{name}" / "test.json").write_text(json.dumps(res, indent=1) + "\n")
        out = package(name, fp16, res, a.out)
        print(json.dumps(res["results"], indent=1)[:2000])
        print(f"packaged {out}")


if __name__ == "__main__":
    main()

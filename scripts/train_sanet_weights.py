"""Train, test and package the shipped SANet T1 → T2 weights (``sanet-t1t2-kspace-x2`` / ``-x4``).

The data is the one real T1/T2 pair of the shared data, IXI002, cut along the T2 volume as in
``benchmarks/multicontrast.py``: slices [0, 55) and [75, 130) train, [60, 70) tests (5-slice
gaps, so no test slice has a training neighbour); the T1 (sagittal, its own grid) is the guide
of every slab, paired through the headers.

1. ``mrisr train default_sanet_t1t2_kspace_x{2,4}`` on the two training slabs (validation on the
   test slab is only logged);
2. the test: the test slab is degraded by ``mrisr degrade --method kspace-truncate``,
   super-resolved by ``mrisr upscale --guide T1 --checkpoint <weights as shipped>`` and scored
   by ``mrisr eval`` against the original with the bicubic and zero-filled baselines (paired
   tests over slices);
3. the weights are stored in float16 with the test in the training card, and ``MODEL_CARD.md``
   is written from those numbers.

    python scripts/train_sanet_weights.py --data ../shared/data --work /tmp/mrisr-sanet [--only 4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "scripts"))

from train_default_weights import mrisr, package  # noqa: E402

from multicontrast import TEST_SLAB, TRAIN_SLABS, slabs  # noqa: E402

T1 = "ixi002/IXI002-Guys-0828-T1.nii.gz"


def name_of(scale: int) -> str:
    return f"sanet-t1t2-kspace-x{scale}"


def train(scale: int, data: Path, work: Path) -> Path:
    from mrisr.weights import SHIPPED

    run = work / SHIPPED[name_of(scale)].recipe
    if (run / "final" / "config.json").is_file():
        print(f"x{scale}: {run}/final exists, not retrained")
        return run
    train_slabs, test_slab, t1 = slabs(data, work)
    args: list[object] = [
        "train", SHIPPED[name_of(scale)].recipe,
        f"data.train=[{','.join(map(str, train_slabs))}]",
        f"data.guide=[{','.join(str(t1) for _ in train_slabs)}]",
        f"data.val=[{test_slab}]", f"data.val_guide=[{t1}]",
        "train.progress=off", "--run-dir", run,
    ]  # fmt: skip
    if (run / "state").is_dir():
        args.append("--resume")
    mrisr(*args)
    return run


def test(scale: int, ckpt: Path, data: Path, work: Path) -> dict:
    _, hr, t1 = slabs(data, work)
    t = work / f"test-x{scale}"
    t.mkdir(parents=True, exist_ok=True)
    lr, sr = t / "lr.nii.gz", t / "sr.nii.gz"
    mrisr("degrade", hr, lr, "--method", "kspace-truncate", "--scale", scale, "--overwrite")
    t0 = time.time()
    mrisr("upscale", lr, sr, "--guide", t1, "--checkpoint", ckpt, "--no-progress", "--overwrite")
    seconds = time.time() - t0
    res: dict = {}
    for b in ("bicubic", "zerofill"):
        out = t / f"eval-{b}.json"
        mrisr(
            "eval", "--ref", hr, "--pred", sr, "--baseline", b, "--method", "kspace-truncate",
            "--scale", scale, "--format", "json", "-o", out, "--overwrite",
        )  # fmt: skip
        rep = json.loads(out.read_text())
        (_, sr_res), (_, b_res) = rep["results"].items()
        res["sr"], res["slices"] = sr_res["volume"], len(sr_res["slices"])
        res[b] = b_res["volume"]
        paired = dict(rep.get("paired") or {})
        paired["a"] = f"{name_of(scale)} ({sr.name})"
        res[f"paired_vs_{b}"] = paired
    return {
        "scan": f"IXI002 T2 slices {TEST_SLAB[0]}-{TEST_SLAB[1] - 1} (guide: IXI002 T1)",
        "held_out": f"training used T2 slices {TRAIN_SLABS} only (5-slice gaps)",
        "degradation": f"mrisr degrade --method kspace-truncate --scale {scale}",
        "upscale_seconds": round(seconds, 1),
        "results": {"volume": res},
    }


def model_card(scale: int, tr: dict, out: Path) -> str:
    from mrisr.weights import SHIPPED

    name = name_of(scale)
    w = SHIPPED[name]
    te, r = tr["test"], tr["test"]["results"]["volume"]
    hw = tr.get("hardware") or {}
    hw_text = ", ".join(f"{k} {v}" for k, v in hw.items()) if isinstance(hw, dict) else str(hw)
    size = (out / "model.safetensors").stat().st_size / 1e6
    rows = [
        ("**" + name + "**", r["sr"]),
        ("bicubic", r["bicubic"]),
        ("zero-fill", r["zerofill"]),
    ]
    lines = [
        f"# {name}",
        "",
        f"{w.summary}. Model `sanet` ×{scale} at a **reduced size**: "
        f"{tr['model_args']['n_groups']} residual groups of {tr['model_args']['n_rcab']} RCABs, "
        f"{tr['model_args']['n_feats']} channels ({tr['parameters']:,} parameters), not the "
        "paper's 6 groups × 64 channels (6.8 M): the paper's size runs about 29 s per step of "
        "batch 8 on the 2-core CPU this was trained on. Weights in float16 "
        f"({size:.1f} MB), read back as float32.",
        "",
        f"Use: `mrisr upscale T2_LR.nii.gz OUT.nii.gz --guide T1.nii.gz --scale {scale}` (the "
        "default for `--guide` at this scale; the guide is resampled onto the target's grid "
        "through both headers).",
        "",
        "## How little data it saw",
        "",
        "**One subject.** The only real T1/T2 pair in the project's data is IXI002 "
        "(IXI dataset, CC BY-SA 3.0). Its T2 (130 axial slices) was cut along the volume: "
        f"slices {TRAIN_SLABS[0][0]}–{TRAIN_SLABS[0][1] - 1} and {TRAIN_SLABS[1][0]}–"
        f"{TRAIN_SLABS[1][1] - 1} trained, slices {TEST_SLAB[0]}–{TEST_SLAB[1] - 1} test, "
        "with 5-slice gaps between them. Nothing else: one scanner (Guys, Philips 1.5 T), one "
        "head, one T1/T2 protocol. Expect it to help on IXI-like T2 with a T1 of the same "
        "session; on other contrasts, scanners or misregistered guides, check against "
        "zero-fill (`mrisr eval`) or train on your own pairs with the recipe.",
        "",
        "## Training",
        "",
        f"- Recipe: `{w.recipe}` (`configs/{w.recipe}.yaml`), made by "
        "`scripts/train_sanet_weights.py`.",
        f"- Degradation: {json.dumps(tr['degradation'])} of the T2; guide: the T1 resampled "
        "onto the T2 grid.",
        f"- {tr['steps']} steps of batch {tr['global_batch']} (LR patches {tr['lr_patch']}²), "
        f"{tr['optim']['name']} lr {tr['optim']['lr']:g}, {tr['sched']['name']} schedule, "
        f"{tr['loss']} loss, EMA {tr['ema_decay']}; weights: {tr['weights']}.",
        *(
            [
                f"- Warm start: {tr['init_from']['tensors_copied']} tensors copied from the "
                f"x{tr['init_from']['scale']} weights ({tr['init_from']['tensors_new']} new: "
                f"{', '.join(tr['init_from']['new']) or 'none'})."
            ]
            if tr.get("init_from")
            else []
        ),
        f"- Wall time {tr['wall_time_s'] / 60:.1f} min on {hw_text} (precision "
        f"{tr['precision']}, world size {tr['world_size']}).",
        "",
        "## Test on the held-out slab",
        "",
        f"{te['scan']}; {te['held_out']}. Degraded with `{te['degradation']}`, super-resolved "
        "with `mrisr upscale --guide`, scored by `mrisr eval` against the original.",
        "",
        "| method | PSNR (dB) | SSIM | NMSE |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {m} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v['nmse']:.5f} |" for m, v in rows),
        "",
        f"Gain of the model over {r['slices']} slices (paired t-test p):",
        "",
    ]
    for b in ("bicubic", "zerofill"):
        p = r[f"paired_vs_{b}"]
        lines.append(
            f"- vs {b}: {p['psnr']['mean_diff']:+.2f} dB PSNR, "
            f"{p['ssim']['mean_diff']:+.4f} SSIM, p = {p['psnr']['t_p']:.2g}"
        )
    lines += [
        "",
        f"Upscaling the slab took {te['upscale_seconds']:.1f} s (same machine, CPU).",
        "",
        "## Limits",
        "",
        "- One subject, ten test slices: the numbers above are a sanity check, not a benchmark.",
        "- Reduced size and a CPU-sized training run; magnitude images, in-plane only.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    shared = Path(os.environ.get("MRISR_SHARED_DATA", REPO.parent / "shared" / "data"))
    ap.add_argument("--data", type=Path, default=shared)
    ap.add_argument("--work", type=Path, default=Path("runs/sanet-weights"))
    ap.add_argument("--out", type=Path, default=REPO / "src" / "mrisr" / "weights")
    ap.add_argument("--only", nargs="*", type=int, choices=(2, 4), default=[4, 2])
    ap.add_argument("--no-train", action="store_true", help="test and package existing runs")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    (a.work / "fp16").mkdir(exist_ok=True)
    from mrisr.weights import SHIPPED

    for s in a.only:
        name = name_of(s)
        run = a.work / SHIPPED[name].recipe if a.no_train else train(s, a.data, a.work)
        fp16 = package(name, run / "final", None, a.work / "fp16")
        res = test(s, fp16, a.data, a.work)
        (a.work / f"test-x{s}" / "test.json").write_text(json.dumps(res, indent=1) + "\n")
        out = package(name, fp16, res, a.out, card=lambda tr, o, s=s: model_card(s, tr, o))
        print(json.dumps(res["results"], indent=1)[:2000])
        print(f"packaged {out}")


if __name__ == "__main__":
    main()

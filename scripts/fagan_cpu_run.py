"""The FA-GAN CPU run of issue 5: train ``fagan_cpu_x4``, then test on held-out slices.

    python scripts/fagan_cpu_run.py --data ../shared/data --work runs/fagan-cpu-x4

1. ``mrisr train fagan_cpu_x4`` on the real scans of ``--data`` without subject IXI002
   (skipped when ``--work/run/final`` exists); the state at the end of the pixel warm-up
   (``state/step_<pretrain>.pt``) is copied aside while training runs, so that it survives the
   rotation of states;
2. the warm-up generator is exported as a checkpoint (``warmup/``) next to the GAN's ``final/``;
3. a held-out slab of IXI002 T2 (``--slices`` central slices) is degraded by bicubic ×4,
   super-resolved by both generators and scored with ``mrisr eval`` (PSNR / SSIM / paired
   tests against bicubic) → ``results.md``, ``results.json`` and ``comparison.png``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path


def sh(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True)


def train(data: Path, run: Path, keep: Path, warmup: int) -> None:
    scans = [data / "flair/FLAIR.nii.gz", data / "mr_gd/MR_Gd.nii.gz"]
    scans.append(data / "dicom/vs-seg-001-subset")
    cmd = [sys.executable, "-m", "mrisr", "train", "fagan_cpu_x4",
           f"data.train=[{','.join(map(str, scans))}]", "--run-dir", str(run)]  # fmt: skip
    if (run / "state").is_dir():
        cmd.append("--resume")
    proc = subprocess.Popen(cmd)
    want = run / "state" / f"step_{warmup:07d}.pt"
    while proc.poll() is None:
        if want.exists() and not keep.exists():
            time.sleep(2)  # written atomically; the pause only avoids racing the rotation
            shutil.copy2(want, keep)
        time.sleep(5)
    if proc.returncode:
        raise SystemExit(proc.returncode)


def export_warmup(run: Path, keep: Path, out: Path) -> None:
    from mrisr.checkpoint import save_checkpoint
    from mrisr.models.registry import build_model
    from mrisr.normalisation import Normalisation
    from mrisr.train.config import load_config
    from mrisr.train.state import load_state

    cfg = load_config(run / "config.yaml")
    state = load_state(keep)
    net = build_model(cfg.model.name, cfg.data.scale, **cfg.model.args)
    net.load_state_dict(state["task"]["nets"]["generator"])
    card = json.loads((run / "final" / "config.json").read_text())["training"]
    card |= {"steps": state["step"], "note": "generator at the end of the pixel warm-up"}
    save_checkpoint(net, cfg.model.name, {"scale": cfg.data.scale, **cfg.model.args}, out,
                    normalisation=Normalisation(**cfg.data.normalisation.model_dump()),
                    training=card, overwrite=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--work", type=Path, default=Path("runs/fagan-cpu-x4"))
    ap.add_argument("--slices", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=700)
    a = ap.parse_args()
    import nibabel as nib

    run, w = a.work / "run", a.work
    keep = w / f"warmup_step_{a.warmup}.pt"
    w.mkdir(parents=True, exist_ok=True)
    if not (run / "final").exists():
        train(a.data, run, keep, a.warmup)
    if not keep.exists():
        raise SystemExit(f"{keep} is missing: the warm-up state was not captured")
    export_warmup(run, keep, w / "warmup")
    t2 = nib.load(a.data / "ixi002/IXI002-Guys-0828-T2.nii.gz")
    k0 = (t2.shape[2] - a.slices) // 2
    nib.save(t2.slicer[:, :, k0 : k0 + a.slices], w / "hr.nii.gz")
    m = [sys.executable, "-m", "mrisr"]
    sh(*m, "degrade", str(w / "hr.nii.gz"), str(w / "lr.nii.gz"), "--method", "bicubic",
       "--scale", "4", "--overwrite")  # fmt: skip
    times = {}
    for name, ck in (("warmup", w / "warmup"), ("gan", run / "final")):
        t = time.perf_counter()
        sh(*m, "upscale", str(w / "lr.nii.gz"), str(w / f"sr_{name}.nii.gz"),
           "--checkpoint", str(ck), "--overwrite")  # fmt: skip
        times[name] = time.perf_counter() - t
    ev = [*m, "eval", "--ref", str(w / "hr.nii.gz"), "--method", "bicubic", "--scale", "4"]
    sh(*ev, "--pred", str(w / "sr_gan.nii.gz"), "--baseline", "bicubic", "-o",
       str(w / "gan_vs_bicubic.md"), "--overwrite")  # fmt: skip
    sh(*ev, "--pred", str(w / "sr_warmup.nii.gz"), "--baseline", "bicubic", "-o",
       str(w / "warmup_vs_bicubic.md"), "--overwrite")  # fmt: skip
    sh(*ev, "--pred", str(w / "sr_warmup.nii.gz"), "--pred", str(w / "sr_gan.nii.gz"),
       "--format", "json", "-o", str(w / "results.json"), "--overwrite")  # fmt: skip
    sh(*ev, "--pred", str(w / "sr_warmup.nii.gz"), "--pred", str(w / "sr_gan.nii.gz"),
       "-o", str(w / "warmup_vs_gan.md"), "--overwrite")  # fmt: skip
    from mrisr.io import load_volume
    from mrisr.metrics.baselines import baseline_volume
    from mrisr.report.figures import comparison_panel

    ref = load_volume(w / "hr.nii.gz")
    bic = baseline_volume(ref, "bicubic", "bicubic", 4, None)
    rep = json.loads((w / "results.json").read_text())["results"]
    vols = {Path(k).name: v["volume"] for k, v in rep.items()}
    comparison_panel(
        {"LR (bicubic x4)": load_volume(w / "lr.nii.gz").data, "bicubic": bic.data,
         "FA-GAN warm-up": load_volume(w / "sr_warmup.nii.gz").data,
         "FA-GAN": load_volume(w / "sr_gan.nii.gz").data, "reference": ref.data},
        reference=ref.data, path=w / "comparison.png", overwrite=True,
        metrics={"FA-GAN warm-up": vols["sr_warmup.nii.gz"], "FA-GAN": vols["sr_gan.nii.gz"]},
    )  # fmt: skip
    (w / "upscale_seconds.json").write_text(json.dumps(times, indent=2) + "\n")
    print(json.dumps(times))


if __name__ == "__main__":
    main()

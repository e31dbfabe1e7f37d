"""Leave-one-subject-out in-plane k-space priors (issue 17): for each held-out subject, the
default recipe (``default_kspace_x2``; ×4 warm-started from that fold's ×2) trained on every
other scan of the shared data, with the stronger-prior levers as options, then
``benchmarks/quality.py`` on the held-out scans with their own fold's prior.

    python scripts/train_inplane_loo.py --data ../shared/data --work /work/runs/loo \\
        --folds IXI002 ch2 --scales 2 4 --steps 3000 --planes all --gamma 0.4 --bias 0.3 \\
        --noise 0 0.03 --precision bf16-mixed [--bench --adapt-steps 200]

A fold whose run already has ``final/`` is not retrained; one with ``state/`` is resumed.
No validation set (every other scan trains; the held-out subject must not steer anything).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

CH2 = "/usr/share/mricron/templates/ch2.nii.gz"
#: subject → its scans (paths under --data, or absolute); the held-out unit of each fold
SUBJECTS = {
    "IXI002": ["ixi002/IXI002-Guys-0828-T2.nii.gz", "ixi002/IXI002-Guys-0828-T1.nii.gz"],
    "ch2": [CH2],
    "FLAIR": ["flair/FLAIR.nii.gz"],
    "MR_Gd": ["mr_gd/MR_Gd.nii.gz"],
    "VS-SEG": ["dicom/vs-seg-001-subset"],
}


def run(cmd: list[object]) -> None:
    print("+ " + " ".join(map(str, cmd)), flush=True)
    if subprocess.run([str(c) for c in cmd], check=False).returncode:
        sys.exit(f"failed: {' '.join(map(str, cmd))}")


def scans_of(subject: str, data: Path) -> list[str]:
    return [s if s.startswith("/") else str(data / s) for s in SUBJECTS[subject]]


#: subjects the shipped k-space defaults never saw: their folds may warm-start from them
UNSEEN_BY_SHIPPED = ("IXI002", "ch2")


def train_fold(fold: str, scale: int, a: argparse.Namespace) -> Path:
    run_dir = a.work / f"{fold}-x{scale}{a.tag}"
    if (run_dir / "final" / "config.json").is_file():
        print(f"{run_dir}/final exists, not retrained")
        return run_dir / "final"
    # ch2 (an average of 27 scans, not an acquisition, not in the shared data) never trains:
    # its fold is the prior on all of the shared data, tested on a scan outside it
    train = [s for subj in SUBJECTS if subj not in (fold, "ch2") for s in scans_of(subj, a.data)]
    over = [
        f"data.train=[{','.join(train)}]",
        "data.val=[]",
        "data.split.val=0",  # no validation: every other scan trains
        f"data.planes={a.planes}",
        f"train.steps={a.steps}",
        f"trainer.precision={a.precision}",
        "train.progress=off",
    ]
    if a.gamma or a.bias or a.noise:
        over += [f"data.intensity.gamma={a.gamma}", f"data.intensity.bias={a.bias}"]
        if a.noise:
            over.append(f"data.intensity.noise=[{a.noise[0]},{a.noise[1]}]")
    if a.init_shipped:
        over.append(f"model.init_from=edsr-kspace-x{scale}")  # warm restart, fresh schedule
    elif scale == 4:
        over.append(f"model.init_from={a.work / f'{fold}-x2{a.tag}' / 'final'}")
    cmd = [sys.executable, "-m", "mrisr", "train", f"default_kspace_x{scale}", *over]
    cmd += ["--run-dir", run_dir] + (["--resume"] if (run_dir / "state").is_dir() else [])
    run(cmd)
    return run_dir / "final"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--folds", nargs="+", default=["IXI002", "ch2"], choices=list(SUBJECTS))
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4], choices=(2, 4))
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--planes", choices=["one", "all"], default="all")
    ap.add_argument("--gamma", type=float, default=0.0)
    ap.add_argument("--bias", type=float, default=0.0)
    ap.add_argument("--noise", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    ap.add_argument("--precision", default="32", help="trainer.precision (bf16-mixed: 2x on "
                    "a CPU with AVX512-BF16)")  # fmt: skip
    ap.add_argument("--tag", default="", help="suffix of the run folders (variants side by side)")
    ap.add_argument("--init-shipped", action="store_true", help="warm-start each scale from the "
                    "shipped edsr-kspace-x{2,4} (only folds those never saw: "
                    f"{', '.join(UNSEEN_BY_SHIPPED)})")  # fmt: skip
    ap.add_argument("--bench", action="store_true", help="then run benchmarks/quality.py")
    ap.add_argument("--adapt-steps", type=int, default=200)
    a = ap.parse_args()
    if 4 in a.scales and 2 not in a.scales and not a.init_shipped:
        sys.exit("x4 warm-starts from the fold's x2: give --scales 2 4 (or --init-shipped)")
    if a.init_shipped and (seen := [f for f in a.folds if f not in UNSEEN_BY_SHIPPED]):
        sys.exit(f"--init-shipped: the shipped defaults were trained on {', '.join(seen)}; "
                 "those folds must train from scratch")  # fmt: skip
    priors: list[str] = []
    cases: list[str] = []
    for fold in a.folds:
        for s in sorted(a.scales):
            ck = train_fold(fold, s, a)
            for scan in scans_of(fold, a.data):
                name = f"{fold}-{Path(scan).name.split('.')[0][-2:]}" if len(
                    SUBJECTS[fold]) > 1 else fold  # fmt: skip
                priors.append(f"{name}:{s}={ck}")
                if s == sorted(a.scales)[0]:
                    cases.append(f"{name}={scan}")
    bench = [
        sys.executable,
        "benchmarks/quality.py",
        "--scales",
        *map(str, a.scales),
        "--adapt-steps",
        str(a.adapt_steps),
        "--work",
        str(a.work / "quality"),
        "--json",
        str(a.work / "quality.json"),
        "--markdown",
        str(a.work / "quality.md"),
    ]
    for c in cases:
        bench += ["--case", c]
    for p in priors:
        bench += ["--prior", p]
    print("benchmark: " + " ".join(bench))
    if a.bench:
        run(bench)


if __name__ == "__main__":
    main()

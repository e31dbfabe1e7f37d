"""What a user gets on a scan mrisr never trained on: the in-plane default (the prior) with and
without exact k-space data consistency and per-scan adaptation, against bicubic and zero-filled
interpolation, leave-one-scan-out (issue 17).

    python benchmarks/quality.py --case IXI002-T2=../shared/data/ixi002/IXI002-Guys-0828-T2.nii.gz \
        --case IXI002-T1=../shared/data/ixi002/IXI002-Guys-0828-T1.nii.gz \
        [--prior IXI002-T2:2=CKPT ...] [--scales 2 4] [--adapt-steps 200] [--slices 40] \
        [--methods prior "prior + consistency"] \
        --work runs/quality --json quality.json --markdown quality.md

Protocol, per scan and scale s (2, 4):

- The scan is the reference; ``mrisr degrade --method kspace-truncate --scale s`` makes its LR
  (the central 1/s of k-space on both in-plane axes, magnitude: a scan acquired with a smaller
  matrix). ``--slices N`` keeps the N central slices along the slice axis first (a budget
  lever; the report says so).
- Methods, each through the CLI a user runs (``mrisr upscale``; its wall time is the time per
  volume): ``prior`` (the default, no flags), ``prior + consistency`` (``--consistency``),
  ``prior + adaptation`` (``--adapt --adapt-steps N``) and ``prior + both``; ``bicubic`` and
  ``zero-fill`` come from ``mrisr eval --baseline`` on the same LR samples.
- Leave one scan out: the prior of a case must not have seen its scan. The shipped defaults
  (``edsr-kspace-x2`` / ``-x4``) were trained on FLAIR, MR_Gd and VS-SEG-001 and never saw
  subject IXI002 nor the Colin27 T1 (``ch2``, Debian's ``mricron-data``:
  ``/usr/share/mricron/templates/ch2.nii.gz``, an average of 27 scans of one subject), so
  they are the leave-one-out prior of those scans; any other case
  needs ``--prior NAME:SCALE=CKPT`` (a checkpoint trained without it, e.g.
  ``mrisr train default_kspace_x2 data.train=[the other scans]``) and the script refuses a
  case without one.
- Scores: ``mrisr eval`` (3-D PSNR with the reference's data range, SSIM, NMSE; per slice),
  paired tests over slices of every method against zero-fill, the mean over scans and the
  worst scan, and a paired t-test over scans of each method's gain when there are 3 or more.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: The scans the shipped defaults never saw (their training data: FLAIR, MR_Gd, VS-SEG-001).
HELD_OUT_OF_DEFAULTS = ("IXI002", "ch2")
METHODS = {
    "prior": [],
    "prior + consistency": ["--consistency"],
    "prior + adaptation": ["--adapt"],
    "prior + both": ["--adapt", "--consistency"],
}


def mrisr(*args: object) -> float:
    """Run ``mrisr ARGS``; returns the wall time (s)."""
    cmd = [sys.executable, "-m", "mrisr", *map(str, args)]
    print("+ mrisr " + " ".join(map(str, args)), flush=True)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, text=True, capture_output=True)
    if res.returncode:
        sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr}")
    return time.perf_counter() - t0


def central_slices(src: Path, dst: Path, n: int | None) -> Path:
    """``src`` itself, or its ``n`` central slices along the through-plane axis (the axis of
    the largest spacing; the last one for isotropic voxels) with the header kept."""
    if n is None:
        return src
    if dst.exists():
        return dst
    import nibabel as nib

    img = nib.load(src)
    zooms = np.asarray(img.header.get_zooms()[:3])
    ax = int(np.argmax(zooms)) if np.ptp(zooms) > 1e-3 else 2
    a = max(0, (img.shape[ax] - n) // 2)
    sl = [slice(None)] * 3
    sl[ax] = slice(a, a + n)
    out = img.slicer[tuple(sl)]
    out.set_qform(out.affine, code=int(img.header["qform_code"]))
    out.set_sform(out.affine, code=int(img.header["sform_code"]))
    nib.save(out, dst)
    return dst


def run_case(name: str, scan: Path, scale: int, prior: str | None, a: argparse.Namespace) -> dict:
    from mrisr.metrics.stats import paired_slices

    w = a.work / f"{name}-x{scale}"
    w.mkdir(parents=True, exist_ok=True)
    hr = central_slices(scan, w / "hr.nii.gz", a.slices)
    lr = w / "lr.nii.gz"
    if not lr.exists():  # --crop: a central crop to a multiple of the scale
        mrisr("degrade", hr, lr, "--method", "kspace-truncate", "--scale", scale, "--crop")
    ckpt = ["--checkpoint", prior] if prior else ["--scale", scale]
    seconds, preds = {}, {}
    for m, flags in {k: METHODS[k] for k in a.methods}.items():
        out = w / (m.replace(" + ", "-").replace(" ", "-") + ".nii.gz")
        extra = ["--adapt-steps", a.adapt_steps] if "--adapt" in flags else []
        side = Path(f"{out}.json")
        if out.exists() and side.exists() and side.stat().st_mtime >= lr.stat().st_mtime:
            # an earlier run of this script (resumable): its time from the sidecar
            rec = json.loads(side.read_text())
            seconds[m] = rec["seconds"] + (rec.get("adapt") or {}).get("seconds", 0.0)
        else:
            seconds[m] = mrisr("upscale", lr, out, *ckpt, *flags, *extra, "--no-progress",
                               "--overwrite")  # fmt: skip
        preds[m] = out
    ev = w / "eval.json"
    mrisr(
        "eval", "--ref", hr, *[x for p in preds.values() for x in ("--pred", p)],
        "--baseline", "bicubic", "--baseline", "zerofill", "--method", "kspace-truncate",
        "--scale", scale, "--format", "json", "-o", ev, "--overwrite",
    )  # fmt: skip
    rep = json.loads(ev.read_text())
    by_path = {str(p): m for m, p in preds.items()}
    res: dict = {}
    for key, r in rep["results"].items():
        label = by_path.get(key) or ("bicubic" if "bicubic" in key else "zero-fill")
        res[label] = {"volume": r["volume"], "slices": r["slices"]}
    zf = res["zero-fill"]["slices"]
    for m in [*preds, "bicubic"]:
        res[m]["vs_zero_fill"] = paired_slices(res[m]["slices"], zf)
    sides = {m: json.loads(Path(f"{p}.json").read_text()) for m, p in preds.items()}
    return {
        "scan": str(scan),
        "shape": list(__import__("nibabel").load(hr).shape),
        "slices": a.slices,
        "prior": prior or f"shipped default x{scale}",
        "seconds": {m: round(s, 1) for m, s in seconds.items()},
        "adapt": sides.get("prior + adaptation", {}).get("adapt"),
        "consistency": sides.get("prior + consistency", {}).get("kspace_consistency"),
        "results": {
            m: {"volume": r["volume"], "vs_zero_fill": r.get("vs_zero_fill")}
            for m, r in res.items()
        },
    }


def summary(cases: dict) -> dict:
    """Per scale and method: mean and worst gain over zero-fill (PSNR, SSIM) across scans, and
    a paired t-test over scans when there are 3 or more."""
    from mrisr.metrics.stats import paired_tests

    out: dict = {}
    for key, c in cases.items():
        s = key.rsplit(":x", 1)[1]
        for m, r in c["results"].items():
            row = out.setdefault(f"x{s}", {}).setdefault(m, {"psnr": [], "ssim": [], "zf": []})
            row["psnr"].append(r["volume"]["psnr"])
            row["ssim"].append(r["volume"]["ssim"])
            row["zf"].append(c["results"]["zero-fill"]["volume"])
    for rows in out.values():
        for m, row in rows.items():
            g = np.array(row["psnr"]) - np.array([z["psnr"] for z in row["zf"]])
            gs = np.array(row["ssim"]) - np.array([z["ssim"] for z in row["zf"]])
            row.update(
                n_scans=len(g), psnr_gain_mean=float(g.mean()), psnr_gain_worst=float(g.min()),
                ssim_gain_mean=float(gs.mean()), ssim_gain_worst=float(gs.min()),
                psnr_mean=float(np.mean(row["psnr"])), ssim_mean=float(np.mean(row["ssim"])),
            )  # fmt: skip
            if len(g) >= 3 and m != "zero-fill":
                row["over_scans"] = paired_tests(row["psnr"], [z["psnr"] for z in row["zf"]])
            del row["zf"]
    return out


def markdown(cases: dict, summ: dict, a: argparse.Namespace) -> str:
    lines = [
        f"Adaptation: at most {a.adapt_steps} steps (this run's cases). Slices: "
        + (f"the {a.slices} central slices of each scan" if a.slices else "whole scans")
        + " (merged cases: see their shapes).",
        "",
    ]
    for key, c in cases.items():
        lines += [
            f"### {key} ({'×'.join(map(str, c['shape']))}, prior: {c['prior']})",
            "",
            "| method | PSNR (dB) | SSIM | gain vs zero-fill (dB) | p (slices) | SSIM gain | "
            "time (s) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for m, r in c["results"].items():
            v, p = r["volume"], r.get("vs_zero_fill") or {}
            zf = c["results"]["zero-fill"]["volume"]
            pp = p.get("psnr", {})
            lines.append(
                f"| {m} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v['psnr'] - zf['psnr']:+.2f} | "
                + (f"{pp['t_p']:.2g}" if "t_p" in pp else "-")
                + f" | {v['ssim'] - zf['ssim']:+.4f} | {c['seconds'].get(m, '-')} |"
            )
        ad = c.get("adapt") or {}
        if ad:
            keep = ("steps", "stopped", "seconds", "loss_first", "loss_last")
            lines += ["", f"Adaptation: {json.dumps({k: ad.get(k) for k in keep if k in ad})}"]
        lines.append("")
    lines += ["### Over scans (gain over zero-fill)", ""]
    lines += [
        "| scale | method | scans | PSNR gain mean | worst | SSIM gain mean | worst | p (scans) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s, rows in summ.items():
        for m, r in rows.items():
            if m == "zero-fill":
                continue
            p = r.get("over_scans", {}).get("t_p")
            lines.append(
                f"| {s} | {m} | {r['n_scans']} | {r['psnr_gain_mean']:+.2f} | "
                f"{r['psnr_gain_worst']:+.2f} | {r['ssim_gain_mean']:+.4f} | "
                f"{r['ssim_gain_worst']:+.4f} | {'-' if p is None else f'{p:.2g}'} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", action="append", default=[], metavar="NAME=SCAN")
    ap.add_argument(
        "--merge", nargs="+", type=Path, default=[], help="cases from earlier --json outputs"
    )
    ap.add_argument("--prior", action="append", default=[], metavar="NAME:SCALE=CKPT")
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4], choices=(2, 4))
    ap.add_argument("--adapt-steps", type=int, default=200)
    ap.add_argument("--slices", type=int, default=None)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                    metavar="METHOD", help=f"a subset of: {'; '.join(METHODS)}")  # fmt: skip
    ap.add_argument("--work", type=Path, default=Path("runs/quality"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path)
    a = ap.parse_args()
    priors = {}
    for p in a.prior:
        k, v = p.split("=", 1)
        priors[k] = v
    cases: dict = {}
    for m in a.merge:
        cases.update(json.loads(m.read_text())["cases"])
    if not cases and not a.case:
        sys.exit("give --case NAME=SCAN (or --merge earlier JSON outputs)")
    for c in a.case:
        name, scan = c.split("=", 1)
        for s in a.scales:
            prior = priors.get(f"{name}:{s}")
            if prior is None and not any(h in name or h in scan for h in HELD_OUT_OF_DEFAULTS):
                sys.exit(f"{name}: the shipped x{s} default saw this scan; give --prior "
                         f"{name}:{s}=CKPT (trained without it)")  # fmt: skip
            cases[f"{name}:x{s}"] = run_case(name, Path(scan), s, prior, a)
    summ = summary(cases)
    text = markdown(cases, summ, a)
    print(text)
    if a.json:
        a.json.write_text(json.dumps({"cases": cases, "summary": summ}, indent=1) + "\n")
    if a.markdown:
        a.markdown.write_text(text)


if __name__ == "__main__":
    main()

"""Through-plane SR of simulated thick-slice scans, held-out scans only (issue 16).

Each case is an isotropic real scan and a through-plane prior that never saw it
(``--case SCAN=PRIOR``: the prior's training card must not list the scan). A central box of
the scan (``--box``, default 112 × 112 in-plane × 120 along axis 2) is the reference; thick
slices are simulated along axis 2 for each protocol — k = 2, 4, 5 with a rect profile of
FWHM = spacing, k = 4 Gaussian, and k = 4 with a gap (thickness 0.8 × spacing) — and every
method restores them onto the reference grid:

- ``nearest``: the nearest acquired slice;
- ``bspline``: cubic B-spline through the acquired slices at their true positions;
- ``sinc``: band-limited (zero-padding along the slice axis in k-space, periodic);
- ``prior``: the prior alone (``--steps 0``);
- ``scratch``: per-scan training from a fresh network, ``--steps`` budget (ECLARE-style);
- ``from_prior``: per-scan training from the prior, the same budget;
- ``from_prior_fba``: the same network, the two planes combined by Fourier burst accumulation;
- ``from_prior_dc``: ``from_prior`` projected onto the acquired slices (``--consistency``).

Scores: 3-D PSNR and mean SSIM on the foreground (reference > 10 % of its 99th percentile;
SSIM on slices along axis 0, so each image contains the slice direction), the consistency
residual, and wall time. Prints Markdown, writes ``--json`` and a ``--figure`` (k = 4 rect,
first case). ``--timing`` adds the done-when run: ``mrisr upscale --through-plane`` of the
IXI T1 made 256 × 256 × 36 at 5 mm, under ``/usr/bin/time -v`` (wall time, peak RSS).

    python benchmarks/through_plane.py --case FLAIR.nii.gz=/runs/tp-loo-flair/final \\
        --steps 200 --json tp.json --figure tp.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mrisr.checkpoint import load_checkpoint
from mrisr.degrade import degrade_volume, make_degradation
from mrisr.degrade.through_plane import (
    apply_along,
    operator,
    output_grid,
    project,
    residual,
    spline_to_grid,
)
from mrisr.infer.through_plane import ThroughPlaneOptions, restore
from mrisr.io import load_volume
from mrisr.metrics.scores import evaluate_volume

PROTOCOLS = [  # name, k, profile, thickness / spacing
    ("k2 rect", 2, "rect", 1.0),
    ("k4 rect", 4, "rect", 1.0),
    ("k5 rect", 5, "rect", 1.0),
    ("k4 gaussian", 4, "gaussian", 1.0),
    ("k4 rect gap", 4, "rect", 0.8),
]
METHODS = ["nearest", "bspline", "sinc", "prior", "scratch", "from_prior", "from_prior_fba",
           "from_prior_dc"]  # fmt: skip


def box(vol, size: tuple[int, int, int]):
    """The central ``size`` box of ``vol`` (affine follows)."""
    sl, start = [], np.zeros(3)
    for a, s in enumerate(size):
        s = min(s, vol.shape[a])
        s0 = (vol.shape[a] - s) // 2
        sl.append(slice(s0, s0 + s))
        start[a] = s0
    t = np.eye(4)
    t[:3, 3] = start
    return vol.replace(np.ascontiguousarray(vol.data[tuple(sl)], np.float32), vol.affine @ t)


def sinc_matrix(n: int, pos: np.ndarray, k: float) -> np.ndarray:
    """``[n, m]``: band-limited (periodic) interpolation of ``m`` samples at positions ``pos``
    onto samples 0..n−1 — zero-padding the slice axis in k-space, on the true grid."""
    m = len(pos)
    t = (np.arange(n) - pos[0]) / k  # output sample i in acquired-index units
    f = np.fft.fftfreq(m) * m  # integer frequencies; even m: Nyquist once (cos term)
    d = t[:, None] - np.arange(m)[None, :]
    return np.cos(2 * np.pi * f[None, None, :] * d[..., None] / m).sum(-1) / m


def nearest_matrix(n: int, pos: np.ndarray, k: float) -> np.ndarray:
    m = len(pos)
    j = np.clip(np.rint((np.arange(n) - pos[0]) / k).astype(int), 0, m - 1)
    out = np.zeros((n, m))
    out[np.arange(n), j] = 1.0
    return out


def score(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    v = evaluate_volume(pred, ref, mask=mask, slice_axis=0)["volume"]
    return {"psnr": round(v["psnr"], 3), "ssim": round(v["ssim"], 4)}


def run_case(
    scan: Path, prior: Path, steps: int, size, figure_store: dict, only: list[str] | None = None
) -> list[dict]:
    prior_ck = load_checkpoint(prior)[1]
    seen = prior_ck.training.get("data", {}).get("train", [])
    if scan.name in seen:
        raise SystemExit(f"{prior} was trained on {scan.name}: not a held-out case")
    hr = box(load_volume(scan), size)
    # Nearly isotropic scans (MR_Gd: 0.977 × 0.977 × 1.003 mm) are taken as isotropic at the
    # in-plane spacing, so the restored grid (in-plane spacing along the slice axis) is the
    # reference's grid; the relabelling (2.6 % along axis 2 for MR_Gd) is recorded.
    d = float(np.mean(hr.zooms[:2]))
    cols = hr.affine[:3, :3] / np.linalg.norm(hr.affine[:3, :3], axis=0) * d
    relabel = round(float(hr.zooms[2]) / d - 1, 4)
    hr = hr.replace(hr.data, np.vstack([np.hstack([cols, hr.affine[:3, 3:]]), [0, 0, 0, 1]]))
    ref = hr.data
    mask = ref > 0.1 * np.percentile(ref, 99)
    rows = []
    for name, k, profile, ratio in PROTOCOLS:
        if only and name not in only:
            continue
        d = float(hr.zooms[2])
        thick = make_degradation("thick-slice", thickness=ratio * k * d, spacing=k * d,
                                 profile=profile)  # fmt: skip
        lr, _ = degrade_volume(hr, [thick], axis=2, seed=0)
        m = lr.shape[2]
        n, pos = output_grid(m, float(k))
        assert n == ref.shape[2], (n, ref.shape)
        a = operator(n, pos, profile, ratio * k)
        y = lr.data
        row: dict = {"scan": scan.name, "protocol": name, "k": k, "acquired_slices": m,
                     "axis2_relabelled": relabel,
                     "prior_checkpoint": {"sha256": prior_ck.sha256, "train": seen}}  # fmt: skip
        outs: dict[str, np.ndarray] = {}
        for meth, mat in (("nearest", nearest_matrix(n, pos, k)),
                          ("sinc", sinc_matrix(n, pos, k))):  # fmt: skip
            t0 = time.perf_counter()
            outs[meth] = apply_along(mat, y.astype(np.float64), 2).astype(np.float32)
            row[f"{meth}_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        outs["bspline"] = spline_to_grid(y.astype(np.float64), pos, n, 2).astype(np.float32)
        row["bspline_s"] = round(time.perf_counter() - t0, 2)
        common = {"axis": 2, "progress": False, "profile": profile, "thickness_mm": ratio * k * d}
        with tempfile.TemporaryDirectory() as tmp:
            for meth, ck, st in (("prior", prior, 0), ("scratch", None, steps),
                                 ("from_prior", prior, steps)):  # fmt: skip
                run_dir = Path(tmp) / meth if st else None
                t0 = time.perf_counter()
                out, rec = restore(lr, ThroughPlaneOptions(steps=st, run_dir=run_dir, **common),
                                   ck)  # fmt: skip
                row[f"{meth}_s"] = round(time.perf_counter() - t0, 1)
                row[f"{meth}_steps"] = rec["through_plane"]["training"].get("steps")
                outs[meth] = out.data
            t0 = time.perf_counter()
            out, _ = restore(lr, ThroughPlaneOptions(steps=0, combine="fba", **common),
                             Path(tmp) / "from_prior" / "final")  # fmt: skip
            row["from_prior_fba_s"] = round(time.perf_counter() - t0, 1)
            outs["from_prior_fba"] = out.data
        t0 = time.perf_counter()
        outs["from_prior_dc"] = project(a, outs["from_prior"].astype(np.float64), y, 2).astype(
            np.float32
        )
        row["from_prior_dc_s"] = round(time.perf_counter() - t0, 2)
        for meth in METHODS:
            row[meth] = score(outs[meth], ref, mask)
            row[meth]["residual"] = float(f"{residual(a, outs[meth], y, 2):.3g}")
        rows.append(row)
        print(_line(row), flush=True)
        if name == "k4 rect" and not figure_store:
            figure_store.update(ref=ref, outs=outs, scan=scan.name)
    return rows


def _line(row: dict) -> str:
    best_classic = max(row["bspline"]["psnr"], row["sinc"]["psnr"])
    cells = " | ".join(f"{row[m]['psnr']:.2f} / {row[m]['ssim']:.3f}" for m in METHODS)
    gain = row["from_prior"]["psnr"] - best_classic
    return f"| {row['scan']} | {row['protocol']} | {cells} | {gain:+.2f} |"


def table(rows: list[dict]) -> str:
    head = "| scan | protocol | " + " | ".join(METHODS) + " | from_prior − best classic (dB) |"
    sep = "|" + "---|" * (len(METHODS) + 3)
    lines = [head, sep] + [_line(r) for r in rows]
    lines.append("")
    lines.append("Mean and worst gain over the best of B-spline and sinc, per protocol (dB):")
    lines.append("")
    lines.append("| protocol | " + " | ".join(METHODS[3:]) + " |")
    lines.append("|" + "---|" * (len(METHODS) - 2))
    for name, *_ in PROTOCOLS:
        sel = [r for r in rows if r["protocol"] == name]
        if not sel:
            continue
        cells = []
        for m in METHODS[3:]:
            g = [r[m]["psnr"] - max(r["bspline"]["psnr"], r["sinc"]["psnr"]) for r in sel]
            cells.append(f"{np.mean(g):+.2f} (worst {min(g):+.2f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(store: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref, outs = store["ref"], store["outs"]
    i = ref.shape[0] // 2
    show = ["nearest", "bspline", "sinc", "prior", "scratch", "from_prior", "from_prior_dc"]
    fig, ax = plt.subplots(2, len(show) + 1, figsize=(2.2 * (len(show) + 1), 5.2))
    vmax = float(np.percentile(ref, 99.5))
    ax[0, 0].imshow(ref[i].T, cmap="gray", vmin=0, vmax=vmax, origin="lower", aspect=1)
    ax[0, 0].set_title("reference", fontsize=8)
    ax[1, 0].axis("off")
    for j, m in enumerate(show, 1):
        ax[0, j].imshow(outs[m][i].T, cmap="gray", vmin=0, vmax=vmax, origin="lower")
        ax[0, j].set_title(m, fontsize=8)
        ax[1, j].imshow(np.abs(outs[m][i] - ref[i]).T, cmap="magma", vmin=0, vmax=0.25 * vmax,
                        origin="lower")  # fmt: skip
        ax[1, j].set_title("|error|", fontsize=7)
    for a in ax.ravel():
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(f"{store['scan']}: 4 mm rect slices (k = 4) restored to 1 mm; slice axis up",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def timing(shared: Path, steps: int, prior: Path | None) -> dict:
    """`mrisr upscale --through-plane` on the IXI T1 made 256 x 256 x 36 at 5 mm."""
    t1 = load_volume(shared / "ixi002" / "IXI002-Guys-0828-T1.nii.gz")  # 150 x 256 x 256, 1.2 mm
    thick = make_degradation("thick-slice", thickness=5.0, spacing=5.0)
    lr, _ = degrade_volume(t1, [thick], axis=0, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "thick.nii.gz", Path(tmp) / "iso.nii.gz"
        from mrisr.io import save_volume

        save_volume(lr, src)
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "mrisr", "upscale", str(src),
               str(out), "--through-plane", "--steps", str(steps), "--no-progress"]  # fmt: skip
        if prior is not None:
            cmd += ["--checkpoint", str(prior)]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        rss = [ln for ln in res.stderr.splitlines() if "Maximum resident set size" in ln]
        side = json.loads(Path(f"{out}.json").read_text()) if res.returncode == 0 else {}
    return {
        "shape": list(lr.shape),
        "zooms": [round(z, 3) for z in lr.zooms],
        "returncode": res.returncode,
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(int(rss[0].split()[-1]) / 2**20, 2) if rss else None,
        "training": side.get("through_plane", {}).get("training"),
        "stderr_tail": res.stderr[-400:] if res.returncode else "",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", action="append", default=[], help="SCAN=PRIOR (held out)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--box", type=int, nargs=3, default=(112, 112, 120))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--figure", type=Path)
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--shared", type=Path, default=Path(__file__).parents[1] / "../shared/data")
    ap.add_argument("--protocols", nargs="+", choices=[p[0] for p in PROTOCOLS],
                    help="run only these protocols (default: all)")  # fmt: skip
    ap.add_argument("--merge", nargs="+", type=Path, default=[],
                    help="rows of earlier --json runs to add")  # fmt: skip
    args = ap.parse_args()
    rows: list[dict] = []
    for prev in args.merge:
        rows += json.loads(prev.read_text())["rows"]
    store: dict = {}
    t0 = time.perf_counter()
    for case in args.case:
        scan, prior = case.split("=")
        rows += run_case(Path(scan), Path(prior), args.steps, tuple(args.box), store,
                         args.protocols)  # fmt: skip
    result = {"steps": args.steps, "box": list(args.box), "rows": rows}
    if rows:
        print(table(rows))
    if args.timing:
        prior = Path(args.case[0].split("=")[1]) if args.case else None
        result["timing"] = timing(args.shared, 300, prior)
        print(json.dumps(result["timing"], indent=1))
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.figure and store:
        figure(store, args.figure)


if __name__ == "__main__":
    main()

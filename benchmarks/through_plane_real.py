"""Through-plane SR of real thick-slice scans, no reference (issue 16).

Two acquired thick-slice scans: dipy's ``aniso_vox.nii.gz`` (58 × 58 × 24 at 4 × 4 × 5 mm,
k = 1.25; BSD-3, inside the dipy wheel) and the VS-SEG-001 DICOM subset (512² × 24 at
0.41 × 0.41 × 1.5 mm, k ≈ 3.66). Each is restored onto the in-plane spacing by:

- ``nearest``: the acquired slices at their true extent (the nearest slice; "before");
- ``bspline``: cubic B-spline at the true slice positions (``restore``, no network, 0 steps);
- ``prior``: the through-plane prior alone (0 steps);
- ``from_prior``: per-scan training from the prior (``--steps``, early stop).

With no reference, the scores are no-reference ones along the slice direction: the 2-D images
that contain the slice axis (sagittal and coronal: slices along each in-plane axis) are
scored with mrisr's MR NIQE (``niqe_volume``, 32 px patches) and the standard NIQE and BRISQUE
(``standard_volume``; NIQE needs 96 × 96 blocks), with one grey-level window per scan (the
acquired scan's). Lower is better. The acquired scan's own in-plane slices give the level of a
sharp image. A metric that cannot score an image (too small for its patches) is recorded as
skipped with its reason. Also: wall time, training steps and the consistency residual
``‖A·x − y‖/‖y‖``. Prints Markdown, writes ``--json`` and a ``--figure`` (centre sagittal and
coronal reformats, slice axis vertical, physical aspect).

    python benchmarks/through_plane_real.py --steps 300 --json tpr.json --figure tpr.png \\
        [--aniso aniso_vox.nii.gz] [--vsseg DIR] [--checkpoint PRIOR] [--only aniso|vsseg]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mrisr.checkpoint import load_checkpoint
from mrisr.degrade.through_plane import output_grid
from mrisr.errors import ConfigError, InputError
from mrisr.infer.through_plane import ThroughPlaneOptions, resolve_prior, restore
from mrisr.io import load_volume
from mrisr.metrics.fid import intensity_window
from mrisr.metrics.noref.standard import mr_window, standard_volume
from mrisr.metrics.noref.volume import niqe_volume

METHODS = ["nearest", "bspline", "prior", "from_prior"]
SCORES = ["niqe_mr", "niqe", "brisque"]
PLANES = ("sagittal", "coronal", "axial")
LABEL = {"nearest": "acquired (nearest slice)", "bspline": "B-spline", "prior": "prior alone",
         "from_prior": "per-scan from prior"}  # fmt: skip
HERE = Path(__file__).resolve().parents[1]


def find_aniso(given: Path | None) -> Path | None:
    if given is not None:
        return given
    spec = importlib.util.find_spec("dipy")
    for root in (spec.submodule_search_locations or []) if spec else []:
        if (p := Path(root) / "data" / "files" / "aniso_vox.nii.gz").is_file():
            return p
    return None


def plane(affine: np.ndarray, fixed: int) -> str:
    """The name of the slices taken along voxel axis ``fixed`` (its nearest world axis)."""
    return PLANES[int(np.argmax(np.abs(affine[:3, fixed])))]


def noref(data: np.ndarray, axis: int, win_mr, win_std) -> dict:
    """MR NIQE, standard NIQE and BRISQUE of the slices along ``axis``; a score that cannot be
    computed is None, and ``notes`` says why."""
    h, w = np.delete(data.shape, axis % 3)
    out: dict = {"image": f"{h}×{w}", "notes": []}
    try:
        r = niqe_volume(data, axis, window=win_mr)["volume"]
        out.update(niqe_mr=round(r["niqe"], 4), niqe_mr_slices=r["n_slices"],
                   niqe_mr_patches=r["n_patches"])  # fmt: skip
    except (InputError, ConfigError) as exc:
        out["niqe_mr"] = None
        out["notes"].append(f"niqe_mr on {h}×{w} images: {exc}")
    try:
        s = standard_volume(data, axis, window=win_std)["volume"]
        out.update({k: None if s[k] is None else round(s[k], 4) for k in ("niqe", "brisque")})
        out.update(niqe_slices=s["n_niqe"], brisque_slices=s["n_brisque"])
        out["notes"] += s["notes"]
    except (InputError, ConfigError) as exc:
        out.update(niqe=None, brisque=None)
        out["notes"].append(f"standard: {exc}")
    return out


def reformat(v: np.ndarray, z: int, a: int) -> np.ndarray:
    """The centre slice along in-plane axis ``a``, rows along the slice axis ``z``."""
    return np.moveaxis(v, (z, a), (0, 1))[:, v.shape[a] // 2]


def run_scan(name: str, path: Path, prior: Path | None, steps: int) -> tuple[dict, dict]:
    vol = load_volume(path)
    acq = vol.data.astype(np.float32)
    win_mr, win_std = intensity_window(acq), mr_window(acq)
    row: dict = {"scan": name, "path": str(path), "shape": list(vol.shape),
                 "zooms_mm": [round(float(v), 4) for v in vol.zooms],
                 "window_niqe_mr": list(win_mr), "window_standard": list(win_std)}  # fmt: skip
    if prior is not None:
        seen = load_checkpoint(prior)[1].training.get("data", {}).get("train", [])
        row["prior_card"] = {"path": str(prior), "train": seen, "saw_this_scan": path.name in seen}
    outs, rec = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for meth, ck, st in (("bspline", None, 0), ("prior", prior, 0),
                             ("from_prior", prior, steps)):  # fmt: skip
            if ck is None and meth != "bspline":
                continue
            opts = ThroughPlaneOptions(steps=st, progress=False,
                                       run_dir=Path(tmp) / meth if st else None)  # fmt: skip
            t0 = time.perf_counter()
            try:
                out, r = restore(vol, opts, ck, path.name)
            except ConfigError as exc:  # e.g. a prior the per-scan recipe cannot start from
                row[meth] = {"error": str(exc)}
                print(f"{name} {meth} failed: {exc}", file=sys.stderr, flush=True)
                continue
            tp = r["through_plane"]
            rec[meth] = {"wall_s": round(time.perf_counter() - t0, 1),
                         "steps": tp["training"].get("steps"),
                         "stopped": tp["training"].get("stopped"),
                         "residual": float(f"{tp['consistency_residual']:.3g}"),
                         "self_check": tp["self_check"]}  # fmt: skip
            outs[meth] = out
            print(f"{name} {meth}: {rec[meth]['wall_s']} s", file=sys.stderr, flush=True)
    ref = outs["bspline"]
    tp = r["through_plane"]
    z, k, m = tp["slice_axis"], tp["k"], tp["acquired_slices"]
    row["through_plane"] = {key: tp[key] for key in ("slice_axis", "k", "in_plane_mm",
        "slice_spacing_mm", "slice_thickness_mm", "thickness_source", "profile",
        "acquired_slices", "output_slices")}  # fmt: skip
    n, pos = output_grid(m, k)
    assert n == ref.shape[z], (n, ref.shape)
    j = np.clip(np.rint((np.arange(n) - pos[0]) / k).astype(int), 0, m - 1)
    data = {"nearest": np.take(acq, j, axis=z), **{mm: o.data for mm, o in outs.items()}}
    rec["nearest"] = {"wall_s": 0.0, "steps": None, "residual": None}
    inplane = [a for a in range(3) if a != z]
    names = {a: plane(vol.affine, a) for a in inplane}
    row["reformats"] = [names[a] for a in inplane]
    row["acquired_in_plane"] = {"plane": plane(vol.affine, z),
                                **noref(acq, z, win_mr, win_std)}  # fmt: skip
    fig = {"scan": name, "vmax": float(np.percentile(acq, 99.5)), "zooms": ref.zooms, "z": z,
           "up": bool(ref.affine[2, z] >= 0), "planes": row["reformats"], "panels": {}}  # fmt: skip
    for meth in [m for m in METHODS if m in data]:
        t0 = time.perf_counter()
        row[meth] = {**rec[meth], **{names[a]: noref(data[meth], a, win_mr, win_std)
                                     for a in inplane}}  # fmt: skip
        row[meth]["score_s"] = round(time.perf_counter() - t0, 1)
        for a in inplane:
            b = [x for x in inplane if x != a][0]
            fig["panels"][(names[a], meth)] = (reformat(data[meth], z, a), b)
    return row, fig


def cell(v) -> str:
    return "–" if v is None else f"{v:.2f}"


def table(rows: list[dict]) -> str:
    head = "| scan | method | wall s | steps | output | residual | " + " | ".join(
        f"{s} (sag / cor)" for s in SCORES) + " |"  # fmt: skip
    lines = [head, "|" + "---|" * 2 + "---:|" * (4 + len(SCORES))]
    notes = []
    for r in rows:
        ip, planes = r["acquired_in_plane"], r["reformats"]
        lines.append(f"| {r['scan']} | acquired, in-plane ({ip['plane']}) | | | | | "
                     + " | ".join(cell(ip[s]) for s in SCORES) + " |")  # fmt: skip
        notes += [f"{r['scan']} {ip['plane']} (in-plane): {n}" for n in ip["notes"]]
        for meth in [m for m in METHODS if m in r]:
            x = r[meth]
            if "error" in x:
                lines.append(f"| {r['scan']} | {meth} | failed: {x['error'][:90]} |")
                continue
            sc = [" / ".join(cell(x[p][s]) for p in planes) for s in SCORES]
            res = "–" if x["residual"] is None else f"{x['residual']:.2e}"
            used = x.get("self_check", {}).get("used", "")
            lines.append(f"| {r['scan']} | {meth} | {x['wall_s']} | {x['steps'] or ''} | {used} | "
                         f"{res} | " + " | ".join(sc) + " |")  # fmt: skip
            for p in planes:
                notes += [f"{r['scan']} {p}: {n}" for n in x[p]["notes"]
                          if f"{r['scan']} {p}: {n}" not in notes]  # fmt: skip
        if r.get("prior_card", {}).get("saw_this_scan"):
            notes.append(f"{r['scan']}: the prior's training card lists this scan (not held out)")
    lines += ["", "output: what restore() returned after its self-check (network or B-spline)."]
    return "\n".join(lines + ["", "Notes:", ""] + [f"- {n}" for n in notes])


def figure(figs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, ratios = [], []
    for f in figs:
        for p in f["planes"]:
            img, b = f["panels"][(p, "nearest")]
            h, w = img.shape[0] * f["zooms"][f["z"]], img.shape[1] * f["zooms"][b]
            crop = min(img.shape[1], int(round(3 * h / f["zooms"][b])))  # at most 3:1 wide
            rows.append((f, p, b, crop))
            ratios.append(h / min(w, 3 * h))
    meths = [m for m in METHODS if all((r[1], m) in r[0]["panels"] for r in rows)]
    size = (3.4 * len(meths), 0.5 + 3.4 * sum(ratios))
    fig, ax = plt.subplots(len(rows), len(meths), figsize=size, squeeze=False,
                           gridspec_kw={"height_ratios": ratios})  # fmt: skip
    for i, (f, p, b, crop) in enumerate(rows):
        for j, m in enumerate(meths):
            img = f["panels"][(p, m)][0]
            c0 = (img.shape[1] - crop) // 2
            ax[i, j].imshow(img[:, c0 : c0 + crop], cmap="gray", vmin=0, vmax=f["vmax"],
                            origin="lower" if f["up"] else "upper", interpolation="nearest",
                            aspect=f["zooms"][f["z"]] / f["zooms"][b])  # fmt: skip
            ax[i, j].set_xticks([])
            ax[i, j].set_yticks([])
            if i == 0 or rows[i - 1][0] is not f:
                wide = img.shape[1] * f["zooms"][b]
                crop_s = f" (centre {crop * f['zooms'][b]:.0f} of {wide:.0f} mm)" * (
                    j == 0 and crop < img.shape[1]
                )
                ax[i, j].set_title(f"{f['scan']}{crop_s}: {LABEL.get(m, m)}", fontsize=8)
        ax[i, 0].set_ylabel(p, fontsize=8)
    fig.suptitle("Real thick-slice scans: centre reformats, slice axis vertical, physical aspect",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=150)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aniso", type=Path, help="aniso_vox.nii.gz (default: inside dipy)")
    ap.add_argument("--vsseg", type=Path,
                    default=HERE.parent / "shared/data/dicom/vs-seg-001-subset")  # fmt: skip
    ap.add_argument("--checkpoint", type=Path, help="through-plane prior (default: shipped)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--only", choices=["aniso", "vsseg"])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--figure", type=Path)
    args = ap.parse_args()
    prior = resolve_prior(args.checkpoint, False)
    scans = []
    if args.only != "vsseg":
        if (p := find_aniso(args.aniso)) is None or not p.is_file():
            print(
                "aniso_vox.nii.gz not found: `pip download --no-deps dipy`, unzip the "
                "wheel, pass --aniso .../dipy/data/files/aniso_vox.nii.gz",
                file=sys.stderr,
            )
        else:
            scans.append(("aniso_vox", p))
    if args.only != "aniso":
        if args.vsseg.exists():
            scans.append(("VS-SEG-001", args.vsseg))
        else:
            print(f"VS-SEG subset not found at {args.vsseg}: pass --vsseg DIR", file=sys.stderr)
    if not scans:
        raise SystemExit("no scan to run")
    t0 = time.perf_counter()
    rows, figs = [], []
    for name, path in scans:
        row, f = run_scan(name, path, prior, args.steps)
        rows.append(row)
        figs.append(f)
    print(table(rows))
    result = {"steps": args.steps, "prior": str(prior) if prior else None,
              "prior_sha256": load_checkpoint(prior)[1].sha256 if prior else None,
              "rows": rows, "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.figure:
        figure(figs, args.figure)


if __name__ == "__main__":
    main()

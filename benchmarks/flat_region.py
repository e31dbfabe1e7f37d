"""Flat regions of noisier scans: does the in-plane model turn noise into texture? (issue 17)

A new user reported low-amplitude texture in flat regions and the background, and an SSIM below
zero-fill, from the ×2 k-space model on a T2 from another site. The scans of
``../shared/data`` have quiet or zeroed backgrounds (background std over the 99th percentile:
FLAIR and MR_Gd 0, IXI002 T2 0.06 %, T1 0.03 %, Colin27 0.7 %; only the VS-SEG DICOMs are
noisy, 2.4 %), so the artefact does not show on them, and the models trained on them (FLAIR,
MR_Gd, VS-SEG) hardly saw noise; a noisier acquisition is simulated here instead. Each case
is a real scan with Rician noise added (σ = f × its 99th percentile, ``--noise``): it is the
reference, as a real noisy scan would be, and its k-space is truncated ×2 (``--scale``) for the
LR input. Zero-fill and each ``--model`` restore it; scores on three regions:

- ``all``: every slice (``mrisr eval``'s rule);
- ``background``: outside the head (the reference above 10 % of its 99th percentile, closed,
  holes filled, dilated by 4 voxels), where the truth is pure noise;
- ``brain``: inside the case's brain mask (``NAME=SCAN,MASK``), if given.

The texture shows as background RMSE and background SSIM: a model that sharpens the LR noise
into structure lands further from the (unpredictable) reference noise than zero-fill, which
keeps it smooth. ``--figure`` shows a crop at the skull edge (``--figure-case``, default the
first; ``--figure-noise``, default the largest), with |error| maps.

    python benchmarks/flat_region.py --case IXI002-T2=IXI002-Guys-0828-T2.nii.gz,BRAINMASK \\
        --model shipped=src/mrisr/weights/edsr-kspace-x2 --model noise-trained=RUN/final \\
        --noise 0 0.02 0.04 --json fr.json --figure fr.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REGIONS = ("all", "background", "brain")


def noisy(data: np.ndarray, f: float, seed: int = 0) -> np.ndarray:
    """``data`` with Rician noise of σ = ``f`` × its 99th percentile (a complex sum's magnitude)."""
    if f <= 0:
        return data.astype(np.float32)
    s = f * float(np.percentile(data, 99))
    rng = np.random.default_rng(seed)
    re = data + s * rng.standard_normal(data.shape)
    im = s * rng.standard_normal(data.shape)
    return np.sqrt(re**2 + im**2).astype(np.float32)


def head_masks(ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(head, background)``: the head (filled, closed) and what lies 4 voxels beyond it."""
    from scipy import ndimage as ndi

    head = ref > 0.1 * np.percentile(ref, 99)
    head = ndi.binary_fill_holes(ndi.binary_closing(head, iterations=3))
    return head, ~ndi.binary_dilation(head, iterations=4)


def central(vol, axis: int, n: int | None, mult: int):
    """The central ``n`` slices of ``vol`` along ``axis``, each cropped centrally to a multiple
    of ``mult`` on both in-plane axes (the affine follows); and the crop's start per axis."""
    start, sl = [0, 0, 0], []
    for a in range(3):
        size = vol.shape[a]
        keep = min(size, n) if a == axis and n else size - size % (mult if a != axis else 1)
        start[a] = (size - keep) // 2
        sl.append(slice(start[a], start[a] + keep))
    aff = vol.affine.copy()
    aff[:3, 3] += aff[:3, :3] @ np.array(start, dtype=float)
    return vol.replace(np.ascontiguousarray(vol.data[tuple(sl)]), aff), tuple(sl)


def scores(pred: np.ndarray, ref: np.ndarray, masks: dict, axis: int) -> dict:
    from mrisr.metrics.scores import evaluate_volume

    dr = float(ref.max())
    out = {}
    for name, m in masks.items():
        v = evaluate_volume(pred, ref, mask=m, slice_axis=axis, data_range=dr)["volume"]
        out[name] = {
            "psnr": round(v["psnr"], 3),
            "ssim": round(v["ssim"], 4),
            "rmse": round(float(np.sqrt(np.mean((pred - ref)[m] ** 2))), 3),
        }
    return out


def run_case(name: str, spec: str, models: dict, a: argparse.Namespace) -> list[dict]:
    from mrisr.checkpoint import load_checkpoint
    from mrisr.degrade import degrade_volume, make_degradation
    from mrisr.infer.upsample import UpscaleOptions, upscale_volume
    from mrisr.io import load_volume
    from mrisr.io.geometry import choose_plane
    from mrisr.metrics.baselines import baseline_volume

    scan, _, mask_path = spec.partition(",")
    vol = load_volume(scan)
    axis = choose_plane(vol.zooms, vol.shape).slice_axis
    vol, sl = central(vol, axis, a.slices, 2 * a.scale)
    brain = None
    if mask_path:
        brain = load_volume(mask_path).data[sl] > 0
    nets = {label: load_checkpoint(ck) for label, ck in models.items()}
    rows = []
    for f in a.noise:
        ref = vol.replace(noisy(vol.data, f, a.seed), vol.affine)
        head, bg = head_masks(ref.data)
        masks = {"all": np.ones(ref.shape, bool), "background": bg}
        if brain is not None:
            masks["brain"] = brain
        lr, _ = degrade_volume(
            ref, [make_degradation("kspace-truncate", scale=a.scale)], axis=axis, seed=0
        )
        outs = {
            "zero-fill": baseline_volume(ref, "zerofill", "kspace-truncate", a.scale, axis).data
        }
        secs = {}
        for label, (net, ck) in nets.items():
            t0 = time.perf_counter()
            res, _ = upscale_volume(
                lr,
                net,
                ck.scale,
                normalisation=ck.normalisation,
                training=ck.training,
                options=UpscaleOptions(axis=axis, progress=False),
            )
            secs[label] = round(time.perf_counter() - t0, 1)
            outs[label] = res.data
        row = {
            "case": name,
            "scan": Path(scan).name,
            "noise": f,
            "shape": list(ref.shape),
            "slice_axis": axis,
            "background_voxels": int(bg.sum()),
            "reference_background_std": round(float(ref.data[bg].std()), 3),
            "seconds": secs,
            "checkpoints": {label: ck.sha256 for label, (_, ck) in nets.items()},
            "scores": {m: scores(o, ref.data, masks, axis) for m, o in outs.items()},
        }
        rows.append(row)
        print(json.dumps({"case": name, "noise": f, "scores": row["scores"]}), flush=True)
        fig_noise = max(a.noise) if a.figure_noise is None else a.figure_noise
        if (
            a.figure is not None
            and f == fig_noise
            and name == (a.figure_case or name)
            and not a._fig
        ):
            a._fig = {
                "ref": ref.data,
                "outs": outs,
                "axis": axis,
                "head": head,
                "case": name,
                "noise": f,
            }
    return rows


def table(rows: list[dict]) -> str:
    labels = list(rows[0]["scores"])
    lines = [
        "| case | noise σ / p99 | method | PSNR all | SSIM all | SSIM background | "
        "RMSE background | SSIM brain |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        for m in labels:
            s = r["scores"][m]
            brain = f"{s['brain']['ssim']:.4f}" if "brain" in s else "–"
            lines.append(
                f"| {r['case']} | {r['noise']:g} | {m} | {s['all']['psnr']:.2f} | "
                f"{s['all']['ssim']:.4f} | {s['background']['ssim']:.4f} | "
                f"{s['background']['rmse']:.2f} | {brain} |"
            )
    return "\n".join(lines)


def figure(store: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = store["axis"]
    ref = np.moveaxis(store["ref"], ax, 0)
    mid = ref.shape[0] // 2
    head = np.moveaxis(store["head"], ax, 0)[mid]
    # a 96 × 96 window on the head's edge: its first row with head voxels, centred in-plane
    rows = np.nonzero(head.any(axis=1))[0]
    r0 = max(0, int(rows[0]) - 40)
    c0 = max(0, head.shape[1] // 2 - 48)
    win = (slice(r0, r0 + 96), slice(c0, c0 + 96))
    r = ref[mid][win]
    vmax = float(np.percentile(ref[mid], 99))
    outs = {m: np.moveaxis(o, ax, 0)[mid][win] for m, o in store["outs"].items()}
    n = 1 + len(outs)
    fig, axs = plt.subplots(2, n, figsize=(2.6 * n, 5.4))
    axs[0, 0].imshow(r, cmap="gray", vmin=0, vmax=0.25 * vmax)
    axs[0, 0].set_title("reference (noisy)", fontsize=9)
    axs[1, 0].axis("off")
    for i, (m, o) in enumerate(outs.items(), start=1):
        axs[0, i].imshow(o, cmap="gray", vmin=0, vmax=0.25 * vmax)
        axs[0, i].set_title(m, fontsize=9)
        axs[1, i].imshow(np.abs(o - r), cmap="magma", vmin=0, vmax=0.1 * vmax)
        axs[1, i].set_title(f"|error|, RMSE {np.sqrt(np.mean((o - r) ** 2)):.1f}", fontsize=9)
    for a_ in axs.ravel():
        a_.set_xticks([])
        a_.set_yticks([])
    fig.suptitle(
        f"{store['case']}, Rician σ = {store['noise']:g} × p99, k-space ×2: skull edge "
        "and background (window 0–25 % of p99)",
        fontsize=10,
    )
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", action="append", default=[], metavar="NAME=SCAN[,MASK]")
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=CKPT")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.02, 0.04])
    ap.add_argument("--scale", type=int, default=2, choices=(2, 4))
    ap.add_argument("--slices", type=int, default=40, help="central slices (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--figure", type=Path)
    ap.add_argument("--figure-case", default=None, help="the case to show (default: the first)")
    ap.add_argument("--figure-noise", type=float, default=None, help="default: the largest")
    a = ap.parse_args()
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if not a.case:
        ap.error("give at least one --case NAME=SCAN[,MASK]")
    from mrisr.weights import shipped_path

    models = dict(m.split("=", 1) for m in a.model) or {
        "shipped": str(shipped_path(f"edsr-kspace-x{a.scale}"))
    }
    a._fig = {}
    rows = []
    for c in a.case:
        name, spec = c.split("=", 1)
        rows += run_case(name, spec, models, a)
    print(table(rows))
    if a.json:
        tmp = a.json.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "args": {
                        "noise": a.noise,
                        "scale": a.scale,
                        "slices": a.slices,
                        "models": models,
                    },
                },
                indent=1,
            )
            + "\n"
        )
        tmp.replace(a.json)
    if a.figure is not None and a._fig:
        figure(a._fig, a.figure)


if __name__ == "__main__":
    main()

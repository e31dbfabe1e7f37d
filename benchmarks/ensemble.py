"""Self-ensemble vs one pass, for every shipped model, on held-out real scans (issue 13).

For each shipped weight and each held-out scan (IXI002 T2 axial and IXI002 T1 sagittal, the
subject no shipped weight was trained on), a 20-slice slab is degraded with the weight's own
degradation, with an even and an odd LR matrix, and super-resolved with one pass and with the
×8 ensemble (``UpscaleOptions(ensemble=True)``). Both are scored against the real reference
on the model's output grid (for an odd k-space matrix that grid is ``o`` HR pixels off the
reference's, so the reference is read ``o`` pixels on; 8 border pixels shaved), next to
zero-filled interpolation of the same LR. Prints a Markdown table, the mean and the worst
ensemble − single difference, and writes JSON with ``--json``.

    python benchmarks/ensemble.py [--shared ../shared/data] [--slices 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mrisr.checkpoint import load_checkpoint
from mrisr.degrade import degrade_volume, make_degradation
from mrisr.degrade.kspace import zerofill_upsample
from mrisr.infer.upsample import UpscaleOptions, upscale_volume
from mrisr.io import load_volume
from mrisr.io.geometry import choose_plane
from mrisr.metrics import psnr, ssim
from mrisr.weights import SHIPPED, shipped_path


def slab(vol, n_slices: int, hr_size: int | None):
    """The central ``n_slices`` along the slice axis, in-plane cropped to ``hr_size``."""
    k = choose_plane(vol.zooms, vol.shape).slice_axis
    sl = [slice(None)] * 3
    c = vol.shape[k] // 2
    sl[k] = slice(c - n_slices // 2, c - n_slices // 2 + n_slices)
    start = np.zeros(3)
    start[k] = c - n_slices // 2
    for a in range(3):
        if a != k and hr_size is not None:
            s0 = (vol.shape[a] - hr_size) // 2
            sl[a] = slice(s0, s0 + hr_size)
            start[a] = s0
    t = np.eye(4)
    t[:3, 3] = start
    return vol.replace(np.ascontiguousarray(vol.data[tuple(sl)]), vol.affine @ t), k


def scores(sr: np.ndarray, ref: np.ndarray, k: int, d: int) -> tuple[float, float]:
    """Mean slice PSNR / SSIM of output pixel i against reference pixel i + d in-plane."""
    a, b = np.moveaxis(sr, k, 0), np.moveaxis(ref, k, 0)
    h, w = b.shape[1:]
    a = a[:, : h - d, : w - d][:, 8:-8, 8:-8]
    b = b[:, d:, d:][:, 8:-8, 8:-8]
    keep = b.reshape(len(b), -1).max(1) > 0
    rng = float(ref.max())
    return (
        float(psnr(a[keep], b[keep], data_range=rng).mean()),
        float(ssim(a[keep], b[keep], data_range=rng).mean()),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path(__file__).parents[2] / "shared" / "data")
    ap.add_argument("--slices", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(2)
    scans = {
        "IXI002 T2": args.shared / "ixi002" / "IXI002-Guys-0828-T2.nii.gz",
        "IXI002 T1": args.shared / "ixi002" / "IXI002-Guys-0828-T1.nii.gz",
    }
    rows = []
    for name, w in SHIPPED.items():
        net, ckpt = load_checkpoint(shipped_path(name))
        o_model = float(ckpt.training["lr_grid_offset"])
        for label, path in scans.items():
            full = load_volume(path)
            for parity, size in (("even", 256 - 2 * w.scale), ("odd", 256 - 3 * w.scale)):
                hr, k = slab(full, args.slices, size)
                lr, side = degrade_volume(
                    hr, make_degradation(w.degradation, scale=w.scale), axis=k, seed=0
                )
                a0 = side["in_plane_axes"][0]
                o_ref = side["degradation"][0]["grid"][f"axis{a0}"]["offset_voxels"]
                d = int(round(o_ref - o_model))
                row = {"weights": name, "scan": label, "lr": parity, "lr_shape": lr.shape, "d": d}
                for ens in (False, True):
                    t0 = time.perf_counter()
                    opts = UpscaleOptions(ensemble=ens, progress=False, device="cpu")
                    sr, _ = upscale_volume(
                        lr, net, ckpt.scale, ckpt.normalisation, ckpt.training, opts
                    )
                    key = "ensemble" if ens else "single"
                    row[key] = scores(sr.data, hr.data, k, d)
                    row[key + "_s"] = round(time.perf_counter() - t0, 1)
                # zero-fill of the same LR on the same (model's) grid
                order = (k, *side["in_plane_axes"])
                x = torch.from_numpy(np.ascontiguousarray(np.transpose(lr.data, order)))
                zf = zerofill_upsample(x, w.scale, offsets=(o_model, o_model)).numpy()
                row["zerofill"] = scores(np.transpose(zf, np.argsort(order)), hr.data, k, d)
                rows.append(row)
                print(
                    f"{name:16s} {label} {parity:4s} d={d} single {row['single'][0]:.2f} "
                    f"ensemble {row['ensemble'][0]:.2f} zero-fill {row['zerofill'][0]:.2f}",
                    flush=True,
                )
    print("\n| weights | scan | LR matrix | single PSNR / SSIM | ensemble | zero-fill | "
          "ensemble − single |")  # fmt: skip
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    diffs = []
    for r in rows:
        dd = r["ensemble"][0] - r["single"][0]
        diffs.append(dd)
        print(
            f"| {r['weights']} | {r['scan']} | {r['lr']} {tuple(r['lr_shape'])} | "
            f"{r['single'][0]:.2f} / {r['single'][1]:.4f} | "
            f"{r['ensemble'][0]:.2f} / {r['ensemble'][1]:.4f} | "
            f"{r['zerofill'][0]:.2f} / {r['zerofill'][1]:.4f} | {dd:+.2f} dB |"
        )
    print(f"\nensemble − single: mean {np.mean(diffs):+.3f} dB, worst {np.min(diffs):+.3f} dB")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=list) + "\n")


if __name__ == "__main__":
    main()

"""Per-scan training levers of the through-plane path on one held-out scan (issue 16).

``benchmarks/through_plane.py`` scores every method at one per-scan budget; this script asks
what the per-scan step would gain from other settings, on one case and one protocol: each
``--variant`` is a JSON object of :class:`mrisr.infer.through_plane.ThroughPlaneOptions`
fields (``steps``, ``lr``, ``batch``, ``patch``, ``patience``, ...) plus a ``name``, run from
the same prior on the same simulated thick slices. ``--flips`` adds test-time flips of the
prior alone (each plane's images flipped along the slice direction and/or the in-plane axis,
restored and flipped back, then averaged). Scores as in ``through_plane.py``: 3-D PSNR and
mean SSIM over the foreground of the 112 × 112 × 120 box, gain over the cubic B-spline.

    python benchmarks/through_plane_levers.py --scan ../shared/data/flair/FLAIR.nii.gz \\
        --prior src/mrisr/weights/throughplane-prior --k 4 --flips \\
        --variant '{"name": "600 steps", "steps": 600, "patience": 10000}' --json levers.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import through_plane as tp  # noqa: E402  (the benchmark next to this file)


def simulate(scan: Path, k: int, profile: str, size=(112, 112, 120)):
    """``(hr box, thick-slice volume, foreground mask)`` as ``through_plane.py`` makes them."""
    from mrisr.degrade import degrade_volume, make_degradation
    from mrisr.io import load_volume

    hr = tp.box(load_volume(scan), size)
    d = float(np.mean(hr.zooms[:2]))
    cols = hr.affine[:3, :3] / np.linalg.norm(hr.affine[:3, :3], axis=0) * d
    hr = hr.replace(hr.data, np.vstack([np.hstack([cols, hr.affine[:3, 3:]]), [0, 0, 0, 1]]))
    thick = make_degradation("thick-slice", thickness=k * d, spacing=k * d, profile=profile)
    lr, _ = degrade_volume(hr, [thick], axis=2, seed=0)
    return hr, lr, hr.data > 0.1 * np.percentile(hr.data, 99)


def flips(prior: str, lr, ref: np.ndarray, mask: np.ndarray, k: int) -> dict:
    """The prior alone, plain and with test-time flips (rows = slice direction, cols)."""
    import torch

    from mrisr.checkpoint import load_checkpoint
    from mrisr.degrade.through_plane import output_grid, spline_to_grid
    from mrisr.infer.through_plane import _refine

    x = np.moveaxis(lr.data, 2, 0).astype(np.float32)
    s = float(np.percentile(x, 99.5))
    x = x / s
    n, pos = output_grid(x.shape[0], float(k))
    base = spline_to_grid(x, pos, n, 0).astype(np.float32)
    net = load_checkpoint(prior)[0].eval()
    dev = torch.device("cpu")
    est = {}
    for fr in (False, True):
        for fc in (False, True):

            def f(a, fr=fr, fc=fc):
                a = a[:, ::-1] if fr else a
                return np.ascontiguousarray(a[:, :, ::-1] if fc else a)

            pa = np.moveaxis(
                f(_refine(net, f(np.moveaxis(base, 2, 0)), dev, lambda _n: None)), 0, 2
            )
            pb = np.moveaxis(
                f(_refine(net, f(np.moveaxis(base, 1, 0)), dev, lambda _n: None)), 0, 1
            )
            est[(fr, fc)] = 0.5 * (pa + pb)

    def sc(o):
        return tp.score(np.moveaxis(o * s, 0, 2).astype(np.float32), ref, mask)

    return {
        "plain": sc(est[(False, False)]),
        "flip in-plane": sc(0.5 * (est[(False, False)] + est[(False, True)])),
        "flip slice direction": sc(0.5 * (est[(False, False)] + est[(True, False)])),
        "all four": sc(0.25 * sum(est.values())),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scan", type=Path, required=True)
    ap.add_argument("--prior", required=True, help="a prior that never saw --scan")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--profile", default="rect", choices=("rect", "gaussian"))
    ap.add_argument("--variant", action="append", default=[], help="JSON: name + options")
    ap.add_argument("--flips", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    import torch

    from mrisr.checkpoint import load_checkpoint
    from mrisr.degrade.through_plane import output_grid, spline_to_grid
    from mrisr.infer.through_plane import ThroughPlaneOptions, restore

    torch.set_num_threads(a.threads)
    seen = load_checkpoint(a.prior)[1].training.get("data", {}).get("train", [])
    if a.scan.name in seen:
        raise SystemExit(f"{a.prior} was trained on {a.scan.name}: not a held-out case")
    hr, lr, mask = simulate(a.scan, a.k, a.profile)
    n, pos = output_grid(lr.shape[2], float(a.k))
    bs = tp.score(spline_to_grid(lr.data.astype(np.float64), pos, n, 2).astype(np.float32),
                  hr.data, mask)  # fmt: skip
    out: dict = {"scan": a.scan.name, "k": a.k, "profile": a.profile, "bspline": bs, "runs": []}
    print(f"bspline {bs}", flush=True)
    if a.flips:
        out["flips"] = {m: {**s, "gain": round(s["psnr"] - bs["psnr"], 3)}
                        for m, s in flips(a.prior, lr, hr.data, mask, a.k).items()}  # fmt: skip
        print(json.dumps(out["flips"]), flush=True)
    for spec in a.variant:
        v = json.loads(spec)
        name = v.pop("name")
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            opts = ThroughPlaneOptions(axis=2, progress=False, profile=a.profile,
                                       thickness_mm=a.k * float(hr.zooms[2]),
                                       run_dir=Path(tmp) / "run" if v.get("steps", 300) else None,
                                       **v)  # fmt: skip
            res, rec = restore(lr, opts, a.prior)
        s = tp.score(res.data, hr.data, mask)
        row = {"name": name, **v, **s, "gain": round(s["psnr"] - bs["psnr"], 3),
               "seconds": round(time.perf_counter() - t0, 1),
               "steps_done": rec["through_plane"]["training"].get("steps")}  # fmt: skip
        out["runs"].append(row)
        print(json.dumps(row), flush=True)
        if a.json:  # after every run: a long sweep keeps what it has
            a.json.write_text(json.dumps(out, indent=1) + "\n")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

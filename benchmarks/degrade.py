"""Time mrisr's degradations against plain NumPy/SciPy on a full IXI T2 volume, and check that
both compute the same thing.

    python benchmarks/degrade.py [--scan PATH] [--repeats N] [--threads T] [--json OUT]

Every in-plane degradation is applied to all axial slices (in-plane axes 0, 1; slice axis 2) as
one [K, H, W] batch; thick-slice acts through-plane along axis 2. mrisr's torch functions and the
reference implementations in ``numpy_reference.py`` run in the same process on the same float32
data. Each timing is one warm-up call then ``N`` timed calls; the table gives the median and the
min–max, the speed-up (NumPy median / mrisr median) and the agreement of the two results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy
import torch

import numpy_reference as ref
from mrisr.degrade import (
    Bicubic,
    ThickSlice,
    bicubic_downsample,
    degrade_volume,
    gaussian_downsample,
    kspace_truncate,
    kspace_zerofill,
    rician_noise,
)
from mrisr.degrade.noise import foreground_mean
from mrisr.io import load_volume

REPO = Path(__file__).resolve().parents[1]
SCAN = Path("ixi002") / "IXI002-Guys-0828-T2.nii.gz"
TOL = 1e-5  # deterministic methods: max |Δ| / max |mrisr| must not exceed this
SIGMA_PX = 1.5
SNR = 20.0
THICKNESS_MM, SPACING_MM = 5.0, 3.0


def default_scan() -> Path:
    shared = os.environ.get("MRISR_SHARED_DATA")
    return (Path(shared) if shared else REPO.parent / "shared" / "data") / SCAN


def cpu_model() -> str:
    from mrisr.train.monitor import hardware  # one place reads /proc/cpuinfo

    return str(hardware()["cpu"])


def timed(fn: Callable[[], object], repeats: int) -> tuple[object, list[float]]:
    """One warm-up call (whose result is returned), then ``repeats`` timed calls (seconds)."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return out, times


def as_np(x: object) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def max_rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        raise AssertionError(f"shape mismatch: mrisr {a.shape} vs NumPy {b.shape}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return float(np.abs(a64 - b64).max() / np.abs(a64).max())


def rician_stats(clean: np.ndarray, a: np.ndarray, b: np.ndarray, sigma: float) -> dict:
    """Statistics that must match for two independent Rician draws of the same σ."""
    bg = clean == 0
    fg = clean > 0.1 * np.percentile(clean, 99)
    stats = {
        "mean_rel_diff": float(abs(a.mean(dtype=np.float64) / b.mean(dtype=np.float64) - 1)),
        "background_fraction": float(bg.mean()),
        # background: Rayleigh, mean σ·sqrt(π/2)
        "bg_mean_over_expected": [
            float(v[bg].mean(dtype=np.float64) / (sigma * np.sqrt(np.pi / 2))) for v in (a, b)
        ],
        # bright foreground: ≈ Gaussian, std of (noisy − clean) ≈ σ
        "fg_noise_std_over_sigma": [
            float((v[fg] - clean[fg]).std(dtype=np.float64) / sigma) for v in (a, b)
        ],
    }
    stats["ok"] = stats["mean_rel_diff"] < 0.005
    return stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scan", type=Path, default=default_scan(), help="NIfTI volume (IXI002 T2)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats after one warm-up")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    p.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    vol = load_volume(args.scan)
    data = vol.data  # (256, 256, 130) float32, slice axis 2
    zooms = vol.zooms
    stack = np.ascontiguousarray(data.transpose(2, 0, 1))  # [K, H, W]: NumPy input
    x = torch.from_numpy(stack)  # same memory, mrisr in-plane input
    x_tp = torch.from_numpy(np.ascontiguousarray(data.transpose(0, 2, 1)))  # [A, Z, B]
    sigma = foreground_mean(x) / SNR
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    thick = ThickSlice(thickness=THICKNESS_MM, spacing=SPACING_MM)

    def dv(step):
        return lambda: degrade_volume(vol, step, axis=2, seed=0)[0].data.transpose(2, 0, 1)

    # name, mrisr call, NumPy call (None: reuse the row named), kind, mrisr output → [K, h, w]
    cases: list[tuple] = [
        ("bicubic ×2", lambda: bicubic_downsample(x, 2), lambda: ref.imresize_stack(stack, 2)),
        ("bicubic ×4", lambda: bicubic_downsample(x, 4), lambda: ref.imresize_stack(stack, 4)),
        (
            "gaussian ×2 (σ=1.5 px)",
            lambda: gaussian_downsample(x, 2, (SIGMA_PX, SIGMA_PX)),
            lambda: ref.gaussian_stack(stack, 2, SIGMA_PX),
        ),
        (
            "kspace-truncate ×2",
            lambda: kspace_truncate(x, 2),
            lambda: ref.kspace_truncate_stack(stack, 2),
        ),
        (
            "kspace-truncate ×4",
            lambda: kspace_truncate(x, 4),
            lambda: ref.kspace_truncate_stack(stack, 4),
        ),
        (
            "kspace-zerofill ×2",
            lambda: kspace_zerofill(x, 2),
            lambda: ref.kspace_zerofill_stack(stack, 2),
        ),
        (
            f"rician (SNR {SNR:g})",
            lambda: rician_noise(x, sigma, gen),
            lambda: ref.rician_volume(stack, sigma, rng),
        ),
        (
            f"thick-slice {THICKNESS_MM:g}/{SPACING_MM:g} mm",
            lambda: thick(x_tp, spacing=(zooms[2], zooms[1])).image.permute(1, 0, 2),
            lambda: ref.thick_slice_stack(stack, zooms[2], THICKNESS_MM, SPACING_MM),
        ),
        ("bicubic ×2, degrade_volume", dv(Bicubic(scale=2)), "bicubic ×2"),
        (
            f"thick-slice {THICKNESS_MM:g}/{SPACING_MM:g} mm, degrade_volume",
            dv(thick),
            f"thick-slice {THICKNESS_MM:g}/{SPACING_MM:g} mm",
        ),
    ]

    results: dict[str, dict] = {}
    for name, fm, fn in cases:
        print(f"  timing {name} ...", file=sys.stderr, flush=True)
        m_out, m_t = timed(fm, args.repeats)
        if isinstance(fn, str):  # volume-layer row: same NumPy reference as the low-level row
            n_out, n_t = results[fn]["_numpy_out"], results[fn]["numpy_s"]
        else:
            n_out, n_t = timed(fn, args.repeats)
        m_np, n_np = as_np(m_out), as_np(n_out)
        row = {"mrisr_s": m_t, "numpy_s": n_t, "shape": list(m_np.shape), "_numpy_out": n_out}
        if name.startswith("rician"):
            row["rician"] = rician_stats(stack, m_np, n_np, sigma)
            row["agree"] = row["rician"]["ok"]
        else:
            row["max_rel_diff"] = max_rel_diff(m_np, n_np)
            row["agree"] = row["max_rel_diff"] <= TOL
        results[name] = row

    # Informative only: the usual even-factor shortcut (filter, then linear interpolation)
    approx = ref.gaussian_stack_interp(stack, 2, SIGMA_PX)
    approx_diff = max_rel_diff(as_np(gaussian_downsample(x, 2, (SIGMA_PX, SIGMA_PX))), approx)
    sigma_np = ref.signal_level(stack) / SNR

    env = {
        "date": dt.date.today().isoformat(),
        "scan": str(args.scan),
        "shape": list(data.shape),
        "zooms_mm": [round(z, 4) for z in zooms],
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "numpy_threads": 1,  # pocketfft, ndimage and the element-wise ops used are single-threaded
        "repeats": args.repeats,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "rician_sigma_mrisr": sigma,
        "rician_sigma_numpy_full_percentile": sigma_np,
        "gaussian_x2_filter_then_linear_interp_max_rel_diff": approx_diff,
    }
    print_table(env, results)
    if args.json:
        raw = {
            k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")}
            for k, v in results.items()
        }
        args.json.write_text(json.dumps({"environment": env, "results": raw}, indent=2) + "\n")
    return 0 if all(r["agree"] for r in results.values()) else 1


def fmt_ms(ts: list[float]) -> str:
    a = np.asarray(ts) * 1e3
    return f"{np.median(a):.1f} ({a.min():.1f}–{a.max():.1f})"


def print_table(env: dict, results: dict) -> None:
    print(
        f"\nIXI002 T2 {'×'.join(map(str, env['shape']))}, {env['date']}; {env['cpu']}, "
        f"{env['cores']} cores, torch {env['torch']} ({env['torch_threads']} threads), "
        f"NumPy {env['numpy']}, SciPy {env['scipy']}, Python {env['python']}; "
        f"median (min–max) of {env['repeats']} runs after 1 warm-up, ms\n"
    )
    print("| degradation | output | mrisr (torch) | NumPy/SciPy | speed-up | agreement |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for name, r in results.items():
        speed = np.median(r["numpy_s"]) / np.median(r["mrisr_s"])
        if "rician" in r:
            st = r["rician"]
            agree = f"mean Δ {100 * st['mean_rel_diff']:.3f} % (stats)"
        else:
            agree = f"{r['max_rel_diff']:.1e}"
        agree += "" if r["agree"] else " **DIFFERS**"
        shape = "×".join(map(str, r["shape"]))
        print(
            f"| {name} | {shape} | {fmt_ms(r['mrisr_s'])} | {fmt_ms(r['numpy_s'])} | "
            f"{speed:.1f}× | {agree} |"
        )
    print(
        "\nagreement: max |mrisr − NumPy| / max |mrisr| (tolerance 1e-5); Rician: relative "
        "difference of the means of two independent draws (tolerance 0.5 %)."
    )
    for name, r in results.items():
        if "rician" in r:
            st = r["rician"]
            print(
                f"{name}: σ = {env['rician_sigma_mrisr']:.4f} (NumPy full-percentile estimate "
                f"{env['rician_sigma_numpy_full_percentile']:.4f}); background mean / σ√(π/2) "
                "= {:.4f} mrisr, {:.4f} NumPy; foreground noise std / σ = {:.4f} mrisr, "
                "{:.4f} NumPy".format(*st["bg_mean_over_expected"], *st["fg_noise_std_over_sigma"])
            )
    print(
        "gaussian ×2 via gaussian_filter + linear interpolation at block centres (not timed): "
        f"max rel diff {env['gaussian_x2_filter_then_linear_interp_max_rel_diff']:.1e} "
        "(a wider blur, not the same operator)"
    )


if __name__ == "__main__":
    sys.exit(main())

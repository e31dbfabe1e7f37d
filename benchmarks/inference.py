"""Inference speed of the model zoo on CPU: throughput, achieved GFLOP/s against a convolution
measured in the same run, peak memory, and the cost of tiling and of the ×8 self-ensemble.

    python benchmarks/inference.py [--models M ...] [--scales 2 4] [--repeats N] [--batch B]
                                   [--threads T] [--no-memory] [--no-profile] [--json OUT]

Every model runs in eval mode under ``torch.inference_mode()`` on random LR slices whose HR
output is 256×256 (LR 128×128 at ×2, 64×64 at ×4). Each timing is one warm-up call per variant,
then rounds that time every variant once, at least ``N`` rounds and ``--min-time`` seconds;
tables give medians. The reference (conv 3×3 64→64 on [1, 64, 128, 128]) is a variant in every
round of every model, so model and reference see the same machine load. FLOPs are counted
once per model: 2 × the multiply-adds of every Conv2d and Linear from their shapes (forward
hooks), plus the matrix products outside those layers (SERAN's attention ``bmm``; the bicubic
``imresize`` products of SRCNN/VDSR), taken from ``torch.utils.flop_counter``. Element-wise ops
count zero.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from mrisr.infer import SelfEnsemble, tiled_forward
from mrisr.models import build_model, count_parameters

MODELS = ("edsr-baseline", "edsr-40", "seran", "w2amsn-s", "w2amsn", "srcnn", "vdsr")
HR = 256
REF_SHAPE = (1, 64, 128, 128)  # the dominant EDSR layer at ×2: conv 3×3 64→64 on 128×128
REF_FLOPS = 2 * 64 * 64 * 9 * 128 * 128
FORMATS = {"NCHW": torch.contiguous_format, "channels_last": torch.channels_last}
CONV_OPS = ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward", "aten::thnn_conv2d")
MEM_STEPS = ("model", "forward", "forward2")
# (tile, margin, blend). 91: the 3 × 3 grid that tile=128 needs on 256 px, cores shrunk to just
# cover it with 8 px overlaps; margin 36 covers edsr-baseline's receptive radius (35 LR px + 1 HR).
TILINGS = ((64, 16, 8), (128, 16, 8), (91, 16, 8), (64, 36, 8))


def cpu_model() -> str:
    from mrisr.train.monitor import hardware  # one place reads /proc/cpuinfo

    return str(hardware()["cpu"])


def med(ts: list[float]) -> float:
    return float(np.median(ts))


def timed(fns: dict[str, Callable[[], object]], repeats: int, min_time: float) -> dict:
    """One warm-up call of each variant, then rounds of the variants in alternation until each
    has ``repeats`` timings and ``min_time`` seconds have passed (at most 50 rounds)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    t_start = time.perf_counter()
    while True:
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
        n = len(next(iter(times.values())))
        if n >= 50 or (n >= repeats and time.perf_counter() - t_start >= min_time):
            return times


def count_flops(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """FLOPs of one forward: Conv2d/Linear from their shapes (hooks) + other matrix products."""
    counts = {"conv": 0, "linear": 0}

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            counts["conv"] += 2 * out.numel() * k
        else:
            counts["linear"] += 2 * out.numel() * m.in_features

    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    hooks = [m.register_forward_hook(hook) for m in layers]
    fc = FlopCounterMode(display=False)
    try:
        with torch.inference_mode(), fc:
            model(x)
    finally:
        for h in hooks:
            h.remove()
    by_op = {str(k): int(v) for k, v in fc.get_flop_counts()["Global"].items()}
    if by_op.get("aten.convolution", 0) != counts["conv"]:
        raise AssertionError(f"conv FLOPs: hooks {counts['conv']} vs flop_counter {by_op}")
    # Linear runs as addmm/mm/bmm; what flop_counter sees beyond conv + Linear is the rest.
    counts["other_matmul"] = fc.get_total_flops() - counts["conv"] - counts["linear"]
    counts["total"] = counts["conv"] + counts["linear"] + counts["other_matmul"]
    return counts


def op_shares(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Share of self CPU time per op over one (warm) forward, convolutions merged as 'conv'."""
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x)
    shares: dict[str, float] = {}
    for e in prof.key_averages():
        key = "conv" if e.key in CONV_OPS else e.key.removeprefix("aten::")
        shares[key] = shares.get(key, 0.0) + e.self_cpu_time_total
    total = sum(shares.values()) or 1.0
    return dict(sorted(((k, v / total) for k, v in shares.items()), key=lambda kv: -kv[1]))


def lr_batch(batch: int, scale: int, fmt: torch.memory_format, size: int | None = None):
    n = size or HR // scale
    gen = torch.Generator().manual_seed(0)
    return torch.rand(batch, 1, n, n, generator=gen).contiguous(memory_format=fmt)


def prepared(name: str, scale: int, fmt: torch.memory_format) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, scale).eval().to(memory_format=fmt)


def reference_fns() -> dict[str, Callable[[], object]]:
    """The reference conv in both memory formats (same weights), as timing variants."""
    torch.manual_seed(0)
    conv, x = nn.Conv2d(64, 64, 3, padding=1).eval(), torch.rand(*REF_SHAPE)
    return {
        f"ref {f}": partial(copy.deepcopy(conv).to(memory_format=m), x.contiguous(memory_format=m))
        for f, m in FORMATS.items()
    }


def _rss_kib() -> tuple[int, int]:
    """(current RSS, peak RSS since the last reset) in KiB, from /proc/self/status."""
    status = Path("/proc/self/status").read_text()
    get = lambda key: int(status.split(key + ":", 1)[1].split()[0])  # noqa: E731
    return get("VmRSS"), get("VmHWM")


def memory_child(name: str, scale: int, batch: int) -> None:
    """Run in a fresh process: peak RSS increase of building the model and of one forward."""
    x = lr_batch(batch, scale, torch.channels_last)
    res = {}
    for step in MEM_STEPS:
        rss0 = _rss_kib()[0]
        Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM to VmRSS
        if step == "model":
            model = prepared(name, scale, torch.channels_last)
        else:
            with torch.inference_mode():
                model(x)
        rss1, peak = _rss_kib()
        res[f"{step}_peak_kib"], res[f"{step}_kept_kib"] = peak - rss0, rss1 - rss0
    print(json.dumps(res))


def measure_memory(name: str, scale: int, batch: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--memory-child", name, str(scale)]
    cmd += ["--batch", str(batch), "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_model(name: str, scale: int, args, ref_fns: dict) -> dict:
    models = {f: prepared(name, scale, fmt) for f, fmt in FORMATS.items()}
    xs = {f: lr_batch(args.batch, scale, fmt) for f, fmt in FORMATS.items()}
    flops = count_flops(models["NCHW"], xs["NCHW"][:1])
    fns = {f: partial(models[f], xs[f]) for f in FORMATS} | ref_fns  # ref timed in each round
    with torch.inference_mode():
        times = timed(fns, args.repeats, args.min_time)
    ref_times = {f: times.pop(f"ref {f}") for f in FORMATS}
    row = dict(model=name, scale=scale, lr=HR // scale, batch=args.batch, flops=flops)
    row.update(params=count_parameters(models["NCHW"]), times_s=times, ref_times_s=ref_times)
    if args.profile:
        row["op_shares"] = op_shares(models["channels_last"], xs["channels_last"])
    if args.memory:
        row["memory"] = measure_memory(name, scale, args.batch, args.threads)
    return row


def bench_tiling(args) -> dict:
    model = prepared("edsr-baseline", 2, torch.channels_last)
    x = lr_batch(1, 2, torch.channels_last, size=256)
    fns = {"untiled": lambda: model(x)}
    for t, m, b in TILINGS:
        fns[f"tile={t}, margin={m}, blend={b}"] = partial(tiled_forward, model, x, 2, t, m, b)
    with torch.inference_mode():
        outs = {k: fn() for k, fn in fns.items()}
        times = timed(fns, args.repeats, args.min_time)
    ref, top = outs["untiled"], float(outs["untiled"].abs().max())
    diff = {k: float((o - ref).abs().max()) for k, o in outs.items()}
    return {k: dict(times_s=times[k], max_abs_diff=diff[k], output_max_abs=top) for k in fns}


def bench_ensemble(args) -> dict:
    res = {}
    for name in ("edsr-baseline", "seran"):
        model, x = (
            prepared(name, 2, torch.channels_last),
            lr_batch(args.batch, 2, torch.channels_last),
        )
        fns = {"single": partial(model, x), "ensemble": partial(SelfEnsemble(model), x)}
        with torch.inference_mode():
            res[name] = timed(fns, args.repeats, args.min_time)
    return res


def md_row(*cells: object) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def md_head(cols: list[str], align: str) -> str:
    return md_row(*cols) + "\n" + md_row(*("---:" if a == "r" else "---" for a in align))


def print_tables(env: dict, rows: list[dict], tiling: dict | None, ens: dict | None) -> None:
    refs, load = env["reference_conv_gflops"], env["loadavg_1min_start_end"]
    print(
        f"\n{env['date']}; {env['cpu']}, {env['cores']} cores, torch {env['torch']} "
        f"({env['torch_threads']} threads), Python {env['python']}; batch {env['batch']}, "
        f"median of ≥ {env['repeats']} runs (≥ {env['min_time']:g} s) after 1 warm-up; "
        f"1-min load average at start / end: {load[0]:.1f} / {load[1]:.1f}\n"
    )
    ref_s = [
        f"{f} {r['median']:.0f} GFLOP/s ({r['min']:.0f}–{r['max']:.0f}, {r['n']} runs)"
        for f, r in refs.items()
    ]
    print(
        "Reference conv 3×3 64→64 on [1, 64, 128, 128], timed in every round of every model "
        f"({REF_FLOPS / 1e9:.3f} GFLOP): " + ", ".join(ref_s) + "\n"
    )
    cols = "model|×s|LR|params|GFLOP/slice|NCHW slices/s|channels_last slices/s|faster|GFLOP/s|"
    cols += "ref conv GFLOP/s|÷ ref|conv share|peak RSS Δ: build / 1st / 2nd forward"
    print(md_head(cols.split("|"), "lllrrrrlrrrrr"))
    loaded = False
    for r in rows:
        sps = {f: r["batch"] / med(r["times_s"][f]) for f in FORMATS}
        best = max(sps, key=sps.get)
        gflops = r["flops"]["total"] / 1e9 * sps[best]
        ref_rate = REF_FLOPS / 1e9 / med(r["ref_times_s"][best])
        flag = " †" if ref_rate < 0.8 * refs[best]["median"] else ""
        loaded |= bool(flag)
        share = f"{100 * r['op_shares']['conv']:.1f} %" if "op_shares" in r else "–"
        mem = r.get("memory")
        mem_s = " / ".join(f"{mem[f'{k}_peak_kib'] / 1024:.0f}" for k in MEM_STEPS) if mem else ""
        faster = f"{best} ({max(sps.values()) / min(sps.values()):.2f}×)"
        cells = [r["model"], f"×{r['scale']}", f"{r['lr']}²", f"{r['params'] / 1e6:.2f} M"]
        cells += (
            [f"{r['flops']['total'] / 1e9:.1f}"] + [f"{sps[f]:.2f}" for f in FORMATS] + [faster]
        )
        cells += [f"{gflops:.0f}", f"{ref_rate:.0f}", f"{100 * gflops / ref_rate:.0f} %{flag}"]
        print(md_row(*cells, share, f"{mem_s} MiB" if mem else "–"))
    if loaded:
        print(
            "\n† the reference conv ran < 80 % of its run median in these rounds: the machine "
            "was busy (other processes), so this row is unreliable; rerun it."
        )
    extra = [f"{r['model']} ×{r['scale']} {r['flops']['other_matmul'] / 1e6:.1f}" for r in rows]
    extra = [e for e, r in zip(extra, rows, strict=True) if r["flops"]["other_matmul"]]
    print("\nMFLOP of matrix products outside Conv2d/Linear (included): " + ", ".join(extra))
    print("\nTime shares of one channels_last forward (torch.profiler, self CPU time):")
    for r in (r for r in rows if "op_shares" in r):
        top = list(r["op_shares"].items())[:5]
        print(f"- {r['model']} ×{r['scale']}: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in top))
    if tiling:
        base = med(tiling["untiled"]["times_s"])
        print("\nTiling, edsr-baseline ×2 on a 256×256 LR slice (channels_last):\n")
        print(
            md_head(
                ["variant", "ms", "÷ untiled", "max abs diff vs untiled (output max abs)"], "lrrl"
            )
        )
        for k, t in tiling.items():
            tm = med(t["times_s"])
            diff = f"{t['max_abs_diff']:.1e} ({t['output_max_abs']:.2f})"
            print(md_row(k, f"{1e3 * tm:.0f}", f"{tm / base:.2f}×", diff))
    if ens:
        print("\nSelf-ensemble ×8 at ×2 (LR 128×128, channels_last):\n")
        print(
            md_head(["model", "single pass ms", "SelfEnsemble ms", "ratio (target ≤ 8.5×)"], "lrrr")
        )
        for k, t in ens.items():
            s, e = med(t["single"]), med(t["ensemble"])
            print(md_row(k, f"{1e3 * s:.0f}", f"{1e3 * e:.0f}", f"{e / s:.2f}×"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), help="registry names")
    p.add_argument("--scales", nargs="+", type=int, default=[2, 4])
    p.add_argument("--repeats", type=int, default=3, help="timed runs (at least) after warm-up")
    p.add_argument("--min-time", type=float, default=2.0, help="seconds per timed series, at least")
    p.add_argument("--batch", type=int, default=1, help="slices per forward")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip peak RSS")
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip op shares")
    p.add_argument("--no-tiling", dest="tiling", action="store_false")
    p.add_argument("--no-ensemble", dest="ensemble", action="store_false")
    p.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    p.add_argument("--memory-child", nargs=2, metavar=("MODEL", "SCALE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]), args.batch)
        return 0

    t_start = time.perf_counter()
    load = [os.getloadavg()[0]]
    ref_fns = reference_fns()
    rows = []
    for name in args.models:
        for scale in args.scales:
            print(f"  {name} ×{scale} ...", file=sys.stderr, flush=True)
            rows.append(bench_model(name, scale, args, ref_fns))
    ref = {f: [t for r in rows for t in r["ref_times_s"][f]] for f in FORMATS}
    print("  tiling / ensemble ...", file=sys.stderr, flush=True)
    tiling = bench_tiling(args) if args.tiling else None
    ens = bench_ensemble(args) if args.ensemble else None
    rate = lambda t: REF_FLOPS / t / 1e9  # noqa: E731
    env = dict(date=dt.date.today().isoformat(), cpu=cpu_model(), cores=os.cpu_count())
    env.update(torch_threads=torch.get_num_threads(), torch=torch.__version__, hr_size=HR)
    env.update(python=platform.python_version(), batch=args.batch, repeats=args.repeats)
    env.update(min_time=args.min_time, loadavg_1min_start_end=load + [os.getloadavg()[0]])
    env |= {
        "reference_conv_gflops": {
            f: dict(median=rate(med(ts)), min=rate(max(ts)), max=rate(min(ts)), n=len(ts))
            for f, ts in ref.items()
        },
        "memory_method": "fresh subprocess per model, channels_last: VmHWM reset via "
        "/proc/self/clear_refs, then peak VmRSS minus VmRSS before build_model / the first "
        "forward / a second forward",
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    print_tables(env, rows, tiling, ens)
    print(f"\ntotal wall time {env['wall_s']:.0f} s")
    if args.json:
        out = dict(environment=env, reference_conv_s=ref, models=rows, tiling=tiling, ensemble=ens)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

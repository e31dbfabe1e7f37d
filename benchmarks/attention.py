"""FA-GAN self-attention on full slices: peak memory and time, naive N×N map vs query chunks.

Each case runs in a fresh subprocess, which reports its peak resident memory (``ru_maxrss``)
above the level it had just before the call (inputs built, imports done), and the median of
``--repeats`` timed calls after one warm-up. Cases:

- ``attention``: ``softmax(q kᵀ) v`` for one image with d = 8 (keys/queries, C/8) and e = 64
  (values) at N = 4,096 / 16,384 / 65,536 positions (64², 128², 256² slices): ``naive``,
  ``chunked`` (1,024 query rows at a time) and ``sdpa`` (mrisr's default:
  ``F.scaled_dot_product_attention`` with q, k zero-padded to the value width so that the
  fused flash kernel runs). The naive map at 65,536 positions needs 17.2 GB, so it
  runs only with ``--naive-65536``; otherwise its row gives the computed size.
- ``fagan``: the whole FA-GAN ×4 generator (16 LFFBs, 17.08 M parameters) on a 64×64 LR batch
  → 256×256, the issue's acceptance case (``--batch`` slices, default 1).

    python benchmarks/attention.py [--repeats 3] [--threads T] [--batch 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(case: str, mode: str, n: int, repeats: int, batch: int) -> dict:
    import torch

    from mrisr.models.fagan import FAGANGenerator, self_attention

    torch.manual_seed(0)
    if case == "attention":
        q, k = torch.randn(1, n, 8), torch.randn(1, n, 8)
        v = torch.randn(1, n, 64)

        def call() -> None:
            self_attention(q, k, v, mode=mode)  # type: ignore[arg-type]

    else:
        net = FAGANGenerator(4, attention=mode).eval()
        with torch.no_grad():
            net.gffb.sa.gamma.fill_(0.1)  # type: ignore[union-attr]
        side = int(round(n**0.5)) // 4
        x = torch.rand(batch, 1, side, side)

        def call() -> None:
            with torch.no_grad():
                out = net(x)
            assert out.shape == (batch, 1, 4 * side, 4 * side)

    base = _rss_mb()
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        call()
        if i:
            times.append(time.perf_counter() - t0)
    return {
        "case": case,
        "mode": mode,
        "positions": n,
        "batch": batch,
        "peak_mb": round(_rss_mb() - base, 1),
        "rss_before_mb": round(base, 1),
        "s_median": statistics.median(times),
        "s_min": min(times),
        "s_max": max(times),
    }


def run_case(case: str, mode: str, n: int, a: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", case, mode, str(n), str(a.repeats), str(a.batch)]
    env = {**os.environ}
    if a.threads:
        env["OMP_NUM_THREADS"] = str(a.threads)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        return {"case": case, "mode": mode, "positions": n, "error": res.stderr.strip()[-300:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        case, mode, n, repeats, batch = sys.argv[2:7]
        print(json.dumps(child(case, mode, int(n), int(repeats), int(batch))))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="OMP threads (0: torch default)")
    ap.add_argument("--batch", type=int, default=1, help="slices in the FA-GAN case")
    ap.add_argument("--naive-65536", action="store_true", help="also run the 17 GB naive case")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import torch

    from mrisr.train.monitor import hardware

    rows = []
    for n in (4096, 16384, 65536):
        for mode in ("naive", "chunked", "sdpa"):
            if mode == "naive" and n == 65536 and not a.naive_65536:
                rows.append(
                    {
                        "case": "attention",
                        "mode": mode,
                        "positions": n,
                        "skipped": f"needs {4 * n * n / 1e9:.1f} GB for the map alone",
                    }
                )
                continue
            rows.append(run_case("attention", mode, n, a))
            print(rows[-1], file=sys.stderr)
    for mode in ("chunked", "sdpa"):
        rows.append(run_case("fagan", mode, 65536, a))
        print(rows[-1], file=sys.stderr)
    env = {"hardware": hardware(), "torch": torch.__version__, "threads": a.threads or "default"}
    print(f"\n{env}\n")
    print("| case | positions | mode | peak extra memory (MB) | s, median (min–max) |")
    print("| --- | ---: | --- | ---: | --- |")
    for r in rows:
        what = (
            "attention (1 image)"
            if r["case"] == "attention"
            else f"FA-GAN x4, {a.batch}×64² → 256²"
        )
        if "skipped" in r:
            print(f"| {what} | {r['positions']:,} | {r['mode']} | — | not run: {r['skipped']} |")
        elif "error" in r:
            print(f"| {what} | {r['positions']:,} | {r['mode']} | — | failed: {r['error']} |")
        else:
            t = f"{r['s_median']:.3f} ({r['s_min']:.3f}–{r['s_max']:.3f})"
            print(f"| {what} | {r['positions']:,} | {r['mode']} | {r['peak_mb']:,.0f} | {t} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"env": env, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()

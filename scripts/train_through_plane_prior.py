"""Train the through-plane prior: a ThroughPlaneNet that has seen many thick-slice protocols.

Every batch draws one protocol at random — k from 2 to 6, profile FWHM from 0.8 to 1.2 × the
spacing (below 1: a gap), rect or Gaussian — and pairs from the in-plane (square-pixel) slices
of the given scans (:mod:`mrisr.data.through_plane_pairs`). The run is resumable: its state
(model, optimiser, step) is saved every ``--save-every`` steps into ``--run-dir`` (outside the
repository), batches are a function of (seed, step), so a resumed run draws what an
uninterrupted one would. At the end the network is exported as an mrisr checkpoint
(``--out``), its training card listing the scans, the protocol ranges and the steps.

    python scripts/train_through_plane_prior.py --scans ../shared/data/flair/FLAIR.nii.gz \\
        ../shared/data/mr_gd/MR_Gd.nii.gz --run-dir /work/runs/tp-prior --out prior/ \\
        --steps 3000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def load_scans(paths: list[str], planes: str = "square") -> list[np.ndarray]:
    """Each scan's slices [K, H, W], scaled by its p99.5: its square-pixel plane, or with
    ``planes="all"`` every plane whose pixels are square within 5 % (an isotropic scan gives
    three stacks, one per orientation)."""
    from mrisr.data.through_plane_pairs import in_plane_slices
    from mrisr.io import load_volume
    from mrisr.io.geometry import choose_plane

    out = []
    for p in paths:
        v = load_volume(p)
        x = (v.data / (float(np.percentile(v.data, 99.5)) or 1.0)).astype(np.float32)
        axes = [choose_plane(v.zooms, v.shape).slice_axis]
        if planes == "all" and x.ndim == 3 and min(x.shape) > 64:
            z = v.zooms
            axes = [a for a in range(3) if max(z[b] for b in range(3) if b != a)
                    / min(z[b] for b in range(3) if b != a) <= 1.05]  # fmt: skip
        for a in axes:
            out.append(np.ascontiguousarray(in_plane_slices(x, a)))
    return out


def protocol(rng: np.random.Generator):
    from mrisr.data.through_plane_pairs import SliceModel

    k = float(rng.uniform(2.0, 6.0))
    return SliceModel(k, str(rng.choice(["rect", "gaussian"])), k * float(rng.uniform(0.8, 1.2)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scans", nargs="+", required=True)
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--planes", choices=["square", "all"], default="all")
    ap.add_argument("--gamma", type=float, default=0.4, help="gamma spread (0: off)")
    ap.add_argument("--blocks", type=int, default=None)
    ap.add_argument("--feats", type=int, default=None)
    ap.add_argument("--unshuffle", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--bf16", action="store_true",
        help="bfloat16 autocast (fp32 weights and loss): ~2x faster on CPUs with AVX512-BF16 "
        "or AMX, much slower on CPUs without",
    )  # fmt: skip
    ap.add_argument(
        "--init", type=Path, default=None,
        help="start from this mrisr checkpoint's weights (its architecture; a fresh optimiser "
        "and schedule): a warm restart that continues an exported prior",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from mrisr.checkpoint import save_checkpoint
    from mrisr.data.through_plane_pairs import batch, signal_slices
    from mrisr.models.registry import build_model, init_args
    from mrisr.provenance import file_sha256

    torch.manual_seed(args.seed)
    scans = load_scans(args.scans, args.planes)
    keeps = [signal_slices(s) for s in scans]
    arch = {k: v for k, v in (("n_blocks", args.blocks), ("n_feats", args.feats),
                              ("unshuffle", args.unshuffle)) if v is not None}  # fmt: skip
    init_card: dict = {}
    if args.init is not None:
        from mrisr.checkpoint import load_checkpoint, read_config

        cfg = read_config(args.init)[1]
        arch = {k: v for k, v in cfg["init_args"].items() if k != "scale"}
        init_card = {"checkpoint": args.init.name,
                     "sha256": file_sha256(args.init / "model.safetensors"),
                     "steps": int(cfg.get("training", {}).get("steps", 0)),
                     "lr": cfg.get("training", {}).get("lr")}  # fmt: skip
    net = build_model("throughplane-resnet", 1, **arch)
    if args.init is not None and not (args.run_dir / "state.pt").exists():
        net.load_state_dict(load_checkpoint(args.init)[0].state_dict())
        print(f"warm start from {args.init} ({init_card['steps']} steps)")
    print(f"{len(scans)} stacks; {sum(p.numel() for p in net.parameters())} parameters")
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=args.lr / 10)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    state_path = args.run_dir / "state.pt"
    step, losses = 0, []
    if state_path.exists():
        st = torch.load(state_path, weights_only=True)
        net.load_state_dict(st["model"])
        opt.load_state_dict(st["optim"])
        sched.load_state_dict(st["sched"])
        step, losses = int(st["step"]), list(st["losses"])
        print(f"resumed at step {step}")
        if sched.T_max != args.steps:  # a longer (shorter) run: the cosine reaches its floor then
            print(f"schedule: {sched.T_max} -> {args.steps} steps")
            sched.T_max = args.steps
    t0 = time.time()
    net.train()
    while step < args.steps:
        rng = np.random.default_rng(np.random.SeedSequence([args.seed, step, 1]))
        i = int(rng.integers(len(scans)))
        x, y = batch(
            scans[i], protocol(rng), args.batch, args.patch, args.seed, step, keeps[i], args.gamma
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            pred = net(torch.from_numpy(x))
        loss = torch.nn.functional.l1_loss(pred.float(), torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % args.save_every == 0 or step == args.steps:
            tmp = state_path.with_suffix(".tmp")
            torch.save(
                {"model": net.state_dict(), "optim": opt.state_dict(),
                 "sched": sched.state_dict(), "step": step, "losses": losses},
                tmp,
            )  # fmt: skip
            tmp.replace(state_path)
            recent = float(np.mean(losses[-args.save_every :]))
            print(f"step {step}/{args.steps} loss {recent:.5f} ({time.time() - t0:.0f} s)")
    card = {
        "recipe": "scripts/train_through_plane_prior.py",
        "data": {"train": [Path(p).name for p in args.scans],
                 "sha256": {Path(p).name: file_sha256(Path(p)) for p in args.scans}},
        "protocols": {"k": [2.0, 6.0], "fwhm_over_spacing": [0.8, 1.2],
                      "profiles": ["rect", "gaussian"]},
        "steps": step + init_card.get("steps", 0), "batch": args.batch, "patch": args.patch,
        "lr": args.lr,
        "seed": args.seed, "final_loss": float(np.mean(losses[-100:])) if losses else None,
        "planes": args.planes, "stacks": len(scans), "gamma_spread": args.gamma,
        "precision": "bf16-mixed" if args.bf16 else "32",
    }  # fmt: skip
    if init_card:
        card["warm_start"] = {**init_card, "then_steps": step}
    save_checkpoint(
        net.eval(), "throughplane-resnet", init_args("throughplane-resnet", 1, **arch), args.out,
        training=card, overwrite=True,
    )  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

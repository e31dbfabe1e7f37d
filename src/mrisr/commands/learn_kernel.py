"""``mrisr learn-kernel OUT --hr HR --lr LR --scale S``: a scanner's degradation kernel from
an HR and a real LR scan.

Runs the ``dsgan_x{scale}`` recipe (task ``dsgan``) through the training engine in a run folder
(``--run-dir``, or a temporary one removed afterwards), then writes ``OUT.npy`` (the kernel,
sum 1), ``OUT.json`` (how it was learned: scans and their sha256, mode, steps, seed, centre of
mass, the engine's training card) and ``OUT.png`` (PSF plot) together, or nothing. The output is
checked before any work is done.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mrisr.errors import ConfigError
from mrisr.provenance import sidecar_header


def run_learn_kernel(
    hr: str | Path,
    lr: str | Path,
    scale: int,
    out: str | Path,
    *,
    steps: int = 3000,
    slice_index: int | None = None,
    denoise: bool = False,
    seed: int = 0,
    axis: int | None = None,
    run_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """Learn the ×``scale`` kernel taking ``hr`` to ``lr``; returns the sidecar written."""
    from mrisr.commands.entry import TRAIN_SEED_MAX, check_seed
    from mrisr.degrade.kernel import read_kernel, save_kernel
    from mrisr.io.atomic import check_writable
    from mrisr.train.config import load_config, recipe_names
    from mrisr.train.engine import train

    check_seed(seed, TRAIN_SEED_MAX)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"--steps must be an integer >= 1, got {steps}")
    out = Path(out)
    if out.suffix != ".npy":
        raise ConfigError(f"OUT '{out}' must end in .npy (OUT.json and OUT.png are written beside)")
    for p in (out, out.with_suffix(".json"), out.with_suffix(".png")):
        check_writable(p, overwrite)
    recipe = f"dsgan_x{scale}"
    if recipe not in recipe_names():
        raise ConfigError(f"--scale {scale}: kernels are learned at ×2 or ×4")
    for p, what in ((hr, "--hr"), (lr, "--lr")):
        if not Path(p).exists():
            raise ConfigError(f"{what} '{p}' does not exist")
    over = [
        f"data.train=[{Path(hr).resolve()}]",
        f"data.lr_real=[{Path(lr).resolve()}]",
        f"train.steps={steps}",
        f"train.seed={seed}",
        f"dsgan.denoise={str(bool(denoise)).lower()}",
        "train.progress=off",
    ]
    if slice_index is not None:
        over.append(f"dsgan.slice={slice_index}")
    if axis is not None:
        over.append(f"data.axis={axis}")
    over += list(overrides or [])
    cfg = load_config(recipe, over)
    tmp = None
    if run_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix=".mrisr-kernel-", dir=out.parent))
        run = tmp / "run"
    else:
        run = Path(run_dir)
    t0 = time.perf_counter()
    try:
        train(cfg, run_dir=run)
        k, meta = read_kernel(run / "final" / "kernel.npy")
        wall = time.perf_counter() - t0
        meta.pop("title", None)
        card = meta.get("training", {})
        sidecar = {
            **sidecar_header(argv, {"hr": hr, "lr": lr}),
            "mode": card.get("dataset", {}).get("mode"),
            "seed": seed,
            "wall_s": round(wall, 1),
            "run_dir": None if tmp else str(run),
            **meta,
        }
        sidecar["title"] = (
            f"×{scale} kernel learned from {Path(lr).name} / {Path(hr).name} ({steps} steps)"
        )
        save_kernel(out, k, sidecar, overwrite=overwrite)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    com = sidecar["centre_of_mass"]
    print(
        f"wrote {out} ({k.shape[0]}×{k.shape[1]}, centre of mass ({com[0]:.2f}, {com[1]:.2f}), "
        f"raw sum {sidecar['raw_sum']:.3f}), {out.with_suffix('.json').name} and "
        f"{out.with_suffix('.png').name} in {wall:.0f} s",
        file=sys.stderr,
    )
    return sidecar

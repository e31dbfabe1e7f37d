"""Learning one thick-slice scan's slice profile (recipe ``profile_dsgan``, ``task: profile``)
as a function: used by ``mrisr learn-kernel --through-plane`` and by ``mrisr upscale
--through-plane --profile learn``."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def learn_profile(
    scan: str | Path,
    *,
    steps: int | None = None,
    seed: int = 0,
    axis: int | None = None,
    run_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    scratch: str | Path | None = None,
    progress: str = "auto",
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(profile taps, what the run recorded)``: ``steps`` default the recipe's; the run
    lives in ``run_dir`` (kept) or in a temporary folder under ``scratch`` (removed)."""
    import torch

    from mrisr.degrade.profile import read_profile
    from mrisr.train.config import load_config
    from mrisr.train.engine import train

    over = [f"data.train=[{Path(scan).resolve()}]", f"train.seed={seed}",
            f"train.progress={progress}"]  # fmt: skip
    over += [f"train.steps={steps}"] if steps is not None else []
    over += [f"data.axis={axis}"] if axis is not None else []
    cfg = load_config("profile_dsgan", over + list(overrides or []))
    tmp = None
    if run_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix=".mrisr-profile-", dir=scratch))
        run = tmp / "run"
    else:
        run = Path(run_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 1-D nets of a few thousand weights: threads only add waiting
    try:
        train(cfg, run_dir=run)
        h, learned = read_profile(run / "final" / "profile.npy")
    finally:
        torch.set_num_threads(threads)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    learned.pop("title", None)
    return np.asarray(h, dtype=np.float64), {**learned, "run_dir": None if tmp else str(run)}

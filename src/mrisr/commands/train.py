"""``mrisr train CONFIG [key=value ...]``: train from a recipe (``python -m mrisr.train`` is the
same, for torchrun / srun)."""

from __future__ import annotations

from pathlib import Path


def run_train(
    config: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    resume: bool = False,
    run_dir: str | Path | None = None,
    stop_at: int | None = None,
) -> Path:
    """Returns the run folder.

    ``config`` is a recipe file or a packaged recipe's name (``smoke``, ``seran_ixi_x2``, ...).
    ``stop_at`` ends the job after that step as if it were killed there (no final export; the
    newest state in ``state/`` is the one ``--resume`` continues from): for time-limited jobs.

    A run killed at any moment goes on with ``--resume`` (from step 0 with the frozen config
    when it saved no state yet) or, while it has saved no state, with the same command again;
    errors name the command to run (see :mod:`mrisr.train.engine`).
    """
    from mrisr.train import require_extra

    require_extra()
    from mrisr.train.config import load_config
    from mrisr.train.engine import train

    cfg = load_config(config, list(overrides))
    argv = ["mrisr", "train", str(config), *overrides]  # messages name the command to run next
    return train(cfg, resume=resume, run_dir=run_dir, stop_at=stop_at, argv=argv)

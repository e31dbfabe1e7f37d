"""``python -m mrisr.train CONFIG [key=value ...] [--resume] [--run-dir DIR]``.

The same as ``mrisr train``, as a module so that launchers can start it on every rank::

    torchrun --nproc_per_node 4 -m mrisr.train seran_ixi_x2 data.train=/data/IXI-T2 \\
        trainer.devices=4
    srun python -m mrisr.train seran_ixi_x2 data.train=... trainer.devices=4 trainer.num_nodes=2
"""

from __future__ import annotations

import argparse
import os
import sys

from mrisr.errors import MrisrError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mrisr.train", description=__doc__)
    parser.add_argument("config", help="recipe file or packaged recipe name")
    parser.add_argument("overrides", nargs="*", help="key.sub=value")
    parser.add_argument("--resume", action="store_true", help="continue the run folder's run")
    parser.add_argument("--run-dir", default=None, help="run folder (default runs/NAME)")
    parser.add_argument(
        "--stop-at", type=int, default=None, help="stop after this step, as if killed there"
    )
    args = parser.parse_args(argv)
    from mrisr.commands.train import run_train

    try:
        run_dir = run_train(args.config, args.overrides, args.resume, args.run_dir, args.stop_at)
    except MrisrError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    if os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0":
        print(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

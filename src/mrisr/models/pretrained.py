"""Reading published pretrained weight files (VGG19, FID InceptionV3) from a user's path.

Nothing is downloaded. ``.pth`` / ``.pt`` files load with ``torch.load(weights_only=True)``
(tensors and plain containers only: a file that needs unpickling of code is refused), and
``.safetensors`` with safetensors. Every failure is one :class:`~mrisr.errors.InputError` line
that says which file to get.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import nn

from mrisr.errors import InputError


def read_state_dict(path: str | os.PathLike[str], what: str, help: str) -> dict[str, torch.Tensor]:
    """The tensors of a weight file (a ``{"state_dict": ...}`` wrapper is unwrapped)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} weights '{p}' not found; {help}")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(
            f"'{p}' holds Python objects besides tensors; mrisr will not unpickle it. "
            "Save only the state dict"
        ) from None
    except Exception as e:  # a damaged or foreign file: one line
        raise InputError(f"cannot read {what} weights '{p}': {' '.join(str(e).split())}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"'{p}' is not a state dict (a mapping of tensor names); {help}")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_matching(
    net: nn.Module,
    state: dict[str, torch.Tensor],
    path: str | os.PathLike[str],
    what: str,
    help: str,
    optional: tuple[str, ...] = (),
) -> None:
    """Copy ``state`` into ``net``: every tensor of ``net`` must be there with its shape
    (names ending in one of ``optional`` may be absent); extra tensors are ignored."""
    want = net.state_dict()
    got = {k: v for k, v in state.items() if k in want}
    missing = sorted(k for k in set(want) - set(got) if not k.endswith(optional))
    if missing:
        raise InputError(
            f"'{path}' is not a {what} state dict: it lacks {', '.join(missing[:3])}"
            f"{' ...' if len(missing) > 3 else ''}; {help}"
        )
    bad = [k for k in got if tuple(got[k].shape) != tuple(want[k].shape)]
    if bad:
        raise InputError(
            f"'{path}': '{bad[0]}' has shape {tuple(got[bad[0]].shape)}, not {what}'s "
            f"{tuple(want[bad[0]].shape)}"
        )
    net.load_state_dict({**want, **{k: v.to(want[k].dtype) for k, v in got.items()}})

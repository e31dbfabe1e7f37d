"""``mrisr convert-pth PTH OUT``: legacy ``.pth`` weights into a safe checkpoint folder."""

from __future__ import annotations

from pathlib import Path


def run_convert_pth(pth: Path, out: Path, model: str, scale: int, overwrite: bool) -> Path:
    """Loaded with ``weights_only=True``: a file holding anything but tensors is refused."""
    from mrisr.checkpoint import convert_legacy
    from mrisr.models.registry import init_args

    convert_legacy(pth, model, init_args(model, scale), out, overwrite=overwrite)
    print(f"wrote {out}")
    return Path(out)

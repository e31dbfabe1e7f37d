"""Atomic writes: every output appears complete or not at all.

Files are written to a hidden temporary name in the destination folder and renamed into place
(``os.replace`` is atomic on POSIX within one file system). Several files that belong together
(a volume and its JSON sidecar) are committed together: all temporary files are written first,
then renamed; on any error all temporaries are removed and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mrisr.errors import OutputError


def _suffixes(path: Path) -> str:
    name = path.name
    for multi in (".nii.gz", ".tar.gz"):
        if name.endswith(multi):
            return multi
    return path.suffix


def check_writable(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Check that ``path`` may be written; raise :class:`OutputError` with the fix otherwise."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder '{parent}' does not exist; create it first (mkdir -p)")
    if p.is_dir():
        raise OutputError(f"output '{p}' is a folder; give a file name such as '{p}/out.nii.gz'")
    if p.exists() and not overwrite:
        raise OutputError(f"output '{p}' exists already; pass --overwrite to replace it")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder '{parent}' is not writable")
    return p


@contextlib.contextmanager
def atomic_outputs(
    paths: Sequence[str | os.PathLike[str]], overwrite: bool = False
) -> Iterator[list[Path]]:
    """Yield temporary paths for ``paths``; rename them all into place on success.

    The temporary names keep the destination's extension (``.nii.gz`` stays ``.nii.gz``), so
    writers that choose the format from the name behave as for the final name.
    """
    finals = [check_writable(p, overwrite) for p in paths]
    token = uuid.uuid4().hex[:8]
    temps = [f.with_name(f".{f.name}.{token}.tmp{_suffixes(f)}") for f in finals]
    try:
        yield temps
        for t in temps:
            if not t.exists():
                raise RuntimeError(f"writer did not produce {t}")
        for t, f in zip(temps, finals, strict=True):
            os.replace(t, f)
    finally:
        for t in temps:
            with contextlib.suppress(FileNotFoundError):
                t.unlink()


def write_json_atomic(path: str | os.PathLike[str], obj: Any, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    with atomic_outputs([path], overwrite=overwrite) as (tmp,):
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    return Path(path)


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def emit_text(text: str, output: str | Path | None, overwrite: bool) -> None:
    """A report to stdout, or atomically to ``output`` (then ``wrote OUTPUT`` on stdout)."""
    import sys

    if output is None:
        sys.stdout.write(text)
        return
    with atomic_outputs([Path(output)], overwrite=overwrite) as (tmp,):
        tmp.write_text(text)
    print(f"wrote {output}")

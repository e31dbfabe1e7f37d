"""Atomic writes: every output appears complete or not at all.

Files are written to a hidden temporary name in the destination folder and renamed into place
(``os.replace`` is atomic on POSIX within one file system). Several files that belong together
(a volume and its JSON sidecar) are committed together: all temporary files are written first,
then renamed; on any error all temporaries are removed and nothing is left behind. An
``OSError`` while writing or renaming (a full disk, permission denied, a read-only file system)
becomes a one-line :class:`OutputError` naming the output and the system's reason; existing
outputs are left as they were (a rename replaces a file whole or not at all).

JSON is written strictly (:func:`strict_json`): NaN and ±inf, which standard parsers reject,
become ``null``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
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
        try:
            yield temps
        except OSError as exc:
            raise write_error(exc, finals) from exc
        for t in temps:
            if not t.exists():
                raise RuntimeError(f"writer did not produce {t}")
        for i, (t, f) in enumerate(zip(temps, finals, strict=True)):
            try:
                os.replace(t, f)
            except OSError as exc:
                raise write_error(exc, [f], replaced=finals[:i]) from exc
    finally:
        for t in temps:
            with contextlib.suppress(OSError):
                t.unlink()


def write_error(
    exc: OSError, outputs: Sequence[Path], replaced: Sequence[Path] = ()
) -> OutputError:
    """One line for an ``OSError`` while writing ``outputs``: which output and the system's
    reason (``No space left on device``, ``Permission denied``) with its errno name;
    ``replaced``: outputs of the same group already renamed into place (said, not hidden)."""
    name = errno.errorcode.get(exc.errno or 0)
    why = exc.strerror or str(exc) or type(exc).__name__
    what = " and ".join(f"'{p}'" for p in outputs)
    hint = {
        errno.ENOSPC: "; free some space or write elsewhere",
        errno.EDQUOT: "; free some space or write elsewhere",
        errno.EACCES: "; check the folder's permissions",
        errno.EPERM: "; check the folder's permissions",
        errno.EROFS: "; write to another folder",
    }.get(exc.errno or 0, "")
    done = (
        "; " + ", ".join(f"'{p}'" for p in replaced) + " was written but is incomplete without it"
        if replaced
        else "; nothing was written and existing files are unchanged"
    )
    return OutputError(f"cannot write {what}: {why}" + (f" ({name})" if name else "") + hint + done)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    text = strict_json(obj, indent=2) + "\n"
    with atomic_outputs([path], overwrite=overwrite) as (tmp,):
        tmp.write_text(text)
    return Path(path)


def json_ready(o: Any) -> Any:
    """``o`` with NumPy scalars and arrays as plain Python, paths as strings and every
    non-finite float (NaN, ±inf) as ``None``, recursively through dicts, lists and tuples."""
    import numpy as np

    if isinstance(o, float | np.floating):
        v = float(o)
        return v if math.isfinite(v) else None
    if isinstance(o, np.generic):
        return json_ready(o.item())
    if isinstance(o, np.ndarray):
        return json_ready(o.tolist())
    if isinstance(o, dict):
        return {k: json_ready(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [json_ready(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    return o


def strict_json(obj: Any, default: Any = None, **kwargs: Any) -> str:
    """``json.dumps`` that standard parsers accept: NaN and ±inf become ``null``
    (:func:`json_ready`), and a non-finite number that slips through is an error, never a
    ``NaN`` / ``Infinity`` literal. ``default`` handles other types (else a TypeError)."""
    return json.dumps(json_ready(obj), allow_nan=False, default=default or _json_default, **kwargs)


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic | np.ndarray):
        return json_ready(o)
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

"""Option types shared by several commands of ``cli.py`` (choices and flags); typer and the
standard library only, so that ``mrisr --help`` stays fast."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

#: Read scans whose header lacks spacing / orientation / position (docs/reliability.md).
AssumeGeometry = Annotated[
    bool,
    typer.Option(
        "--assume-geometry",
        help="read scans whose header lacks spacing/orientation/position (1 mm, identity, "
        "origin 0 where missing; recorded in the sidecar) instead of refusing them",
    ),
]


class Method(str, enum.Enum):
    bicubic = "bicubic"
    gaussian = "gaussian"
    kspace_truncate = "kspace-truncate"
    kspace_zerofill = "kspace-zerofill"
    thick_slice = "thick-slice"
    kernel = "kernel"


class Baseline(str, enum.Enum):
    bicubic = "bicubic"
    bicubic_naive = "bicubic-naive"
    zerofill = "zerofill"


class Fmt(str, enum.Enum):
    md = "md"
    csv = "csv"
    json = "json"

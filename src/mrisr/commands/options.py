"""Option types shared by several commands of ``cli.py`` (choices and flags); typer and the
standard library only, so that ``mrisr --help`` stays fast."""

from __future__ import annotations

import enum
from pathlib import Path
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


# ``mrisr upscale --through-plane`` (docs/through-plane.md): one line each in cli.py.
TPThickness = Annotated[
    float | None,
    typer.Option(help="--through-plane: slice thickness in mm [default: DICOM's, else spacing]"),
]
TPProfile = Annotated[
    str,
    typer.Option(
        help="--through-plane: slice profile rect, gaussian, learn (from the scan), or a .npy"
    ),
]
TPSteps = Annotated[
    int,
    typer.Option(min=0, help="--through-plane: at most this many training steps on the scan"),
]
TPVoxel = Annotated[
    float | None,
    typer.Option(help="--through-plane: output spacing along the slice axis [default: in-plane]"),
]
TPConsistency = Annotated[
    bool,
    typer.Option(
        help="project the output onto the acquired data: in-plane, its central k-space (models "
        "trained on kspace-truncate); --through-plane, the acquired slices (A·x = y)"
    ),
]


class Combine(str, enum.Enum):
    mean = "mean"
    fba = "fba"


TPCombine = Annotated[
    Combine,
    typer.Option(
        help="--through-plane: combine the two planes' estimates by mean or Fourier burst "
        "accumulation"
    ),
]
TPFromScratch = Annotated[
    bool,
    typer.Option(
        "--from-scratch", help="--through-plane: train a fresh network, not the shipped prior"
    ),
]
TPRunDir = Annotated[
    Path | None,
    typer.Option(help="--through-plane: keep the training run here (the same command resumes it)"),
]


# ``mrisr upscale --adapt`` (per-scan adaptation of an in-plane model, mrisr.infer.adapt)
Adapt = Annotated[
    bool,
    typer.Option(help="fine-tune the model on the scan's own re-degraded pairs (LLR -> LR) first"),
]
AdaptSteps = Annotated[
    int, typer.Option(min=1, help="--adapt: at most this many fine-tuning steps")
]


# ``mrisr upscale BIDS_ROOT OUT_DERIV --bids`` (mrisr.io.bids, docs/upscale.md#bids)
Bids = Annotated[
    bool,
    typer.Option(
        "--bids",
        help="IN is a BIDS dataset and OUT a BIDS-derivatives folder: its anat/*_<suffix> scans "
        "become OUT/sub-*/[ses-*/]anat/*_desc-sr_<suffix>.nii.gz + .json",
    ),
]
BidsSuffix = Annotated[str, typer.Option(help="--bids: the anatomical suffix to upscale")]
BidsParticipants = Annotated[
    list[str] | None,
    typer.Option(
        "--participant-label",
        help="--bids: only these subjects (01 or sub-01; repeat the option or give 01,02)",
    ),
]


# ``mrisr report`` (self-contained HTML report with linked niivue viewers, docs/report.md)
RPOut = Annotated[Path, typer.Argument(metavar="OUT.html", help="the HTML report to write")]
RPVolumes = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="VOLUME...",
        help="volumes to show, on one grid (with --kernel: default the scan it was learned from)",
    ),
]
RPKernel = Annotated[
    Path | None,
    typer.Option(help="a `mrisr learn-kernel` output (.npy): its PSF plot and sidecar"),
]
RPLabels = Annotated[
    list[str] | None,
    typer.Option(help="a label per volume (repeat, or comma-separated; default: the file names)"),
]
RPRef = Annotated[
    Path | None,
    typer.Option("--ref", help="the reference: error maps |volume - reference| are overlaid"),
]
RPResample = Annotated[
    bool,
    typer.Option(help="resample (nearest neighbour) volumes on other grids onto the reference's"),
]
RPMetrics = Annotated[
    Path | None,
    typer.Option(help="an `mrisr eval --format json` report: its table and per-slice curves"),
]

# ``mrisr export``
ExportCheckpoint = Annotated[
    str,
    typer.Argument(
        metavar="CHECKPOINT",
        help="checkpoint folder, or shipped weights by name (e.g. edsr-kspace-x2)",
    ),
]
ExportBare = Annotated[
    bool,
    typer.Option(
        "--bare",
        help="the network alone (normalised lr -> normalised sr); default: raw lr + the "
        "volume's stats (offset, scale) -> raw sr, the normalisation inside the graph",
    ),
]


#: ``mrisr upscale --report``: an HTML report (docs/report.md) of the input and the result.
Report = Annotated[
    bool,
    typer.Option(
        help="also write OUT.html: the input and the result in linked niivue viewers, with the "
        "sidecar's provenance (one input scan)"
    ),
]

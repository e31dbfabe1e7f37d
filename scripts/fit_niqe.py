"""Fit the pristine NIQE model of MR slices shipped with mrisr (deterministic).

    python scripts/fit_niqe.py [SHARED_DATA_DIR] [--output PATH]

Default output: ``src/mrisr/metrics/niqe_mr_pristine.json`` (overwritten atomically). The
pristine slices are the HR scans of the shared data folder listed in ``SOURCES``, each cut
into slices along its slice axis (coarsest spacing), windowed to [0, 255] by the scan's own
minimum and 99.5th percentile. Slices that the tests and the demo use (IXI002 T2 slices
50-89: the demo scan and the test crops; the FLAIR test crop's slices) are left out, so the
NIQE tests score slices the model has not seen. Slices with no usable patch (background)
contribute nothing. Re-running gives the same numbers; only ``meta.created`` changes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src/mrisr/metrics/niqe_mr_pristine.json"

# (path in the shared data folder, slice ranges [start, stop) left out, source / licence)
SOURCES = [
    (
        "ixi002/IXI002-Guys-0828-T1.nii.gz",
        [],
        "IXI002 T1 (IXI, brain-development.org, CC BY-SA 3.0), sagittal, skull-stripped",
    ),
    (
        "ixi002/IXI002-Guys-0828-T2.nii.gz",
        [(50, 90)],  # the demo scan [56, 80) and the test crops / slices [60, 71)
        "IXI002 T2 (IXI, brain-development.org, CC BY-SA 3.0), axial",
    ),
    (
        "flair/FLAIR.nii.gz",
        [(64, 76)],  # the FLAIR test crop is slices [68, 72)
        "niivue FLAIR sample (BSD-2-Clause, (c) Chris Rorden)",
    ),
    (
        "mr_gd/MR_Gd.nii.gz",
        [],
        "Skull-stripped contrast-enhanced T1 MR_Gd (figshare 7472168, CC BY 4.0)",
    ),
    (
        "dicom/vs-seg-001-subset",
        [],
        "TCIA Vestibular-Schwannoma-SEG VS-SEG-001 T1 MPRAGE, 24 slices (CC BY 4.0)",
    ),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shared", nargs="?", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--output", "-o", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    from mrisr import __version__
    from mrisr.io import load_volume
    from mrisr.io.atomic import write_json_atomic
    from mrisr.io.geometry import resolve_axis
    from mrisr.metrics.fid import intensity_window
    from mrisr.metrics.noref import (
        FOREGROUND,
        NIQE_MIN_FOREGROUND,
        NIQE_PATCH,
        NIQE_SHARPNESS,
        niqe_model_from_patches,
        pristine_patches,
        to_byte_scale,
    )
    from mrisr.provenance import file_sha256

    feats, scans = [], []
    for rel, excluded, source in SOURCES:
        path = args.shared / rel
        vol = load_volume(path)
        k = resolve_axis(None, vol.zooms, vol.shape)
        win = intensity_window(vol.data)
        v = np.moveaxis(vol.data, k, 0)
        used = []
        for i in range(v.shape[0]):
            if any(a <= i < b for a, b in excluded):
                continue
            x = to_byte_scale(v[i], win)
            f = pristine_patches(
                x, NIQE_PATCH, NIQE_SHARPNESS, None, FOREGROUND, NIQE_MIN_FOREGROUND
            )
            if len(f):
                feats.append(f)
                used.append(i)
        scans.append(
            {
                "path": rel,
                "source": source,
                "sha256": file_sha256(path),
                "shape": list(vol.shape),
                "voxel_mm": [round(float(z), 4) for z in vol.zooms],
                "slice_axis": k,
                "window": [float(win[0]), float(win[1])],
                "excluded_slices": [list(r) for r in excluded],
                "n_slices_used": len(used),
                "n_patches": int(sum(len(f) for f in feats[len(feats) - len(used) :])),
                "slices_used": [used[0], used[-1]] if used else None,
            }
        )
        print(f"{rel}: axis {k}, {len(used)} slices with patches", file=sys.stderr)
    meta = {
        "what": "pristine NIQE model of HR MR slices (multivariate Gaussian of patch features)",
        "scans": scans,
        "created": time.strftime("%Y-%m-%d"),
        "command": "python scripts/fit_niqe.py",
        "mrisr_version": __version__,
        "slice_rule": "slices along the slice axis with at least one usable patch, each scan "
        "windowed to [0, 255] by its min and 99.5th percentile",
    }
    meta |= {"n_images": len(feats), "sharpness": NIQE_SHARPNESS}
    model = niqe_model_from_patches(
        np.concatenate(feats), NIQE_PATCH, FOREGROUND, NIQE_MIN_FOREGROUND, meta
    )
    write_json_atomic(args.output, model.to_json(), overwrite=True)
    print(
        f"wrote {args.output}: {model.meta['n_patches']} patches from "
        f"{model.meta['n_images']} slices",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

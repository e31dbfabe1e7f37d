"""``mrisr fid --a SCANS --b SCANS``: FID between two sets of scans."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrisr import __version__
from mrisr.errors import ConfigError
from mrisr.io.atomic import emit_text, strict_json


def run_fid(
    set_a: list[Path],
    set_b: list[Path],
    weights: Path,
    axis: int | None,
    output: Path | None,
    overwrite: bool,
) -> dict:
    """``mrisr fid``: FID between all slices of the scans of two sets (unpaired).

    Each scan is windowed to [0, 1] by its own minimum and 99.5th percentile (the sets need
    not share a grid or an intensity scale); blank slices are left out.
    """
    from mrisr.infer.run import expand_inputs
    from mrisr.io import load_volume
    from mrisr.io.atomic import check_writable
    from mrisr.io.geometry import resolve_axis
    from mrisr.metrics.fid import frechet_distance_of_features, intensity_window, slice_features
    from mrisr.models.inception import load_fid_inception

    if output is not None:
        check_writable(output, overwrite)
    net = load_fid_inception(weights)
    feats, scans = [], []
    for label, paths in (("A", set_a), ("B", set_b)):
        files = expand_inputs(paths)
        if not files:
            raise ConfigError(f"set {label} has no scans; give scans, folders or .txt lists")
        rows = []
        for f in files:
            vol = load_volume(f)
            if vol.data.ndim != 3:
                raise ConfigError(f"'{f}' is not a 3-D scan (shape {vol.data.shape})")
            k = resolve_axis(axis, vol.zooms, vol.shape)
            v = np.moveaxis(vol.data, k, 0)
            keep = [i for i in range(v.shape[0]) if np.ptp(v[i]) > 0]
            rows.append(slice_features(vol.data, net, k, intensity_window(vol.data), keep))
        feats.append(np.concatenate(rows))
        scans.append([str(f) for f in files])
    n_a, n_b = len(feats[0]), len(feats[1])
    if min(n_a, n_b) < 2:
        raise ConfigError(f"FID needs at least 2 non-blank slices per set (got {n_a} and {n_b})")
    report = {
        "mrisr_version": __version__,
        "fid": frechet_distance_of_features(feats[0], feats[1]),
        "slices": {"a": n_a, "b": n_b},
        "scans": {"a": scans[0], "b": scans[1]},
        "weights": Path(weights).name,
    }
    text = strict_json(report, indent=2) + "\n"
    emit_text(text, output, overwrite)
    return report

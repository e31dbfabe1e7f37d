"""NIQE and BRISQUE features of a 3-D volume, per slice and pooled over the volume."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mrisr.errors import ConfigError, InputError
from mrisr.metrics.noref.coefficients import _window_of, to_byte_scale
from mrisr.metrics.noref.features import FEATURE_NAMES, brisque_features
from mrisr.metrics.noref.niqe_model import NiqeModel, load_niqe_model, niqe_distance, niqe_features


def niqe_volume(
    data: Any,
    axis: int = -1,
    model: NiqeModel | None = None,
    window: Sequence[float] | str | None = "auto",
) -> dict[str, Any]:
    """NIQE and BRISQUE features of a 3-D volume, per slice along ``axis`` and per volume.

    One intensity window for the whole volume (``"auto"``: its minimum and 99.5th
    percentile). A slice is scored when it has at least 2 usable patches; others (mostly
    background) are listed in ``skipped``. Returns plain floats::

        {"volume": {"niqe" (all scored slices' patches pooled), "niqe_mean_slices",
                    "mscn_shape", "mscn_var" (means over the scored slices), "n_slices",
                    "n_patches", "n_skipped", "window", "brisque_mean": {name: mean}},
         "slices": [{"index", "niqe", "n_patches", "mscn_shape", "mscn_var"}, ...],
         "skipped": [{"index", "reason"}, ...]}
    """
    v = np.asarray(data)
    if v.ndim != 3:
        raise ConfigError(f"niqe_volume needs a 3-D volume; got shape {v.shape}")
    if not -3 <= axis <= 2:
        raise ConfigError(f"axis must be 0, 1 or 2 (or -1..-3); got {axis}")
    model = load_niqe_model() if model is None else model
    v = np.moveaxis(v, axis % 3, 0)
    win = _window_of(v, window)
    slices, skipped, pooled, brisque = [], [], [], []
    for i in range(v.shape[0]):
        x = to_byte_scale(v[i], win)
        f, _ = niqe_features(x, model.patch_size, None, model.foreground, model.min_foreground)
        if len(f) < 2:
            skipped.append(
                {"index": i, "reason": f"{len(f)} usable patches (2 needed): mostly background"}
            )
            continue
        b = brisque_features(x, None, model.foreground)
        pooled.append(f)
        brisque.append(b)
        slices.append(
            {
                "index": i,
                "niqe": niqe_distance(model, f),
                "n_patches": len(f),
                "mscn_shape": float(b[0]),
                "mscn_var": float(b[1]),
            }
        )
    if not slices:
        raise InputError(
            f"no slice has 2 usable {model.patch_size}×{model.patch_size} patches (at least "
            f"{model.min_foreground:.0%} foreground each); is the volume mostly background?"
        )
    allf, bm = np.concatenate(pooled), np.mean(brisque, axis=0)
    volume = {
        "niqe": niqe_distance(model, allf),
        "niqe_mean_slices": float(np.mean([s["niqe"] for s in slices])),
        "mscn_shape": float(bm[0]),
        "mscn_var": float(bm[1]),
        "n_slices": len(slices),
        "n_patches": len(allf),
        "n_skipped": len(skipped),
        "window": None if win is None else [float(win[0]), float(win[1])],
        "brisque_mean": {n: float(x) for n, x in zip(FEATURE_NAMES, bm, strict=True)},
    }
    return {"volume": volume, "slices": slices, "skipped": skipped}

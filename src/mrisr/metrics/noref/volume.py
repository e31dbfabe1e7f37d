"""NIQE and BRISQUE features of a 3-D volume, per slice and pooled over the volume, and the
no-reference report of one scan (:func:`noref_volume`: mrisr's MR NIQE next to the standard
BRISQUE and NIQE of :mod:`mrisr.metrics.noref.standard`)."""

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
    p = model.patch_size
    room = (v.shape[1] // p) * (v.shape[2] // p)  # patches a slice of this size can hold
    for i in range(v.shape[0]):
        x = to_byte_scale(v[i], win)
        f, _ = niqe_features(x, model.patch_size, None, model.foreground, model.min_foreground)
        if len(f) < 2:
            why = "mostly background" if room >= 2 else f"a {v.shape[1]}×{v.shape[2]} image"
            skipped.append({"index": i, "reason": f"{len(f)} usable patches (2 needed): {why}"})
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
        if room < 2:
            raise InputError(
                f"slices of {v.shape[1]}×{v.shape[2]} voxels hold fewer than 2 {p}×{p} NIQE "
                "patches; NIQE cannot score images this small (use another axis or a larger scan)"
            )
        raise InputError(
            f"no slice has 2 usable {p}×{p} patches (at least "
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


#: What each score of :func:`noref_volume` is (the legend of ``mrisr eval --no-reference``).
NOREF_METRICS = {
    "brisque": "standard BRISQUE (MATLAB brisque() definition, LIVE epsilon-SVR; Mittal, "
    "Moorthy & Bovik 2012): mean over the slices with signal; lower is better",
    "niqe": "standard NIQE (MATLAB niqe() default: natural-image pristine model, 96x96 "
    "blocks; Mittal, Soundararajan & Bovik 2013): mean over the slices with signal; lower is "
    "better",
    "niqe_mr": "mrisr's NIQE against its pristine MR model (32 px patches of foreground), "
    "all scored slices' patches pooled; lower is better",
}


def noref_volume(data: Any, axis: int = -1, model: NiqeModel | None = None) -> dict[str, Any]:
    """The no-reference scores of one scan: :func:`niqe_volume` with its NIQE renamed
    ``niqe_mr`` (``niqe_mr_mean_slices``), next to the standard ``brisque`` and ``niqe``
    (:func:`~mrisr.metrics.noref.standard.standard_volume`; their grey-level window is
    ``standard_window``, ``n_brisque`` / ``n_niqe`` slices scored, ``standard_notes``).

    ``slices`` holds every slice either scores (``None`` where one does not); ``skipped``
    the slices neither scores. Keys are described in :data:`NOREF_METRICS`.
    """
    from mrisr.metrics.noref.standard import standard_volume

    r = niqe_volume(data, axis, model)
    try:
        std = standard_volume(data, axis)
    except InputError as exc:  # e.g. not a magnitude image: the MR scores still stand
        std = {
            "volume": {
                "brisque": None,
                "niqe": None,
                "n_brisque": 0,
                "n_niqe": 0,
                "window": None,
                "notes": [str(exc)],
            },
            "slices": [],
            "skipped": [],
        }
    mr, sv = r["volume"], std["volume"]
    volume = {
        "brisque": sv["brisque"],
        "niqe": sv["niqe"],
        "niqe_mr": mr.pop("niqe"),
        "niqe_mr_mean_slices": mr.pop("niqe_mean_slices"),
        **mr,
        "n_brisque": sv["n_brisque"],
        "n_niqe": sv["n_niqe"],
        "standard_window": sv["window"],
        "standard_notes": sv["notes"],
    }
    rows: dict[int, dict[str, Any]] = {}
    empty = {"niqe_mr": None, "n_patches": 0, "mscn_shape": None, "mscn_var": None}
    for s in r["slices"]:
        rows[s["index"]] = {
            "index": s["index"],
            "brisque": None,
            "niqe": None,
            "niqe_mr": s.pop("niqe"),
            **s,
        }
    for s in std["slices"]:
        rows.setdefault(s["index"], {"index": s["index"], **empty}).update(s)
    skipped = [k for k in r["skipped"] if k["index"] not in rows]
    volume["n_skipped"] = len(skipped)
    return {"volume": volume, "slices": [rows[i] for i in sorted(rows)], "skipped": skipped}

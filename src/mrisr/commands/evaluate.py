"""``mrisr eval``: reference metrics of results and baselines against a reference scan, or
no-reference quality (``--no-reference``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from mrisr import __version__
from mrisr.errors import ConfigError
from mrisr.io.atomic import emit_text


def _reference_on(ref, vol, what: str):
    """The reference on ``vol``'s grid: ``ref`` itself, or the integer-voxel crop of it that
    ``vol`` covers (a result of ``mrisr degrade --crop`` then ``upscale``), with the crop's
    ``[start:stop]`` per axis. Any other grid is a one-line ConfigError."""
    from mrisr.io.geometry import check_same_grid, grid_affine, place_on_grid

    place = place_on_grid(vol.shape, vol.affine, ref.shape, ref.affine)
    if place.same:
        return ref, None
    if place.sub_box and vol.shape != ref.shape:
        box = place.box()
        maps = {a: (1.0, float(s.start)) for a, s in enumerate(box)}
        cropped = ref.replace(np.ascontiguousarray(ref.data[box]), grid_affine(ref.affine, maps))
        return cropped, [[s.start, s.stop] for s in box]
    if vol.shape == ref.shape:
        try:
            check_same_grid(vol.shape, vol.affine, ref.shape, ref.affine, what)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc}. An LR whose k-space matrix is odd sits on a shifted grid: make it with "
                "`mrisr degrade --crop` (in-plane sizes a multiple of 2x the scale) and eval "
                "scores the result on that crop"
            ) from None
    why = (
        "it is not an integer-voxel crop of the reference grid"
        if not place.inside or place.on_lattice
        else f"its voxels lie up to {place.shift_mm:.2f} mm off the reference's voxels"
    )
    raise ConfigError(
        f"{what} has shape {vol.shape} on a grid that is not the reference's {ref.shape} and "
        f"{why}; evaluate results on the reference grid: an LR made by `mrisr degrade --crop` "
        "keeps it (in-plane sizes a multiple of 2x the scale)"
    )


def run_eval(
    ref_path: Path,
    preds: list[Path],
    baselines: list[str],
    method: str,
    scale: int,
    axis: int | None,
    mask_path: Path | None,
    shave: int,
    fmt: str,
    per_slice: bool,
    output: Path | None,
    overwrite: bool,
    keep_baselines: dict | None = None,
    fid_weights: Path | None = None,
    progress: bool = True,
    assume_geometry: bool = False,
) -> dict:
    """``mrisr eval``; ``keep_baselines`` (a dict) receives the baseline volumes it made;
    ``fid_weights`` (the FID Inception file) adds ``volume["fid"]`` to every result.

    A prediction on an integer-voxel crop of the reference grid (``degrade --crop`` then
    ``upscale``) is scored against the same crop of the reference (and mask); the crop is
    recorded as ``reference_crop`` and the baselines are made from it. A progress bar over
    slices is drawn on a terminal."""
    from mrisr.io import load_volume
    from mrisr.io.atomic import check_writable
    from mrisr.io.geometry import check_same_grid, resolve_axis
    from mrisr.metrics.baselines import baseline_label, baseline_volume
    from mrisr.metrics.scores import evaluate_volume
    from mrisr.metrics.stats import paired_slices
    from mrisr.progress import slice_progress
    from mrisr.report.tables import render

    if not preds and not baselines:
        raise ConfigError("give --pred SR (one or more) or --baseline bicubic|zerofill")
    if output is not None:
        check_writable(output, overwrite)
    net_check = None
    if fid_weights is not None:  # a bad weights file fails before any work
        from mrisr.models.inception import load_fid_inception

        net_check = load_fid_inception(fid_weights)
    assumed: dict[str, list[str]] = {}

    def load(path: Path, **kw):
        vol = load_volume(path, assume_geometry=assume_geometry, **kw)
        if vol.meta.get("assumed_geometry"):
            assumed[str(path)] = list(vol.meta["assumed_geometry"])
        return vol

    ref = load(ref_path)
    mask = None
    if mask_path is not None:
        m = load(mask_path, allow_empty=False)
        check_same_grid(m.shape, m.affine, ref.shape, ref.affine, f"mask '{mask_path}'")
        mask = m.data > 0
    k = resolve_axis(axis, ref.zooms, ref.shape)
    results: dict[str, dict] = {}
    volumes: dict[str, np.ndarray] = {}
    crop = None
    full = ref
    n_slices = ref.shape[k] * (len(preds) + len(baselines))
    bar = slice_progress(progress and sys.stderr.isatty(), n_slices, "evaluating")
    try:
        for p in preds:
            vol = load(p)
            on, box = _reference_on(full, vol, f"prediction '{p}'")
            if crop is None and box is not None and on is not full:
                crop, ref = box, on
                if mask is not None:
                    mask = mask[tuple(slice(a, b) for a, b in box)]
                print(
                    f"note: '{p}' covers the reference crop "
                    + "["
                    + ", ".join(f"{a}:{b}" for a, b in box)
                    + "]; scoring on that crop",
                    file=sys.stderr,
                )
            elif box != crop:
                raise ConfigError(
                    f"prediction '{p}' covers the reference crop {box}, an earlier one {crop}; "
                    "evaluate results of the same crop together"
                )
            results[str(p)] = evaluate_volume(
                vol.data, ref.data, mask=mask, shave=shave, slice_axis=k, progress=bar
            )
            if net_check is not None:
                volumes[str(p)] = vol.data
            del vol
        for b in baselines:
            vol = baseline_volume(ref, b, method, scale, axis)
            if keep_baselines is not None:
                keep_baselines[b] = vol
            name = baseline_label(b, method, scale)
            results[name] = evaluate_volume(
                vol.data, ref.data, mask=mask, shave=shave, slice_axis=k, progress=bar
            )
            if net_check is not None:
                volumes[name] = vol.data
    finally:
        bar(0, done=True)
    if net_check is not None:
        from mrisr.metrics.fid import fid_against_reference

        for name, f in fid_against_reference(ref.data, volumes, net_check, k).items():
            results[name]["volume"] |= {"fid": f["fid"], "fid_slices": f["n"]}
    report: dict[str, Any] = {
        "mrisr_version": __version__,
        "reference": str(ref_path),
        "reference_crop": crop,
        **({"assumed_geometry": assumed} if assumed else {}),
        "slice_axis": k,
        "shave": shave,
        "mask": str(mask_path) if mask_path else None,
        "results": results,
    }
    names = list(results)
    if len(names) == 1:  # the single-result layout: {"volume": ..., "slices": [...]}
        report.update(results[names[0]])
    if len(names) == 2:
        a, b = (results[n] for n in names)
        report["paired"] = {"a": names[0], "b": names[1], **paired_slices(a["slices"], b["slices"])}
    text = render(report, fmt, per_slice)
    emit_text(text, output, overwrite)
    return report


def run_eval_noref(
    images: list[Path],
    axis: int | None,
    fmt: str,
    per_slice: bool,
    output: Path | None,
    overwrite: bool,
    mscn_plot: Path | None = None,
    conflicting: list[str] | None = None,
    assume_geometry: bool = False,
) -> dict:
    """``mrisr eval --no-reference IMG ...``: per slice and per scan, the standard BRISQUE and
    NIQE (``brisque``, ``niqe``: the published natural-image models) and mrisr's MR-fitted
    NIQE (``niqe_mr``) with a BRISQUE feature summary, no reference needed
    (:func:`mrisr.metrics.noref.volume.noref_volume`; the report's ``metrics`` says which is
    which); ``mscn_plot`` also writes the MSCN / paired-product histograms of every scan (the
    report and the figure appear together). ``conflicting``: reference-mode options the user
    gave (refused)."""
    from mrisr.io import load_volume
    from mrisr.io.atomic import atomic_outputs, check_writable
    from mrisr.io.geometry import resolve_axis
    from mrisr.metrics.noref import load_niqe_model, mscn_histograms, to_byte_scale
    from mrisr.metrics.noref.standard import load_brisque_model, load_niqe_params
    from mrisr.metrics.noref.volume import NOREF_METRICS, noref_volume
    from mrisr.report.tables import render

    if conflicting:
        raise ConfigError(
            f"--no-reference scores images without a reference; drop {', '.join(conflicting)}"
        )
    if not images:
        raise ConfigError("--no-reference needs images: mrisr eval --no-reference IMG [IMG ...]")
    if output is not None:
        check_writable(output, overwrite)
    if mscn_plot is not None:
        check_writable(mscn_plot, overwrite)
        if output is not None and Path(output).resolve() == Path(mscn_plot).resolve():
            raise ConfigError("--mscn-plot and --output are the same file; give two names")
    model = load_niqe_model()  # a missing or corrupt model fails before any work
    load_brisque_model()  # so do the standard ones
    load_niqe_params()
    results: dict[str, dict] = {}
    hists: dict[str, dict] = {}
    for p in images:
        vol = load_volume(p, assume_geometry=assume_geometry)
        if vol.data.ndim != 3:
            raise ConfigError(f"'{p}' is not a 3-D scan (shape {vol.data.shape})")
        k = resolve_axis(axis, vol.zooms, vol.shape)
        r = noref_volume(vol.data, k, model)
        r["volume"]["slice_axis"] = k
        if vol.meta.get("assumed_geometry"):
            r["assumed_geometry"] = list(vol.meta["assumed_geometry"])
        results[str(p)] = r
        if mscn_plot is not None:
            v = np.moveaxis(vol.data, k, 0)
            win = r["volume"]["window"]
            scored = (
                to_byte_scale(v[s["index"]], win) for s in r["slices"] if s["niqe_mr"] is not None
            )
            label = Path(p).name if Path(p).name not in hists else str(p)
            hists[label] = mscn_histograms(scored, None, model.foreground)
    report: dict[str, Any] = {
        "mrisr_version": __version__,
        "mode": "no-reference",
        "metrics": NOREF_METRICS,
        "niqe_mr_model": {
            "patch_size": model.patch_size,
            "n_patches": model.meta.get("n_patches"),
            "scans": [s.get("path") for s in model.meta.get("scans", [])],
        },
        "results": results,
    }
    if len(results) == 1:  # the single-result layout, as in reference mode
        report.update(next(iter(results.values())))
    text = render(report, fmt, per_slice)
    if mscn_plot is None:
        emit_text(text, output, overwrite)
        return report
    from mrisr.report.figures import mscn_histogram_plot

    paths = [mscn_plot] + ([output] if output is not None else [])
    with atomic_outputs(paths, overwrite=overwrite) as tmps:
        mscn_histogram_plot(hists, tmps[0])
        if output is not None:
            tmps[1].write_text(text)
    if output is None:  # the report is on stdout: keep it clean
        sys.stdout.write(text)
        print(f"wrote {mscn_plot}", file=sys.stderr)
    else:
        print(f"wrote {output}\nwrote {mscn_plot}")
    return report

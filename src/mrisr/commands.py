"""What the CLI commands do, as plain functions (the CLI only parses options)."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from mrisr import __version__
from mrisr.errors import ConfigError, OutputError


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file (None for folders such as DICOM series)."""
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sidecar_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def write_volume_with_sidecar(volume, out: Path, sidecar: dict, overwrite: bool) -> None:
    """Write a NIfTI and its JSON sidecar together: both appear, or neither does."""
    import nibabel as nib

    from mrisr.io.atomic import _json_default, atomic_outputs
    from mrisr.io.nifti import NIFTI_SUFFIXES, to_nifti_image

    if not str(out).endswith(NIFTI_SUFFIXES):
        raise ConfigError(f"output '{out}' must end with .nii or .nii.gz")
    img = to_nifti_image(volume)
    with atomic_outputs([out, sidecar_path(out)], overwrite=overwrite) as (tmp_img, tmp_json):
        nib.save(img, str(tmp_img))
        tmp_json.write_text(json.dumps(sidecar, indent=2, default=_json_default) + "\n")


def _acquired_record(acq: dict) -> dict:
    """The sidecar entry of :func:`mrisr.metrics.spectrum.acquired_resolution`: the verdict,
    per-axis bandwidths, the header's word and the spectrum's numbers (outer-half energy,
    cutoff drop)."""
    spec = acq["spectrum"]
    return {
        "source": acq["source"],
        "interpolated": acq["interpolated"],
        "bandwidth": acq["bandwidth"],
        "summary": acq["summary"],
        "axes": acq["axes"],
        "header": acq["header"],
        "spectrum": {
            a: {k: e[k] for k in ("outer_half_energy", "bandwidth", "cutoff_drop_db", "cliff")}
            for a, e in spec["axes"].items()
        },
    }


def run_degrade(
    inp: Path,
    out: Path,
    method: str,
    fields: dict[str, Any],
    *,
    axis: int | None,
    seed: int | None,
    crop: bool,
    snr: float | None,
    volume_index: int | None,
    overwrite: bool,
    argv: list[str] | None = None,
) -> dict:
    from mrisr.degrade import degrade_volume, make_degradation
    from mrisr.io import load_volume
    from mrisr.io.atomic import check_writable

    # Fail on the output before doing any work.
    check_writable(out, overwrite)
    check_writable(sidecar_path(out), overwrite)
    steps = [make_degradation(method, **fields)]
    if snr is not None:
        steps.append(make_degradation("rician", snr=snr))
    vol = load_volume(inp, volume_index=volume_index)
    result, record = degrade_volume(vol, steps, axis=axis, crop=crop, seed=seed)
    from mrisr.metrics.spectrum import acquired_resolution

    acq = acquired_resolution(vol.data, vol.zooms, record["slice_axis"], vol.meta)
    record["input_acquired_resolution"] = _acquired_record(acq)
    sidecar = {
        "mrisr_version": __version__,
        "command": " ".join(argv) if argv else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "input": str(inp),
        "input_sha256": file_sha256(Path(inp)),
        "output": str(out),
        **record,
    }
    write_volume_with_sidecar(result, out, sidecar, overwrite)
    for w in record.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    if record.get("crop"):
        box = ", ".join(f"axis {a} [{lo}:{hi}]" for a, (lo, hi) in record["crop"].items())
        print(f"cropped the input to {box} (the LR grid is that crop's)", file=sys.stderr)
    print(
        f"wrote {out} {result.shape} zooms {tuple(round(z, 4) for z in result.zooms)} mm "
        f"and {sidecar_path(out).name}"
    )
    return sidecar


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


def baseline_volume(ref, name: str, method: str, scale: int, axis: int | None):
    """Degrade ``ref`` with ``method`` ×scale, then interpolate back onto the reference grid with
    ``name`` (bicubic, or zero-filled sinc), placing each LR sample where the degradation really
    put it (its recorded grid offset), so no half-pixel shift is charged to the baseline.
    ``bicubic-naive`` is MATLAB ``imresize(lr, s)``, which assumes block-centred LR samples: on
    k-space-truncated images it is misplaced by (s − 1)/2 HR pixels (−3 dB on IXI002 T2 ×2)."""
    import torch

    from mrisr.degrade import degrade_volume, make_degradation
    from mrisr.degrade.kspace import zerofill_upsample
    from mrisr.degrade.resample import bicubic_to_grid

    if method == "thick-slice":
        raise ConfigError("baselines are for in-plane methods; thick-slice has no in-plane scale")
    lr, side = degrade_volume(ref, make_degradation(method, scale=scale), axis=axis, seed=0)
    k = side["slice_axis"]
    h_ax, w_ax = side["in_plane_axes"]
    grid = side["degradation"][0]["grid"]
    offsets = tuple(grid[f"axis{a}"]["offset_voxels"] for a in (h_ax, w_ax))
    order = (k, h_ax, w_ax)
    x = torch.from_numpy(np.ascontiguousarray(np.transpose(lr.data, order)))
    if name == "bicubic-naive":  # imresize ×s as most papers do, whatever the LR grid
        up = bicubic_to_grid(x, scale, ((scale - 1) / 2, (scale - 1) / 2))
    elif name == "bicubic":
        up = bicubic_to_grid(x, scale, offsets)
    else:
        up = zerofill_upsample(x, scale, offsets=offsets)
    data = np.transpose(up.numpy(), np.argsort(order))
    return ref.replace(np.ascontiguousarray(data), ref.affine)


def _emit(text: str, output: Path | None, overwrite: bool) -> None:
    """A report to stdout, or atomically to ``output``."""
    from mrisr.io.atomic import atomic_outputs

    if output is None:
        sys.stdout.write(text)
        return
    with atomic_outputs([output], overwrite=overwrite) as (tmp,):
        tmp.write_text(text)
    print(f"wrote {output}")


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
    from mrisr.metrics import evaluate_volume, paired_tests
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
    ref = load_volume(ref_path)
    mask = None
    if mask_path is not None:
        m = load_volume(mask_path, allow_empty=False)
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
            vol = load_volume(p)
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
            name = f"{b} ({method} x{scale})"
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
        report["paired"] = {"a": names[0], "b": names[1]}
        for metric in ("psnr", "ssim"):
            sa = {s["index"]: s[metric] for s in a["slices"]}
            sb = {s["index"]: s[metric] for s in b["slices"]}
            common = sorted(set(sa) & set(sb))
            # Slices identical to the reference have PSNR = inf: leave those pairs out.
            try:
                report["paired"][metric] = paired_tests(
                    np.array([sa[i] for i in common]),
                    np.array([sb[i] for i in common]),
                    nonfinite="drop",
                )
            except ConfigError as exc:  # too few slices for a test: say so, keep the metrics
                report["paired"][metric] = {"n": len(common), "error": str(exc)}
    text = render(report, fmt, per_slice)
    _emit(text, output, overwrite)
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
) -> dict:
    """``mrisr eval --no-reference IMG ...``: NIQE per slice and per volume and a BRISQUE
    feature summary of each scan, no reference needed; ``mscn_plot`` also writes the MSCN /
    paired-product histograms of every scan (the report and the figure appear together).
    ``conflicting``: reference-mode options the user gave (refused)."""
    from mrisr.io import load_volume
    from mrisr.io.atomic import atomic_outputs, check_writable
    from mrisr.io.geometry import resolve_axis
    from mrisr.metrics.noref import load_niqe_model, mscn_histograms, niqe_volume, to_byte_scale
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
    results: dict[str, dict] = {}
    hists: dict[str, dict] = {}
    for p in images:
        vol = load_volume(p)
        if vol.data.ndim != 3:
            raise ConfigError(f"'{p}' is not a 3-D scan (shape {vol.data.shape})")
        k = resolve_axis(axis, vol.zooms, vol.shape)
        r = niqe_volume(vol.data, k, model)
        r["volume"]["slice_axis"] = k
        results[str(p)] = r
        if mscn_plot is not None:
            v = np.moveaxis(vol.data, k, 0)
            win = r["volume"]["window"]
            scored = (to_byte_scale(v[s["index"]], win) for s in r["slices"])
            label = Path(p).name if Path(p).name not in hists else str(p)
            hists[label] = mscn_histograms(scored, None, model.foreground)
    report: dict[str, Any] = {
        "mrisr_version": __version__,
        "mode": "no-reference",
        "niqe_model": {
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
        _emit(text, output, overwrite)
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


def run_info(inp: Path) -> None:
    import nibabel as nib

    from mrisr.io import load_volume

    vol = load_volume(inp, allow_empty=True)
    axcodes = "".join(nib.orientations.aff2axcodes(vol.affine))
    d = vol.data
    print(
        f"{inp}\n  format      {vol.meta.get('format')}\n  shape       {vol.shape}\n"
        f"  zooms (mm)  {tuple(round(z, 4) for z in vol.zooms)}\n  orientation {axcodes}\n"
        f"  dtype       {vol.orig_dtype}\n  range       [{d.min():.4g}, {d.max():.4g}] "
        f"mean {d.mean():.4g}"
    )
    np.set_printoptions(precision=4, suppress=True)
    print("  affine\n" + "\n".join("    " + str(r) for r in vol.affine))
    if d.ndim == 3 and d.size and float(d.max()) > float(d.min()):
        from mrisr.io.geometry import choose_plane
        from mrisr.metrics.spectrum import acquired_resolution

        plane = choose_plane(vol.zooms, vol.shape)
        acq = acquired_resolution(d, vol.zooms, plane.slice_axis, vol.meta)
        print(f"  plane       {plane.describe()}")
        print(f"  acquired    {acq['summary']}")
        for a, e in acq["spectrum"]["axes"].items():
            if e["outer_half_energy"] is not None:
                cut = (
                    f"a {e['cutoff_drop_db']:.0f} dB cutoff at {round(100 * e['bandwidth'])} % "
                    "of Nyquist"
                    if e["cliff"]
                    else "no cutoff below Nyquist"
                )
                print(
                    f"  spectrum    axis {a}: {100 * e['outer_half_energy']:.3g} % of the energy "
                    f"beyond Nyquist/2, {cut}"
                )


def run_demo(outdir: Path, overwrite: bool, weights: str | None = None) -> dict:
    """Degrade the shipped demo scan by k-space truncation ×2, super-resolve it with the
    shipped default ×2 model, evaluate it next to the bicubic and zero-filled interpolation
    baselines and write volumes, a metrics table and a side-by-side figure to ``outdir``.

    The demo scan is a crop of IXI002 T2, a subject the shipped weights were not trained on.
    """
    from mrisr.data import demo_scan_path
    from mrisr.infer.run import upscale
    from mrisr.report.figures import comparison_panel
    from mrisr.weights import default_weights, shipped_path

    if outdir.exists() and any(outdir.iterdir()) and not overwrite:
        raise OutputError(f"'{outdir}' is not empty; pass --overwrite or choose another folder")
    name = weights or default_weights(2)
    ckpt = shipped_path(name)  # fails before any output if the weights are missing
    outdir.mkdir(parents=True, exist_ok=True)
    scan = demo_scan_path()
    lr_path = outdir / "demo_lr_kspace_x2.nii.gz"
    sr_path = outdir / "demo_sr_x2.nii.gz"
    run_degrade(
        scan,
        lr_path,
        "kspace-truncate",
        {"scale": 2},
        axis=None,
        seed=0,
        crop=False,
        snr=None,
        volume_index=None,
        overwrite=True,
    )
    upscale(lr_path, sr_path, checkpoint=ckpt, overwrite=True, progress=False)
    ups: dict = {}  # the interpolation baselines, made once by run_eval
    report = run_eval(
        scan,
        [sr_path],
        ["bicubic", "zerofill"],
        "kspace-truncate",
        2,
        None,
        None,
        0,
        "json",
        False,
        outdir / "demo_metrics.json",
        True,
        keep_baselines=ups,
    )
    _write_demo_table(report, name, outdir / "demo_metrics.md")
    from mrisr.io import load_volume

    ref = load_volume(scan)
    lr = load_volume(lr_path)
    sr = load_volume(sr_path)
    png = outdir / "demo_comparison.png"
    scores = list(report["results"].values())
    comparison_panel(
        {
            "LR (k-space x2)": lr.data,
            "bicubic": ups["bicubic"].data,
            "zero-filled": ups["zerofill"].data,
            f"mrisr {name}": sr.data,
            "reference": ref.data,
        },
        reference=ref.data,
        path=png,
        overwrite=True,
        metrics={
            "bicubic": scores[1]["volume"],
            "zero-filled": scores[2]["volume"],
            f"mrisr {name}": scores[0]["volume"],
        },
    )
    print(f"wrote {png}")
    return report


def _write_demo_table(report: dict, name: str, path: Path) -> None:
    from mrisr.io.atomic import atomic_outputs

    labels = [f"mrisr {name}", "bicubic", "zero-filled"]
    rows = [
        "| result | PSNR (dB) | SSIM | NMSE |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, res in zip(labels, report["results"].values(), strict=True):
        v = res["volume"]
        rows.append(f"| {label} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v['nmse']:.5f} |")
    text = (
        "Demo: IXI002 T2 crop (held out of training), k-space truncation x2, "
        f"super-resolved with {name}\n\n" + "\n".join(rows) + "\n"
    )
    with atomic_outputs([path], overwrite=True) as (tmp,):
        tmp.write_text(text)
    sys.stdout.write(text)


def run_models(fmt: str) -> list[dict]:
    """Every preset at every scale with its parameter count next to the paper's, and the
    shipped weights; ``fmt`` is md, csv or json.

    The counts come from the table shipped with the model code
    (:func:`mrisr.models.counts.parameter_counts`: the numbers of building each network on the
    meta device, rebuilt when the code's fingerprint differs), so torch is not imported.

    JSON: the list of model rows (as before), each with ``shipped_weights``: the full records
    of :func:`shipped_summary` for that model (path, sha256, held-out PSNRs ...); ``weights``
    keeps their names. CSV: one row per model × scale under a header row.
    """
    from mrisr.models.counts import parameter_counts
    from mrisr.models.registry import REGISTRY
    from mrisr.weights import SHIPPED

    if fmt not in ("md", "csv", "json"):
        raise ConfigError(f"unknown format '{fmt}'; use md, csv or json")
    counts = parameter_counts()
    shipped = shipped_summary() if fmt != "csv" else None
    rows = []
    for name, spec in REGISTRY.items():
        rows.append(
            {
                "name": name,
                "scales": list(spec.scales),
                "params": counts[name],
                "paper_params": spec.paper_params,
                "param_status": spec.param_status,
                "needs_guide": spec.needs_guide,
                "paper": spec.paper,
                "description": spec.description,
                "weights": [w.name for w in SHIPPED.values() if w.model == name],
            }
        )
        if shipped is not None:
            rows[-1]["shipped_weights"] = [w for w in shipped if w["model"] == name]
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return rows
    if fmt == "csv":
        _print_models_csv(rows)
        return rows
    print("| model | scale | parameters | paper | status | description |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for r in rows:
        for s in r["scales"]:
            ours, paper = r["params"][s], r["paper_params"].get(s)
            print(
                f"| {r['name']} | x{s} | {_count(ours)} | {_count(paper)} | "
                f"{_param_status(r, s)} | {r['description']} |"
            )
    print()
    _print_shipped(shipped)
    return rows


def _param_status(row: dict, s: int) -> str:
    """The status of a count: matched / MISMATCH (±n) against an exact paper figure, "no
    paper figure", else the preset's own status (approx, not matched, n/a)."""
    ours, paper = row["params"][s], row["paper_params"].get(s)
    status = row["param_status"]
    if paper is None:
        return "no paper figure"
    if ours is not None and status == "matched":
        return "matched" if ours == paper else f"MISMATCH ({ours - paper:+,})"
    return status


def _print_models_csv(rows: list[dict]) -> None:
    """One CSV row per model × scale (plain integers, empty where unknown), header first."""
    import csv
    import io

    from mrisr.weights import SHIPPED

    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(
        ["model", "scale", "parameters", "paper_parameters", "status", "needs_guide",
         "shipped_weights", "paper", "description"]
    )  # fmt: skip
    for r in rows:
        for s in r["scales"]:
            ours, paper = r["params"][s], r["paper_params"].get(s)
            weights = [n for n in r["weights"] if SHIPPED[n].scale == s]
            out.writerow(
                [r["name"], s, "" if ours is None else ours, "" if paper is None else paper,
                 _param_status(r, s), str(r["needs_guide"]).lower(), ";".join(weights),
                 r["paper"], r["description"]]
            )  # fmt: skip
    sys.stdout.write(buf.getvalue())


def shipped_summary() -> list[dict]:
    """The shipped weights: name, model, scale, degradation, default, ``path`` (the checkpoint
    folder; None when missing from this installation), ``sha256`` (of its model.safetensors)
    and ``test_psnr`` (held-out volume PSNRs of the model / bicubic / zero-fill, from its
    config.json; None without a test record)."""
    from mrisr.weights import DEFAULTS, SHIPPED, shipped_path

    out = []
    for w in SHIPPED.values():
        row: dict[str, Any] = {
            "name": w.name,
            "model": w.model,
            "scale": w.scale,
            "degradation": w.degradation,
            "default": DEFAULTS.get(w.scale) == w.name,
            "path": None,
            "sha256": None,
            "test_psnr": None,
        }
        out.append(row)
        try:
            p = shipped_path(w.name)
        except ConfigError:
            continue
        row["path"] = str(p)
        row["sha256"] = file_sha256(p / "model.safetensors")
        try:
            cfg = json.loads((p / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if row["sha256"] != cfg.get("sha256"):
            print(
                f"warning: shipped weights {w.name}: model.safetensors does not match the "
                "sha256 in its config.json (a damaged installation; reinstall mrisr)",
                file=sys.stderr,
            )
        try:
            test = cfg["training"]["test"]["results"]["volume"]
            row["test_psnr"] = {
                k: test[k]["psnr"] for k in ("sr", "bicubic", "zerofill") if k in test
            }
        except (KeyError, TypeError):
            pass
    return out


def _print_shipped(rows: list[dict] | None = None) -> None:
    print(
        "| shipped weights | model | scale | degradation | default | "
        "held-out PSNR: model / bicubic / zero-fill |"
    )
    print("| --- | --- | ---: | --- | --- | --- |")
    for r in shipped_summary() if rows is None else rows:
        t = r["test_psnr"]
        score = (
            " / ".join(f"{t[k]:.2f}" for k in ("sr", "bicubic", "zerofill") if k in t) + " dB"
            if t
            else "not installed"
            if r["path"] is None
            else "no test record"
        )
        print(
            f"| {r['name']} | {r['model']} | x{r['scale']} | {r['degradation']} | "
            f"{'yes' if r['default'] else ''} | {score} |"
        )


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


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
    text = json.dumps(report, indent=2) + "\n"
    _emit(text, output, overwrite)
    return report

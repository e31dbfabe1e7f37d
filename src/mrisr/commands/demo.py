"""``mrisr demo OUTDIR``: the packaged demo scan degraded, super-resolved and scored."""

from __future__ import annotations

import sys
from pathlib import Path

from mrisr.commands.degrade import run_degrade
from mrisr.commands.evaluate import run_eval
from mrisr.errors import OutputError
from mrisr.metrics.baselines import baseline_label


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
    labels = {  # report key → label
        str(sr_path): f"mrisr {name}",
        baseline_label("bicubic", "kspace-truncate", 2): "bicubic",
        baseline_label("zerofill", "kspace-truncate", 2): "zero-filled",
    }
    scores = {labels[k]: r["volume"] for k, r in report["results"].items()}
    _write_demo_table(scores, name, outdir / "demo_metrics.md")
    from mrisr.io import load_volume

    ref = load_volume(scan)
    lr = load_volume(lr_path)
    sr = load_volume(sr_path)
    png = outdir / "demo_comparison.png"
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
        metrics=scores,
    )
    print(f"wrote {png}")
    curves = {labels[k]: r["slices"] for k, r in report["results"].items()}
    figs = [("comparison (middle slice, error maps)", png.read_bytes())]
    _write_demo_report(outdir, lr, ups["bicubic"], sr, ref, name, scores, sr_path, curves, figs)
    return report


def _write_demo_report(
    outdir: Path, lr, bicubic, sr, ref, name, scores, sr_path, curves, figs
) -> None:
    """``report.html``: LR (nearest neighbour on the reference grid), bicubic, SR and the
    reference in linked niivue views with error maps, the metrics and the SR's provenance."""
    import json

    from mrisr.commands.report import onto_one_grid, paired_against_first
    from mrisr.provenance import sidecar_path
    from mrisr.report.figures import per_slice_curves_png
    from mrisr.report.html import write_report

    vols = onto_one_grid(
        [("LR (k-space x2)", lr), ("bicubic", bicubic), (f"mrisr {name}", sr), ("reference", ref)],
        "reference",
    )
    side = json.loads(sidecar_path(sr_path).read_text())
    keys = ("created", "model", "checkpoint", "checkpoint_sha256", "scale", "device", "seconds")
    prov = {"scan": "IXI002 T2 crop (held out of training), k-space truncation x2"}
    prov.update({k: side.get(k) for k in keys})
    out = write_report(
        outdir / "report.html",
        vols,
        reference_label="reference",
        metrics={k: {m: v.get(m) for m in ("psnr", "ssim", "nmse")} for k, v in scores.items()},
        provenance=prov,
        notes=["LR is shown by nearest neighbour on the reference grid (its own voxels)."],
        title=f"mrisr demo: {name} on IXI002 T2, k-space truncation x2",
        figures=[("PSNR and SSIM per slice", per_slice_curves_png(curves)), *figs],
        paired=paired_against_first(curves),
        overwrite=True,
    )
    print(f"wrote {out}")


def _write_demo_table(scores: dict[str, dict], name: str, path: Path) -> None:
    """``scores``: label → volume metrics, in the order of the table."""
    from mrisr.io.atomic import atomic_outputs

    rows = [
        "| result | PSNR (dB) | SSIM | NMSE |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, v in scores.items():
        rows.append(f"| {label} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v['nmse']:.5f} |")
    text = (
        "Demo: IXI002 T2 crop (held out of training), k-space truncation x2, "
        f"super-resolved with {name}\n\n" + "\n".join(rows) + "\n"
    )
    with atomic_outputs([path], overwrite=True) as (tmp,):
        tmp.write_text(text)
    sys.stdout.write(text)

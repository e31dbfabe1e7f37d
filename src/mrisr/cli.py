"""The ``mrisr`` command line. Every command lazy-imports what it needs, so ``mrisr --help``
starts fast; user errors print one line and exit with status 2."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mrisr.commands import options as opt
from mrisr.commands.options import (
    Adapt,
    AdaptSteps,
    AssumeGeometry,
    Baseline,
    Combine,
    Fmt,
    Method,
    TPCombine,
    TPConsistency,
    TPFromScratch,
    TPProfile,
    TPRunDir,
    TPSteps,
    TPThickness,
    TPVoxel,
)

app = typer.Typer(
    name="mrisr",
    help="MRI super-resolution toolkit: super-resolve, degrade and evaluate real scans.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from mrisr import __version__

        typer.echo(f"mrisr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="print the version (mrisr X.Y.Z) and exit",
    ),
) -> None:
    """MRI super-resolution toolkit: super-resolve, degrade and evaluate real scans."""


@app.command()
def degrade(
    inp: Path = typer.Argument(
        ..., metavar="IN", help="HR scan: NIfTI/MGZ, DICOM, .h5, .png, .npy"
    ),
    out: Path = typer.Argument(..., metavar="OUT", help="LR output, .nii or .nii.gz"),
    method: Method = typer.Option(..., "--method", "-m", help="acquisition model"),
    scale: int | None = typer.Option(
        None, "--scale", "-s", min=1, help="in-plane factor [default: 2; kernel: its sidecar's]"
    ),
    axis: int | None = typer.Option(
        None, help="slice axis (default: the one off the plane that shares a spacing)"
    ),
    seed: int | None = typer.Option(None, help="seed of every random draw (noise)"),
    kernel: Path | None = typer.Option(
        None, help="kernel: the .npy blur kernel (from mrisr learn-kernel)"
    ),
    crop: bool = typer.Option(False, help="crop centrally when the scale does not divide"),
    sigma: float | None = typer.Option(None, help="gaussian: σ in HR pixels"),
    fwhm_mm: float | None = typer.Option(None, help="gaussian: PSF FWHM in mm"),
    kspace_axes: str = typer.Option("both", help="kspace-truncate: both, h or w"),
    keep_mean: bool = typer.Option(True, help="k-space methods: keep the mean intensity"),
    fermi_radius: float = typer.Option(1.0, help="zerofill: Fermi radius / half-width"),
    fermi_width: float = typer.Option(1 / 16, help="zerofill: Fermi width / half-width"),
    same_grid: bool = typer.Option(False, help="zerofill: keep the HR grid (no decimation)"),
    thickness: float = typer.Option(3.0, help="thick-slice: slice thickness in mm (FWHM)"),
    spacing: float | None = typer.Option(None, help="thick-slice: slice spacing in mm"),
    profile: str = typer.Option("rect", help="thick-slice: rect or gaussian profile"),
    snr: float | None = typer.Option(None, help="add Rician noise at this SNR afterwards"),
    volume_index: int | None = typer.Option(None, min=0, help="volume of a 4-D input"),
    assume_geometry: AssumeGeometry = False,
    overwrite: bool = typer.Option(False, help="replace OUT and OUT.json if they exist"),
) -> None:
    """Simulate a lower-resolution acquisition of IN; write OUT and the sidecar OUT.json."""
    from mrisr.commands.degrade import method_fields, run_degrade

    fields = method_fields(
        method.value, scale, kernel=kernel, sigma=sigma, fwhm_mm=fwhm_mm,
        kspace_axes=kspace_axes, keep_mean=keep_mean, fermi_radius=fermi_radius,
        fermi_width=fermi_width, same_grid=same_grid, thickness=thickness, spacing=spacing,
        profile=profile,
    )  # fmt: skip
    run_degrade(
        inp,
        out,
        method.value,
        fields,
        axis=axis,
        seed=seed,
        crop=crop,
        snr=snr,
        volume_index=volume_index,
        overwrite=overwrite,
        argv=sys.argv,
        assume_geometry=assume_geometry,
    )


@app.command("eval")
def evaluate(
    images: list[Path] = typer.Argument(
        None, metavar="IMG", help="--no-reference: the scans to score"
    ),
    ref: Path | None = typer.Option(None, "--ref", help="reference HR scan"),
    pred: list[Path] = typer.Option(None, "--pred", help="SR result(s) on the reference grid"),
    baseline: list[Baseline] = typer.Option(
        None,
        help="interpolation baseline: bicubic, zerofill (both on the LR grid's true "
        "positions) or bicubic-naive (plain imresize ×s)",
    ),
    method: Method = typer.Option(Method.bicubic, help="baseline mode: degradation of --ref"),
    scale: int = typer.Option(2, min=1, help="baseline mode: scale"),
    axis: int | None = typer.Option(
        None, help="slice axis (default: the one off the plane that shares a spacing)"
    ),
    mask: Path | None = typer.Option(None, help="foreground mask on the reference grid"),
    shave: int = typer.Option(0, min=0, help="ignore this many border pixels per slice"),
    fmt: Fmt = typer.Option(Fmt.md, "--format", help="md, csv or json"),
    slices: bool = typer.Option(False, "--slices", help="md: list every slice"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write here, not stdout"),
    overwrite: bool = typer.Option(False, help="replace --output if it exists"),
    fid: Path | None = typer.Option(
        None,
        "--fid",
        help="FID Inception weights (pt_inception-2015-12-05-6726825d.pth): also report the "
        "FID between the reference's slices and each result's",
    ),
    no_reference: bool = typer.Option(
        False,
        "--no-reference",
        help="score IMG ... without a reference, per slice and per volume: standard BRISQUE "
        "and NIQE (published natural-image models), NIQE-MR (mrisr's MR model), MSCN summary",
    ),
    mscn_plot: Path | None = typer.Option(
        None, "--mscn-plot", help="--no-reference: also write MSCN histograms here (PNG)"
    ),
    assume_geometry: AssumeGeometry = False,
) -> None:
    """PSNR / SSIM / NMSE of SR results (or interpolation baselines) against a reference, per
    slice and per volume; with two results, paired t-test and Wilcoxon between them; with
    --fid, the FID of each result's slices against the reference's. With --no-reference IMG
    ..., no-reference quality of each scan instead (standard BRISQUE / NIQE, NIQE-MR, MSCN)."""
    from mrisr.errors import ConfigError

    if no_reference:
        from mrisr.commands.evaluate import run_eval_noref

        given = {"--ref": ref, "--pred": pred, "--baseline": baseline, "--mask": mask}
        given |= {"--fid": fid, "--shave": shave}
        run_eval_noref(
            list(images or []),
            axis,
            fmt.value,
            slices,
            output,
            overwrite,
            mscn_plot=mscn_plot,
            conflicting=[k for k, v in given.items() if v],
            assume_geometry=assume_geometry,
        )
        return
    if images:
        raise ConfigError(
            f"unexpected argument '{images[0]}': images are scored without a reference only "
            "with --no-reference; against a reference give --ref HR --pred SR"
        )
    if mscn_plot is not None:
        raise ConfigError("--mscn-plot is for --no-reference")
    if ref is None:
        raise ConfigError("give --ref HR with --pred SR or --baseline, or --no-reference IMG ...")
    from mrisr.commands.evaluate import run_eval

    run_eval(
        ref,
        list(pred or []),
        [b.value for b in (baseline or [])],
        method.value,
        scale,
        axis,
        mask,
        shave,
        fmt.value,
        slices,
        output,
        overwrite,
        fid_weights=fid,
        assume_geometry=assume_geometry,
    )


@app.command()
def fid(
    set_a: list[Path] = typer.Option(..., "--a", help="first set: scans, folders or .txt lists"),
    set_b: list[Path] = typer.Option(..., "--b", help="second set"),
    weights: Path = typer.Option(
        ..., "--weights", help="FID Inception weights (pt_inception-2015-12-05-6726825d.pth)"
    ),
    axis: int | None = typer.Option(
        None, help="slice axis (default: the one off the plane that shares a spacing)"
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="write JSON here"),
    overwrite: bool = typer.Option(False, help="replace --output if it exists"),
) -> None:
    """FID between the slices of two sets of scans (e.g. all SR results vs all references);
    grey slices are repeated to 3 channels, each scan windowed by its min and 99.5th
    percentile."""
    from mrisr.commands.fid import run_fid

    run_fid(list(set_a), list(set_b), weights, axis, output, overwrite)


@app.command()
def info(
    inp: Path = typer.Argument(..., metavar="IN"),
    assume_geometry: AssumeGeometry = False,
) -> None:
    """Print shape, voxel size, orientation, intensity range, plane and acquired resolution."""
    from mrisr.commands.info import run_info

    run_info(inp, assume_geometry=assume_geometry)


@app.command()
def demo(
    outdir: Path = typer.Argument(Path("mrisr-demo"), help="folder for the demo outputs"),
    overwrite: bool = typer.Option(False, help="replace outputs of an earlier run"),
    weights: str | None = typer.Option(None, help="shipped x2 weights to use (default: k-space)"),
) -> None:
    """Super-resolve the shipped real demo scan (IXI002 T2 crop, k-space truncation x2) with
    the default model; write volumes, metrics and a side-by-side figure."""
    from mrisr.commands.demo import run_demo

    run_demo(outdir, overwrite, weights)


@app.command()
def upscale(
    inputs: list[Path] = typer.Argument(
        ..., metavar="IN...", help="scans, DICOM series folders, folders of scans or .txt lists"
    ),
    out: Path = typer.Argument(..., metavar="OUT", help="output NIfTI (one input) or folder"),
    checkpoint: Path | None = typer.Option(None, help="checkpoint folder (safetensors + JSON)"),
    weights: str | None = typer.Option(
        None, help="shipped weights by name (see `mrisr models`); default: by --scale"
    ),
    model: str | None = typer.Option(None, help="check (or pick shipped weights by) model name"),
    scale: int | None = typer.Option(
        None, min=1, help="x2 or x4 with the shipped defaults; with --checkpoint, a check"
    ),
    axis: int | None = typer.Option(
        None,
        help="slice axis (default: a mrisr degrade sidecar's, else the axis whose spacing the "
        "other two do not share)",
    ),
    force_plane: bool = typer.Option(
        False,
        "--force-plane",
        help="run even across in-plane axes whose spacings differ by more than 1.4x",
    ),
    clamp: bool = typer.Option(
        True,
        help="clip the output to the input's range: >= 0 for magnitude images, <= the "
        "integer storage maximum (255 for uint8); --no-clamp keeps the raw network output",
    ),
    tile: int = typer.Option(
        0, help="tile size in LR pixels: 0 whole slices, -1 from --max-memory, else >= 32"
    ),
    max_memory: float | None = typer.Option(None, help="MB bound for one forward: picks tiles"),
    batch: int = typer.Option(4, min=1, help="slices per forward"),
    ensemble: bool = typer.Option(False, help="x8 geometric self-ensemble ('+' models)"),
    device: str = typer.Option("auto", help="auto, cpu, cuda[:N] or mps"),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the model"),
    progress: bool = typer.Option(True, help="show a progress bar"),
    overwrite: bool = typer.Option(False, help="replace existing outputs"),
    guide: Path | None = typer.Option(
        None,
        help="multi-contrast models: the high-resolution scan of the guide contrast (e.g. T1), "
        "resampled onto the output grid through both headers",
    ),
    assume_geometry: AssumeGeometry = False,
    through_plane: bool = typer.Option(
        False,
        "--through-plane",
        help="restore the slice direction of a thick-slice scan, learned from the scan's own "
        "in-plane slices (docs/through-plane.md)",
    ),
    thickness: TPThickness = None,
    profile: TPProfile = "rect",
    steps: TPSteps = 300,
    voxel: TPVoxel = None,
    consistency: TPConsistency = False,
    combine: TPCombine = Combine.mean,
    from_scratch: TPFromScratch = False,
    run_dir: TPRunDir = None,
    adapt: Adapt = False,
    adapt_steps: AdaptSteps = 200,
    bids: opt.Bids = False,
    suffix: opt.BidsSuffix = "T2w",
    participants: opt.BidsParticipants = None,
    report: opt.Report = False,
) -> None:
    """Super-resolve scans in-plane with a trained model, or their slice direction with
    --through-plane; writes NIfTI + JSON sidecar each. Under torchrun the scans are split
    across ranks."""
    from mrisr.commands.upscale import run_through_plane, run_upscale

    if through_plane:
        tp = {"thickness": thickness, "profile": profile, "steps": steps, "axis": axis,
              "voxel": voxel, "combine": combine.value, "from_scratch": from_scratch,
              "run_dir": run_dir, "scale": scale, "weights": weights, "bids": bids,
              "report": report}  # fmt: skip
        run_through_plane(inputs, out, checkpoint=checkpoint, overwrite=overwrite, argv=sys.argv,
                          device=device, progress=progress, assume_geometry=assume_geometry,
                          consistency=consistency, **tp)  # fmt: skip
        return
    run_upscale(inputs, out, checkpoint=checkpoint, weights=weights, model=model, scale=scale,
                guide=guide, overwrite=overwrite, argv=sys.argv, axis=axis, force_plane=force_plane,
                clamp=clamp, tile=tile, max_memory_mb=max_memory, batch=batch, ensemble=ensemble,
                device=device, compile=compile_model, progress=progress, bids=bids, suffix=suffix,
                assume_geometry=assume_geometry, consistency=consistency,
                participants=participants, adapt_steps=adapt_steps if adapt else None,
                report=report)  # fmt: skip


@app.command(context_settings={"allow_extra_args": False})
def train(
    config: str = typer.Argument(..., metavar="CONFIG", help="recipe YAML or a recipe name"),
    overrides: list[str] = typer.Argument(None, metavar="[KEY=VALUE]...", help="overrides"),
    resume: bool = typer.Option(False, help="continue the run in --run-dir from its last state"),
    run_dir: Path | None = typer.Option(None, help="run folder (default: runs/<name>)"),
    stop_at: int | None = typer.Option(
        None, min=1, help="stop after this step as if killed (resume later with --resume)"
    ),
) -> None:
    """Train a model from a recipe (configs/*.yaml or a packaged recipe name such as smoke)."""
    from mrisr.commands.train import run_train

    run_train(config, list(overrides or []), resume=resume, run_dir=run_dir, stop_at=stop_at)


@app.command("learn-kernel")
def learn_kernel(
    out: Path = typer.Argument(..., metavar="OUT", help="kernel .npy (OUT.json, OUT.png beside)"),
    hr: Path | None = typer.Option(None, "--hr", help="HR scan (the sharp acquisition)"),
    lr: Path = typer.Option(..., "--lr", help="real LR scan (unpaired), or the thick-slice scan"),
    scale: int | None = typer.Option(None, "--scale", "-s", help="2 or 4 (not --through-plane)"),
    steps: int | None = typer.Option(None, min=1, help="iterations (3000; profile: its recipe's)"),
    slice_index: int | None = typer.Option(
        None, "--slice", min=0, help="learn from this HR slice only (per-slice, as the paper)"
    ),
    denoise: bool = typer.Option(False, help="non-local-means denoise the LR slices first"),
    seed: int = typer.Option(0, help="seed of the crops and the initialisation"),
    axis: int | None = typer.Option(None, help="slice axis (default: off the in-plane pair)"),
    through_plane: bool = typer.Option(False, help="learn --lr's 1-D slice profile from itself"),
    profile: str | None = typer.Option(None, help="--through-plane: write this rect|gaussian one"),
    thickness: float | None = typer.Option(None, help="with --profile: its FWHM in mm"),
    run_dir: Path | None = typer.Option(None, help="keep the training run here (logs, curves)"),
    overwrite: bool = typer.Option(False, help="replace OUT, OUT.json and OUT.png"),
) -> None:
    """Learn the scanner's HR → LR blur kernel from unpaired slices of two scans (DSGAN), for
    `mrisr degrade --method kernel --kernel OUT`; or, with --through-plane, the slice profile
    of one thick-slice scan from the scan itself (ESPRESO's idea), or write a known one."""
    from mrisr.commands.learn_kernel import run_learn_kernel as run

    run(hr, lr, scale, out, steps=steps, slice_index=slice_index, denoise=denoise, seed=seed,
        axis=axis, run_dir=run_dir, overwrite=overwrite, argv=sys.argv,
        through_plane=through_plane, profile=profile, thickness=thickness)  # fmt: skip


@app.command()
def models(
    fmt: Fmt = typer.Option(
        Fmt.md,
        "--format",
        help="md (two tables), csv (one row per model x scale) or json (model rows, each "
        "with its shipped_weights: path, sha256, held-out PSNRs)",
    ),
) -> None:
    """List every model with its parameter count per scale next to the paper's, and the
    shipped weights."""
    from mrisr.commands.models import run_models

    run_models(fmt.value)


@app.command()
def export(
    checkpoint: opt.ExportCheckpoint,
    onnx: Path = typer.Option(..., "--onnx", help="output .onnx file"),
    opset: int = typer.Option(17, help="ONNX opset"),
    bare: opt.ExportBare = False,
    overwrite: bool = typer.Option(False, help="replace the output if it exists"),
) -> None:
    """Export a checkpoint to ONNX (dynamic batch, height and width), checked in onnxruntime.

    The graph takes lr [B,1,h,w] in the scan's intensities and stats [N,2] = (offset, scale)
    fitted on the whole volume (the rule is in the metadata mrisr_normalisation), and returns
    sr in the scan's intensities."""
    from mrisr.commands.export import run_export

    run_export(checkpoint, onnx, opset=opset, bare=bare, overwrite=overwrite)


@app.command()
def report(
    out: opt.RPOut,
    volumes: opt.RPVolumes = None,
    labels: opt.RPLabels = None,
    ref: opt.RPRef = None,
    resample: opt.RPResample = False,
    metrics: opt.RPMetrics = None,
    kernel: opt.RPKernel = None,
    overwrite: bool = typer.Option(False, help="replace OUT if it exists"),
) -> None:
    """One self-contained HTML report: the volumes in linked niivue views (docs/report.md)."""
    from mrisr.commands.report import run_report

    run_report(out, volumes, labels, ref, resample, overwrite, metrics, kernel=kernel)


@app.command("convert-pth")
def convert_pth(
    pth: Path = typer.Argument(..., metavar="PTH", help="legacy PyTorch weights (.pth/.pt)"),
    out: Path = typer.Argument(..., metavar="OUT", help="checkpoint folder to create"),
    model: str = typer.Option(..., help="registry name of the network"),
    scale: int = typer.Option(..., help="the weights' scale"),
    overwrite: bool = typer.Option(False, help="replace OUT if it exists"),
) -> None:
    """Convert legacy .pth weights into a safe checkpoint (loaded with weights_only=True;
    a file holding anything but tensors is refused, never unpickled)."""
    from mrisr.commands.convert import run_convert_pth

    run_convert_pth(pth, out, model, scale, overwrite)


def main() -> None:
    """The console script: every error is one line on stderr (:mod:`mrisr.commands.entry`)."""
    from mrisr.commands.entry import run_app

    raise SystemExit(run_app(app))

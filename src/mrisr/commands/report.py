"""``mrisr report OUT.html VOLUME... [--labels] [--ref REF] [--resample]``: one
self-contained interactive HTML report (linked niivue viewers, :mod:`mrisr.report.html`)."""

from __future__ import annotations

import time
from pathlib import Path

from mrisr.errors import ConfigError, InputError


def _stem(p: Path) -> str:
    name = p.name
    for ext in (".nii.gz", ".nii", ".mgz", ".h5", ".npy", ".png"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def report_labels(paths: list[Path], labels: list[str] | None) -> list[str]:
    """``--labels`` (repeated, or comma-separated) or the file names without extension."""
    if not labels:
        out = [_stem(p) for p in paths]
    else:
        out = [x.strip() for lab in labels for x in lab.split(",") if x.strip()]
        if len(out) != len(paths):
            raise ConfigError(f"--labels gives {len(out)} labels for {len(paths)} volumes")
    if len(set(out)) != len(out):
        raise ConfigError(f"labels must be unique, got {out}; pass --labels")
    return out


def run_report(
    out: Path,
    volumes: list[Path],
    labels: list[str] | None = None,
    ref: Path | None = None,
    resample: bool = False,
    overwrite: bool = False,
    metrics: Path | None = None,
    provenance: dict | None = None,
    kernel: Path | None = None,
) -> Path:
    """Load the volumes (and ``ref``, labelled ``reference`` unless it is one of them), check
    that they share one grid (or, with ``resample``, resample them by nearest neighbour onto
    the reference's grid, else the finest one), and write the report atomically.

    ``kernel``: a ``mrisr learn-kernel`` output (2-D kernel or 1-D slice profile, ``.npy``):
    its PSF plot and sidecar join the report; with no volumes, the scan it was learned from
    is shown."""
    from mrisr.io import load_volume
    from mrisr.io.atomic import check_writable
    from mrisr.report.html import check_grids, write_report

    if not out.name.lower().endswith((".html", ".htm")):
        raise ConfigError(f"output '{out}' should end in .html")
    check_writable(out, overwrite)  # before loading anything
    paths = list(volumes or [])
    kfigs, kprov = [], {}
    if kernel is not None:
        kfigs, kprov, scan = kernel_part(kernel)
        if not paths:
            if scan is None or not scan.exists():
                raise InputError(
                    f"kernel sidecar names no scan that exists ({scan}); give the volumes to show"
                )
            paths = [scan]
    if not paths:
        raise ConfigError("give at least one VOLUME to show (or --kernel K.npy)")
    for p in paths + [x for x in (ref, metrics) if x is not None]:
        if not p.exists():
            raise InputError(f"volume '{p}' does not exist")
    names = report_labels(paths, labels)
    ref_label = None
    if ref is not None:
        same = [i for i, p in enumerate(paths) if p.resolve() == ref.resolve()]
        if same:
            ref_label = names[same[0]]
        else:
            ref_label = "reference" if "reference" not in names else _stem(ref)
            paths.append(ref)
            names.append(ref_label)
    table, figures, paired = eval_tables(metrics, dict(zip(paths, names, strict=True)))
    pairs = [(n, load_volume(p)) for n, p in zip(names, paths, strict=True)]
    if resample:
        pairs = onto_one_grid(pairs, ref_label)
    check_grids(pairs)
    notes = [
        f"{n}: resampled (nearest neighbour) onto the shared grid"
        for n, v in pairs
        if v.meta.get("report_resampled")
    ]
    prov = {
        "command": "mrisr report",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "inputs": {n: str(p) for n, p in zip(names, paths, strict=True)},
        "reference": ref_label or "-",
        **(provenance or {}),
        **({"kernel": kprov} if kprov else {}),
    }
    write_report(
        out,
        pairs,
        reference_label=ref_label,
        metrics=table,
        provenance=prov,
        notes=notes,
        figures=[*kfigs, *figures],
        paired=paired,
        title=f"mrisr report: {', '.join(names)}",
        overwrite=overwrite,
    )
    print(f"wrote {out}")
    return out


def eval_tables(path: Path | None, labels: dict[Path, str]) -> tuple[dict | None, list, list]:
    """From an ``mrisr eval --format json`` report: the volume metrics per result, a
    per-slice PSNR/SSIM figure and paired tests over slices of the first result (the
    prediction; eval lists baselines after it) against each other one; results named by a
    volume's path get that volume's label."""
    if path is None:
        return None, [], []
    import json

    from mrisr.report.figures import per_slice_curves_png

    try:
        results = json.loads(path.read_text())["results"]
        by_path = {str(p.resolve()): lab for p, lab in labels.items()}
        names = {k: by_path.get(str(Path(k).resolve()), k) for k in results}
        table = {names[k]: r["volume"] for k, r in results.items()}
        curves = {names[k]: r["slices"] for k, r in results.items() if r.get("slices")}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"'{path}' is not an mrisr eval JSON report ({exc!r})") from exc
    figs = [("PSNR and SSIM per slice", per_slice_curves_png(curves))] if curves else []
    return table, figs, paired_against_first(curves)


def kernel_part(path: Path) -> tuple[list[tuple[str, bytes]], dict, Path | None]:
    """A learn-kernel output: its PSF plot (the ``.png`` beside it, else drawn again), its
    sidecar (never unpickled: the readers check the ``.npy`` header) and the scan it was
    learned from (``scan``, or ``lr`` for a 2-D kernel), if the sidecar names one."""
    import io

    import numpy as np

    if not path.is_file():
        raise InputError(f"kernel '{path}' does not exist")
    if path.suffix != ".npy":
        raise InputError(f"kernel '{path}' must be a .npy written by mrisr learn-kernel")
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else None
            shape = (read or np.lib.format.read_array_header_2_0)(f)[0]
        except (ValueError, OSError, EOFError) as e:
            raise InputError(f"kernel '{path}' is not a readable .npy array ({e})") from None
    if len(shape) == 1:
        from mrisr.degrade.profile import profile_plot, read_profile

        k, meta = read_profile(path)
        caption = "slice profile (PSF along the slice axis)"
    else:
        from mrisr.degrade.kernel import psf_plot, read_kernel

        k, meta = read_kernel(path)
        caption = "learned kernel (PSF)"
    png = path.with_suffix(".png")
    if png.is_file():
        data = png.read_bytes()
    else:
        buf = io.BytesIO()
        if k.ndim == 1:
            profile_plot(k, buf, meta)
        else:
            psf_plot(k, buf, title=meta.get("title"), scale=meta.get("scale"))
        data = buf.getvalue()
    prov = {"file": str(path), **{k_: v for k_, v in meta.items() if k_ != "title"}}
    scan = meta.get("scan") or meta.get("lr")
    if scan is not None and not Path(scan).is_absolute():
        scan = str(path.parent / scan) if not Path(scan).exists() else scan
    return [(caption, data)], prov, Path(scan) if scan else None


def paired_against_first(curves: dict[str, list]) -> list[dict]:
    """Paired tests (:func:`mrisr.metrics.stats.paired_slices`) of the first result's
    per-slice PSNR/SSIM against each other result's."""
    from mrisr.metrics.stats import paired_slices

    names = list(curves)
    return [
        {"a": names[0], "b": b, **paired_slices(curves[names[0]], curves[b])} for b in names[1:]
    ]


def onto_one_grid(pairs: list, ref_label: str | None) -> list:
    """Every volume on the reference's grid (else the one with the most voxels), nearest
    neighbour so that low-resolution voxels stay visible as they are."""
    from mrisr.data.pairs import resample_to_grid
    from mrisr.report.html import same_grid

    target = dict(pairs)[ref_label] if ref_label else max((v for _, v in pairs), key=_size)
    out = []
    for n, v in pairs:
        if not same_grid(v, target):
            data, _ = resample_to_grid(v.data, v.affine, target.affine, target.shape, order=0)
            v = v.replace(data, target.affine.copy(), report_resampled=True)
        out.append((n, v))
    return out


def _size(v) -> int:
    return int(v.data.size)

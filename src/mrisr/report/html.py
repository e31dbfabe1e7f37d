"""A self-contained interactive HTML report: linked niivue viewers, tables and notes.

One file that opens with no network: the vendored niivue bundle (``vendor/niivue``, BSD-2-Clause,
pinned by ``scripts/vendor_niivue.sh``) is inlined, and every volume is embedded as a gzip'd
NIfTI in base64 (10-bit levels in int16 with the NIfTI scale and offset; error maps in uint8).
Each volume gets its own niivue canvas (axial, coronal and sagittal); the canvases share one
crosshair, zoom, slice layout and display window, and with a reference each other viewer
carries an |volume − reference| overlay. Volumes too large for ``max_bytes`` are cropped
around the foreground, and the report says so (:func:`fit_to_budget`).

``window.mrisrReport`` is the page's hook for tests: ``loaded`` (viewers whose volumes have
loaded), ``ready``, ``crosshair(i)`` (mm) and ``setCrosshair(i, mm)`` (moves viewer ``i``
and, through the link, the others). docs/report.md describes the page.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.errors import ConfigError, InputError
from mrisr.io.atomic import atomic_outputs, check_writable, json_ready
from mrisr.io.volume import Volume

#: Default size bound of a report (bytes): a 256×256×130 comparison of four volumes fits.
MAX_BYTES = 30_000_000
#: Grey levels of an embedded volume (10 bits: four times a display's, and it compresses well).
LEVELS = 1023


def same_grid(a: Volume, b: Volume, atol: float = 1e-3) -> bool:
    """Same shape and the same voxel → world affine (to ``atol`` mm)."""
    return a.shape == b.shape and bool(np.allclose(a.affine, b.affine, atol=atol))


def check_grids(volumes: Sequence[tuple[str, Volume]]) -> None:
    """Refuse volumes that are not on the first one's grid, naming the first that differs."""
    label0, v0 = volumes[0]
    for label, v in volumes[1:]:
        if not same_grid(v0, v):
            raise InputError(
                f"'{label}' ({_grid(v)}) is not on the grid of '{label0}' ({_grid(v0)}); "
                "resample it onto one grid first (mrisr report --resample)"
            )


def _grid(v: Volume) -> str:
    z = "x".join(f"{s:.3g}" for s in v.zooms)
    return "x".join(map(str, v.shape)) + f" voxels of {z} mm"


def nifti_gz(data: np.ndarray, affine: np.ndarray, levels: int = LEVELS) -> bytes:
    """``data`` as gzip'd NIfTI-1 bytes, quantised to ``levels`` steps (int16 when levels >
    255, else uint8) with the NIfTI scale and offset restoring the intensities."""
    import nibabel as nib

    data = np.nan_to_num(np.asarray(data, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    slope = (hi - lo) / levels if hi > lo else 1.0
    dtype = np.int16 if levels > 255 else np.uint8
    q = np.clip(np.rint((data - lo) / slope), 0, levels).astype(dtype)
    img = nib.Nifti1Image(q, affine)
    img.header.set_data_dtype(dtype)
    img.header.set_slope_inter(slope, lo)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def _crop_affine(affine: np.ndarray, start: Sequence[int]) -> np.ndarray:
    out = np.array(affine, dtype=np.float64)
    out[:3, 3] = affine[:3, :3] @ np.asarray(start, np.float64) + affine[:3, 3]
    return out


def foreground_box(data: np.ndarray, margin: int = 4) -> tuple[slice, ...]:
    """The bounding box of voxels above 5 % of the 99th percentile, with ``margin`` voxels."""
    finite = np.nan_to_num(data)
    thr = 0.05 * float(np.percentile(finite, 99)) if finite.size else 0.0
    idx = np.nonzero(finite > thr)
    if not idx[0].size:
        return tuple(slice(0, s) for s in data.shape)
    return tuple(
        slice(max(0, int(i.min()) - margin), min(s, int(i.max()) + margin + 1))
        for i, s in zip(idx, data.shape, strict=True)
    )


def _shrink(box: tuple[slice, ...], factor: float) -> tuple[slice, ...]:
    """``box`` scaled by ``factor`` per axis about its centre (at least one voxel)."""
    out = []
    for s in box:
        n = s.stop - s.start
        m = max(1, min(n, int(n * factor)))
        a = s.start + (n - m) // 2
        out.append(slice(a, a + m))
    return tuple(out)


def fit_to_budget(
    arrays: Sequence[np.ndarray],
    errors: Sequence[np.ndarray | None],
    affine: np.ndarray,
    budget: int,
    box_from: np.ndarray,
) -> tuple[list[str], list[str | None], np.ndarray, str | None]:
    """Encode ``arrays`` (and error maps) as base64 NIfTI; crop, if the total is over
    ``budget`` bytes, first to the foreground of ``box_from`` and then ever smaller centred
    boxes. Returns the encodings, the (cropped) affine and a note saying what was cropped."""
    shape = arrays[0].shape
    emax = max((float(np.percentile(e, 99.9)) for e in errors if e is not None), default=0.0)
    box = tuple(slice(0, s) for s in shape)
    for attempt in range(8):
        aff = _crop_affine(affine, [s.start for s in box])
        vols = [_b64(nifti_gz(a[box], aff)) for a in arrays]
        errs = [
            None if e is None else _b64(nifti_gz(np.minimum(e[box], emax or 1.0), aff, 255))
            for e in errors
        ]
        total = sum(len(v) for v in vols) + sum(len(e) for e in errs if e is not None)
        if total <= budget:
            break
        if attempt == 0:
            fg = foreground_box(box_from)
            if any(f.stop - f.start < s for f, s in zip(fg, shape, strict=True)):
                box = fg
                continue
        box = _shrink(box, 0.97 * (budget / total) ** (1 / 3))
    else:
        raise ConfigError(
            f"the volumes do not fit in {budget / 1e6:.0f} MB even when cropped; "
            "pass fewer volumes or a larger size bound"
        )
    note = None
    if tuple(s.stop - s.start for s in box) != tuple(shape):
        sub = "x".join(str(s.stop - s.start) for s in box)
        where = ", ".join(f"{s.start}:{s.stop}" for s in box)
        note = (
            f"To keep the report under {budget / 1e6:.0f} MB the volumes are shown cropped to "
            f"{sub} voxels (region [{where}] of the {'x'.join(map(str, shape))} grid); the "
            "metrics are those of the whole volumes."
        )
    return vols, errs, aff, note


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def niivue_bundle() -> str:
    """The vendored niivue UMD bundle (defines ``window.niivue``)."""
    ref = resources.files("mrisr.report").joinpath("vendor", "niivue", "niivue.umd.js")
    text = ref.read_text(encoding="utf-8")
    if "</script" in text.lower():  # would end the inline <script> early
        raise RuntimeError("the vendored niivue bundle contains '</script'; cannot inline it")
    return text


def niivue_version() -> str:
    ref = resources.files("mrisr.report").joinpath("vendor", "niivue", "VERSION")
    return " ".join(ref.read_text(encoding="utf-8").split()[:2])  # "@niivue/niivue X.Y.Z"


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v)
    if isinstance(v, float | np.floating):
        return "-" if not np.isfinite(v) else f"{float(v):.4g}"
    if isinstance(v, list | tuple | dict):
        return json.dumps(json_ready(v))
    return str(v)


def metrics_table(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """Rows: results; columns: the union of their metric names, in first-seen order."""
    cols: list[str] = []
    for row in metrics.values():
        cols += [k for k in row if k not in cols and not isinstance(row[k], dict | list)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        f"<tr><th>{html.escape(str(name))}</th>"
        + "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in cols)
        + "</tr>"
        for name, row in metrics.items()
    )
    return f'<table class="metrics"><tr><th>result</th>{head}</tr>{body}</table>'


def paired_table(paired: Sequence[Mapping[str, Any]]) -> str:
    """One row per (comparison, metric): ``a`` − ``b`` over the slices both were scored on
    (:func:`mrisr.metrics.stats.paired_slices`): n, mean difference, its 95 % CI, the paired
    t-test and Wilcoxon p-values."""
    head = (
        "<tr><th>a &minus; b</th><th>metric</th><th>n</th><th>mean diff</th><th>95 % CI</th>"
        "<th>t-test p</th><th>Wilcoxon p</th></tr>"
    )
    rows = []
    for p in paired:
        name = f"{p['a']} − {p['b']}"
        for m in ("psnr", "ssim"):
            t = p.get(m)
            if t is None:
                continue
            if "error" in t:
                cells = [str(t.get("n", "-")), "-", "-", "-", "-"]
            else:
                lo, hi = t["ci95"]
                cells = [
                    str(t["n"]),
                    f"{t['mean_diff']:+.4g}",
                    f"[{lo:+.4g}, {hi:+.4g}]",
                    f"{t['t_p']:.3g}",
                    f"{t['wilcoxon_p']:.3g}",
                ]
            rows.append(
                f"<tr><th>{html.escape(name)}</th><td>{m.upper()}</td>"
                + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                + "</tr>"
            )
    return f'<table class="metrics paired">{head}{"".join(rows)}</table>'


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out += _flatten(v, key + ".")
        else:
            out.append((key, v))
    return out


def provenance_table(provenance: Mapping[str, Any]) -> str:
    """Key/value rows; nested sections as dotted keys (``model.weights_sha256``)."""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in _flatten(provenance)
    )
    return f'<table class="provenance">{rows}</table>'


def build_html(
    volumes: Sequence[tuple[str, Volume]],
    reference_label: str | None = None,
    metrics: Mapping[str, Mapping[str, Any]] | None = None,
    provenance: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    title: str = "mrisr report",
    max_bytes: int = MAX_BYTES,
    figures: Sequence[tuple[str, bytes]] = (),
    paired: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The report as one HTML string (see the module's docstring); ``figures``: (caption,
    PNG bytes) shown next to the viewers; ``paired``: paired tests over slices
    (:func:`paired_table`) shown under the metrics."""
    if not volumes:
        raise ConfigError("a report needs at least one volume")
    labels = [lab for lab, _ in volumes]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"labels must be unique, got {labels}")
    if reference_label is not None and reference_label not in labels:
        raise ConfigError(f"reference '{reference_label}' is not one of the labels {labels}")
    check_grids(volumes)
    arrays = [np.nan_to_num(v.data) for _, v in volumes]
    ref = arrays[labels.index(reference_label)] if reference_label is not None else None
    errors = [
        None if ref is None or lab == reference_label else np.abs(a - ref)
        for lab, a in zip(labels, arrays, strict=True)
    ]
    bundle = niivue_bundle()
    figs = "".join(
        f'<figure class="fig"><img alt="{html.escape(c)}" src="data:image/png;base64,{_b64(b)}">'
        f"<figcaption>{html.escape(c)}</figcaption></figure>"
        for c, b in figures
    )
    overhead = len(bundle) + len(figs) + 200_000
    if max_bytes <= overhead:
        raise ConfigError(f"a report is at least {overhead / 1e6:.1f} MB (the viewer itself)")
    win_src = ref if ref is not None else arrays[0]
    vols, errs, _, crop_note = fit_to_budget(
        arrays, errors, volumes[0][1].affine, max_bytes - overhead, win_src
    )
    lo, hi = (float(x) for x in np.percentile(win_src, [0.5, 99.5]))
    emax = max((float(np.percentile(e, 99.9)) for e in errors if e is not None), default=1.0)
    data = {
        "volumes": [
            {"label": lab, "nii": v, "err": e, "reference": lab == reference_label}
            for lab, v, e in zip(labels, vols, errs, strict=True)
        ],
        "window": [lo, hi if hi > lo else lo + 1.0],
        "errWindow": [0.2 * emax, emax] if emax > 0 else [0.0, 1.0],
    }
    all_notes = [crop_note] if crop_note else []
    all_notes += [str(n) for n in notes]
    parts = {
        "TITLE": html.escape(title),
        "NIIVUE_VERSION": html.escape(niivue_version()),
        "VIEWERS": "".join(_viewer(i, lab, lab == reference_label) for i, lab in enumerate(labels)),
        "ERRTOGGLE": "" if ref is None else _ERR_TOGGLE,
        "METRICS": ("" if not metrics else "<h2>Metrics</h2>" + metrics_table(metrics))
        + ("" if not paired else "<h2>Paired tests over slices</h2>" + paired_table(paired)),
        "FIGURES": "<h2>Figures</h2>" + figs if figs else "",
        "PROVENANCE": ""
        if not provenance
        else "<h2>Provenance</h2>" + provenance_table(provenance),
        "NOTES": ""
        if not all_notes
        else "<h2>Notes</h2><ul class=notes>"
        + "".join(f"<li>{html.escape(n)}</li>" for n in all_notes)
        + "</ul>",
        "DATA": json.dumps(data, allow_nan=False).replace("</", "<\\/"),
        "NIIVUE": bundle,
    }
    template = resources.files("mrisr.report").joinpath("report.html").read_text("utf-8")
    return re.sub(r"\{\{([A-Z_]+)\}\}", lambda m: parts[m.group(1)], template)


_ERR_TOGGLE = (
    '<label><input type="checkbox" id="mrisr-err" checked> error map |volume &minus; '
    "reference|</label>"
)


def _viewer(i: int, label: str, is_ref: bool) -> str:
    tag = " (reference)" if is_ref else ""
    return (
        f'<figure class="viewer"><figcaption><b>{html.escape(label)}</b>{tag} '
        f'<span class="val" id="mrisr-val-{i}"></span></figcaption>'
        f'<div class="canvas"><canvas id="mrisr-view-{i}"></canvas></div></figure>'
    )


def write_report(
    out_html: str | Path,
    volumes: Sequence[tuple[str, Volume]],
    reference_label: str | None = None,
    metrics: Mapping[str, Mapping[str, Any]] | None = None,
    provenance: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    title: str = "mrisr report",
    overwrite: bool = False,
    max_bytes: int = MAX_BYTES,
    figures: Sequence[tuple[str, bytes]] = (),
    paired: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write the report (:func:`build_html`) to ``out_html`` atomically: the file appears
    complete or not at all, and an existing file is replaced only with ``overwrite``."""
    check_writable(out_html, overwrite)  # before the work
    text = build_html(
        volumes, reference_label, metrics, provenance, notes, title, max_bytes, figures, paired
    )
    with atomic_outputs([out_html], overwrite=overwrite) as (tmp,):
        tmp.write_text(text, encoding="utf-8")
    return Path(out_html)

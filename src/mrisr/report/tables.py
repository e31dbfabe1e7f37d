"""Render evaluation reports as Markdown, CSV or JSON."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from mrisr.io.atomic import strict_json


def _f(v: Any, nd: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return _nonfinite(v)
        return f"{v:.{nd}f}"
    return str(v)


def _nonfinite(v: float) -> str:
    """The one spelling of a non-finite score in md and csv: ``inf``, ``-inf``, ``nan``."""
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def _c(v: Any) -> Any:
    """A CSV cell: non-finite floats as ``inf`` / ``-inf`` / ``nan`` (as in md), None empty."""
    if isinstance(v, float) and not math.isfinite(v):
        return _nonfinite(v)
    return "" if v is None else v


def render(report: dict[str, Any], fmt: str, per_slice: bool = False) -> str:
    """``report`` as produced by ``mrisr eval`` → text in ``fmt`` (md, csv or json).

    Non-finite scores (the PSNR of a result equal to the reference is +inf) are written
    ``inf`` / ``-inf`` / ``nan`` in md and csv, and ``null`` in JSON: strict JSON has no
    Infinity or NaN, and standard parsers reject them."""
    if fmt == "json":
        return strict_json(report, default=_json_safe, indent=2) + "\n"
    if report.get("mode") == "no-reference":
        return _render_noref(report, fmt, per_slice)
    results: dict[str, dict] = report["results"]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        fid = any("fid" in r["volume"] for r in results.values())
        w.writerow(["result", "slice", "psnr", "ssim", "nmse"] + (["fid"] if fid else []))
        for name, r in results.items():
            v = r["volume"]
            row = [name, "volume", v["psnr"], v["ssim"], v["nmse"]] + (
                [v.get("fid")] if fid else []
            )
            w.writerow([_c(c) for c in row])
            for s in r["slices"]:
                row = [name, s["index"], s["psnr"], s["ssim"], s["nmse"]] + [""] * fid
                w.writerow([_c(c) for c in row])
        return buf.getvalue()
    fid = any("fid" in r["volume"] for r in results.values())
    lines = [
        f"Reference: `{report['reference']}` · slice axis {report['slice_axis']} · "
        f"shave {report['shave']} · mask {report['mask'] or 'none'}"
        + (
            " · reference crop [" + ", ".join(f"{a}:{b}" for a, b in crop) + "]"
            if (crop := report.get("reference_crop"))
            else ""
        ),
        "",
        "| result | PSNR (dB) | SSIM | NMSE | mean slice PSNR | slices | data range |"
        + (" FID (slices) |" if fid else ""),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if fid else ""),
    ]
    for name, r in results.items():
        v = r["volume"]
        lines.append(
            f"| {name} | {_f(v['psnr'], 2)} | {_f(v['ssim'])} | {_f(v['nmse'], 5)} | "
            f"{_f(v.get('psnr_mean_slices'), 2)} | {v.get('n_slices')} | "
            f"{_f(v.get('data_range'), 1)} |"
            + (f" {_f(v.get('fid'), 2)} ({v.get('fid_slices', '-')}) |" if fid else "")
        )
    if "paired" in report:
        p = report["paired"]
        lines += [
            "",
            f"Paired tests over slices, `{p['a']}` − `{p['b']}`:",
            "",
            "| metric | n | mean diff | 95 % CI | t-test p | Wilcoxon p |",
            "| --- | ---: | ---: | --- | ---: | ---: |",
        ]
        for m in ("psnr", "ssim"):
            t = p[m]
            if "error" in t:
                lines.append(f"| {m.upper()} | {t['n']} | - | - | - | - |")
                continue
            ci = t.get("ci95", [None, None])
            lines.append(
                f"| {m.upper()} | {t['n']} | {_f(t['mean_diff'])} | [{_f(ci[0])}, {_f(ci[1])}] | "
                f"{_p(t['t_p'])} | {_p(t['wilcoxon_p'])} |"
            )
    if per_slice:
        for name, r in results.items():
            lines += [
                "",
                f"Slices of {name}:",
                "",
                "| slice | PSNR | SSIM | NMSE |",
                "| ---: | ---: | ---: | ---: |",
            ]
            lines += [
                f"| {s['index']} | {_f(s['psnr'], 2)} | {_f(s['ssim'])} | {_f(s['nmse'], 5)} |"
                for s in r["slices"]
            ]
    return "\n".join(lines) + "\n"


def _render_noref(report: dict[str, Any], fmt: str, per_slice: bool) -> str:
    """``mrisr eval --no-reference``: standard BRISQUE / NIQE, mrisr's MR NIQE and MSCN GGD
    shape / variance per scan and slice."""
    results: dict[str, dict] = report["results"]
    keys = ["brisque", "niqe", "niqe_mr", "mscn_shape", "mscn_var", "n_patches"]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["image", "slice", *keys])
        for name, r in results.items():
            w.writerow([_c(c) for c in [name, "volume", *(r["volume"].get(k) for k in keys)]])
            for s in r["slices"]:
                w.writerow([_c(c) for c in [name, s["index"], *(s.get(k) for k in keys)]])
        return buf.getvalue()
    m = report.get("niqe_mr_model", {})
    lines = [
        "No-reference quality (lower is better). BRISQUE and NIQE: the standard scores "
        "(MATLAB brisque() / niqe() with the published natural-image models), means over the "
        "slices with signal. NIQE-MR: mrisr's NIQE against its pristine MR model "
        f"({m.get('n_patches', '-')} patches of {m.get('patch_size', '-')} px), pooled over "
        "the scored slices. MSCN GGD shape / variance: means over the NIQE-MR slices.",
        "",
        "| image | BRISQUE | NIQE | NIQE-MR | mean slice NIQE-MR | MSCN shape | MSCN variance "
        "| slices | patches | skipped | slice axis |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for name, r in results.items():
        v = r["volume"]
        lines.append(
            f"| {name} | {_f(v.get('brisque'), 2)} | {_f(v.get('niqe'), 3)} | "
            f"{_f(v['niqe_mr'], 3)} | {_f(v['niqe_mr_mean_slices'], 3)} | "
            f"{_f(v['mscn_shape'], 3)} | {_f(v['mscn_var'])} | {v['n_slices']} | "
            f"{v['n_patches']} | {v['n_skipped']} | {v.get('slice_axis', '-')} |"
        )
        notes += [f"{name}: {n}" for n in v.get("standard_notes", [])]
    if notes:
        lines += ["", *(f"Note: {n}" for n in notes)]
    if per_slice:
        for name, r in results.items():
            lines += [
                "",
                f"Slices of {name}:",
                "",
                "| slice | BRISQUE | NIQE | NIQE-MR | MSCN shape | MSCN variance | patches |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            ]
            lines += [
                f"| {s['index']} | {_f(s.get('brisque'), 2)} | {_f(s.get('niqe'), 3)} | "
                f"{_f(s['niqe_mr'], 3)} | {_f(s['mscn_shape'], 3)} | {_f(s['mscn_var'])} | "
                f"{s['n_patches']} |"
                for s in r["slices"]
            ]
    return "\n".join(lines) + "\n"


def _p(v: float | None) -> str:
    return "-" if v is None else (f"{v:.2e}" if v < 1e-3 else f"{v:.4f}")


def _json_safe(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)

"""``mrisr models``: the model zoo with parameter counts and the shipped weights."""

from __future__ import annotations

import json
import sys
from typing import Any

from mrisr.errors import ConfigError
from mrisr.provenance import file_sha256


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
        from mrisr.io.atomic import strict_json

        print(strict_json(rows, indent=2))
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
    _print_priors()
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
    from mrisr.weights import DEFAULTS, GUIDED_DEFAULTS, SHIPPED, shipped_path

    out = []
    for w in SHIPPED.values():
        row: dict[str, Any] = {
            "name": w.name,
            "model": w.model,
            "scale": w.scale,
            "degradation": w.degradation,
            "default": DEFAULTS.get(w.scale) == w.name,
            "default_with_guide": GUIDED_DEFAULTS.get(w.scale) == w.name,
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
        "held-out PSNR: model / bicubic / zero-fill | gain over the better baseline |"
    )
    print("| --- | --- | ---: | --- | --- | --- | ---: |")
    for r in shipped_summary() if rows is None else rows:
        t = r["test_psnr"]
        score = (
            " / ".join(f"{t[k]:.2f}" for k in ("sr", "bicubic", "zerofill") if k in t) + " dB"
            if t
            else "not installed"
            if r["path"] is None
            else "no test record"
        )
        base = [t[k] for k in ("bicubic", "zerofill") if t and k in t]
        gain = f"{t['sr'] - max(base):+.2f} dB" if t and "sr" in t and base else "-"
        default = "yes" if r["default"] else "with --guide" if r["default_with_guide"] else ""
        print(
            f"| {r['name']} | {r['model']} | x{r['scale']} | {r['degradation']} | "
            f"{default} | {score} | {gain} |"
        )


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _print_priors() -> None:
    """The through-plane priors (``mrisr upscale --through-plane`` starts from them) with the
    held-out gain their card records (``training.test``: PSNR over the best classical
    interpolation, mean over the held-out cases)."""
    from mrisr.weights import HERE, PRIORS

    print()
    print("| through-plane prior | model | protocols | held-out gain over B-spline/sinc |")
    print("| --- | --- | --- | --- |")
    for w in PRIORS.values():
        cfg_path = HERE / w.name / "config.json"
        gain = "not installed"
        if cfg_path.is_file():
            test = json.loads(cfg_path.read_text()).get("training", {}).get("test") or {}
            gain = test.get("summary", "no test record")
        print(f"| {w.name} | {w.model} | {w.summary.split(': ', 1)[-1]} | {gain} |")

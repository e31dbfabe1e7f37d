"""Package a through-plane prior as shipped weights (``mrisr/weights/throughplane-prior``).

The prior is a checkpoint written by ``scripts/train_through_plane_prior.py``; its held-out
test is the output of ``benchmarks/through_plane.py`` (``--json``) for scans the prior was not
trained on. The test's numbers go into the checkpoint's training card (``training.test``) and
``MODEL_CARD.md`` is written from them, so every figure in the card comes from that run.

    python scripts/package_through_plane_prior.py --prior /work/runs/tp-loo-flair/final \\
        --bench tp_flair.json [--bench tp_mrgd.json] --out src/mrisr/weights/throughplane-prior
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

LICENCES = {
    "FLAIR.nii.gz": "niivue sample, BSD-2",
    "MR_Gd.nii.gz": "figshare 7472168, CC BY 4.0",
    "IXI002-Guys-0828-T1.nii.gz": "IXI, CC BY-SA 3.0",
    "IXI002-Guys-0828-T2.nii.gz": "IXI, CC BY-SA 3.0",
    "vs-seg-001-subset": "TCIA VS-SEG, CC BY 4.0",
    "ch2.nii.gz": "Colin27 from Debian mricron-data, BSD-2",
}


def summarise(rows: list[dict]) -> dict:
    """Per protocol: mean and worst gain (dB) over the best of B-spline and sinc."""
    out: dict = {}
    for proto in dict.fromkeys(r["protocol"] for r in rows):
        sel = [r for r in rows if r["protocol"] == proto]
        entry = {}
        for m in ("prior", "scratch", "from_prior", "from_prior_dc"):
            g = [r[m]["psnr"] - max(r["bspline"]["psnr"], r["sinc"]["psnr"]) for r in sel]
            entry[m] = {"mean_db": round(float(np.mean(g)), 3), "worst_db": round(min(g), 3)}
        entry["scans"] = [r["scan"] for r in sel]
        out[proto] = entry
    return out


def card(training: dict, size_mb: float, n_params: int, arch: dict) -> str:
    t = training["test"]
    d = training["data"]["train"]
    body = f"{arch.get('n_blocks')} residual blocks × {arch.get('n_feats')} features" + (
        " on 2 × 2 pixel blocks" if arch.get("unshuffle", 1) == 2 else ""
    )
    planes = (
        "every square-pixel plane of each scan (an isotropic scan gives three orientations; "
        f"{training.get('stacks', '?')} stacks)"
        if training.get("planes") == "all"
        else "each scan's square-pixel plane"
    )
    gamma = training.get("gamma_spread", 0)
    own = t.get("scans_of_this_prior", t["scans"])
    twins = [s for s in t["scans"] if s not in own]
    lines = [
        "# throughplane-prior",
        "",
        "The network `mrisr upscale --through-plane` starts from: `throughplane-resnet` "
        f"({body}; {n_params:,} parameters, float32, {size_mb:.1f} MB), trained on thick "
        "slices simulated "
        "from the in-plane slices of real scans at random protocols. It refines the cubic "
        "B-spline interpolation of thick slices along one axis; per-scan training "
        "(`--steps`, default 300) adapts it to the scan at hand, `--steps 0` uses it alone.",
        "",
        "## Training",
        "",
        f"- Script: `{training['recipe']}`; {training['steps']} steps of batch "
        f"{training['batch']} (patches {training['patch']}²), "
        + (
            f"in two runs: {ws['steps']} steps"
            + (f" at Adam lr {ws['lr']}" if ws.get("lr") else "")
            + ", then a warm restart (`--init`) of "
            f"{ws['then_steps']} steps at Adam lr {training['lr']}, "
            if (ws := training.get("warm_start"))
            else f"Adam lr {training['lr']}, "
        )
        + "cosine schedule, L1.",
        "- Data: "
        + ", ".join(f"{s} ({LICENCES.get(s, 'see ../shared/data')})" for s in d)
        + f"; {planes}."
        + (f" Random gamma per slice (log-uniform, 1/{1 + gamma:g}–{1 + gamma:g})." * bool(gamma)),
        "- Protocols, drawn per batch: k from 2 to 6, profile FWHM 0.8–1.2 × spacing (below 1: "
        "a gap), rect or Gaussian.",
        "- Trained on this project's 2-core CPU machine (one thread, beside its leave-one-out "
        "twin). CPU-sized: a GPU run of more steps would score higher.",
        "",
        "## Test on held-out scans",
        "",
        f"`benchmarks/through_plane.py`, leave-one-out: {', '.join(own)} by this prior"
        + (
            f", {', '.join(twins)} by its twin trained the same way without that scan "
            "(and with the scan this prior left out)"
            if twins
            else ""
        )
        + ": "
        f"a central {' × '.join(map(str, t['box']))} box, thick slices simulated along axis 2, "
        "restored onto the original grid and scored on the foreground (3-D PSNR). Gain over "
        f"the better of cubic B-spline and sinc interpolation, per-scan budget {t['steps']} "
        "steps (mean over the scans, worst in brackets):",
        "",
        "| protocol | prior alone | from scratch | from the prior | from the prior + consistency |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for proto, e in t["protocols"].items():
        cells = [f"{e[m]['mean_db']:+.2f} ({e[m]['worst_db']:+.2f})"
                 for m in ("prior", "scratch", "from_prior", "from_prior_dc")]  # fmt: skip
        lines.append(f"| {proto} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Limits",
        "",
        "- Trained on " + str(len(d)) + " scans; " + t["held_out_note"],
        "- Magnitude images; the slice profile must be known or learned (`--profile learn`); "
        "motion between slices is not modelled.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prior", type=Path, required=True)
    ap.add_argument("--bench", type=Path, action="append", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--held-out-note", default="the benchmark scans were held out of it.")
    a = ap.parse_args()
    from mrisr.checkpoint import load_checkpoint, save_checkpoint

    net, ck = load_checkpoint(a.prior)
    rows, steps, box = [], None, None
    for b in a.bench:
        res = json.loads(b.read_text())
        rows += res["rows"]
        steps, box = res["steps"], res["box"]
    seen = set(ck.training["data"]["train"])
    scans = sorted({r["scan"] for r in rows})
    for r in rows:  # each row: a scan its prior (this one, or a leave-one-out twin) never saw
        p = r.get("prior_checkpoint", {"sha256": ck.sha256, "train": sorted(seen)})
        if r["scan"] in p["train"]:
            raise SystemExit(f"{r['scan']} was in the training data of its prior: not held out")
    own = [
        r["scan"]
        for r in rows
        if r.get("prior_checkpoint", {}).get("sha256", ck.sha256) == ck.sha256
    ]
    training = dict(ck.training)
    protocols = summarise(rows)
    k4 = protocols.get("k4 rect", next(iter(protocols.values())))
    training["test"] = {
        "scans": scans,
        "scans_of_this_prior": sorted(set(own)),
        "steps": steps,
        "box": box,
        "protocols": protocols,
        "rows": rows,
        "held_out_note": a.held_out_note,
        "summary": f"k=4 rect: prior alone {k4['prior']['mean_db']:+.2f} dB, from prior "
        f"{k4['from_prior']['mean_db']:+.2f} dB ({', '.join(scans)})",
    }
    save_checkpoint(net, ck.name, ck.init_args, a.out, normalisation=ck.normalisation,
                    training=training, overwrite=True)  # fmt: skip
    size = (a.out / "model.safetensors").stat().st_size / 1e6
    n_params = sum(p.numel() for p in net.parameters())
    (a.out / "MODEL_CARD.md").write_text(card(training, size, n_params, ck.init_args))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

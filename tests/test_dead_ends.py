"""Issue 13 item 6, small dead ends: export by shipped name with the normalisation inside the
ONNX graph, `mrisr models` as real CSV / JSON with the shipped weights and without building
the zoo, `mrisr --version`, and the README's Python API example run as written."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mrisr
from mrisr.models.registry import REGISTRY
from mrisr.weights import SHIPPED, shipped_path
from tests.test_bad_input import run_cli

REPO = Path(__file__).resolve().parents[1]


# --- mrisr --version --------------------------------------------------------------------------


def test_version_option_prints_the_package_version() -> None:
    res = run_cli("--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"mrisr {mrisr.__version__}\n"
    assert re.fullmatch(r"mrisr \d+\.\d+\.\d+\n", res.stdout)


# --- mrisr models -----------------------------------------------------------------------------


def test_models_csv_is_one_parseable_row_per_model_and_scale() -> None:
    res = run_cli("models", "--format", "csv")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0]) == [
        "model",
        "scale",
        "parameters",
        "paper_parameters",
        "status",
        "needs_guide",
        "shipped_weights",
        "paper",
        "description",
    ]
    assert [(r["model"], int(r["scale"])) for r in rows] == [
        (n, s) for n, spec in REGISTRY.items() for s in spec.scales
    ]
    by = {(r["model"], int(r["scale"])): r for r in rows}
    seran4 = by[("seran", 4)]
    assert int(seran4["parameters"]) == 3_306_529 == int(seran4["paper_parameters"])
    assert seran4["status"] == "matched" and seran4["needs_guide"] == "false"
    edsr2 = by[("edsr-baseline", 2)]
    assert int(edsr2["parameters"]) == 1_367_553
    assert edsr2["shipped_weights"].split(";") == ["edsr-kspace-x2", "edsr-bicubic-x2"]
    assert by[("edsr-baseline", 4)]["shipped_weights"] == "edsr-kspace-x4"
    assert by[("edsr-baseline", 8)]["paper_parameters"] == ""
    assert by[("edsr-baseline", 8)]["status"] == "no paper figure"
    assert by[("edsr-baseline", 2)]["paper"] == "Lim et al., EDSR, CVPRW 2017"  # quoted comma
    assert int(by[("w2amsn-literal", 2)]["parameters"]) == 53_930_793
    assert by[("sanet", 2)]["needs_guide"] == "true"


def test_models_json_keeps_the_rows_and_adds_the_shipped_weights() -> None:
    res = run_cli("models", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert isinstance(rows, list) and [r["name"] for r in rows] == list(REGISTRY)
    by = {r["name"]: r for r in rows}
    edsr = by["edsr-baseline"]
    per_model = {n: [k for k, w in SHIPPED.items() if w.model == n] for n in by}
    assert edsr["weights"] == per_model["edsr-baseline"]  # the old field, unchanged
    assert per_model["seran"] == ["seran-bicubic-x2", "seran-bicubic-x4"]
    assert per_model["sanet"] == ["sanet-t1t2-kspace-x2", "sanet-t1t2-kspace-x4"]
    for n, r in by.items():
        assert [w["name"] for w in r["shipped_weights"]] == per_model[n] == r["weights"]
    for w in [w for r in rows for w in r["shipped_weights"]]:
        folder = Path(w["path"])
        assert folder == shipped_path(w["name"]) and (folder / "config.json").is_file()
        digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        cfg = json.loads((folder / "config.json").read_text())
        assert w["sha256"] == digest == cfg["sha256"]
        assert (w["model"], w["scale"]) == (cfg["model"], cfg["scale"])
        assert w["degradation"] == SHIPPED[w["name"]].degradation
        test = cfg["training"]["test"]["results"]["volume"]
        assert w["test_psnr"]["sr"] == test["sr"]["psnr"]
        assert w["test_psnr"]["bicubic"] == test["bicubic"]["psnr"]
    flags = {w["name"]: w["default"] for w in edsr["shipped_weights"]}
    assert flags == {"edsr-kspace-x2": True, "edsr-kspace-x4": True, "edsr-bicubic-x2": False}
    guided = {w["name"]: w["default_with_guide"] for w in by["sanet"]["shipped_weights"]}
    assert guided == {"sanet-t1t2-kspace-x2": True, "sanet-t1t2-kspace-x4": True}
    x2 = edsr["shipped_weights"][0]
    assert x2["test_psnr"]["sr"] == pytest.approx(39.6624, abs=1e-4)
    assert x2["test_psnr"]["zerofill"] == pytest.approx(37.7334, abs=1e-4)


def test_models_listing_does_not_import_torch() -> None:
    """The start-up cost was building 76 networks (and importing torch) to count parameters:
    with the shipped table of counts, listing the zoo imports neither torch nor a model."""
    code = (
        "import contextlib, io, sys\n"
        "from mrisr.commands.models import run_models\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rows = run_models('json')\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('mrisr.models.')))\n"
        "print(rows[4]['params'])\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
    modules, seran = res.stdout.splitlines()
    assert modules == "['mrisr.models._param_counts', 'mrisr.models.counts', " + (
        "'mrisr.models.registry', 'mrisr.models.spec', 'mrisr.models.zoo']"
    )
    assert seran == "{2: 3158817, 3: 3343457, 4: 3306529}"


def test_shipped_parameter_counts_are_current_and_equal_building() -> None:
    from mrisr.models import counts as param_counts

    assert param_counts.table_is_current(), (
        "the model code changed: python -m mrisr.models.counts --write"
    )
    names = ["edsr-baseline", "srcnn", "vdsr", "seran", "srgan"]
    built = param_counts.build_counts(names)
    assert param_counts.parameter_counts(names) == built
    assert built["seran"] == {2: 3_158_817, 3: 3_343_457, 4: 3_306_529}
    assert built["srcnn"] == {2: 8_129, 3: 8_129, 4: 8_129, 8: 8_129}


def test_a_stale_count_table_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    from mrisr.models import counts as param_counts

    fake = {"srcnn": {2: 1, 3: 1, 4: 1, 8: 1}}
    # a table for other code (fingerprint differs): the networks are built and counted
    monkeypatch.setattr(param_counts, "shipped_table", lambda: ("0" * 64, fake))
    assert param_counts.parameter_counts(["srcnn"]) == {
        "srcnn": {2: 8129, 3: 8129, 4: 8129, 8: 8129}
    }
    # the same fingerprint: the table is what is read (nothing is built)
    fp = param_counts.fingerprint()
    monkeypatch.setattr(param_counts, "shipped_table", lambda: (fp, fake))
    assert param_counts.parameter_counts(["srcnn"]) == fake
    # a scale the table lacks: that preset is built
    monkeypatch.setattr(param_counts, "shipped_table", lambda: (fp, {"srcnn": {2: 1}}))
    assert param_counts.parameter_counts(["srcnn"])["srcnn"][8] == 8129


def test_count_table_source_round_trips() -> None:
    from mrisr.models import counts as param_counts

    fp, table = param_counts.shipped_table()
    namespace: dict = {}
    exec(param_counts.render_table(table, fp), namespace)
    assert namespace["FINGERPRINT"] == fp and namespace["COUNTS"] == table
    assert (REPO / "src/mrisr/models/_param_counts.py").read_text() == param_counts.render_table(
        table, fp
    )


# --- mrisr export -----------------------------------------------------------------------------


def test_export_names_the_shipped_weights_when_the_checkpoint_is_neither(tmp_path: Path) -> None:
    res = run_cli("export", "edsr-kspace-x3", "--onnx", tmp_path / "m.onnx")
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("mrisr: error: ")
    assert "neither a checkpoint folder nor the name of shipped weights" in res.stderr
    assert all(name in res.stderr for name in SHIPPED)
    assert list(tmp_path.iterdir()) == []


ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def shipped_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mrisr export edsr-kspace-x2 --onnx ...`: the shipped weights by name (checked in ORT)."""
    out = tmp_path_factory.mktemp("onnx") / "edsr-kspace-x2.onnx"
    res = run_cli("export", "edsr-kspace-x2", "--onnx", out)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"wrote {out}\n"
    return out


def _metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_onnx_with_normalisation_equals_upscale_volume_on_a_real_scan(
    shipped_onnx: Path, test_data: Path
) -> None:
    from mrisr.checkpoint import load_checkpoint
    from mrisr.export import normalisation_stats
    from mrisr.infer.upsample import UpscaleOptions, upscale_volume
    from mrisr.io import load_volume

    vol = load_volume(test_data / "ixi002_t2_crop.nii.gz")  # real IXI002 T2, 96×96×6
    net, ckpt = load_checkpoint(shipped_path("edsr-kspace-x2"))
    opts = UpscaleOptions(clamp=False, progress=False, device="cpu")
    want, rec = upscale_volume(vol, net, 2, ckpt.normalisation, ckpt.training, opts)
    k, in_plane = rec["slice_axis"], rec["in_plane_axes"]
    assert (k, in_plane) == (2, [0, 1])

    stats = normalisation_stats(vol.data, ckpt.normalisation)
    x = vol.data[np.isfinite(vol.data)].astype(np.float64)
    p0, p995 = np.percentile(x, [0.0, 99.5])  # the fit rule the metadata states
    assert stats.shape == (1, 2) and stats.dtype == np.float32
    assert stats[0, 0] == np.float32(p0) and stats[0, 1] == np.float32(p995 - p0)

    session = ort.InferenceSession(str(shipped_onnx), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["lr", "stats"]
    lr = np.ascontiguousarray(np.transpose(vol.data, (k, *in_plane)))[:, None]  # raw [6,1,96,96]
    out = session.run(["sr"], {"lr": lr, "stats": stats})[0]
    assert out.shape == (6, 1, 192, 192)
    got = np.transpose(out[:, 0], np.argsort((k, *in_plane)))
    diff = np.abs(got - want.data)
    assert float(diff.max()) < 1e-5 * float(stats[0, 1])  # measured 8e-4 on a 592 scale
    assert float(np.abs(want.data).max()) > 600  # the scan's intensities, not [0, 1]
    # the same stats per slice ([B, 2]) give the same result as broadcast ([1, 2])
    per_slice = session.run(["sr"], {"lr": lr[:3], "stats": np.repeat(stats, 3, axis=0)})[0]
    np.testing.assert_array_equal(per_slice, out[:3])

    rule = json.loads(_metadata(shipped_onnx)["mrisr_normalisation"])
    assert rule["in_graph"] is True and rule["mode"] == "percentile"
    assert (rule["low"], rule["high"], rule["clip"]) == (0.0, 99.5, False)
    assert "numpy.percentile(v, q)" in rule["fit"] and "whole LR volume" in rule["fit"]
    assert rule["invert"] == "sr = net(x) * scale + offset"
    card = json.loads(_metadata(shipped_onnx)["mrisr_checkpoint"])
    assert card["checkpoint_sha256"] == ckpt.sha256


@pytest.fixture(scope="module")
def tiny_zscore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from mrisr.checkpoint import save_checkpoint
    from mrisr.models import build_model
    from mrisr.normalisation import Normalisation

    torch.manual_seed(0)
    model = build_model("edsr-baseline", scale=2, n_resblocks=1, n_feats=8)
    args = {"scale": 2, "n_resblocks": 1, "n_feats": 8}
    norm = Normalisation(mode="zscore", clip=True)
    root = tmp_path_factory.mktemp("tiny")
    return save_checkpoint(model, "edsr-baseline", args, root / "ckpt", norm).path


def test_onnx_graph_applies_a_clipping_normalisation(tiny_zscore: Path, tmp_path: Path) -> None:
    import torch

    from mrisr.checkpoint import load_checkpoint
    from mrisr.export import export_onnx

    out = export_onnx(tiny_zscore, tmp_path / "z.onnx")
    net, ckpt = load_checkpoint(tiny_zscore)
    norm = ckpt.normalisation
    rng = np.random.default_rng(3)
    vol = rng.normal(100.0, 20.0, (2, 1, 16, 12)).astype(np.float32)
    vol[0, 0, 3, 4] = 900.0  # an outlier, clipped to +6 std before the network
    st = norm.fit(vol)
    stats = np.array([[st["offset"], st["scale"]]], dtype=np.float32)
    with torch.no_grad():
        want = norm.invert(net(torch.from_numpy(norm.apply(vol, st))).numpy(), st)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(["sr"], {"lr": vol, "stats": stats})[0]
    assert float(np.abs(got - want).max()) < 1e-5 * st["scale"]
    unclipped = (vol - st["offset"]) / st["scale"]
    assert unclipped.max() > 15  # so the clip mattered
    rule = json.loads(_metadata(out)["mrisr_normalisation"])
    assert rule["apply"] == "x = (lr - offset) / scale, then clipped to [-6, 6]"
    assert rule["fit"].startswith("offset = mean(v), scale = std(v)")


def test_bare_export_is_the_network_alone(tiny_zscore: Path, tmp_path: Path) -> None:
    import torch

    from mrisr.checkpoint import load_checkpoint
    from mrisr.export import export_onnx

    out = export_onnx(tiny_zscore, tmp_path / "bare.onnx", bare=True)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["lr"]
    x = np.random.default_rng(0).random((3, 1, 10, 14), dtype=np.float32)
    net, _ = load_checkpoint(tiny_zscore)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert float(np.abs(session.run(["sr"], {"lr": x})[0] - want).max()) <= 1e-5
    assert json.loads(_metadata(out)["mrisr_normalisation"])["in_graph"] is False
    assert "normalised -> sr" in onnx.load(str(out)).doc_string


# --- README -----------------------------------------------------------------------------------


def test_readme_python_api_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (REPO / "README.md").read_text()
    m = re.search(r"Python API.*?```python\n(.*?)```", readme, re.S)
    assert m, "README.md has no ```python block after 'Python API'"
    code = m.group(1)
    monkeypatch.chdir(tmp_path)  # a fresh folder: only what the package ships
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    assert {p.name for p in tmp_path.iterdir()} == {"lr.nii.gz", "sr.nii.gz", "sr.nii.gz.json"}
    psnr, ssim = re.search(r"PSNR (\d+\.\d+) dB, SSIM (0\.\d+)", out.getvalue()).groups()
    from mrisr.io import load_volume

    hr, sr = load_volume(mrisr.data.demo_scan_path()), load_volume(tmp_path / "sr.nii.gz")
    assert sr.shape == hr.shape == (176, 192, 24)
    mse = float(((sr.data.astype(np.float64) - hr.data) ** 2).mean())
    assert float(psnr) == pytest.approx(10 * np.log10(float(hr.data.max()) ** 2 / mse), abs=0.01)
    assert 30 < float(psnr) < 45 and 0.8 < float(ssim) < 1

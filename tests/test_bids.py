"""BIDS datasets in and out (`mrisr upscale BIDS_ROOT OUT_DERIV --bids`, issue 18 item 4): a
small BIDS tree built from the shipped crops (2 subjects, one with a session) becomes a
BIDS-derivatives dataset that the BIDS schema accepts; bad trees are one-line errors that leave
nothing behind.

The validators: the official BIDS validator (bids-standard's Deno/TypeScript program, 3.x, run
from PyPI's ``bids-validator-deno`` wheel with the ``deno`` wheel's runtime; no network) must
report no error on the raw tree and on the derivative dataset, and must find the errors planted
in a broken copy. The older Python ``bids-validator`` package only knows raw-dataset names (it
rejects every ``desc-`` anat file), so it is not used. A second, independent check is driven by
``bidsschematools`` (the machine-readable BIDS schema the official validator is generated from):
every file name must match the schema's derivative or common file rules, dataset_description.json
must have the fields the schema's dataset rules require (``derivative_description``:
GeneratedBy; DatasetLinks when BIDS URIs are used), every output has its sidecar, and every
``Sources`` BIDS URI resolves. pybids then indexes the result as a derivative dataset of the raw
one.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("bids", reason="mrisr upscale --bids needs pybids (the mrisr[bids] extra)")

import nibabel as nib  # noqa: E402

import mrisr  # noqa: E402
from mrisr.degrade import KspaceTruncate, degrade_volume  # noqa: E402
from mrisr.io import load_volume  # noqa: E402
from mrisr.io.bids import derivative_relpath  # noqa: E402
from tests.test_bad_input import run_cli  # noqa: E402

RAW_T2 = "sub-01/anat/sub-01_T2w.nii.gz"
RAW_T2_SES = "sub-02/ses-1/anat/sub-02_ses-1_T2w.nii.gz"
OUT_T2 = "sub-01/anat/sub-01_desc-sr_T2w.nii.gz"
OUT_T2_SES = "sub-02/ses-1/anat/sub-02_ses-1_desc-sr_T2w.nii.gz"


def _lr(src: Path, dst: Path) -> None:
    """A small LR scan: the crop, k-space truncated x2 in-plane (as `mrisr degrade` does)."""
    lr, _ = degrade_volume(load_volume(src), [KspaceTruncate(scale=2)], axis=2, seed=0)
    dst.parent.mkdir(parents=True, exist_ok=True)
    mrisr.save_volume(lr, dst)


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory: pytest.TempPathFactory, test_data: Path) -> Path:
    root = tmp_path_factory.mktemp("bids") / "raw"
    root.mkdir()
    desc = {"Name": "mrisr test", "BIDSVersion": "1.10.0", "DatasetType": "raw"}
    (root / "dataset_description.json").write_text(json.dumps(desc))
    _lr(test_data / "ixi002_t2_crop.nii.gz", root / RAW_T2)
    t1 = nib.load(test_data / "ixi002_t1_crop.nii.gz").slicer[:6]  # 6 sagittal slices
    nib.save(t1, root / "sub-01/anat/sub-01_T1w.nii.gz")
    _lr(test_data / "flair_crop.nii.gz", root / RAW_T2_SES)
    return root


@pytest.fixture(scope="module")
def derivs(bids_root: Path) -> tuple[Path, str]:
    out = bids_root.parent / "derivatives" / "mrisr"
    out.parent.mkdir()
    res = run_cli("upscale", bids_root, out, "--bids", "--no-progress")
    assert res.returncode == 0, res.stderr
    return out, res.stdout


def validate_derivative(root: Path) -> list[str]:
    """What the BIDS schema finds wrong with the derivative dataset at ``root`` (empty: valid)."""
    schema_mod = pytest.importorskip("bidsschematools.schema", reason="no BIDS schema to check")
    from bidsschematools.rules import regexify_filename_rules

    schema = schema_mod.load_schema()
    rules = [
        re.compile(r["regex"])
        for group in (schema.rules.files.common, schema.rules.files.deriv)
        for r in regexify_filename_rules(group, schema, level=2)
    ]
    problems: list[str] = []
    files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    for rel in files:
        if any(part.startswith(".") for part in rel.split("/")):
            problems.append(f"{rel}: hidden file left behind")
        elif not any(rx.match(rel) for rx in rules):
            problems.append(f"{rel}: not a BIDS-derivatives file name")
    if "dataset_description.json" not in files:
        return [*problems, "no dataset_description.json"]
    desc = json.loads((root / "dataset_description.json").read_text())
    checks = schema.rules.json.dataset
    required = [k for k, v in checks.dataset_description.fields.items() if v == "required"]
    if desc.get("DatasetType") == "derivative":
        required += [k for k, v in checks.derivative_description.fields.items() if v == "required"]
    problems += [f"dataset_description.json: no {k}" for k in required if k not in desc]
    types = schema.objects.metadata.DatasetType.enum
    if desc.get("DatasetType") not in types:
        problems.append(f"DatasetType {desc.get('DatasetType')!r} not one of {types}")
    if not all(isinstance(g, dict) and g.get("Name") for g in desc.get("GeneratedBy", [])):
        problems.append("GeneratedBy: every entry needs a Name")
    links = desc.get("DatasetLinks", {})
    for rel in files:
        if not rel.endswith((".nii", ".nii.gz")):
            continue
        side = root / re.sub(r"\.nii(\.gz)?$", ".json", rel)
        if not side.is_file():
            problems.append(f"{rel}: no JSON sidecar")
            continue
        for uri in json.loads(side.read_text()).get("Sources", []):
            m = re.fullmatch(r"bids:([^:]*):(.+)", uri)
            if m is None:
                problems.append(f"{side.name}: Sources entry {uri!r} is not a BIDS URI")
                continue
            if m[1] and m[1] not in links:
                problems.append(f"{side.name}: {uri!r} names no DatasetLinks entry")
                continue
            base = root if not m[1] else Path(links[m[1]].removeprefix("file://"))
            if not (base / m[2]).is_file():
                problems.append(f"{side.name}: {uri!r} does not resolve to a file")
    return problems


def official_validator(root: Path) -> list[str]:
    """The errors (not warnings) the official BIDS validator reports for ``root``, as
    ``CODE location`` lines (empty: valid)."""
    import subprocess
    import sysconfig

    exe = Path(sysconfig.get_path("scripts")) / "bids-validator-deno"
    if not exe.exists():
        found = shutil.which("bids-validator-deno")
        if found is None:
            pytest.skip("the official BIDS validator (pip install bids-validator-deno) is missing")
        exe = Path(found)
    res = subprocess.run(
        [str(exe), "--format", "json", str(root)], capture_output=True, text=True, timeout=300
    )
    try:
        issues = json.loads(res.stdout)["issues"]["issues"]
    except (ValueError, KeyError) as exc:
        raise AssertionError(f"validator said: {res.stdout[-2000:]} {res.stderr[-2000:]}") from exc
    return [
        f"{i['code']} {i.get('location')} {i.get('subCode') or ''}".strip()
        for i in issues
        if i["severity"] == "error"
    ]


def test_the_official_validator_accepts_the_raw_and_derivative_datasets(bids_root, derivs) -> None:
    assert official_validator(bids_root) == []
    assert official_validator(derivs[0]) == []


def test_the_official_validator_finds_what_is_wrong(derivs, tmp_path) -> None:
    """It can fail: a derivative without the required SkullStripped key and a file name
    outside BIDS are errors."""
    bad = tmp_path / "bad"
    shutil.copytree(derivs[0], bad)
    side = bad / OUT_T2.replace(".nii.gz", ".json")
    meta = json.loads(side.read_text())
    del meta["SkullStripped"]
    side.write_text(json.dumps(meta))
    (bad / OUT_T2_SES).rename(bad / "sub-02/ses-1/anat/sub-02_ses-1_sr-x2_T2w.nii.gz")
    found = "\n".join(official_validator(bad))
    assert f"SIDECAR_KEY_REQUIRED /{OUT_T2} SkullStripped" in found, found
    assert "sub-02_ses-1_sr-x2_T2w.nii.gz" in found, found


def test_a_bids_tree_becomes_a_valid_derivatives_dataset(bids_root, derivs) -> None:
    out, stdout = derivs
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert got == sorted([
        "dataset_description.json", "README.md", OUT_T2, OUT_T2.replace(".nii.gz", ".json"),
        OUT_T2_SES, OUT_T2_SES.replace(".nii.gz", ".json"),
    ])  # fmt: skip
    assert f"wrote {out / OUT_T2}" in stdout
    for raw, sr in ((RAW_T2, OUT_T2), (RAW_T2_SES, OUT_T2_SES)):
        a, b = nib.load(bids_root / raw).shape, nib.load(out / sr).shape
        assert b == (2 * a[0], 2 * a[1], a[2])  # x2 in-plane (the shipped default)
    assert validate_derivative(out) == []


def test_dataset_description_and_sidecars(bids_root, derivs) -> None:
    out, _ = derivs
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["BIDSVersion"]
    gen = desc["GeneratedBy"][0]
    assert gen["Name"] == "mrisr" and gen["Version"] == mrisr.__version__
    assert "upscale" in gen["Description"] and "--bids" in gen["Description"]
    assert desc["DatasetLinks"]["raw"] == bids_root.resolve().as_uri()
    side = json.loads((out / OUT_T2_SES.replace(".nii.gz", ".json")).read_text())
    assert side["Sources"] == [f"bids:raw:{RAW_T2_SES}"]
    prov = side["mrisr"]
    assert prov["model"] and re.fullmatch(r"[0-9a-f]{64}", prov["checkpoint_sha256"])
    assert prov["output"] == str(out / OUT_T2_SES) and prov["created"]
    assert Path(prov["input"]).resolve() == (bids_root / RAW_T2_SES).resolve()
    assert prov["input_sha256"] and "--bids" in prov["command"] and "plane" in prov


def test_pybids_reads_the_result_as_a_derivative(bids_root, derivs) -> None:
    from bids import BIDSLayout

    out, _ = derivs
    layout = BIDSLayout(str(bids_root), derivatives=str(out))
    found = layout.get(scope="mrisr", desc="sr", suffix="T2w", extension=".nii.gz")
    assert sorted(f.entities["subject"] for f in found) == ["01", "02"]


def test_participant_label_and_suffix(bids_root, tmp_path) -> None:
    out = tmp_path / "d"
    res = run_cli("upscale", bids_root, out, "--bids", "--participant-label", "sub-01",
                  "--suffix", "T1w", "--no-progress")  # fmt: skip
    assert res.returncode == 0, res.stderr
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.nii.gz"))
    assert got == ["sub-01/anat/sub-01_desc-sr_T1w.nii.gz"]
    assert validate_derivative(out) == []
    assert official_validator(out) == []


def test_the_validator_sees_what_is_wrong(derivs, tmp_path) -> None:
    """The check above can fail: a raw-style name, a missing GeneratedBy and a Sources URI
    that resolves nowhere are each found."""
    bad = tmp_path / "bad"
    shutil.copytree(derivs[0], bad)
    (bad / OUT_T2).rename(bad / "sub-01/anat/sub-01_sr-x2_T2w.nii.gz")
    desc = json.loads((bad / "dataset_description.json").read_text())
    del desc["GeneratedBy"]
    (bad / "dataset_description.json").write_text(json.dumps(desc))
    side = bad / OUT_T2_SES.replace(".nii.gz", ".json")
    side.write_text(json.dumps({"Sources": ["bids:raw:sub-09/anat/sub-09_T2w.nii.gz"]}))
    found = "\n".join(validate_derivative(bad))
    assert "sub-01_sr-x2_T2w.nii.gz: not a BIDS-derivatives file name" in found
    assert "no GeneratedBy" in found and "does not resolve" in found


def test_derivative_names_keep_the_entities() -> None:
    assert derivative_relpath("sub-01/ses-a/anat/sub-01_ses-a_acq-fast_run-01_T2w.nii") == (
        "sub-01/ses-a/anat/sub-01_ses-a_acq-fast_run-01_desc-sr_T2w.nii.gz"
    )


def _fails(args: list, out: Path, match: str) -> None:
    res = run_cli("upscale", *args, out, "--bids", "--no-progress")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrisr: error: "), res.stderr
    assert match.lower() in lines[0].lower(), lines[0]


def test_bad_trees_are_one_line_errors_with_nothing_written(bids_root, derivs, tmp_path) -> None:
    out = tmp_path / "d"
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails([empty], out, "no dataset_description.json")
    (empty / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')
    _fails([empty], out, "no subjects")
    _fails([bids_root, "--suffix", "FLAIR"], out, "no anat/*_FLAIR")
    _fails([bids_root, "--participant-label", "03"], out, "participant label(s) 03 not in")
    _fails([bids_root, "--participant-label", "01", "02"], out, "--bids takes one BIDS root")
    assert not out.exists()  # nothing written, no empty folder left
    done, _ = derivs  # the derivatives exist: refused before any work, nothing changed
    before = {p: p.stat().st_mtime_ns for p in done.rglob("*")}
    _fails([bids_root], done, "exists already; pass --overwrite")
    assert {p: p.stat().st_mtime_ns for p in done.rglob("*")} == before


def test_a_bad_scan_does_not_stop_the_others(test_data, tmp_path) -> None:
    """A corrupt scan gets its line and exit 2; the good one is written whole with its sidecar
    and the dataset_description; no staging folder is left. Alone, it leaves no output."""
    root = tmp_path / "raw"
    root.mkdir()
    (root / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')
    _lr(test_data / "flair_crop.nii.gz", root / "sub-01/anat/sub-01_T2w.nii.gz")
    (root / "sub-02/anat").mkdir(parents=True)
    (root / "sub-02/anat/sub-02_T2w.nii.gz").write_bytes(b"\x1f\x8b not a scan")
    out = tmp_path / "d"
    res = run_cli("upscale", root, out, "--bids", "--no-progress")
    assert res.returncode == 2 and "1 of 2 scans failed" in res.stderr, res.stderr
    assert "staged sub-01_T2w_sr_x2.nii.gz" in res.stdout
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert got == ["README.md", "dataset_description.json", "sub-01/anat/sub-01_desc-sr_T2w.json",
                   "sub-01/anat/sub-01_desc-sr_T2w.nii.gz"]  # fmt: skip
    assert validate_derivative(out) == []
    again = run_cli("upscale", root, out, "--bids", "--participant-label", "01", "--overwrite")
    assert again.returncode == 0 and "wrote" in again.stdout, again.stderr  # replaced whole
    assert validate_derivative(out) == []
    _fails([root, "--participant-label", "02"], tmp_path / "d2", "is corrupt")
    assert not (tmp_path / "d2").exists()

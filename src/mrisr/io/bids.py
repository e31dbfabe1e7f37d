"""BIDS datasets in and out (``mrisr upscale BIDS_ROOT OUT_DERIV --bids``).

In: the anatomical scans ``sub-*/[ses-*/]anat/*_<suffix>.nii[.gz]`` of a BIDS dataset, found
with pybids' ``BIDSLayout`` (the optional extra ``mrisr[bids]``, imported lazily; it installs
within constraints.txt, and it skips files that are not valid BIDS names, ``derivatives/``,
``sourcedata/`` and ``code/``). Out: a BIDS-derivatives dataset (BIDS 1.10 "Derivatives"):
``dataset_description.json`` with ``DatasetType: derivative`` and ``GeneratedBy``, each scan
under the same ``sub-/ses-/anat`` folders and the same entities with ``desc-sr`` added (the
last entity before the suffix, as the entity table orders it), and a sidecar ``<name>.json``
per output with ``Sources`` as BIDS URIs (``bids:raw:<path in the raw dataset>``; the spec
deprecates dataset-relative paths) resolved through ``DatasetLinks``, plus mrisr's provenance
under ``"mrisr"``.

Everything is checked before any work: a root without ``dataset_description.json`` or
without subjects, no scan with the suffix, an unknown participant label, outputs that exist
(without ``--overwrite``) are one-line errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrisr.errors import ConfigError, InputError, OutputError

#: The BIDS version the derivative datasets declare (BIDS URIs need >= 1.8).
BIDS_VERSION = "1.10.0"
#: The ``desc-`` label of every output (alphanumeric, as BIDS labels must be).
DESC = "sr"
#: ``DatasetLinks`` key of the raw dataset, so ``Sources`` read ``bids:raw:sub-01/anat/...``.
RAW_LINK = "raw"
NIFTI_EXTS = (".nii.gz", ".nii")


@dataclass(frozen=True)
class BidsScan:
    path: Path  # the scan file
    relpath: str  # its path inside the raw dataset (POSIX)
    subject: str
    session: str | None
    skull_stripped: bool = False  # the source's SkullStripped (inherited sidecars), else False

    @property
    def out_relpath(self) -> str:
        return derivative_relpath(self.relpath)


def _layout(root: Path) -> Any:
    try:
        from bids import BIDSLayout
    except ImportError:
        raise ConfigError(
            "--bids needs pybids: pip install -c constraints.txt 'mrisr[bids]'"
        ) from None
    try:
        return BIDSLayout(str(root), validate=True)
    except Exception as exc:  # pybids' own errors (BIDSValidationError, ...): one line
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"cannot read the BIDS dataset '{root}': {why}") from None


def participant_labels(labels: list[str] | None) -> list[str] | None:
    """``["sub-01", "02,03"]`` → ``["01", "02", "03"]`` (BIDS apps take labels with or
    without ``sub-``); None or empty: all subjects."""
    if not labels:
        return None
    out = [p.strip().removeprefix("sub-") for lab in labels for p in lab.split(",")]
    return [p for p in out if p] or None


def find_scans(
    root: str | Path, suffix: str = "T2w", participants: list[str] | None = None
) -> list[BidsScan]:
    """The anatomical NIfTI scans with ``suffix`` of the chosen participants, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"BIDS root '{root}' is not a folder")
    desc = root / "dataset_description.json"
    if not desc.is_file():
        raise InputError(f"'{root}' is not a BIDS dataset: it has no dataset_description.json")
    try:
        json.loads(desc.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read '{desc}': {exc}") from None
    if not suffix.isalnum():
        raise ConfigError(f"--suffix '{suffix}' is not a BIDS suffix (letters and digits)")
    layout = _layout(root)
    subjects = sorted(layout.get_subjects())
    if not subjects:
        raise InputError(f"BIDS dataset '{root}' has no subjects (no sub-* folders)")
    wanted = participant_labels(participants)
    if wanted is not None:
        unknown = [p for p in wanted if p not in subjects]
        if unknown:
            raise InputError(
                f"participant label(s) {', '.join(unknown)} not in '{root}' "
                f"(subjects: {', '.join(subjects)})"
            )
    query: dict[str, Any] = {"datatype": "anat", "extension": list(NIFTI_EXTS)}
    if wanted is not None:
        query["subject"] = wanted
    files = layout.get(suffix=suffix, **query)
    if not files:
        have = sorted({f.entities.get("suffix") for f in layout.get(**query)} - {None})
        raise InputError(
            f"no anat/*_{suffix}.nii[.gz] scans in '{root}'"
            + (f" for participant(s) {', '.join(wanted)}" if wanted else "")
            + f" (anatomical suffixes there: {', '.join(have) or 'none'}); see --suffix"
        )
    scans = [
        BidsScan(
            path=Path(f.path),
            relpath=Path(f.path).resolve().relative_to(root.resolve()).as_posix(),
            subject=str(f.entities["subject"]),
            session=(str(f.entities["session"]) if "session" in f.entities else None),
            skull_stripped=layout.get_metadata(f.path).get("SkullStripped") is True,
        )
        for f in files
    ]
    return sorted(scans, key=lambda s: s.relpath)


def split_bids_name(name: str) -> tuple[list[str], str, str]:
    """``sub-01_ses-1_T2w.nii.gz`` → (["sub-01", "ses-1"], "T2w", ".nii.gz")."""
    ext = next((e for e in NIFTI_EXTS if name.endswith(e)), "")
    stem = name[: len(name) - len(ext)] if ext else name
    *entities, suffix = stem.split("_")
    return entities, suffix, ext


def derivative_relpath(relpath: str, desc: str = DESC) -> str:
    """The output's path in the derivative dataset: same folders, same entities (their
    spelling kept, e.g. ``run-01``), ``desc-<desc>`` added last (an existing one replaced),
    always ``.nii.gz``."""
    folder, _, name = relpath.rpartition("/")
    entities, suffix, _ = split_bids_name(name)
    entities = [e for e in entities if not e.startswith("desc-")] + [f"desc-{desc}"]
    new = "_".join([*entities, suffix]) + ".nii.gz"
    return f"{folder}/{new}" if folder else new


def json_relpath(nifti_relpath: str) -> str:
    """The BIDS sidecar of a NIfTI: its extension replaced by ``.json``."""
    ext = next((e for e in NIFTI_EXTS if nifti_relpath.endswith(e)), "")
    return nifti_relpath[: len(nifti_relpath) - len(ext)] + ".json"


def source_uri(relpath: str) -> str:
    """A BIDS URI of a file of the raw dataset (linked as :data:`RAW_LINK`)."""
    return f"bids:{RAW_LINK}:{relpath}"


def dataset_description(root: str | Path, argv: list[str] | None) -> dict[str, Any]:
    """``dataset_description.json`` of the derivative dataset."""
    from mrisr import __version__

    root = Path(root)
    try:
        raw_name = json.loads((root / "dataset_description.json").read_text()).get("Name")
    except (OSError, ValueError, AttributeError):
        raw_name = None
    uri = root.resolve().as_uri()
    command = " ".join(argv) if argv else None
    return {
        "Name": f"mrisr super-resolution of {raw_name or root.name}",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "mrisr",
                "Version": __version__,
                "Description": "MRI super-resolution (mrisr upscale --bids)"
                + (f"; command: {command}" if command else ""),
            }
        ],
        "SourceDatasets": [{"URL": uri}],
        "DatasetLinks": {RAW_LINK: uri},
    }


def bids_sidecar(scan: BidsScan, provenance: dict[str, Any]) -> dict[str, Any]:
    """The output's BIDS sidecar: ``Sources`` (BIDS URI of the input scan), a description,
    ``SkullStripped`` (required for derivative anatomical images; SR strips nothing, so the
    source's value) and mrisr's own sidecar (model, checkpoint sha256, options, time) under
    ``"mrisr"``."""
    model, scale = provenance.get("model"), provenance.get("scale")
    what = f"super-resolved in-plane x{scale}" if scale else "super-resolved"
    return {
        "Sources": [source_uri(scan.relpath)],
        "Description": f"{what} by mrisr" + (f" (model {model})" if model else ""),
        "SkullStripped": scan.skull_stripped,
        "mrisr": provenance,
    }


def readme(desc: dict[str, Any]) -> str:
    """The derivative dataset's README (recommended by BIDS)."""
    gen = desc["GeneratedBy"][0]
    return (
        f"# {desc['Name']}\n\n"
        f"Written by mrisr {gen['Version']} (`mrisr upscale --bids`): each anatomical scan of "
        f"the source dataset ({desc['SourceDatasets'][0]['URL']}) super-resolved, under the "
        f"same name with the `desc-{DESC}` entity. Each output's JSON sidecar names its source "
        "(`Sources`, a BIDS URI) and holds mrisr's provenance (model, weights sha256, options, "
        "time) under `mrisr`.\n"
    )


def is_mrisr_derivative(out: Path) -> bool:
    """Whether ``out/dataset_description.json`` is one that mrisr wrote."""
    try:
        desc = json.loads((out / "dataset_description.json").read_text())
        return any(g.get("Name") == "mrisr" for g in desc.get("GeneratedBy", []))
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def check_outputs(root: Path, out: Path, scans: list[BidsScan], overwrite: bool) -> None:
    """Before any work: OUT_DERIV is not the raw dataset, its parent exists, and nothing it
    would write exists (unless ``overwrite``); a dataset_description.json that mrisr wrote
    is updated, another one is refused."""
    if out.resolve() == root.resolve():
        raise OutputError(
            "OUT_DERIV is the BIDS root; give a folder such as BIDS_ROOT/derivatives/mrisr"
        )
    if out.exists() and not out.is_dir():
        raise OutputError(f"output '{out}' is a file; --bids writes a derivative dataset folder")
    if not out.exists() and not out.parent.is_dir():
        raise OutputError(f"output folder '{out.parent}' does not exist; create it first")
    desc = out / "dataset_description.json"
    if desc.exists() and not overwrite and not is_mrisr_derivative(out):
        raise OutputError(
            f"'{desc}' exists and is not an mrisr derivative; pass --overwrite to replace it"
        )
    existing = [
        p
        for s in scans
        for p in (out / s.out_relpath, out / json_relpath(s.out_relpath))
        if p.exists()
    ]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise OutputError(
            f"output '{existing[0]}'{more} exists already; pass --overwrite to replace it"
        )

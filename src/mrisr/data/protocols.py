"""Subject-level splits and dataset protocols: the IXI "CSN" protocol and fastMRI h5 folders."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mrisr.errors import ConfigError, InputError
from mrisr.io.formats import BY_NAME, describe, scan_files, split_suffix, suffix_format

IXI_ID = re.compile(r"IXI\d+")

#: CSN protocol (Zhao et al., "Channel splitting network for single MR image super-resolution"):
#: every volume cropped to 240×240×96 (in-plane H × W × slices), 500/70/6 subjects.
CSN_CROP = (240, 240, 96)
CSN_SPLIT = (500, 6, 70)  # train / quick validation / test (SERAN §4.1, W²AMSN §IV-A)

PathLike = str | os.PathLike[str]


def subject_of(path: PathLike) -> str:
    """Subject id of a scan: the IXI-style ``IXI\\d+`` prefix if present, else the file name
    without its extension (a DICOM folder: the folder name)."""
    p = Path(path)
    m = IXI_ID.search(p.name)
    if m:
        return m.group(0)
    return p.name if p.is_dir() else split_suffix(p)[0]


def _count(n: int | float, total: int, what: str) -> int:
    """A number of subjects from a count (int) or a fraction (float in [0, 1))."""
    if isinstance(n, float):
        if not 0.0 <= n < 1.0:
            raise ConfigError(f"{what}: a fraction must be in [0, 1) (an int is a count), got {n}")
        return max(1, round(n * total)) if n > 0 else 0
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ConfigError(f"{what}: the number of subjects must be an int >= 0, got {n!r}")
    return int(n)


def split_by_subject(
    scans: Sequence[PathLike],
    val: int | float = 1,
    test: int | float = 0,
    seed: int = 0,
    subject_fn: Callable[[Path], str] | None = None,
    train: int | None = None,
) -> tuple[list[Path], list[Path], list[Path]]:
    """Split scans into (train, val, test) by subject: all scans of a subject (IXI002 T1 and T2)
    land in the same split.

    ``val``/``test`` are numbers of subjects (int) or fractions of them (float in (0, 1), rounded,
    at least 1). Subjects are shuffled with ``random.Random(seed)`` (sorted first, so the result
    does not depend on the input order); ``test`` takes the first, ``val`` the next, and
    ``train`` the next ``train`` subjects (default: all the rest). Scans keep their input order
    within a split.
    """
    fn = subject_fn or subject_of
    paths = [Path(s) for s in scans]
    subjects = sorted({fn(p) for p in paths})
    n = len(subjects)
    n_val, n_test = _count(val, n, "val"), _count(test, n, "test")
    n_train = n - n_val - n_test if train is None else int(train)
    if n_train < 1 or n_val + n_test + n_train > n:
        raise ConfigError(
            f"cannot split {n} subject(s) into train {n_train}, val {n_val}, test {n_test}"
        )
    random.Random(seed).shuffle(subjects)
    which = {s: "test" for s in subjects[:n_test]}
    which.update({s: "val" for s in subjects[n_test : n_test + n_val]})
    which.update({s: "train" for s in subjects[n_test + n_val : n_test + n_val + n_train]})
    out: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for p in paths:
        if fn(p) in which:
            out[which[fn(p)]].append(p)
    return out["train"], out["val"], out["test"]


@dataclass(frozen=True)
class ProtocolSplit:
    """(train, val, test) scan lists (unpacks like a tuple) plus the crop the protocol uses."""

    train: list[Path]
    val: list[Path]
    test: list[Path]
    crop: tuple[int, int, int] | None = None
    cache_dir: Path | None = None
    unused: tuple[Path, ...] = ()

    def __iter__(self) -> Iterator[list[Path]]:
        return iter((self.train, self.val, self.test))


def _expand(scans: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(scans, str | os.PathLike) and Path(scans).is_dir():
        d = Path(scans)
        found = scan_files(d)
        if not found:
            raise InputError(f"no scan files in '{d}'; mrisr reads {describe()}")
        return found
    if isinstance(scans, str | os.PathLike):
        return [Path(scans)]
    return [Path(s) for s in scans]


def ixi_csn(
    scans: PathLike | Sequence[PathLike],
    cache_dir: PathLike | None = None,
    seed: int = 0,
) -> ProtocolSplit:
    """The IXI CSN protocol: 500 training, 6 quick-validation and 70 test subjects, every volume
    cropped centrally
    to 240×240×96 (in-plane H × W × slices along the acquisition axis, i.e. the coarsest-spaced
    one). (The papers' "500/70/6" lists train/test/validation.)

    With fewer than 576 subjects the split is scaled down proportionally (val and test rounded,
    at least 1 each, the rest train; 3 subjects at least); with more, the 576 drawn first are
    used and the others listed in ``unused``. Every scan is decoded once into the volume cache
    (``cache_dir``, shared with the datasets) and a volume smaller than the crop is an
    :class:`InputError` naming the file.
    """
    from mrisr.data.volumes import VolumeCache, crop_box
    from mrisr.io.geometry import resolve_axis

    paths = _expand(scans)
    n = len({subject_of(p) for p in paths})
    total = sum(CSN_SPLIT)
    if n >= total:
        n_train, n_val, n_test = CSN_SPLIT
    else:
        n_val = max(1, round(n * CSN_SPLIT[1] / total))
        n_test = max(1, round(n * CSN_SPLIT[2] / total))
        n_train = n - n_val - n_test
        if n_train < 1:
            raise ConfigError(f"the CSN protocol needs at least 3 subjects, got {n}")
    cache = VolumeCache(cache_dir)
    for p in paths:
        vol = cache.get(p)
        k = resolve_axis(None, vol.zooms, vol.shape)
        h, w = (a for a in range(3) if a != k)
        crop_box((vol.shape[k], vol.shape[h], vol.shape[w]), CSN_CROP, 1, p)
    train, val, test = split_by_subject(paths, n_val, n_test, seed=seed, train=n_train)
    used = set(train) | set(val) | set(test)
    return ProtocolSplit(
        train, val, test, CSN_CROP, cache.cache_dir, tuple(p for p in paths if p not in used)
    )


def fastmri_folder(path: PathLike) -> list[Path]:
    """The ``.h5`` files of a fastMRI-style folder, sorted (an :class:`InputError` if none)."""
    d = Path(path)
    if not d.is_dir():
        raise InputError(f"fastMRI folder '{d}' does not exist or is not a folder")
    h5 = BY_NAME["h5"]
    files = sorted(p for p in d.iterdir() if suffix_format(p) is h5 and p.is_file())
    if not files:
        raise InputError(f"no {'/'.join(h5.suffixes)} files in '{d}'")
    return files

"""Decoded scans cached as memory-mapped ``.npy`` files; crops, foreground and slice transforms.

A scan is decoded once with :func:`mrisr.io.load_volume`; its float32 data is written to
``CACHE/<key>.npy`` (Fortran order, so the usual slice axis — the last one — is contiguous) and its
geometry to ``CACHE/<key>.json``, where ``key`` hashes the resolved path, size and modification
time (a changed file gets a new entry). Later accesses, in any process, open the ``.npy`` with
``np.load(mmap_mode="r")``: DataLoader workers share the OS page cache instead of each holding a
decoded copy. Every file is written to a unique temporary name and renamed into place, and the
JSON is written last, so concurrent workers or ranks never read half a file (at worst two of them
decode the same scan and the second rename wins with identical content).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrisr.errors import InputError
from mrisr.io.load import load_volume

#: The foreground rule used for patch sampling (recorded in training cards).
FOREGROUND_RULE = "hr > 0.1 * p99(hr volume)"


def default_cache_dir() -> Path:
    """``$MRISR_CACHE_DIR``, else ``$XDG_CACHE_HOME/mrisr/volumes`` (``~/.cache/...``)."""
    env = os.environ.get("MRISR_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mrisr" / "volumes"


def digest(obj: Any) -> str:
    """A short stable hash of a JSON-able object (cache keys)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def source_signature(path: Path) -> dict[str, Any]:
    """(resolved path, size, mtime) of a file; of a folder (DICOM series): its files' total size
    and latest mtime."""
    p = path.resolve()
    if p.is_dir():
        stats = [f.stat() for f in sorted(p.rglob("*")) if f.is_file()]
        size = sum(s.st_size for s in stats)
        mtime = max((s.st_mtime_ns for s in stats), default=0)
    else:
        st = p.stat()
        size, mtime = st.st_size, st.st_mtime_ns
    return {"path": str(p), "size": size, "mtime_ns": mtime}


def _atomic(path: Path, write: Callable[[Any], None], mode: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, mode) as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` to a temporary name in the same folder, then rename."""
    _atomic(path, lambda fh: np.save(fh, array, allow_pickle=False), "wb")


def save_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary name in the same folder, then rename."""
    _atomic(path, lambda fh: fh.write(json.dumps(obj, default=str)), "w")


def open_npy(file: Path) -> np.ndarray:
    """Open a cached ``.npy`` read-only and memory-mapped."""
    return np.load(file, mmap_mode="r", allow_pickle=False)


@dataclass(eq=False)
class CachedVolume:
    """A decoded scan backed by the cache.

    Attributes:
        path: the source scan.
        data: read-only float32 memmap (I, J, K), voxel axes of ``affine``.
        affine: 4×4 voxel → RAS+ mm.
        zooms: voxel spacing (mm) per array axis.
        meta: the reader's metadata.
        key: the cache key; ``file`` the ``.npy`` holding ``data``.

    Pickling (DataLoader workers with ``spawn``) sends the file name, never the array: the
    memmap is reopened on the other side.
    """

    path: Path
    data: np.ndarray
    affine: np.ndarray
    zooms: tuple[float, float, float]
    meta: dict[str, Any]
    key: str
    file: Path

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen, (self.path, self.affine, self.zooms, self.meta, self.key, self.file))


def _reopen(path, affine, zooms, meta, key, file) -> CachedVolume:
    return CachedVolume(path, open_npy(file), affine, zooms, meta, key, file)


class LazyArray:
    """A cached ``.npy`` opened (memory-mapped) on first use in each process; pickles as its
    file name."""

    def __init__(self, file: Path) -> None:
        self.file = Path(file)
        self._array: np.ndarray | None = None

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = open_npy(self.file)
        return self._array

    def __getstate__(self) -> dict[str, Any]:
        return {"file": self.file, "_array": None}


class VolumeCache:
    """Decode each scan once; serve it as a memmap afterwards (see the module docstring)."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, CachedVolume] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"cache_dir": self.cache_dir, "_open": {}}

    def key(self, path: str | os.PathLike[str]) -> str:
        """The cache key of ``path``: hash of (resolved path, size, mtime)."""
        return digest(source_signature(Path(path)))

    def get(self, path: str | os.PathLike[str]) -> CachedVolume:
        """The scan at ``path``, decoded on first access (any process) and memmapped after."""
        path = Path(path)
        if not path.exists():
            raise InputError(f"input '{path}' does not exist")
        key = self.key(path)
        if key not in self._open:
            self._open[key] = self._read(path, key) or self._decode(path, key)
        return self._open[key]

    def _read(self, path: Path, key: str) -> CachedVolume | None:
        npy, meta_file = self.cache_dir / f"{key}.npy", self.cache_dir / f"{key}.json"
        if not (meta_file.exists() and npy.exists()):
            return None
        info = json.loads(meta_file.read_text())
        affine = np.asarray(info["affine"], dtype=np.float64)
        zooms = tuple(float(z) for z in info["zooms"])
        return CachedVolume(path, open_npy(npy), affine, zooms, info["meta"], key, npy)  # type: ignore[arg-type]

    def _decode(self, path: Path, key: str) -> CachedVolume:
        vol = load_volume(path)
        save_npy_atomic(self.cache_dir / f"{key}.npy", np.asfortranarray(vol.data, np.float32))
        info = {
            "source": str(path.resolve()),
            "shape": list(vol.shape),
            "affine": vol.affine.tolist(),
            "zooms": list(vol.zooms),
            "meta": vol.meta,
        }
        save_json_atomic(self.cache_dir / f"{key}.json", info)  # last: marks the entry complete
        read = self._read(path, key)
        assert read is not None
        return read

    def array(self, name: str, compute: Callable[[], np.ndarray]) -> LazyArray:
        """A derived array cached as ``CACHE/name`` (computed and written atomically if absent)."""
        file = self.cache_dir / name
        if not file.exists():
            save_npy_atomic(file, np.ascontiguousarray(compute()))
        return LazyArray(file)

    def record(self, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A derived JSON record cached as ``CACHE/name`` (computed and written if absent)."""
        file = self.cache_dir / name
        if file.exists():
            return json.loads(file.read_text())
        rec = compute()
        save_json_atomic(file, rec)
        return json.loads(json.dumps(rec, default=str))


def crop_box(
    shape_khw: Sequence[int], crop: Sequence[int] | None, scale: int, name: str | Path
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Central crop of a volume laid out [K, H, W] (slices, in-plane H, in-plane W).

    ``crop = (H, W, K)`` (in-plane H, in-plane W, slices) first crops centrally to that size
    (a smaller volume is an :class:`InputError` naming ``name``); then H and W are cropped
    centrally to a multiple of ``scale`` (never padded). Returns ``((k0, k1), (h0, h1), (w0, w1))``.
    """
    k, h, w = (int(n) for n in shape_khw)
    want = (k, h, w) if crop is None else (int(crop[2]), int(crop[0]), int(crop[1]))
    if crop is not None and (want[0] > k or want[1] > h or want[2] > w):
        raise InputError(
            f"'{name}' is {h}×{w}×{k} (H×W×slices), smaller than the crop "
            f"{want[1]}×{want[2]}×{want[0]}"
        )
    box = []
    for axis, (n, c) in enumerate(zip((k, h, w), want, strict=True)):
        if axis > 0:
            c = (c // scale) * scale
            if c == 0:
                raise InputError(f"'{name}': in-plane size {n} is smaller than the scale {scale}")
        start = (n - c) // 2
        box.append((start, start + c))
    return box[0], box[1], box[2]


def foreground_threshold(hr: np.ndarray) -> float:
    """Foreground = voxels above 10 % of the volume's 99th percentile (the rule
    :func:`mrisr.degrade.noise.foreground_mean` uses; robust to a few bright voxels and to the
    noise floor, and unlike Otsu it does not split tissue classes when there is little
    background)."""
    return float(0.1 * np.percentile(hr, 99))


Transform = tuple[bool, bool, int]  # (flip H, flip W, quarter turns of torch.rot90)
IDENTITY_T: Transform = (False, False, 0)


def apply_transform(x: torch.Tensor, t: Transform) -> torch.Tensor:
    """Flip H, flip W, then ``torch.rot90(k)`` of ``x`` [..., H, W]."""
    if t[0]:
        x = x.flip(-2)
    if t[1]:
        x = x.flip(-1)
    return torch.rot90(x, t[2], dims=(-2, -1)) if t[2] else x


def map_point(y: int, x: int, shape: tuple[int, int], t: Transform) -> tuple[int, int]:
    """Where pixel (y, x) of an image of ``shape`` (H, W) lands under :func:`apply_transform`."""
    h, w = shape
    y, x = (h - 1 - y if t[0] else y), (w - 1 - x if t[1] else x)
    for _ in range(t[2]):  # rot90: out[i, j] = in[j, W − 1 − i]
        y, x, h, w = w - 1 - x, y, w, h
    return y, x


@dataclass
class VolumeEntry:
    """What the dataset keeps per volume (small; big arrays are memmaps opened lazily)."""

    volume: CachedVolume
    subject: str
    order: tuple[int, int, int]  # (slice axis, in-plane H axis, in-plane W axis)
    box: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # (K, H, W) ranges
    spacing: tuple[float, float]
    stats: dict[str, float]
    threshold: float
    fg: LazyArray  # per slice, flat in-plane indices y·W + x of foreground pixels
    fg_start: np.ndarray  # [K + 1] offsets into fg
    lr: LazyArray | None  # the cached LR volume [K, H/s, W/s] (fixed degradation)
    guide: LazyArray | None = None  # the guide on this scan's HR grid [K, H, W] (multi-contrast)
    guide_stats: dict[str, float] | None = None
    alignment: dict[str, Any] | None = None  # pair_guide's report

    @property
    def shape(self) -> tuple[int, int, int]:
        """Cropped (K, H, W)."""
        return tuple(b - a for a, b in self.box)  # type: ignore[return-value]

    def hr_slice(self, k: int) -> np.ndarray:
        """Raw HR slice ``k`` of the cropped volume, float32 [H, W] (a copy)."""
        (k0, _), (h0, h1), (w0, w1) = self.box
        view = np.transpose(self.volume.data, self.order)
        return np.array(view[k0 + k, h0:h1, w0:w1], dtype=np.float32)

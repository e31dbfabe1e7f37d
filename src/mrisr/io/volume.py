"""The :class:`Volume` container shared by every reader, degradation and writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Volume:
    """A 3-D image with its geometry.

    Attributes:
        data: float32 array of shape (I, J, K), indexed like the voxel axes of ``affine``.
            2-D images are stored with K = 1.
        affine: 4×4 float64 voxel-index → world (RAS+, mm) matrix, as in NIfTI/nibabel.
        meta: JSON-serialisable facts about the source (format, path, header codes, ...);
            ``meta["assumed_geometry"]`` lists, as sentences, the voxel size / orientation a
            reader assumed because the file lacks them (only with ``assume_geometry=True``).
        orig_dtype: the stored data type of the source (for DICOM the stored pixel type, before
            RescaleSlope/Intercept).
        header: the source's nibabel NIfTI header when there was one, so that writing keeps
            qform/sform codes, units, intent and description; ``None`` otherwise.
    """

    data: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    orig_dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    header: Any = None

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float32)
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.data.ndim != 3:
            raise ValueError(f"Volume data must be 3-D, got shape {self.data.shape}")
        if self.affine.shape != (4, 4):
            raise ValueError(f"Volume affine must be 4x4, got {self.affine.shape}")
        self.orig_dtype = np.dtype(self.orig_dtype)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]

    @property
    def zooms(self) -> tuple[float, float, float]:
        """Voxel spacing in mm along each array axis (column norms of the affine)."""
        z = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        return (float(z[0]), float(z[1]), float(z[2]))

    def replace(self, data: np.ndarray, affine: np.ndarray | None = None, **meta: Any) -> Volume:
        """A new Volume with ``data`` (and optionally a new affine); other fields are kept."""
        new_meta = dict(self.meta)
        new_meta.update(meta)
        return Volume(
            data=data,
            affine=self.affine.copy() if affine is None else affine,
            meta=new_meta,
            orig_dtype=self.orig_dtype,
            header=self.header,
        )

    def __repr__(self) -> str:
        z = ", ".join(f"{v:.3g}" for v in self.zooms)
        return (
            f"Volume(shape={self.shape}, zooms=({z}) mm, "
            f"format={self.meta.get('format', '?')}, orig_dtype={self.orig_dtype})"
        )

"""DICOM geometry helpers: the LPS → RAS+ affine, and the header's slice spacing checked
against the spacing measured from the slice positions."""

from __future__ import annotations

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: SpacingBetweenSlices differing from the measured spacing by more than this fraction is noted.
SPACING_RTOL = 0.01


def dicom_affine(
    iop: np.ndarray, spacing: tuple[float, float], step: np.ndarray, origin: np.ndarray
) -> np.ndarray:
    """4×4 voxel (column, row, slice) → RAS+ mm affine from DICOM LPS geometry (all in mm)."""
    aff = np.eye(4)
    aff[:3, 0] = iop[:3] * spacing[1]  # along a row: column spacing
    aff[:3, 1] = iop[3:] * spacing[0]  # down a column: row spacing
    aff[:3, 2] = step
    aff[:3, 3] = origin
    return LPS_TO_RAS @ aff


def spacing_note(header: float | None, measured: float | None) -> str | None:
    """A note when the header's SpacingBetweenSlices (0018,0088) disagrees with the spacing
    measured from the slice positions by more than :data:`SPACING_RTOL`; None when they agree
    or either is unknown. The measured spacing is the one the volume uses."""
    if header is None or measured is None or abs(header - measured) <= SPACING_RTOL * measured:
        return None
    return (
        f"SpacingBetweenSlices (0018,0088) is {header:g} mm but the slice positions are "
        f"{measured:.4g} mm apart ({100 * (header - measured) / measured:+.1f} %); the measured "
        "spacing is used"
    )

"""Per-scan through-plane SR (``task: throughplane``): :class:`ThroughPlaneTask`.

The pixel-loss task (:class:`~mrisr.train.tasks.supervised.SupervisedSR`) on
:class:`~mrisr.data.through_plane_pairs.ThroughPlanePairs`: ``throughplane-resnet`` (scale 1)
learns to turn the B-spline interpolation of thick slices into the sharp in-plane slice they
were made from. What differs is only the data (one scan, degraded along one axis as its slice
direction was acquired) and the export, which records the acquisition the network was fitted
to. Run by ``mrisr upscale --through-plane`` (in memory) or ``mrisr train throughplane_scan
data.train=THICK.nii.gz``.
"""

from __future__ import annotations

from typing import ClassVar

from mrisr.train.tasks.supervised import SupervisedSR


class ThroughPlaneTask(SupervisedSR):
    """One scan's own pairs, L1, Adam; GPU / AMP / DDP come from the engine."""

    name = "throughplane"
    key: ClassVar[str] = "model"

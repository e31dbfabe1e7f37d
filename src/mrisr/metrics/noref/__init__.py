"""No-reference image quality of MR slices: MSCN statistics, BRISQUE features and NIQE.

No ground truth is needed: these measures describe how "natural" the local statistics of an
image are, so they can score an SR result of a real scan for which no HR acquisition exists.
Every function maps its input linearly to [0, 255] first (BRISQUE and NIQE were designed for
8-bit photographs), so a scan's numbers do not depend on its raw units.

The definitions are in the submodules, by job (numpy / scipy only: importing this package
loads neither torch nor matplotlib); every public name is re-exported here:

- :mod:`~mrisr.metrics.noref.coefficients`: the [0, 255] window (:func:`to_byte_scale`),
  MSCN coefficients (Eq. 4-6), paired products and the foreground mask;
- :mod:`~mrisr.metrics.noref.features`: GGD / AGGD fits and the 36 BRISQUE features (scale 2
  halves the image with :func:`mrisr.degrade.resample.imresize_matrix`, imported on first
  use because :mod:`mrisr.degrade` loads torch);
- :mod:`~mrisr.metrics.noref.niqe_model`: NIQE patch features, the pristine model
  (``niqe_mr_pristine.json``: fit, load) and the NIQE of a slice;
- :mod:`~mrisr.metrics.noref.volume`: :func:`niqe_volume`, per slice and per volume, and
  ``noref_volume`` (what ``mrisr eval --no-reference`` reports: ``niqe_mr`` next to the
  standard scores);
- :mod:`~mrisr.metrics.noref.standard` (not re-exported: its ``niqe`` is another score):
  the *standard* BRISQUE and NIQE, MATLAB's definitions with the published natural-image
  models (``models/``, see its ``NOTICE.md``), for numbers comparable with papers;
- :mod:`~mrisr.metrics.noref.histograms`: :func:`mscn_histograms` (the data of the paper's
  Fig. 5; the figure is :func:`mrisr.report.figures.mscn_histogram_plot`).

(The submodules are not named ``mscn`` / ``niqe``: those are the functions of the same name.)
"""

from __future__ import annotations

from mrisr.metrics.noref.coefficients import FOREGROUND as FOREGROUND
from mrisr.metrics.noref.coefficients import MSCN_C as MSCN_C
from mrisr.metrics.noref.coefficients import MSCN_RADIUS as MSCN_RADIUS
from mrisr.metrics.noref.coefficients import MSCN_SIGMA as MSCN_SIGMA
from mrisr.metrics.noref.coefficients import ORIENTATIONS as ORIENTATIONS
from mrisr.metrics.noref.coefficients import mscn, paired_products, to_byte_scale
from mrisr.metrics.noref.features import FEATURE_NAMES, aggd_fit, brisque_features, ggd_fit
from mrisr.metrics.noref.histograms import HISTOGRAM_RANGES, mscn_histograms
from mrisr.metrics.noref.niqe_model import NIQE_MIN_FOREGROUND as NIQE_MIN_FOREGROUND
from mrisr.metrics.noref.niqe_model import NIQE_PATCH as NIQE_PATCH
from mrisr.metrics.noref.niqe_model import NIQE_SHARPNESS as NIQE_SHARPNESS
from mrisr.metrics.noref.niqe_model import PRISTINE_FILE as PRISTINE_FILE
from mrisr.metrics.noref.niqe_model import (
    NiqeModel,
    fit_niqe_model,
    load_niqe_model,
    niqe,
    niqe_distance,
    niqe_features,
    niqe_model_from_patches,
    pristine_patches,
)
from mrisr.metrics.noref.volume import niqe_volume

__all__ = [
    "FEATURE_NAMES",
    "HISTOGRAM_RANGES",
    "NiqeModel",
    "aggd_fit",
    "brisque_features",
    "fit_niqe_model",
    "ggd_fit",
    "load_niqe_model",
    "mscn",
    "mscn_histograms",
    "niqe",
    "niqe_distance",
    "niqe_features",
    "niqe_model_from_patches",
    "niqe_volume",
    "paired_products",
    "pristine_patches",
    "to_byte_scale",
]

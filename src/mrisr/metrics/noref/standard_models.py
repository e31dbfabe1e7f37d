"""The published natural-image models of the standard BRISQUE and NIQE, read without pickle.

Package data in ``models/`` (attribution and licences: ``models/NOTICE.md``): the LIVE
BRISQUE epsilon-SVR as a libsvm text model with its feature range (JSON), and the pristine
multivariate Gaussian of MATLAB's default NIQE model (JSON). numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mrisr.errors import InputError

MODEL_DIR = Path(__file__).resolve().parent / "models"
BRISQUE_MODEL_FILE = MODEL_DIR / "brisque_live_svr.txt"
BRISQUE_RANGE_FILE = MODEL_DIR / "brisque_live_range.json"
NIQE_PARAMS_FILE = MODEL_DIR / "niqe_natural_pristine.json"


@dataclass(frozen=True)
class BrisqueModel:
    """The epsilon-SVR (RBF) and the feature range that scales its inputs to [-1, 1]."""

    sv: np.ndarray  # [n, 36] support vectors (scaled features)
    coef: np.ndarray  # [n]
    gamma: float
    rho: float
    feature_min: np.ndarray  # [36]
    feature_max: np.ndarray  # [36]


def _read_libsvm(text: str) -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    """Header, support vectors (dense, absent indices are 0) and coefficients of a libsvm
    text model with one coefficient per vector (a regression model)."""
    lines = text.splitlines()
    head: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].strip() != "SV":
        key, _, value = lines[i].strip().partition(" ")
        head[key] = value
        i += 1
    if i == len(lines):
        raise ValueError("no 'SV' section")
    coef, rows = [], []
    for line in lines[i + 1 :]:
        parts = line.split()
        if not parts:
            continue
        coef.append(float(parts[0]))
        row = {}
        for p in parts[1:]:
            k, _, v = p.partition(":")
            row[int(k)] = float(v)
        rows.append(row)
    n_feat = max((max(r) for r in rows if r), default=0)
    sv = np.zeros((len(rows), n_feat))
    for j, r in enumerate(rows):
        for k, v in r.items():
            sv[j, k - 1] = v
    return head, sv, np.asarray(coef)


@lru_cache(maxsize=1)
def load_brisque_model() -> BrisqueModel:
    """The shipped LIVE BRISQUE SVR and feature range (see ``models/NOTICE.md``)."""
    try:
        head, sv, coef = _read_libsvm(BRISQUE_MODEL_FILE.read_text())
        rng = json.loads(BRISQUE_RANGE_FILE.read_text())
        if (head.get("svm_type"), head.get("kernel_type")) != ("epsilon_svr", "rbf"):
            raise ValueError(f"not an RBF epsilon-SVR: {head}")
        if sv.shape != (int(head["total_sv"]), 36):
            raise ValueError(f"support vectors {sv.shape}, total_sv {head['total_sv']}")
        lo = np.asarray(rng["feature_min"], dtype=np.float64)
        hi = np.asarray(rng["feature_max"], dtype=np.float64)
        if lo.shape != (36,) or hi.shape != (36,):
            raise ValueError(f"feature range of shape {lo.shape}, {hi.shape}")
        return BrisqueModel(sv, coef, float(head["gamma"]), float(head["rho"]), lo, hi)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, ValueError) as exc:
        raise InputError(
            f"the BRISQUE model in '{MODEL_DIR}' cannot be read ({exc}); reinstall mrisr"
        ) from None


@lru_cache(maxsize=1)
def load_niqe_params() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mu [36], cov [36, 36], gaussian window [7, 7])`` of MATLAB's default NIQE model."""
    try:
        d = json.loads(NIQE_PARAMS_FILE.read_text())
        mu = np.asarray(d["mu_pris_param"], dtype=np.float64).ravel()
        cov = np.asarray(d["cov_pris_param"], dtype=np.float64)
        win = np.asarray(d["gaussian_window"], dtype=np.float64)
        if mu.shape != (36,) or cov.shape != (36, 36) or win.shape != (7, 7):
            raise ValueError(f"shapes {mu.shape}, {cov.shape}, {win.shape}")
        return mu, cov, win
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, ValueError) as exc:
        raise InputError(
            f"the NIQE model '{NIQE_PARAMS_FILE}' cannot be read ({exc}); reinstall mrisr"
        ) from None

"""A 1-D slice profile: the through-plane point-spread function of a thick-slice scan.

A profile file is a 1-D float64 ``.npy`` of ``L`` taps (``L`` odd) that sums to 1, sampled at
the scan's in-plane spacing ``d`` (one tap per HR voxel), centred on tap ``(L − 1)/2``, with a
JSON sidecar (FWHM in mm and in voxels, centre of mass, ``k = S/d``, ``d``, ``S``) and a PSF
plot ``.png`` beside it. ``mrisr learn-kernel --through-plane`` writes the three together, or
nothing. Slice ``j`` of the scan is the object along the slice axis convolved with the profile
and sampled every ``k`` voxels (``ThickSlice``'s forward model, with this profile instead of
an analytic one). A ``.npy`` is never unpickled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.errors import ConfigError, InputError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
PROFILES = ("rect", "gaussian")
MAX_TAPS = 4097


def analytic_profile(kind: str, fwhm_vox: float, length: int) -> np.ndarray:
    """``length`` taps (sum 1) of a ``rect`` or ``gaussian`` slice profile of FWHM ``fwhm_vox``
    voxels, centred on tap ``(length − 1)/2``.

    ``rect`` is the overlap of each voxel ``[x − ½, x + ½]`` with the slab ``[−f/2, f/2]``, as
    :func:`mrisr.degrade.thickslice.slice_profile_matrix` integrates it (a box of width ``f``
    convolved with the voxel's box); ``gaussian`` samples ``exp(−x²/2σ²)``, ``σ = f / 2.355``.
    """
    if kind not in PROFILES:
        raise ConfigError(f"--profile must be 'rect' or 'gaussian', got '{kind}'")
    if not (math.isfinite(fwhm_vox) and fwhm_vox > 0):
        raise ConfigError(f"profile FWHM must be a finite number > 0 voxels, got {fwhm_vox}")
    if not 1 <= int(length) <= MAX_TAPS:
        raise ConfigError(f"profile length must be 1 to {MAX_TAPS} taps, got {length}")
    x = np.arange(int(length), dtype=np.float64) - (int(length) - 1) / 2
    if kind == "rect":
        half = fwhm_vox / 2
        w = np.clip(np.minimum(x + 0.5, half) - np.maximum(x - 0.5, -half), 0.0, None)
    else:
        sigma = fwhm_vox / FWHM_PER_SIGMA
        w = np.exp(-0.5 * (x / sigma) ** 2)
    if not w.sum() > 0:
        raise ConfigError(f"a {length}-tap profile cannot hold FWHM {fwhm_vox:g} voxels")
    return w / w.sum()


def profile_length(fwhm_vox: float, k: float) -> int:
    """Odd tap count that holds a profile of FWHM ``fwhm_vox`` (±1.5 FWHM, at least ±1.5 k)."""
    return 2 * int(math.ceil(1.5 * max(float(fwhm_vox), float(k)))) + 1


def fwhm_of(profile: np.ndarray) -> float:
    """Full width at half maximum in samples: the distance between the outermost half-maximum
    crossings, each found by linear interpolation between the two samples around it. A profile
    still above half its maximum at an end is measured to that end's sample edge (±½)."""
    p = np.asarray(profile, np.float64).ravel()
    if p.size == 0 or not np.all(np.isfinite(p)) or not p.max() > 0:
        raise ConfigError("fwhm_of: the profile must be finite with a positive maximum")
    half = p.max() / 2
    above = np.nonzero(p >= half)[0]
    lo, hi = int(above[0]), int(above[-1])
    left = lo - 0.5 if lo == 0 else lo - (p[lo] - half) / (p[lo] - p[lo - 1])
    right = hi + 0.5 if hi == p.size - 1 else hi + (p[hi] - half) / (p[hi] - p[hi + 1])
    return float(right - left)


def centre_of_mass_1d(profile: np.ndarray) -> float:
    p = np.asarray(profile, np.float64)
    return float((p * np.arange(p.size)).sum() / p.sum())


def rms_width(profile: np.ndarray) -> float:
    """The profile's standard deviation about its centre of mass, in samples."""
    p = np.asarray(profile, np.float64)
    x = np.arange(p.size) - centre_of_mass_1d(p)
    return float(np.sqrt((p * x**2).sum() / p.sum()))


def profile_summary(profile: np.ndarray, d: float, k: float) -> dict[str, Any]:
    """The sidecar numbers of a profile sampled at ``d`` mm with slices every ``k·d`` mm.

    Besides the FWHM: the RMS width ``σ`` and the FWHM a Gaussian (2.355 σ) or a rect profile
    (``√(12σ² − 1)``: a slab convolved with the voxel) of that width would have. A profile
    learned from the scan itself pins ``σ`` down far better than its shape (a rect profile
    comes out with a rounder top and the same ``σ``), so when the protocol's shape is known,
    the matching ``fwhm_mm_if_*`` is the better estimate of its FWHM.
    """
    p = np.asarray(profile, np.float64)
    f, sd = fwhm_of(p), rms_width(p)
    return {
        "kind": "mrisr-slice-profile",
        "length": int(p.size),
        "fwhm_vox": round(f, 4),
        "fwhm_mm": round(f * float(d), 4),
        "rms_width_vox": round(sd, 4),
        "fwhm_mm_if_gaussian": round(FWHM_PER_SIGMA * sd * float(d), 4),
        "fwhm_mm_if_rect": round(math.sqrt(max(12 * sd**2 - 1, 0.0)) * float(d), 4),
        "centre_of_mass": round(centre_of_mass_1d(p), 4),
        "centre_target": (p.size - 1) / 2,
        "k": round(float(k), 6),
        "d_mm": float(d),
        "slice_spacing_mm": round(float(k) * float(d), 6),
        "convention": "slice j = (object along the slice axis ⋆ profile) at voxel j·k; tap "
        "(L − 1)/2 is the slice centre, taps are d mm apart; the profile sums to 1",
    }


def read_profile(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """``(profile float64 [L], sidecar dict or {})``; one-line :class:`InputError` for a file
    that is pickled, not 1-D, holds NaN / Inf, or does not sum to 1 (±1e-3)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"profile '{p}' does not exist; give a .npy written by mrisr learn-kernel")
    try:
        with open(p, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    except (ValueError, OSError, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"profile '{p}' is not a readable .npy array ({reason})") from None
    if dtype.hasobject:
        raise InputError(f"profile '{p}' holds pickled Python objects; mrisr never unpickles")
    if len(shape) != 1 or not 1 <= shape[0] <= MAX_TAPS:
        raise InputError(f"profile '{p}' must be a 1-D array of 1 to {MAX_TAPS} taps, got {shape}")
    if dtype.kind not in "iuf":
        raise InputError(f"profile '{p}' has dtype {dtype}; expected floats")
    try:
        prof = np.asarray(np.load(p, allow_pickle=False), dtype=np.float64)
    except (ValueError, OSError, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"profile '{p}' is not a readable .npy array ({reason})") from None
    if not np.all(np.isfinite(prof)):
        raise InputError(f"profile '{p}' contains NaN or Inf")
    if abs(prof.sum() - 1.0) > 1e-3:
        raise InputError(f"profile '{p}' sums to {prof.sum():.6g}; a slice profile sums to 1")
    meta: dict[str, Any] = {}
    side = p.with_suffix(".json")
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except (ValueError, OSError) as e:
            raise InputError(f"profile sidecar '{side}' is not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise InputError(f"profile sidecar '{side}' must hold a JSON object")
    return prof, meta


def save_profile(
    path: str | Path, profile: np.ndarray, meta: dict[str, Any], overwrite: bool = False
) -> list[Path]:
    """Write ``path`` (.npy, float64, normalised to sum 1), its ``.json`` sidecar and a ``.png``
    PSF plot, all or none."""
    from mrisr.io.atomic import atomic_outputs, strict_json

    p = Path(path)
    if p.suffix != ".npy":
        raise ConfigError(f"profile output '{p}' must end in .npy (its .json and .png go beside)")
    prof = np.asarray(profile, np.float64).ravel()
    if prof.size < 1 or not np.all(np.isfinite(prof)) or not prof.sum() > 0:
        raise ConfigError("save_profile: the profile must be finite with a positive sum")
    prof = prof / prof.sum()
    outs = [p, p.with_suffix(".json"), p.with_suffix(".png")]
    with atomic_outputs(outs, overwrite=overwrite) as (t_npy, t_json, t_png):
        with open(t_npy, "wb") as f:
            np.save(f, prof, allow_pickle=False)
        t_json.write_text(strict_json(meta, indent=2) + "\n")
        profile_plot(prof, t_png, meta)
    return outs


def profile_plot(prof: np.ndarray, path: str | Path, meta: dict[str, Any]) -> None:
    """The profile against position (mm and voxels) with its FWHM, and its MTF with the slice
    Nyquist frequency ``1/(2S)`` marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = float(meta.get("d_mm") or 1.0)
    k = meta.get("k")
    n = prof.size
    x = (np.arange(n) - (n - 1) / 2) * d
    f = fwhm_of(prof)
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.3), constrained_layout=True)
    ax[0].plot(x, prof, "o-", ms=3, label="profile")
    ax[0].axhline(prof.max() / 2, color="grey", lw=0.8, ls=":")
    ax[0].set_title(f"slice profile: FWHM {f * d:.3g} mm ({f:.3g} voxels)")
    ax[0].set_xlabel(f"through-plane position (mm; taps {d:.3g} mm apart)")
    freq = np.fft.rfftfreq(256, d=d)
    ax[1].plot(freq, np.abs(np.fft.rfft(prof, 256)), label="|FFT|")
    if k:
        ax[1].axvline(0.5 / (float(k) * d), color="grey", lw=0.8)
        ax[1].text(0.5 / (float(k) * d), 0.02, " slice Nyquist", fontsize=7, color="grey")
    ax[1].set_title("MTF")
    ax[1].set_xlabel("cycles / mm")
    ax[1].set_ylim(0, 1.05)
    if meta.get("title"):
        fig.suptitle(str(meta["title"]), fontsize=9)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)

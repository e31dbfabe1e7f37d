"""Exact k-space data consistency for in-plane SR of ``kspace-truncate`` scans.

The operator ``T`` is :func:`mrisr.degrade.kspace.kspace_truncate` itself (imported lazily,
so this module needs only numpy until a residual is asked for): per 2-D slice,

``T(x) = c · |ifft2c_M(crop_M(fft2c_N(x)))|``, ``c = sqrt(M_h·M_w / (N_h·N_w))`` (``keep_mean``;
``c = 1`` without it), the orthonormal centred FFTs of :mod:`mrisr.fourier` (DC at index
``N // 2``), ``crop_M`` the block of indices ``(N − M)//2 … (N − M)//2 + M − 1``.

What that block holds, per axis (``f`` = HR frequency in cycles per field of view):

- ``M`` even (``N`` even): ``f = −M/2 … M/2 − 1``, the HR DC on the LR DC. ``−M/2`` (the LR
  Nyquist) has its Hermitian partner ``+M/2`` outside the block.
- ``M`` odd, ``N`` even (e.g. ×2 of 2·odd): ``f = −(M+1)/2 … (M−3)/2``: one extra negative
  frequency and one positive missing, and the HR DC lands one bin right of the LR DC (a
  one-cycle phase ramp across the LR field of view, which the magnitude removes). ``−(M+1)/2``
  and ``−(M−1)/2`` have their partners outside the block.
- ``M`` and ``N`` odd (odd scales): ``f = −(M−1)/2 … (M−1)/2``, symmetric, every partner inside.

No window: ``kspace-truncate`` is a plain crop (the Fermi window belongs to ``kspace-zerofill``,
whose ``R = M/2, T = M/32`` window falls to ~1e-3 in the block's corners: inverting it would
amplify noise ~750×, so consistency is offered for ``kspace-truncate`` models only).

Because ``T`` ends with a magnitude, ``y`` carries no phase. :func:`kspace_project` builds an LR
image ``w`` (the block's image with the ramp above removed) with ``|w| = y`` that a *real* HR
image can have: its spectrum must be Hermitian on the block frequencies whose partners are in
the block, i.e. ``Im w`` may only hold the free edge lines (the LR Nyquist row/column for even
``M``, the two extra lines for odd ``M`` with even ``N``, nothing for odd ``N``). ``w`` starts
from the SR's own, alternates "magnitude → y" and "imaginary part → its edge-line part", and
ends exact: the edge part ``q`` is scaled per slice until ``|q| ≤ y`` and
``Re w = ±sqrt(y² − q²)`` (sign of the estimate). Its spectrum goes into the block, and every
block frequency whose partner lies *outside* the block has that partner set to its conjugate,
so the HR spectrum is Hermitian and the image real: ``T`` of the result is ``y`` to float
rounding on odd and even matrices. Only the block and those partner lines change; data that
already fits (the HR truth, a projected image) is a fixed point, so the projection is
idempotent (to the rounding of ``y``: with a float32 LR, a pixel whose ``w`` is almost purely
imaginary can move by ~1e-5 of the maximum, the rounding of ``sqrt(y² − q²)`` near 0).
Taking ``w`` real (dropping ``q``) is also exact, but moves the truth of a real crop by 2-4 %
(33-40 dB): the edge lines' imaginary part of a magnitude image is not small.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mrisr.errors import ConfigError

METHOD = "kspace-truncate"
#: Most alternating projections in :func:`_phase_fit` (it stops earlier once converged); on the
#: FLAIR crop at x2 the per-slice edge scale reached 0.32 (worst slice) after 50, 0.95 after 200.
PHASE_ITERATIONS = 100


def _fft2c(x: np.ndarray) -> np.ndarray:
    """:func:`mrisr.fourier.fft2c` in numpy (complex128)."""
    ax = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=ax), norm="ortho"), axes=ax)


def _ifft2c(k: np.ndarray) -> np.ndarray:
    """:func:`mrisr.fourier.ifft2c` in numpy (complex128)."""
    ax = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=ax), norm="ortho"), axes=ax)


def _check(sr: np.ndarray, lr: np.ndarray, scale: int) -> None:
    if (
        sr.ndim < 2
        or sr.shape[:-2] != lr.shape[:-2]
        or (sr.shape[-2:] != (scale * lr.shape[-2], scale * lr.shape[-1]))
    ):
        raise ConfigError(
            f"k-space consistency: SR slices {sr.shape} are not x{scale} of LR slices {lr.shape}"
        )


def _ramp(n: int, m: int) -> np.ndarray:
    """``exp(2πi·d·(j − m//2)/m)``, ``d`` = HR frequency − LR frequency of the crop (0 or −1)."""
    d = (n - m) // 2 - n // 2 + m // 2
    return np.exp(2j * math.pi * d * (np.arange(m) - m // 2) / m)


def _partner(n: int) -> np.ndarray:
    """Centred index of frequency ``−f`` for every centred index of frequency ``f``."""
    return (2 * (n // 2) - np.arange(n)) % n


def truncate(x: np.ndarray, scale: int, keep_mean: bool = True) -> np.ndarray:
    """``T(x)``: mrisr's :func:`~mrisr.degrade.kspace.kspace_truncate` (both axes) on slices
    ``[..., H, W]``, in float64 for float64 input (complex128), else float32 (complex64)."""
    import torch

    from mrisr.degrade.kspace import kspace_truncate

    dtype = np.float64 if np.asarray(x).dtype == np.float64 else np.float32
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=dtype))
    return kspace_truncate(t, scale, "both", keep_mean).numpy()


def kspace_residual(
    sr_slices: np.ndarray, lr_slices: np.ndarray, scale: int, keep_mean: bool = True
) -> float:
    """``‖T(x) − y‖ / ‖y‖`` over all slices (:func:`truncate`, in the dtype of ``sr_slices``)."""
    sr, lr = np.asarray(sr_slices), np.asarray(lr_slices)
    _check(sr, lr, scale)
    t = truncate(sr, scale, keep_mean).astype(np.float64)
    y = lr.astype(np.float64)
    den = float(np.linalg.norm(y))
    return float(np.linalg.norm(t - y) / den) if den > 0 else float(np.linalg.norm(t))


def kspace_project(
    sr_slices: np.ndarray,
    lr_slices: np.ndarray,
    scale: int,
    keep_mean: bool = True,
    iterations: int = PHASE_ITERATIONS,
) -> np.ndarray:
    """Replace the central k-space block of every SR slice ``[..., s·h, s·w]`` by the acquired
    LR data ``[..., h, w]`` (module docstring); returns the real image in the SR's float dtype
    (computed in float64). ``iterations``: alternating projections that fit the edge-line
    imaginary part (0: none, ``w`` taken real)."""
    sr, lr = np.asarray(sr_slices), np.asarray(lr_slices)
    _check(sr, lr, scale)
    (n_h, n_w), (m_h, m_w) = sr.shape[-2:], lr.shape[-2:]
    c = math.sqrt(m_h * m_w / (n_h * n_w)) if keep_mean else 1.0
    top, left = (n_h - m_h) // 2, (n_w - m_w) // 2
    block = (..., slice(top, top + m_h), slice(left, left + m_w))
    ramp = _ramp(n_h, m_h)[:, None] * _ramp(n_w, m_w)[None, :]
    k = _fft2c(sr.astype(np.float64))
    y = lr.astype(np.float64)
    basis = (_edge_basis(n_h, m_h), _edge_basis(n_w, m_w))
    w = _phase_fit(c * _ifft2c(k[block]) * ramp, y, basis, iterations)
    k[block] = _fft2c(w * np.conj(ramp)) / c
    inside = np.zeros((n_h, n_w), dtype=bool)
    inside[block[1:]] = True
    p_h, p_w = _partner(n_h), _partner(n_w)
    mirror = ~inside & inside[p_h][:, p_w]  # outside, with the partner inside the block
    k[..., mirror] = np.conj(k[..., p_h[:, None], p_w[None, :]][..., mirror])
    out_dtype = sr.dtype if sr.dtype in (np.float32, np.float64) else np.float32
    return _ifft2c(k).real.astype(out_dtype)


def _edge_basis(n: int, m: int) -> np.ndarray:
    """``[m, r]``: orthonormal LR-grid signals ``exp(2πi·f·(j − m//2)/m)/√m`` of the block's
    frequencies ``f`` along one axis whose Hermitian partner lies outside the block (r = 0..2)."""
    f = np.arange(m) + (n - m) // 2 - n // 2
    free = f[~np.isin(-f, f)]
    return np.exp(2j * math.pi * np.outer(np.arange(m) - m // 2, free) / m) / math.sqrt(m)


def _phase_fit(
    w_sr: np.ndarray,
    y: np.ndarray,
    basis: tuple[np.ndarray, np.ndarray],
    iterations: int,
    tol: float = 1e-9,
) -> np.ndarray:
    """The LR image ``w`` (HR-frequency labelled) with ``|w| = y`` exactly and ``Im w`` made of
    the free edge lines only (so that a real HR image has it), near the SR's ``w_sr``.

    Alternating projections from ``w_sr`` (at most ``iterations``, until ``Im w`` moves less
    than ``tol·max y``): magnitude → ``y``, imaginary part → its edge-line component ``q``.
    Then ``q`` is scaled per slice by ``alpha ≤ 1`` until ``|q| ≤ y`` and
    ``Re w = ±sqrt(y² − q²)`` (sign of the estimate): exact, and a fixed point for data that
    already fits (the HR truth, a projected image)."""
    b_h, b_w = basis

    def edge_part(q: np.ndarray) -> np.ndarray:  # rank ≤ 2 per axis: no FFT needed
        rows = b_h @ (b_h.conj().T @ q)
        cols = (q @ b_w.conj()) @ b_w.T
        return (rows + cols - b_h @ (b_h.conj().T @ cols)).real

    re, q = w_sr.real, edge_part(w_sr.imag)
    step = tol * float(y.max(initial=0.0))
    for _ in range(iterations):
        mag = np.hypot(re, q)
        gain = np.divide(y, mag, out=np.zeros_like(y), where=mag > 0)
        re = np.where(mag > 0, re * gain, y)
        q_new = edge_part(q * gain)
        done = float(np.abs(q_new - q).max(initial=0.0)) <= step
        q = q_new
        if done:
            break
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.abs(q) > y, y / np.abs(q), 1.0)
    q = q * ratio.min(axis=(-2, -1), keepdims=True)
    return np.where(re < 0, -1.0, 1.0) * np.sqrt(np.maximum(y * y - q * q, 0.0)) + 1j * q


def truncation_params(training: dict[str, Any] | None, scale: int) -> dict[str, Any] | str:
    """The ``kspace-truncate`` step a checkpoint was trained on (``{"keep_mean": ...}``), or a
    sentence saying why its training degradation is not a single x``scale`` k-space truncation
    of both in-plane axes."""
    if not training or not training.get("degradation"):
        return "the checkpoint's training card records no degradation"
    card = training["degradation"]
    steps = (training.get("dataset") or {}).get("degradation", {})
    full = steps.get("steps") if isinstance(steps, dict) else None
    if isinstance(full, list) and len(full) == len(card):
        card = full  # the dataset's record has every field (axes, keep_mean)
    names = " + ".join(str(s.get("method")) for s in card if isinstance(s, dict))
    if len(card) != 1 or not isinstance(card[0], dict) or card[0].get("method") != METHOD:
        return f"the model was trained on '{names}', not {METHOD} alone"
    step = card[0]
    if step.get("scale", scale) != scale or step.get("axes", "both") != "both":
        return f"the model's {METHOD} is not x{scale} on both in-plane axes ({step})"
    if training.get("random_degradation") or (training.get("dataset") or {}).get(
        "random_degradation"
    ):
        return f"the model was trained on randomised degradations, not a fixed {METHOD}"
    return {"keep_mean": bool(step.get("keep_mean", True))}


def check_consistency(training: dict[str, Any] | None, scale: int) -> dict[str, Any]:
    """:func:`truncation_params`, or a one-line ConfigError for ``--consistency``."""
    params = truncation_params(training, scale)
    if isinstance(params, str):
        raise ConfigError(
            f"--consistency (in-plane) needs a model trained on {METHOD} x{scale}: {params}"
        )
    return params


def volume_consistency(
    hr: np.ndarray,
    lr: np.ndarray,
    slice_axis: int,
    in_plane: list[int],
    scale: int,
    keep_mean: bool = True,
    project: bool = False,
    chunk: int = 8,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Residual of an SR volume against its LR input, and (``project``) the projected volume.

    ``hr`` / ``lr``: volumes whose ``in_plane`` axes are ``scale``× apart. Returns ``hr`` (the
    same array when not projecting) and ``{"residual_before"[, "residual_after",
    "negative_voxels_after"]}`` (relative residuals, computed in float64).
    """
    order = (slice_axis, *in_plane)
    y = np.transpose(lr, order)
    # The SR lies on the LR's own grid (SR pixel s·m at LR pixel m); T's block is centred on
    # the FFT origins, which for an odd LR matrix sit `shift` HR pixels apart from that layout
    # (sidecar-free geometry: `grid_shift`). Rolling the SR onto T's grid, projecting, and
    # rolling back keeps the measured low frequencies where the output's affine says they are.
    shift = grid_shift(np.shape(hr)[in_plane[0]], y.shape[1], np.shape(hr)[in_plane[1]],
                       y.shape[2], scale)  # fmt: skip
    x = np.roll(np.transpose(hr, order), shift, axis=(1, 2))
    record = {"residual_before": kspace_residual(x.astype(np.float64), y, scale, keep_mean)}
    if any(shift):
        record["grid_shift"] = list(shift)
    if not project:
        return hr, record
    out = np.empty(x.shape, dtype=np.float32)
    for i in range(0, x.shape[0], chunk):
        out[i : i + chunk] = kspace_project(
            np.asarray(x[i : i + chunk], dtype=np.float64), y[i : i + chunk], scale, keep_mean
        )
    record["residual_after"] = kspace_residual(out.astype(np.float64), y, scale, keep_mean)
    record["negative_voxels_after"] = int(np.count_nonzero(out < 0))  # the clamp is undone
    out = np.roll(out, (-shift[0], -shift[1]), axis=(1, 2))
    return np.transpose(out, np.argsort(order)), record


def grid_shift(n_h: int, m_h: int, n_w: int, m_w: int, scale: int) -> tuple[int, int]:
    """HR pixels between ``T``'s grid and an SR laid out on the LR's grid, per in-plane axis:
    ``N//2 − s·(M//2)`` (the centred-FFT origins of the HR and of the LR scaled by ``s``):
    0 for an even LR matrix, ``s/2`` for an odd one at an even scale (``(s−1)/2`` at an odd
    scale). ``np.roll(sr, shift)`` puts the SR on ``T``'s grid."""
    return (n_h // 2 - scale * (m_h // 2), n_w // 2 - scale * (m_w // 2))

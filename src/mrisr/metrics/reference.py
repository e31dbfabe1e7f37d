"""Full-reference image metrics: PSNR, SSIM and NMSE, per 2-D image and per volume.

All functions take ``pred`` and ``ref`` of the same shape ``[..., H, W]`` (numpy arrays or
torch tensors; converted to float64 internally) and work on every 2-D image of the batch at
once. They return float64 tensors of shape ``[...]`` (one value per image) unless said
otherwise.

Common conventions
------------------
``data_range``
    The peak value ``L`` in PSNR and in SSIM's constants ``C1 = (0.01 L)²``,
    ``C2 = (0.03 L)²``. An explicit positive float, or ``None``: then ``ref.max()`` over the
    **whole input given** (all images, before ``shave`` and ``mask``). To give all slices of
    a volume one range, pass the volume's maximum
    (:func:`mrisr.metrics.scores.evaluate_volume` does).
``mask``
    Optional boolean array broadcastable to ``[..., H, W]`` (e.g. one ``[H, W]`` mask for
    every image). Only pixels where it is true are scored. An image with no scored pixel
    gets NaN.
``shave``
    Number of pixels cut from every border of both images (and the mask) before anything
    else, as is usual in super-resolution papers.

PSNR
    ``10 log10(L² / MSE)`` per image (inside the mask), in float64; identical images give
    ``+inf``. torchmetrics' ``peak_signal_noise_ratio(..., data_range=L, dim=(-2, -1),
    reduction="none")`` computes the same formula and is tested to agree to 1e-5 dB, but
    it is not called: (1.9) it turns ``data_range`` and the log base into float32 tensors
    (``tensor(float(data_range))``, ``tensor(base)``), which costs up to ~5e-6 dB, and it
    has no mask. One float64 code path keeps masked and unmasked numbers identical.
SSIM
    Wang et al. 2004 with an 11×11 Gaussian window (σ 1.5), K1 0.01, K2 0.03 and population
    (co)variances — the same number as ``skimage.metrics.structural_similarity(ref, pred,
    data_range=L, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
    skimage filters with 'reflect' padding and then averages the SSIM map only over the
    interior, dropping 5 pixels (the window radius) at each border. The interior values
    depend on no padded pixel, so we compute exactly that interior with an unpadded
    ("valid") separable Gaussian filter. With a mask, the map is averaged over the mask pixels
    of that interior.
NMSE
    fastMRI's ``||ref − pred||² / ||ref||²`` over the whole input (``dim=None``: one number
    per volume when given a volume) or per image (``dim=(-2, -1)``).

Why not torchmetrics for SSIM: ``structural_similarity_index_measure`` (1.9) pads with
torch's whole-sample 'reflect' mode and averages the SSIM map over the **full** image,
border included, whereas skimage drops the 5 border pixels; on the real IXI slices of the
tests that moves SSIM by 6e-5 (mild blur and noise) up to 6.5e-3 (heavy), mostly far above
the 1e-4 we require. Its map cropped by 5 pixels equals ours to ~1e-15 (see
tests/test_metrics.py), so the window, constants and covariance are the same — only the
averaging region differs. (It also clamps the variances at 0, which changes nothing here.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mrisr.errors import ConfigError, InputError

SSIM_SIGMA = 1.5
SSIM_RADIUS = int(3.5 * SSIM_SIGMA + 0.5)  # 5: scipy/skimage truncate=3.5 → 11×11 window
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_CHUNK_BYTES = 256 * 2**20  # bound SSIM's working memory per batch of images

__all__ = ["psnr", "ssim", "nmse"]  # evaluate_volume: mrisr.metrics.scores


# ----------------------------------------------------------------------------- helpers


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    """A tensor view of ``x`` in its own dtype (checked numeric, real); no float64 copy."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        a = np.asarray(x)
        if a.dtype.kind not in "biuf":
            if a.dtype.kind == "c":
                raise InputError(f"{name} is complex; pass magnitude images (np.abs) instead")
            raise InputError(f"{name} has dtype {a.dtype}; pass a numeric image array")
        ok = a.flags.writeable and all(st >= 0 for st in a.strides)
        t = torch.from_numpy(a if ok else a.copy())
    if t.is_complex():
        raise InputError(f"{name} is complex; pass magnitude images (abs) instead")
    return t


def _to_f64(x: Any, name: str) -> torch.Tensor:
    return _as_tensor(x, name).to(torch.float64)


def _check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise InputError(
            f"{name} contains NaN or infinite values; fix or mask them before computing metrics"
        )


def _pair(pred: Any, ref: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p, r = _to_f64(pred, "prediction"), _to_f64(ref, "reference")
    r = r.to(p.device)
    if p.shape != r.shape:
        raise ConfigError(
            f"prediction shape {tuple(p.shape)} differs from reference shape {tuple(r.shape)}; "
            "compare images of the same size (check the scale factor or use the matching "
            "reference)"
        )
    if p.ndim < 2:
        raise ConfigError(f"images must have at least 2 dimensions [..., H, W]; got {p.ndim}")
    _check_finite(p, "prediction")
    _check_finite(r, "reference")
    return p, r


def _mask_tensor(mask: Any, device: torch.device) -> torch.Tensor:
    m = mask.detach() if isinstance(mask, torch.Tensor) else torch.from_numpy(np.asarray(mask))
    return m.to(device) != 0


def _as_mask(mask: Any, shape: torch.Size, device: torch.device) -> torch.Tensor | None:
    if mask is None:
        return None
    m = _mask_tensor(mask, device)
    try:
        return torch.broadcast_to(m, shape)
    except RuntimeError:
        raise ConfigError(
            f"mask shape {tuple(m.shape)} does not fit images of shape {tuple(shape)}; "
            "give a mask of the image's shape (or [H, W] for every image)"
        ) from None


def _shave(t: torch.Tensor | None, n: int) -> torch.Tensor | None:
    if t is None or n == 0:
        return t
    return t[..., n : t.shape[-2] - n, n : t.shape[-1] - n]


def _check_shave(shave: int, shape: torch.Size, need: int = 1) -> None:
    if isinstance(shave, bool) or not isinstance(shave, (int, np.integer)) or shave < 0:
        raise ConfigError(f"shave must be a whole number >= 0; got {shave!r}")
    h, w = shape[-2] - 2 * shave, shape[-1] - 2 * shave
    if shape[-2] < need or shape[-1] < need:
        why = " (SSIM's window is 11×11)" if need > 1 else ""
        raise ConfigError(
            f"images are {shape[-2]}×{shape[-1]} pixels; at least {need}×{need} are "
            f"needed{why}; use larger images"
        )
    if h < need or w < need:
        raise ConfigError(
            f"shave {shave} leaves {max(h, 0)}×{max(w, 0)} pixels of {shape[-2]}×{shape[-1]} "
            f"images; at least {need}×{need} are needed, use a smaller shave"
        )


def _data_range(data_range: float | None, ref: torch.Tensor) -> float:
    if data_range is None:
        dr = float(ref.max()) if ref.numel() else 0.0
        if not dr > 0:
            raise InputError(
                f"the reference maximum is {dr:g}, so no data range can be derived; pass "
                "data_range explicitly (or check that the reference is not empty)"
            )
        return dr
    try:
        dr = float(data_range)
    except (TypeError, ValueError):
        raise ConfigError(f"data_range must be a positive number; got {data_range!r}") from None
    if not (np.isfinite(dr) and dr > 0):
        raise ConfigError(f"data_range must be a positive finite number; got {data_range!r}")
    return dr


def _reduce(v: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return v
    if reduction == "mean":
        return v.mean()
    raise ConfigError(f"reduction must be 'none' or 'mean'; got {reduction!r}")


def _gaussian_1d(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> torch.Tensor:
    """The normalised 1-D Gaussian that scipy.ndimage.gaussian_filter (skimage) uses."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


# ----------------------------------------------------------------------------- metrics


def psnr(
    pred: Any,
    ref: Any,
    data_range: float | None = None,
    mask: Any = None,
    shave: int = 0,
    reduction: str = "none",
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of every image ``[..., H, W]`` → ``[...]``.

    ``10 log10(data_range² / MSE)`` with the MSE over each image's pixels (inside ``mask``,
    after ``shave``). Identical images give ``+inf``; an image with no mask pixel gives NaN.
    ``data_range=None`` means ``ref.max()`` over the whole input given (see module doc).
    ``reduction="mean"`` returns the mean of the per-image values.
    """
    p, r = _pair(pred, ref)
    m = _as_mask(mask, p.shape, p.device)
    _check_shave(shave, p.shape)
    dr = _data_range(data_range, r)
    p, r, m = _shave(p, shave), _shave(r, shave), _shave(m, shave)
    if m is None:
        mse = ((p - r) ** 2).mean(dim=(-2, -1))
    else:
        w = m.to(torch.float64)
        mse = ((p - r) ** 2 * w).sum(dim=(-2, -1)) / w.sum(dim=(-2, -1))
    out = 10.0 * torch.log10(dr**2 / mse)
    return _reduce(out, reduction)


def _valid_filter(x: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    """1-D filter ``g`` along ``dim`` without padding ("valid"): ``k`` shifted multiply-adds,
    O(k) per output pixel (a banded matrix product costs O(H) per pixel: 50x more at 512)."""
    k = g.numel()
    n = x.shape[dim] - k + 1
    y = x.narrow(dim, 0, n) * float(g[0])
    for j in range(1, k):
        y.add_(x.narrow(dim, j, n), alpha=float(g[j]))
    return y


def _ssim_map(p: torch.Tensor, r: torch.Tensor, dr: float) -> torch.Tensor:
    """SSIM map of the interior (radius-5 border dropped) of images ``[N, H, W]``, the
    separable Gaussian applied without padding, in chunks of bounded memory."""
    n, h, w = p.shape
    g = _gaussian_1d()
    c1, c2 = (SSIM_K1 * dr) ** 2, (SSIM_K2 * dr) ** 2
    chunk = max(1, _CHUNK_BYTES // (5 * 3 * 8 * h * w))
    out = []
    for i in range(0, n, chunk):
        x, y = p[i : i + chunk], r[i : i + chunk]
        stack = torch.stack((x, y, x * x, y * y, x * y), dim=1)  # [n, 5, H, W]
        f = _valid_filter(_valid_filter(stack, g, -2), g, -1)  # [n, 5, H-10, W-10]: local means
        ux, uy, uxx, uyy, uxy = f.unbind(dim=1)
        vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy  # population (co)variances
        a1, a2 = 2 * ux * uy + c1, 2 * vxy + c2
        b1, b2 = ux * ux + uy * uy + c1, vx + vy + c2
        out.append((a1 * a2) / (b1 * b2))
    return torch.cat(out)


def ssim(
    pred: Any,
    ref: Any,
    data_range: float | None = None,
    mask: Any = None,
    shave: int = 0,
    reduction: str = "none",
) -> torch.Tensor:
    """Structural similarity of every image ``[..., H, W]`` → ``[...]``, as skimage computes it.

    The SSIM map is computed on the images after ``shave``; its 5-pixel border is dropped
    (as skimage does) and the rest averaged — over the mask pixels only when ``mask`` is
    given (an image with no mask pixel in that interior gets NaN). Identical images give 1.
    Images must be at least 11×11 after ``shave``. ``data_range=None`` means ``ref.max()``
    over the whole input given.
    """
    p, r = _pair(pred, ref)
    m = _as_mask(mask, p.shape, p.device)
    _check_shave(shave, p.shape, need=2 * SSIM_RADIUS + 1)
    dr = _data_range(data_range, r)
    p, r, m = _shave(p, shave), _shave(r, shave), _shave(m, shave)
    batch = p.shape[:-2]
    h, w = p.shape[-2:]
    smap = _ssim_map(p.reshape(-1, h, w), r.reshape(-1, h, w), dr)
    if m is None:
        out = smap.mean(dim=(-2, -1))
    else:
        mi = _shave(m, SSIM_RADIUS).reshape(-1, h - 2 * SSIM_RADIUS, w - 2 * SSIM_RADIUS)
        wgt = mi.to(torch.float64)
        out = (smap * wgt).sum(dim=(-2, -1)) / wgt.sum(dim=(-2, -1))
    return _reduce(out.reshape(batch), reduction)


def nmse(
    pred: Any,
    ref: Any,
    mask: Any = None,
    shave: int = 0,
    dim: int | tuple[int, ...] | None = None,
) -> torch.Tensor:
    """Normalised MSE ``||ref − pred||² / ||ref||²`` (fastMRI's definition).

    ``dim=None`` sums over the whole input (one number for a volume); ``dim=(-2, -1)`` gives
    one value per image. Only mask pixels count; ``shave`` crops the last two dims first.
    Identical images give 0; an all-zero reference gives inf (or NaN if ``pred`` is zero too).
    """
    p, r = _pair(pred, ref)
    m = _as_mask(mask, p.shape, p.device)
    _check_shave(shave, p.shape)
    p, r, m = _shave(p, shave), _shave(r, shave), _shave(m, shave)
    err, nrm = (r - p) ** 2, r**2
    if m is not None:
        w = m.to(torch.float64)
        err, nrm = err * w, nrm * w
    if dim is None:
        return err.sum() / nrm.sum()
    return err.sum(dim=dim) / nrm.sum(dim=dim)


# ----------------------------------------------------------------------------- volumes

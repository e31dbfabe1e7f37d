"""Plain NumPy/SciPy versions of mrisr's degradations, written independently of mrisr.

These are the straightforward implementations a user would write without mrisr: per-slice loops
where that is natural, whole-array SciPy/NumPy calls where those are the obvious tool. They share
no code with ``mrisr.degrade`` (no imported matrices or kernels) so that agreement between the two
is a real check. Every function takes a stack of slices ``stack[K, H, W]`` (float32) with the
operation acting on the last two axes (in-plane) or on axis 0 (thick-slice, through-plane).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

# --------------------------------------------------------------------------- MATLAB imresize


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``cubic`` kernel (Keys, a = -0.5), as written in imresize.m."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


def contributions(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Port of MATLAB imresize's ``contributions``: (weights, 0-based indices), both out × P."""
    kernel_width = 4.0
    if scale < 1 and antialiasing:
        kernel_width = kernel_width / scale

        def h(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)
    else:
        h = _cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)  # 1-based output coordinates
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(p)[None, :]  # 1-based input indices
    weights = h(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])
    indices = aux[np.mod(indices.astype(np.int64) - 1, aux.size)]
    keep = np.any(weights != 0, axis=0)  # MATLAB drops all-zero columns
    return weights[:, keep], indices[:, keep] - 1


def imresize_stack(stack: np.ndarray, factor: int) -> np.ndarray:
    """``imresize(slice, 1/factor, 'bicubic')`` of every slice: per slice, rows then columns
    (MATLAB's order for equal scales), each a 1-D weighted sum over the contributing pixels."""
    k, h, w = stack.shape
    wh, ih = contributions(h, math.ceil(h / factor), 1 / factor)
    ww, iw = contributions(w, math.ceil(w / factor), 1 / factor)
    out = np.empty((k, wh.shape[0], ww.shape[0]), dtype=np.float64)
    for s in range(k):
        img = stack[s].astype(np.float64)
        rows = (img[ih] * wh[:, :, None]).sum(axis=1)  # [h_out, P, W] → [h_out, W]
        out[s] = (rows[:, iw] * ww[None, :, :]).sum(axis=2)  # [h_out, w_out, P] → [h_out, w_out]
    return out


# --------------------------------------------------------------------------- Gaussian


def _half_shifted_gaussian(sigma: float, truncate: float) -> np.ndarray:
    """Normalised Gaussian sampled at half-integer offsets d − ½ (|d − ½| ≤ truncate·σ)."""
    r = truncate * sigma
    d = np.arange(-math.floor(r + 0.5) + 1, math.floor(r + 0.5) + 1, dtype=np.float64)
    off = d - 0.5
    g = np.exp(-0.5 * (off / sigma) ** 2) * (np.abs(off) <= r)
    return g / g.sum()


def gaussian_stack(stack: np.ndarray, factor: int, sigma: float, truncate: float = 4.0):
    """Gaussian blur (σ px, half-sample symmetric borders = SciPy ``mode='reflect'``) sampled at
    the centre of each ``factor``×``factor`` block.

    Odd factors: ``scipy.ndimage.gaussian_filter`` then ``[c::factor]`` with c = (factor−1)/2.
    Even factors: the block centre lies half-way between samples, so the filter origin is moved
    by half a sample: the Gaussian is sampled at offsets d − ½ and applied per axis with
    ``scipy.ndimage.correlate1d`` (the routine ``gaussian_filter`` itself uses), then every
    ``factor``-th sample from (factor/2 − 1) is kept. This is the same operator, not an
    approximation (see :func:`gaussian_stack_interp` for the common approximate alternative).
    """
    if factor % 2:
        c = (factor - 1) // 2
        y = ndimage.gaussian_filter(
            stack, sigma=(0, sigma, sigma), mode="reflect", truncate=truncate
        )
        return y[:, c::factor, c::factor]
    g = _half_shifted_gaussian(sigma, truncate)
    # correlate1d puts weight g[j] on sample i + j − len(g)//2 − origin; with origin = −1 the
    # weights g(d − ½) land on samples i + d, i.e. output i is the blur evaluated at i + ½.
    y = ndimage.correlate1d(stack, g, axis=1, mode="reflect", origin=-1)
    y = ndimage.correlate1d(y, g, axis=2, mode="reflect", origin=-1)
    c = factor // 2 - 1
    return y[:, c::factor, c::factor]


def gaussian_stack_interp(stack: np.ndarray, factor: int, sigma: float, truncate: float = 4.0):
    """The common approximation for even factors: ``gaussian_filter`` on the integer grid, then
    ``map_coordinates`` (linear) at the block centres. Linear interpolation half-way between
    samples averages two neighbours, which widens the blur (σ² → σ² + ¼ per axis), so this is
    *not* the same operator as mrisr's; kept to quantify that difference."""
    k, h, w = stack.shape
    y = ndimage.gaussian_filter(stack, sigma=(0, sigma, sigma), mode="reflect", truncate=truncate)
    ch = factor * np.arange(h // factor) + (factor - 1) / 2
    cw = factor * np.arange(w // factor) + (factor - 1) / 2
    gh, gw = np.meshgrid(ch, cw, indexing="ij")
    out = np.empty((k, h // factor, w // factor), dtype=y.dtype)
    for s in range(k):
        out[s] = ndimage.map_coordinates(y[s], [gh, gw], order=1, mode="reflect")
    return out


# --------------------------------------------------------------------------- k-space


def _fft2c(x: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho"))


def _ifft2c(k: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k), norm="ortho"))


def _centre(n: int, m: int) -> slice:
    start = (n - m) // 2
    return slice(start, start + m)


def kspace_truncate_stack(stack: np.ndarray, factor: int) -> np.ndarray:
    """Per slice: centred orthonormal FFT, keep the central (H/f)×(W/f), inverse FFT on the
    small grid, magnitude, rescaled by sqrt(M/N) so that a constant image keeps its value."""
    k, h, w = stack.shape
    mh, mw = h // factor, w // factor
    rows, cols = _centre(h, mh), _centre(w, mw)
    gain = math.sqrt(mh * mw / (h * w))
    out = np.empty((k, mh, mw), dtype=np.float32)
    for s in range(k):
        out[s] = np.abs(_ifft2c(_fft2c(stack[s])[rows, cols])) * gain
    return out


def fermi(mh: int, mw: int, radius: float = 1.0, width: float = 1 / 16) -> np.ndarray:
    """1 / (1 + exp((r − R)/T)), r = distance from the centre sample in units of the half-width."""
    y = (np.arange(mh) - mh // 2) / (mh / 2)
    x = (np.arange(mw) - mw // 2) / (mw / 2)
    r = np.hypot(y[:, None], x[None, :])
    return 1.0 / (1.0 + np.exp((r - radius) / width))


def kspace_zerofill_stack(stack: np.ndarray, factor: int) -> np.ndarray:
    """Per slice: keep the central k-space, Fermi-window it, inverse FFT on the low-res grid,
    magnitude / factor (the "ZF" LR image)."""
    k, h, w = stack.shape
    mh, mw = h // factor, w // factor
    rows, cols = _centre(h, mh), _centre(w, mw)
    win = fermi(mh, mw).astype(np.float32)
    out = np.empty((k, mh, mw), dtype=np.float32)
    for s in range(k):
        out[s] = np.abs(_ifft2c(_fft2c(stack[s])[rows, cols] * win)) / factor
    return out


# --------------------------------------------------------------------------- Rician noise


def signal_level(x: np.ndarray, fraction: float = 0.1) -> float:
    """Mean of the voxels above ``fraction`` × the 99th percentile (all voxels, no sampling)."""
    p99 = np.percentile(x, 99)
    return float(x[x > fraction * p99].mean())


def rician_volume(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """|x + n₁ + i·n₂| with n₁, n₂ ~ N(0, σ²) from a NumPy Generator (float32 throughout)."""
    n1 = rng.standard_normal(x.shape, dtype=np.float32)
    n2 = rng.standard_normal(x.shape, dtype=np.float32)
    s = np.float32(sigma)
    return np.sqrt((x + s * n1) ** 2 + (s * n2) ** 2)


# --------------------------------------------------------------------------- thick slices


def thick_slice_weights(n: int, d: float, thickness: float, spacing: float):
    """For each output slice, [(input slice, weight), ...] of a rect slab profile.

    Worked in mm: input slice i covers [(i − ½)d, (i + ½)d]; output slices are ``spacing`` apart,
    centred on the field of view (middle at (n − 1)d/2); slab k covers c_k ± thickness/2. The
    weight is the overlap length / thickness; slices past either end are mirrored
    (…, 1, 0 | 0, 1, …, n−1 | n−1, n−2, …).
    """
    n_out = int(math.floor(n * d / spacing + 1e-9))
    result = []
    for k in range(n_out):
        c = (n - 1) * d / 2 + (k - (n_out - 1) / 2) * spacing
        lo, hi = c - thickness / 2, c + thickness / 2
        pairs: dict[int, float] = {}
        for i in range(math.floor(lo / d + 0.5) - 1, math.ceil(hi / d - 0.5) + 2):
            ov = min(hi, (i + 0.5) * d) - max(lo, (i - 0.5) * d)
            if ov > 0:
                j = i % (2 * n)
                j = j if j < n else 2 * n - 1 - j
                pairs[j] = pairs.get(j, 0.0) + ov / thickness
        result.append(sorted(pairs.items()))
    return result


def thick_slice_stack(stack: np.ndarray, d: float, thickness: float, spacing: float):
    """Thick slices along axis 0 of ``stack[Z, H, W]``: each output slice is a weighted sum of
    input slices."""
    plan = thick_slice_weights(stack.shape[0], d, thickness, spacing)
    out = np.zeros((len(plan), *stack.shape[1:]), dtype=np.float64)
    for k, pairs in enumerate(plan):
        for j, wgt in pairs:
            out[k] += wgt * stack[j]
    return out

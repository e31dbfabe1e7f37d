"""MATLAB-compatible bicubic imresize and Gaussian decimation against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from mrisr.degrade import Bicubic, Gaussian, bicubic_downsample, imresize
from mrisr.degrade.resample import cubic_kernel, gaussian_matrix


def matlab_imresize_1d(x: np.ndarray, out_len: int, scale: float | None = None) -> np.ndarray:
    """Direct transcription of MATLAB's imresize 'contributions' + symmetric padding, one
    output sample at a time (slow, independent of the matrix implementation)."""
    n = len(x)
    scale = out_len / n if scale is None else scale
    width = 4.0 / scale if scale < 1 else 4.0
    out = np.empty(out_len)
    for j in range(1, out_len + 1):
        u = j / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        acc, wsum = 0.0, 0.0
        for p in range(math.ceil(width) + 2):
            idx = left + p  # 1-based
            d = u - idx
            w = (
                scale * cubic_kernel(np.array(scale * d))
                if scale < 1
                else cubic_kernel(np.array(d))
            )
            # symmetric padding: 1..n, n..1, 1..n ...
            k = (idx - 1) % (2 * n)
            k = k if k < n else 2 * n - 1 - k
            acc += float(w) * x[k]
            wsum += float(w)
        out[j - 1] = acc / wsum
    return out


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_imresize_matches_matlab_transcription_everywhere(scale: int) -> None:
    rng = np.random.default_rng(scale)
    x = rng.random((24, 36))
    y = imresize(torch.from_numpy(x), scale=1 / scale).numpy()
    ref = np.stack([matlab_imresize_1d(r, 36 // scale) for r in x])
    ref = np.stack([matlab_imresize_1d(c, 24 // scale) for c in ref.T]).T
    np.testing.assert_allclose(y, ref, atol=1e-12)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_imresize_interior_matches_pillow_antialiased_bicubic(scale: int, test_data) -> None:
    """Pillow's BICUBIC (a = −0.5, support scaled when shrinking) equals MATLAB away from the
    borders, where only the padding rule differs."""
    sl = np.load(test_data / "ixi002_t2_slices.npy")[0].astype(np.float32)
    h, w = (sl.shape[0] // scale) * scale, (sl.shape[1] // scale) * scale
    sl = sl[:h, :w]
    ours = bicubic_downsample(torch.from_numpy(sl), scale).numpy()
    pil = np.asarray(Image.fromarray(sl, mode="F").resize((w // scale, h // scale), Image.BICUBIC))
    b = 3
    np.testing.assert_allclose(ours[b:-b, b:-b], pil[b:-b, b:-b], rtol=1e-5, atol=1e-3)


def test_imresize_upsampling_interior_matches_pillow() -> None:
    x = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    ours = imresize(torch.from_numpy(x), scale=2).numpy()
    pil = np.asarray(Image.fromarray(x, mode="F").resize((60, 40), Image.BICUBIC))
    np.testing.assert_allclose(ours[4:-4, 4:-4], pil[4:-4, 4:-4], atol=1e-5)


def test_bicubic_keeps_constants_and_interior_ramps() -> None:
    const = torch.full((2, 16, 16), 7.5)
    np.testing.assert_allclose(bicubic_downsample(const, 2).numpy(), 7.5, rtol=1e-6)
    ramp = torch.arange(32, dtype=torch.float64).repeat(32, 1)
    out = bicubic_downsample(ramp, 2)[0].numpy()
    # Output sample j is the block centre 2j + 0.5 (the FOV is unchanged).
    np.testing.assert_allclose(out[2:-2], 2 * np.arange(16)[2:-2] + 0.5, atol=1e-10)


def test_gaussian_blur_block_centres_and_sigma() -> None:
    # A Gaussian with sigma ≈ 0 picks the block centre (mean of the two middle samples for ×2).
    ramp = torch.arange(16, dtype=torch.float64).repeat(4, 1)
    out = Gaussian(scale=2, sigma=0.0)(ramp).image[0].numpy()
    np.testing.assert_allclose(out, 2 * np.arange(8) + 0.5, atol=1e-12)
    # Rows of the blur matrix are normalised Gaussians: their variance is σ² (away from borders).
    m = gaussian_matrix(64, 1, 2.0)
    i = np.arange(64)
    row = m[32]
    var = float((row * (i - 32) ** 2).sum())
    assert var == pytest.approx(4.0, rel=1e-3)  # truncation at 4σ trims a little
    np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-12)


def test_gaussian_fwhm_in_mm_uses_spacing() -> None:
    g = Gaussian(scale=2, fwhm_mm=3.0)
    sx, sy = g.sigmas((1.0, 0.5))
    assert sx == pytest.approx(3.0 / 2.35482, rel=1e-4)
    assert sy == pytest.approx(2 * sx, rel=1e-9)
    out = g(torch.ones(1, 8, 8), spacing=(1.0, 0.5))
    assert out.params["fwhm_mm_used"] == pytest.approx([3.0, 3.0])


def test_bicubic_is_batched_and_records_params() -> None:
    x = torch.rand(3, 2, 16, 24)
    out = Bicubic(scale=4)(x)
    assert out.image.shape == (3, 2, 4, 6)
    torch.testing.assert_close(out.image[1, 0], bicubic_downsample(x[1, 0], 4))
    assert out.params == {"method": "bicubic", "scale": 4, "antialias": True}
    assert out.axes[0].offset == 1.5 and out.axes[0].factor == 4.0


@pytest.mark.parametrize(("n", "scale"), [(255, 0.5), (256, 1 / 3), (99, 1.5), (37, 2.0)])
def test_imresize_non_integer_sizes_use_the_requested_scale(n: int, scale: float) -> None:
    """MATLAB builds weights from the requested scale, not from ceil(n·s)/n."""
    x = np.random.default_rng(n).random((3, n))
    out_len = math.ceil(n * scale)
    y = imresize(torch.from_numpy(x), scale=scale)
    assert y.shape == (math.ceil(3 * scale), out_len)
    y_rows = imresize(torch.from_numpy(x[:, None, :]), scale=scale).numpy()
    assert y_rows.shape[-1] == out_len
    row = imresize(torch.from_numpy(x[0][None]), size=(1, out_len)).numpy()  # size: ratio rule
    ref = matlab_imresize_1d(x[0], out_len, scale)
    ref_size_rule = matlab_imresize_1d(x[0], out_len)
    from mrisr.degrade.resample import imresize_matrix

    np.testing.assert_allclose(imresize_matrix(n, out_len, True, scale) @ x[0], ref, atol=1e-12)
    np.testing.assert_allclose(row[0], ref_size_rule, atol=1e-12)


def test_bicubic_to_grid_follows_the_sample_positions() -> None:
    """A linear ramp sampled at HR positions offset + 2j is interpolated back exactly in the
    interior, whatever the offset."""
    from mrisr.degrade.resample import bicubic_to_grid

    for off in (0.0, 0.5, 1.0):
        lr = torch.from_numpy(off + 2 * np.arange(16.0)).repeat(4, 1)
        hr = bicubic_to_grid(lr, 2, (0.0, off), size=(8, 32))[0].numpy()
        np.testing.assert_allclose(hr[4:-4], np.arange(32.0)[4:-4], atol=1e-10)

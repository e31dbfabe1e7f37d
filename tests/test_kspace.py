"""k-space truncation, zero-fill with a Fermi window, and sinc upsampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrisr.degrade import (
    KspaceTruncate,
    KspaceZerofill,
    fermi_window,
    fft2c,
    ifft2c,
    kspace_truncate,
    kspace_zerofill,
    zerofill_upsample,
)


@pytest.fixture()
def slices(test_data) -> torch.Tensor:
    return torch.from_numpy(np.load(test_data / "ixi002_t2_slices.npy").astype(np.float64))


def np_kspace_truncate(x: np.ndarray, s: int) -> np.ndarray:
    """NumPy reference: fastMRI-style centred orthonormal FFT, central crop, |iFFT|."""
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho"))
    n, m = x.shape[0], x.shape[0] // s
    a = (n - m) // 2
    kc = k[a : a + m, a : a + m]
    return np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kc), norm="ortho")))


def test_fft2c_is_orthonormal_and_invertible(slices) -> None:
    k = fft2c(slices.to(torch.complex128))
    torch.testing.assert_close(ifft2c(k).real, slices)
    assert float((k.abs() ** 2).sum()) == pytest.approx(float((slices**2).sum()), rel=1e-10)
    # DC sits at N//2
    dc = k[0, 96, 96].real
    assert float(dc) == pytest.approx(float(slices[0].sum()) / 192, rel=1e-10)


@pytest.mark.parametrize("s", [2, 4])
def test_truncation_matches_numpy_reference_and_sanet_brightness(slices, s) -> None:
    plain = kspace_truncate(slices, s, keep_mean=False)
    ref = np.stack([np_kspace_truncate(x, s) for x in slices.numpy()])
    np.testing.assert_allclose(plain.numpy(), ref, rtol=1e-9, atol=1e-9)
    # The plain orthonormal version is s× brighter (SANet code quirk); keep_mean undoes it.
    kept = kspace_truncate(slices, s, keep_mean=True)
    torch.testing.assert_close(kept * s, plain)
    const = torch.full((64, 64), 3.0, dtype=torch.float64)
    torch.testing.assert_close(
        kspace_truncate(const, s), torch.full((64 // s, 64 // s), 3.0, dtype=torch.float64)
    )


def test_one_axis_truncation_shapes_and_grid() -> None:
    x = torch.rand(2, 32, 48)
    assert kspace_truncate(x, 2, axes="h").shape == (2, 16, 48)
    out = KspaceTruncate(scale=4, axes="w")(x)
    assert out.image.shape == (2, 32, 12)
    assert out.axes[0].factor == 1.0 and out.axes[1].factor == 4.0
    const = torch.full((32, 48), 2.0)
    torch.testing.assert_close(kspace_truncate(const, 2, axes="w"), torch.full((32, 24), 2.0))


def test_truncated_samples_sit_where_the_axis_map_says() -> None:
    """A band-limited cosine survives truncation exactly; its LR samples equal the HR signal at
    input positions offset + factor·j."""
    n, s = 64, 2
    i = np.arange(n)
    f = 3 / n
    x = 10 + np.cos(2 * np.pi * f * (i - 5))[:, None] * np.ones(n)[None, :]
    out = KspaceTruncate(scale=s, keep_mean=True)(torch.from_numpy(x))
    m = out.axes[0]
    pos = m.offset + m.factor * np.arange(n // s)
    expected = 10 + np.cos(2 * np.pi * f * (pos - 5))
    np.testing.assert_allclose(out.image.numpy()[:, 0], expected, atol=1e-9)
    assert m.offset == 0.0  # N//2 − s·(M//2) for N = 64


def test_fermi_window_shape_and_values() -> None:
    w = fermi_window((128, 128))
    assert float(w[64, 64]) > 0.999
    # W = 0.5 at r = R (the edge of the kept block along the axes); spec default T = M/32.
    assert float(w[64, 0]) == pytest.approx(0.5, abs=1e-12)
    r = torch.tensor(4.0 / 64, dtype=torch.float64)  # 4 samples inside the edge
    assert float(w[64, 4]) == pytest.approx(float(torch.sigmoid(r / (1 / 16))), rel=1e-9)


def test_zerofill_low_and_same_grid(slices) -> None:
    low = kspace_zerofill(slices, 2)
    assert low.shape == (3, 96, 96)
    same = kspace_zerofill(slices, 2, grid="same")
    assert same.shape == slices.shape
    # Same-grid zero-fill is the low-grid image sinc-interpolated: both keep the mean intensity.
    assert float(same.mean()) == pytest.approx(float(slices.mean()), rel=0.03)
    assert float(low.mean()) == pytest.approx(float(slices.mean()), rel=0.03)
    # The Fermi window smooths: zero-fill is smoother than plain truncation (less ringing).
    trunc = kspace_truncate(slices, 2)
    tv = lambda a: float((a[..., 1:, :] - a[..., :-1, :]).abs().mean())  # noqa: E731
    assert tv(low) < tv(trunc)
    params = KspaceZerofill(scale=2)(slices).params
    assert params["fermi_radius_samples"] == 48 and params["fermi_width_samples"] == 3


def test_sinc_upsampling_is_the_exact_inverse_grid_of_truncation(slices) -> None:
    lr = kspace_truncate(slices, 2, keep_mean=True)
    up = zerofill_upsample(lr, 2)
    assert up.shape == slices.shape
    # Zero-filled reconstruction of truncated k-space: close to the HR image (≈ 37 dB on IXI).
    mse = float(((up - slices) ** 2).mean())
    psnr = 10 * np.log10(float(slices.max()) ** 2 / mse)
    assert 30 < psnr < 60


def test_fermi_window_is_radially_symmetric() -> None:
    w = fermi_window((64, 64)).numpy()
    np.testing.assert_allclose(w[32, 32 + 7], w[32 - 7, 32], atol=1e-15)
    np.testing.assert_allclose(w[32 + 5, 32 + 5], w[32 - 5, 32 - 5], atol=1e-15)


@pytest.mark.parametrize("offset", [0.0, 0.5, 1.5])
def test_sinc_upsampling_places_samples_at_the_given_offsets(offset) -> None:
    """LR samples of a band-limited signal taken at HR positions offset + 2j are interpolated
    back to the exact HR signal (phase ramp for any grid, e.g. block-centred bicubic LR)."""
    n, f = 64, 3 / 64
    sig = lambda p: 10 + np.cos(2 * np.pi * f * (p - 5))  # noqa: E731
    lr = torch.from_numpy(np.outer(sig(offset + 2 * np.arange(32)), np.ones(32)))
    up = zerofill_upsample(lr, 2, offsets=(offset, 0.0))
    np.testing.assert_allclose(up.numpy()[:, 0], sig(np.arange(n)), atol=1e-10)

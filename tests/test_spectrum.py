"""Effective (acquired) in-plane resolution from the k-space spectrum (mrisr.metrics.spectrum).

Real data only (the shipped crops in tests/data); the interpolated inputs are made from them with
mrisr's own k-space zero-fill (Fermi window, kept on the input grid, as a scanner does) and with a
plain truncate-then-zero-fill written here with numpy.

Note on the IXI002 T2: IXI's Guy's T2 protocol acquired a 192×187 matrix and reconstructed it on
256×256 (0.94 mm), so its k-space is empty beyond ~0.73–0.75 of Nyquist. The measure reports that
(a mild ~1.35× interpolation, below the flag threshold); the native references here are the
FLAIR crop and the IXI T1's 1.2 mm slab axis, which have signal up to Nyquist.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mrisr.degrade import degrade_volume, make_degradation
from mrisr.io import load_volume
from mrisr.metrics.spectrum import (
    INTERPOLATED_MAX_BANDWIDTH,
    detect_cliff,
    effective_resolution,
    foreground_spectrum,
    kspace_profile,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def t2():
    return load_volume(DATA / "ixi002_t2_crop.nii.gz")  # 96×96×6, slice axis 2


@pytest.fixture(scope="module")
def t1():
    return load_volume(DATA / "ixi002_t1_crop.nii.gz")  # 80×100×34, 1.2 × 0.94 × 0.94 mm


@pytest.fixture(scope="module")
def flair():
    return load_volume(DATA / "flair_crop.nii.gz")  # 64×64×4, 1 mm


def zerofill(data: np.ndarray, factor: int, axes=(0, 1), slice_axis: int = 2) -> np.ndarray:
    """Keep the central 1/factor of k-space along ``axes`` (hard cut, no window), zero the rest,
    and return the magnitude on the same grid: a scanner's plain zero-fill interpolation."""
    x = np.moveaxis(np.asarray(data, dtype=np.float64), slice_axis, 0)
    k = np.fft.fftshift(np.fft.fft2(x, axes=(1, 2)), axes=(1, 2))
    in_plane = [a for a in range(3) if a != slice_axis]
    for dim, a in zip((1, 2), in_plane, strict=True):
        if a not in axes:
            continue
        n = k.shape[dim]
        m = n // factor
        keep = np.zeros(n, dtype=bool)
        keep[(n - m) // 2 : (n - m) // 2 + m] = True
        shape = [1, 1, 1]
        shape[dim] = n
        k = k * keep.reshape(shape)
    y = np.abs(np.fft.ifft2(np.fft.ifftshift(k, axes=(1, 2)), axes=(1, 2)))
    return np.moveaxis(y, 0, slice_axis).astype(np.float32)


def scanner_zerofill(vol, scale: int, noise_snr: float | None = None, noise_after=False):
    """mrisr's k-space zero-fill on the HR grid (Fermi window), optionally with Rician noise
    before it (as in an acquisition) or after it."""
    steps = [make_degradation("kspace-zerofill", scale=scale, grid="same")]
    if noise_snr is not None:
        noise = make_degradation("rician", snr=noise_snr)
        steps = steps + [noise] if noise_after else [noise] + steps
    out, _ = degrade_volume(vol, steps, axis=2, seed=0)
    return out


def bandwidths(result) -> list[float]:
    return [e["bandwidth"] for e in result["axes"].values()]


# --- native scans ---------------------------------------------------------------------------


def test_native_flair_has_signal_up_to_nyquist(flair):
    r = effective_resolution(flair.data, flair.zooms, slice_axis=2)
    assert set(r["axes"]) == {"0", "1"}
    for e in r["axes"].values():
        assert e["measurable"] and e["bandwidth"] >= 0.9 and not e["cliff"]
        assert e["cutoff_drop_db"] < 15
        assert e["effective_mm"] == pytest.approx(e["spacing_mm"], rel=0.12)
        assert 0.02 < e["outer_half_energy"] < 0.1  # a small crop: a lot of edge energy
    assert r["bandwidth"] >= 0.9 and r["interpolated"] is False
    assert "not interpolated" in r["summary"]


def test_native_t1_slab_axis_and_ixi_zerofilled_in_plane_axis(t1):
    # slice axis 2: axis 0 is the native 1.2 mm slab axis, axis 1 the 0.94 mm in-plane axis
    # that Philips reconstructed from a 192-sample acquisition
    r = effective_resolution(t1.data, t1.zooms, slice_axis=2)
    ax0, ax1 = r["axes"]["0"], r["axes"]["1"]
    assert ax0["bandwidth"] >= 0.9 and not ax0["cliff"]
    assert ax1["cliff"] and 0.68 <= ax1["bandwidth"] <= 0.8
    assert r["interpolated"] is False


def test_ixi_t2_crop_mild_scanner_zerofill_not_flagged(t2):
    r = effective_resolution(t2.data, t2.zooms, slice_axis=2)
    for e in r["axes"].values():
        # acquired 192×187 on a 256 grid: cutoff at 0.73–0.75 of Nyquist, ~1.27 mm
        assert e["cliff"] and 0.68 <= e["bandwidth"] <= 0.8
        assert e["cutoff_drop_db"] >= 15
        assert e["effective_mm"] == pytest.approx(e["spacing_mm"] / e["bandwidth"], rel=1e-3)
        assert 1.15 <= e["effective_mm"] <= 1.4
    assert r["interpolated"] is False
    assert "mild" in r["summary"]


# --- k-space interpolated scans -------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4])
def test_scanner_zerofill_is_detected(t2, scale):
    z = scanner_zerofill(t2, scale)
    r = effective_resolution(z.data, z.zooms, slice_axis=2)
    for e in r["axes"].values():
        assert e["cliff"] and e["bandwidth"] == pytest.approx(1 / scale, abs=0.05)
        assert e["effective_mm"] == pytest.approx(scale * e["spacing_mm"], rel=0.2)
        assert e["cutoff_drop_db"] >= 25
        assert e["outer_half_energy"] < 1e-3
    assert r["interpolated"] is True
    assert r["bandwidth"] == pytest.approx(1 / scale, abs=0.05)
    assert "interpolated" in r["summary"]


@pytest.mark.parametrize("scale", [2, 4])
def test_plain_truncate_zerofill_is_detected(t2, scale):
    r = effective_resolution(zerofill(t2.data, scale), t2.zooms, slice_axis=2)
    assert all(b == pytest.approx(1 / scale, abs=0.05) for b in bandwidths(r))
    assert r["interpolated"] is True


def test_zerofill_of_other_scans(t1, flair):
    z = scanner_zerofill(t1, 2)
    r = effective_resolution(z.data, z.zooms, slice_axis=2)
    assert all(b == pytest.approx(0.5, abs=0.05) for b in bandwidths(r)) and r["interpolated"]
    z = scanner_zerofill(flair, 2)
    r = effective_resolution(z.data, z.zooms, slice_axis=2)
    assert all(b == pytest.approx(0.5, abs=0.05) for b in bandwidths(r)) and r["interpolated"]


@pytest.mark.parametrize("snr", [5, 20])
def test_noise_before_interpolation_still_detected(t2, snr):
    z = scanner_zerofill(t2, 2, noise_snr=snr)
    r = effective_resolution(z.data, z.zooms, slice_axis=2)
    assert all(b == pytest.approx(0.5, abs=0.05) for b in bandwidths(r))
    assert r["interpolated"] is True


def test_white_noise_after_interpolation_fills_the_cliff(t2):
    # documented limit: noise added on the interpolated grid (not what a scanner does) looks
    # native once its floor reaches the signal spectrum at the cutoff (SNR 10 here)
    z = scanner_zerofill(t2, 2, noise_snr=10, noise_after=True)
    r = effective_resolution(z.data, z.zooms, slice_axis=2)
    assert r["interpolated"] is False and all(b == 1.0 for b in bandwidths(r))


@pytest.mark.parametrize("axis", [0, 1])
def test_anisotropic_one_axis_interpolated(t2, axis):
    r = effective_resolution(zerofill(t2.data, 2, axes=(axis,)), t2.zooms, slice_axis=2)
    hit, other = r["axes"][str(axis)], r["axes"][str(1 - axis)]
    assert hit["cliff"] and hit["bandwidth"] == pytest.approx(0.5, abs=0.05)
    assert hit["effective_mm"] == pytest.approx(2 * hit["spacing_mm"], rel=0.15)
    assert other["bandwidth"] >= 0.68  # the scan's own 0.73–0.75 cutoff, not 0.5
    assert r["bandwidth"] == hit["bandwidth"] and r["interpolated"] is True


def test_slice_axis_position_does_not_matter(t2):
    z = zerofill(t2.data, 2, axes=(0,))
    ref = effective_resolution(z, t2.zooms, slice_axis=2)
    moved = np.ascontiguousarray(np.transpose(z, (2, 0, 1)))  # slices first
    zooms = (t2.zooms[2], t2.zooms[0], t2.zooms[1])
    r = effective_resolution(moved, zooms, slice_axis=0)
    assert r["axes"]["1"]["bandwidth"] == ref["axes"]["0"]["bandwidth"]
    assert r["axes"]["2"]["bandwidth"] == ref["axes"]["1"]["bandwidth"]


def test_image_space_linear_upsampling_is_flagged(t2):
    # a 2× linear interpolation on the image grid: no k-space cliff, but a deep roll-off to the
    # spectral images; the first drop is taken (the scan's own ~0.74 cutoff halved: ~0.37)
    x = t2.data
    up = np.empty((2 * x.shape[0], 2 * x.shape[1], x.shape[2]), np.float32)
    for k in range(x.shape[2]):
        s = x[:, :, k]
        rows = np.empty((2 * s.shape[0], s.shape[1]), np.float32)
        rows[0::2] = s
        rows[1::2] = 0.5 * (s + np.roll(s, -1, axis=0))
        up[:, 0::2, k] = rows
        up[:, 1::2, k] = 0.5 * (rows + np.roll(rows, -1, axis=1))
    zooms = (t2.zooms[0] / 2, t2.zooms[1] / 2, t2.zooms[2])
    r = effective_resolution(up, zooms, slice_axis=2)
    assert r["interpolated"] is True
    assert all(0.3 <= b <= 0.45 for b in bandwidths(r))


# --- edge cases and API ---------------------------------------------------------------------


def test_tiny_axes_are_not_measured(t2):
    r = effective_resolution(t2.data[:8, :8], t2.zooms, slice_axis=2)
    for e in r["axes"].values():
        assert not e["measurable"] and e["bandwidth"] == 1.0 and e["outer_half_energy"] is None
    assert r["interpolated"] is False and "not measurable" in r["summary"]
    r = effective_resolution(zerofill(t2.data, 2)[:, :10], t2.zooms, slice_axis=2)
    assert r["axes"]["0"]["measurable"] and r["axes"]["0"]["bandwidth"] == pytest.approx(
        0.5, abs=0.05
    )
    assert not r["axes"]["1"]["measurable"] and r["axes"]["1"]["bandwidth"] == 1.0


@pytest.mark.parametrize("value", [0.0, 7.5])
def test_constant_volume(value):
    r = effective_resolution(np.full((32, 40, 3), value, np.float32), (1.0, 1.0, 2.0), 2)
    assert r["bandwidth"] == 1.0 and r["interpolated"] is False
    assert all(not e["measurable"] for e in r["axes"].values())
    json.dumps(r)


def test_single_slice_and_empty_slices(t2):
    one = t2.data[:, :, 2:3]
    r = effective_resolution(one, t2.zooms, slice_axis=2)
    assert all(e["measurable"] for e in r["axes"].values())
    padded = np.concatenate([np.zeros_like(t2.data), t2.data, np.zeros_like(t2.data)], axis=2)
    a = effective_resolution(padded, t2.zooms, slice_axis=2)
    b = effective_resolution(t2.data, t2.zooms, slice_axis=2)
    # empty slices are ignored (only the foreground level, a percentile, moves a little)
    assert bandwidths(a) == pytest.approx(bandwidths(b), abs=0.01)


def test_result_is_json_and_complete(t2):
    r = json.loads(json.dumps(effective_resolution(t2.data, t2.zooms, slice_axis=2)))
    assert set(r) == {"axes", "bandwidth", "interpolated", "summary"}
    for e in r["axes"].values():
        assert {
            "spacing_mm",
            "outer_half_energy",
            "bandwidth",
            "effective_mm",
            "cutoff_drop_db",
        } <= set(e)
    assert r["bandwidth"] == min(bandwidths(r))
    assert 0 < INTERPOLATED_MAX_BANDWIDTH < 0.68


def test_bad_arguments(t2):
    with pytest.raises(ValueError):
        effective_resolution(t2.data[:, :, 0], t2.zooms, slice_axis=2)
    with pytest.raises(ValueError):
        kspace_profile(t2.data, axis=2, slice_axis=2)


def test_kspace_profile_matches_numpy(t2):
    x = t2.data.astype(np.float64)
    p = kspace_profile(t2.data, axis=0, slice_axis=2)
    assert p.shape == (49,)
    ref = (np.abs(np.fft.rfft(x, axis=0, norm="ortho")) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(p, ref, rtol=1e-4)
    # Parseval: the two-sided sum is the mean energy of a line
    two_sided = p[0] + 2 * p[1:-1].sum() + p[-1]
    assert two_sided == pytest.approx((x**2).sum(axis=0).mean(), rel=1e-4)
    assert kspace_profile(t2.data, axis=1, slice_axis=2).shape == (49,)


def test_foreground_spectrum_of_the_crop(t2):
    power, segments = foreground_spectrum(t2.data, axis=0, slice_axis=2)
    assert power.shape == (33,) and segments > 500  # 64-sample segments, 2 per line


def test_cliff_rule_on_model_spectra():
    nu = np.linspace(0, 1, 65)
    slope = 10 ** (-3 * nu)  # a gentle native roll-off, 30 dB over the band
    assert detect_cliff(slope)["cliff"] is False
    step = np.where(nu <= 0.4, 1.0, 1e-3) * slope  # a 30 dB cliff at 0.4
    r = detect_cliff(step)
    assert r["cliff"] and r["bandwidth"] == pytest.approx(0.4, abs=0.03)
    small = np.where(nu <= 0.4, 1.0, 10**-1.2)  # a 12 dB step: below the 15 dB rule
    assert detect_cliff(small)["cliff"] is False
    notch = np.where((nu > 0.4) & (nu < 0.55), 1e-3, 1.0)  # drops but comes back: not a cutoff
    assert detect_cliff(notch)["cliff"] is False
    assert detect_cliff(np.zeros(33)) == {"bandwidth": 1.0, "cutoff_drop_db": 0.0, "cliff": False}

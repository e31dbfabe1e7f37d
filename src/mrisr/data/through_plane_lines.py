"""Line segments of ONE thick-slice scan for learning its slice profile (``task: profile``).

ESPRESO's idea: in an anisotropic scan (in-plane spacing ``d``, slices every ``S`` mm, ``k =
S/d``) the object looks the same in every direction, so lines taken *through* the slices
(sampled every ``S``, blurred by the unknown slice profile ``h``) must look like lines taken
*in* the plane (sampled every ``d``, sharp) once those are blurred by ``h`` and resampled every
``k`` voxels. But an in-plane line of a thick slice is also averaged *across* itself, over the
slab; a through-plane line is not. So the real segment is blurred across too, by the same
``h`` along an in-plane axis: real and fake are then mirror images (each blurred by ``h`` along
and across, the third axis sharp), alike in distribution exactly when ``h`` is right (without
it, fake segments carry 15–20 % less power and the profile comes out too narrow: measured).

Each item draws an in-plane axis ``a`` (with ``d_a``: ``k_a = S/d_a``, ``r_a = d/d_a``;
``d`` = the finer in-plane spacing, the profile's tap spacing), then, independently:

- ``"real_taps"`` ``[J, L]``: ``J`` consecutive samples along the slice axis (spacing ``S``),
  taken at the ``L`` offsets ``(i − c)·r_a`` across axis ``a`` (``c = (L − 1)/2``), so that
  ``real_taps @ h`` is a real segment blurred across by ``h``;
- ``"fake_taps"`` ``[J, L]``: a line along ``a`` at the positions ``t₀ + j·k_a + (i − c)·r_a``,
  so that ``fake_taps @ h`` is the line blurred by ``h`` and resampled by ``k``: a fake
  segment, linear (differentiable) in ``h``. Non-integer ``k`` is fine: the line is evaluated
  between its samples by Keys cubic interpolation (a = −0.5), from a uniformly random
  sub-voxel start ``t₀``.

Both in-plane axes serve, also when their spacings differ, when a fake segment fits along
them. Segments are drawn with probability ∝ the same statistic for both kinds: the mean
absolute difference over one slice spacing along the segment (edges show the profile; flat
background does not), among segments of mean intensity ≥ 0.1 (tissue). The scan is normalised
on its own (percentile 0 → 0, 99.5 → 1), once for both. Items are reproducible from ``(seed,
epoch, index)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mrisr.errors import ConfigError
from mrisr.interp import cubic_kernel
from mrisr.normalisation import Normalisation

#: Below this ratio of slice spacing to in-plane spacing there is no slice profile to learn.
MIN_RATIO = 1.2
MIN_SEGMENT = 6


@dataclass(frozen=True)
class LineGeometry:
    """Where the slices are and how the profile is sampled (all from the scan's header)."""

    axis: int  # the slice axis
    slice_spacing: float  # S, mm
    in_plane: tuple[float, float]  # the two in-plane spacings (array order), mm
    d: float  # the profile's tap spacing: the finer in-plane spacing, mm
    k: float  # S / d
    length: int  # taps L (odd)
    n_slices: int  # along the slice axis

    def card(self) -> dict[str, Any]:
        return {**asdict(self), "in_plane": list(self.in_plane)}


def default_length(k: float) -> int:
    """``2·⌈1.5k⌉ + 1`` taps: room for a profile up to ~2.5 slice spacings wide."""
    return 2 * int(math.ceil(1.5 * k - 1e-6)) + 1


def line_geometry(
    zooms: tuple[float, ...],
    shape: tuple[int, ...],
    axis: int | None = None,
    length: int | None = None,
    name: str = "scan",
) -> LineGeometry:
    """The slice axis (given, or the one off the plane that shares a spacing), ``S``, ``d``,
    ``k`` and the tap count; a one-line error for a scan with ``k`` < 1.2."""
    from mrisr.io.geometry import choose_plane

    if len(shape) != 3 or len(zooms) != 3:
        raise ConfigError(f"'{name}': learning a slice profile needs a 3-D scan, got {shape}")
    ax = choose_plane(zooms, shape, axis).slice_axis
    s = float(zooms[ax])
    plane = tuple(float(z) for i, z in enumerate(zooms) if i != ax)
    d = min(plane)
    k = s / d
    if k < MIN_RATIO:
        raise ConfigError(
            f"--through-plane: '{name}' is near-isotropic (slices {s:.3g} mm apart along axis "
            f"{ax}, in-plane {d:.3g} mm: k = {k:.2f} < {MIN_RATIO}); there is no slice profile "
            "to learn"
        )
    n = default_length(k) if length is None else int(length)
    if n < 3 or n % 2 == 0:
        raise ConfigError(f"profile.length must be odd and >= 3, got {n}")
    return LineGeometry(ax, s, plane, d, k, n, int(shape[ax]))  # type: ignore[arg-type]


def scan_line_geometry(
    scan: str | Path, axis: int | None = None, length: int | None = None
) -> LineGeometry:
    """:func:`line_geometry` of a scan file."""
    from mrisr.io import load_volume

    vol = load_volume(scan)
    return line_geometry(vol.zooms, vol.shape, axis, length, Path(scan).name)


def _window_mean(a: np.ndarray, width: int) -> np.ndarray:
    """Means of ``width`` consecutive entries along the last axis (valid windows only)."""
    c = np.cumsum(np.pad(a, [(0, 0)] * (a.ndim - 1) + [(1, 0)]), axis=-1)
    return (c[..., width:] - c[..., :-width]) / width


def _weights(lines: np.ndarray, stride: float, J: int) -> np.ndarray:
    """``[lines, starts]``: the mean |difference| over one slice spacing (``stride`` samples)
    along the ``J``-slice segment starting at each sample, 0 where its mean intensity is < 0.1
    (background). The same statistic for real (stride 1) and fake (stride k) segments."""
    x = lines.astype(np.float64)
    span = int(math.ceil((J - 1) * stride))
    step = max(1, int(round(stride)))
    diff = np.abs(x[:, step:] - x[:, :-step])
    w = _window_mean(diff, max(1, span - step + 1))
    tissue = _window_mean(x, span + 1) >= 0.1
    n = min(w.shape[1], tissue.shape[1])
    return w[:, :n] * tissue[:, :n]


def _cdf(w: np.ndarray) -> np.ndarray:
    w = np.where(np.isfinite(w), w, 0.0).ravel()
    return np.cumsum(w / w.sum()) if w.sum() > 0 else np.array([])


def _pick(rng: np.random.Generator, cdf: np.ndarray) -> int:
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), cdf.size - 1)


class ThroughPlaneLines(Dataset):
    """``{"real_taps": [J, L], "fake_taps": [J, L]}``: the taps of a real through-plane segment
    and of a fake one, from the same scan (see the module docstring).

    Args:
        scan: the thick-slice scan. length: taps ``L`` (default ``2·⌈1.5k⌉ + 1``).
        line_crop: segment length ``J`` in slices (shortened to what the scan holds, >= 6).
        axis: slice axis (default: the one off the plane that shares a spacing).
    """

    def __init__(
        self,
        scan: Path,
        length: int | None = None,
        line_crop: int = 16,
        normalisation: Normalisation | None = None,
        axis: int | None = None,
        samples_per_epoch: int = 3000,
        seed: int = 0,
    ) -> None:
        from mrisr.io import load_volume

        self.path = Path(scan)
        vol = load_volume(self.path)
        self.geometry = g = line_geometry(vol.zooms, vol.shape, axis, length, self.path.name)
        self.normalisation = normalisation or Normalisation("percentile", 0.0, 99.5)
        data = np.moveaxis(np.asarray(vol.data, np.float32), g.axis, 0)
        data = self.normalisation.apply(data, self.normalisation.fit(data)).astype(np.float32)
        n_s = data.shape[0]
        self.J = min(int(line_crop), n_s)
        if self.J < MIN_SEGMENT:
            raise ConfigError(
                f"'{self.path.name}' has {n_s} slices; learning its slice profile needs at "
                f"least {MIN_SEGMENT}"
            )
        self.samples_per_epoch, self.seed, self.epoch = int(samples_per_epoch), int(seed), 0
        self.lr_grid_offset = 0.0
        c = (g.length - 1) / 2
        self.offsets = np.arange(g.length, dtype=np.float64) - c
        self.volume = data
        # Real segments run along the slice axis; each is blurred across in-plane axis a by
        # the profile (its taps), as a fake segment (a line along a) is blurred across the
        # slices by the scan: the two are mirror images, with the same third axis unblurred.
        real = data.reshape(n_s, -1).T  # [n1·n2, n_s]: every through-plane line
        self.real_starts = n_s - self.J + 1
        w_real = _weights(real, 1, self.J)
        n1, n2 = data.shape[1:]
        u, v = np.divmod(np.arange(n1 * n2), n2)
        self.families: list[dict[str, Any]] = []
        for a, (da, idx) in enumerate(zip(g.in_plane, (u, v), strict=True)):
            ka, ra, n = g.slice_spacing / da, g.d / da, data.shape[1 + a]
            lo = 1.0 + c * ra  # cubic interpolation reads samples floor(p) − 1 .. floor(p) + 2
            hi = n - 2.0 - 1e-6 - (self.J - 1) * ka - c * ra
            if hi < math.ceil(lo):
                continue  # this axis is too short for a fake segment
            lines = np.ascontiguousarray(np.moveaxis(data, 1 + a, -1).reshape(-1, n))
            t0 = int(math.ceil(lo))
            starts = int(math.floor(hi)) - t0 + 1
            w_fake = _weights(lines[:, t0:], ka, self.J)[:, :starts]
            ok = (idx - c * ra >= 1.0) & (idx + c * ra <= n - 3.0)
            wr = w_real * ok[:, None]
            if not (w_fake.sum() > 0 and wr.sum() > 0):
                continue
            self.families.append({"axis": a, "k": ka, "r": ra, "lines": lines, "t0": t0,
                                  "hi": hi, "starts": w_fake.shape[1], "mass": float(w_fake.sum()),
                                  "fake_cdf": _cdf(w_fake), "real_cdf": _cdf(wr)})  # fmt: skip
        if not self.families:
            raise ConfigError(
                f"'{self.path.name}': no in-plane line with tissue edges is long enough for "
                f"{self.J} slices × k = {g.k:.2f} + {g.length} taps "
                f"({(self.J - 1) * g.k + g.length:.0f} voxels); lower profile.line_crop"
            )
        mass = np.array([f["mass"] for f in self.families])
        self.family_cdf = np.cumsum(mass / mass.sum())

    def __len__(self) -> int:
        return self.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def real_taps(self, f: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        """``[J, L]``: a through-plane segment at the offsets ``(i − c)·r_a`` across axis a."""
        line, j0 = divmod(_pick(rng, f["real_cdf"]), self.real_starts)
        u, v = divmod(line, self.volume.shape[2])
        slab = self.volume[j0 : j0 + self.J]
        pos = (u, v)[f["axis"]] + self.offsets * f["r"]
        base = np.floor(pos).astype(np.int64)
        out = np.zeros((self.J, pos.size), np.float64)
        for m in (-1, 0, 1, 2):
            near = slab[:, base + m, v] if f["axis"] == 0 else slab[:, u, base + m]
            out += cubic_kernel(pos - (base + m))[None, :] * near
        return out

    def fake_taps(self, f: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        """``[J, L]``: an in-plane line along axis a at ``t₀ + j·k_a + (i − c)·r_a``."""
        line, s = divmod(_pick(rng, f["fake_cdf"]), f["starts"])
        t0 = min(f["t0"] + s + rng.random(), f["hi"])
        pos = t0 + np.arange(self.J)[:, None] * f["k"] + self.offsets[None, :] * f["r"]
        return cubic_taps(f["lines"][line], pos)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        seq = np.random.SeedSequence([self.seed, self.epoch, int(index)])
        r_fam, r_real, r_fake = (np.random.default_rng(s) for s in seq.spawn(3))
        f = self.families[_pick(r_fam, self.family_cdf)]
        real = torch.from_numpy(self.real_taps(f, r_real).astype(np.float32))
        fake = torch.from_numpy(self.fake_taps(f, r_fake).astype(np.float32))
        return {"real_taps": real, "fake_taps": fake}

    def card(self) -> dict[str, Any]:
        return {
            "scan": self.path.name,
            **self.geometry.card(),
            "line_crop": self.J,
            "in_plane_axes_used": [int(f["axis"]) for f in self.families],
            "normalisation": asdict(self.normalisation),
            "interpolation": "Keys cubic (a = -0.5) at t0 + j·k_a + (i − c)·r_a",
            "segment_sampling": "∝ mean |difference| along the segment, tissue (mean >= 0.1)",
            "seed": self.seed,
        }


def cubic_taps(line: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``line`` evaluated at fractional indices ``pos`` (any shape; 1 <= pos < n − 2) by Keys
    cubic convolution."""
    base = np.floor(pos).astype(np.int64)
    out = np.zeros(pos.shape, np.float64)
    for m in (-1, 0, 1, 2):
        out += cubic_kernel(pos - (base + m)) * line[base + m]
    return out

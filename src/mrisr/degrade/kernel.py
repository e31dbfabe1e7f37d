"""An explicit blur kernel + decimation (``method: kernel``): e.g. one learned by the DSGAN.

A kernel file is a ``K``×``K`` float ``.npy`` (read with ``allow_pickle=False``) with an
optional JSON sidecar ``K.json`` (``mrisr learn-kernel`` writes both, and a PSF plot ``K.png``).
The LR image is ``(HR ⋆ k)↓s``: cross-correlation with ``k`` after reflect-padding by ``K//2``,
then every ``s``-th sample, so an N×N slice gives N/s×N/s. ``k`` is used normalised to
sum 1 (mean intensity kept); its raw sum is recorded. Output sample ``j`` lies at input index
``s·j + (s − 1)/2`` — the block centre, as for the other decimations — when the kernel's centre
of mass is at ``K//2 + (s − 1)/2`` (where the DSGAN's centre regulariser puts it); the offset
actually used is computed from the kernel, rounded to 1/1000 pixel, and recorded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mrisr.degrade.base import AxisMap, Degradation, Degraded, check_divisible
from mrisr.errors import ConfigError, InputError


def sidecar_of(path: str | Path) -> Path:
    p = Path(path)
    return p.with_suffix(".json")


def read_kernel(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """``(kernel float64 [K, K], sidecar dict or {})``; one-line errors for bad files.

    The ``.npy`` header is checked before the data are read (never unpickled; square, 1 to
    1024 wide), then the values: finite, with a positive sum. Even sizes are accepted: the
    DSGAN writes ``K = 1 + Σ(k − 1)`` of its layer sizes, and the centre offset handles them.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"kernel '{p}' does not exist; give a .npy written by mrisr learn-kernel")
    try:
        header = np.load(p, mmap_mode="r", allow_pickle=False)  # header only: nothing read
        shape, dtype = header.shape, header.dtype
        if len(shape) != 2 or shape[0] != shape[1] or not 1 <= shape[0] <= 1024:
            raise InputError(
                f"kernel '{p}' must be a square 2-D array 1 to 1024 wide, got shape {shape}"
            )
        if dtype.kind not in "iuf":
            raise InputError(f"kernel '{p}' has dtype {dtype}; expected floats")
        k = np.array(header, dtype=np.float64)
        del header
    except (ValueError, OSError, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"kernel '{p}' is not a readable .npy array ({reason})") from None
    if not np.all(np.isfinite(k)):
        raise InputError(f"kernel '{p}' contains NaN or Inf")
    if not k.sum() > 1e-8:
        raise InputError(
            f"kernel '{p}' sums to {k.sum():.3g}; a blur kernel must have a positive sum"
        )
    meta: dict[str, Any] = {}
    side = sidecar_of(p)
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except (ValueError, OSError) as e:  # JSONDecodeError, UnicodeDecodeError
            raise InputError(f"kernel sidecar '{side}' is not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise InputError(f"kernel sidecar '{side}' must hold a JSON object")
    return k, meta


@lru_cache(maxsize=16)
def _cached(path: str, mtime_ns: int) -> tuple[np.ndarray, dict[str, Any], str]:
    k, meta = read_kernel(path)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return k, meta, digest


def centre_offset(k: np.ndarray, scale: int) -> float:
    """Input index of output sample 0 (both axes, averaged) when ``k`` is applied with
    reflect padding ``K//2`` and stride ``scale``: the kernel's centre of mass − ``K//2``."""
    r, c = centre_of_mass(k)
    return round(((r + c) / 2) - k.shape[0] // 2, 3)


def kernel_downsample(x: torch.Tensor, k: torch.Tensor | np.ndarray, scale: int) -> torch.Tensor:
    """``x [..., H, W]`` ⋆ ``k`` (reflect padding ``K//2``) then every ``scale``-th sample."""
    kt = torch.as_tensor(np.asarray(k), dtype=x.dtype, device=x.device)
    size = kt.shape[-1]
    h, w = x.shape[-2:]
    flat = x.reshape(-1, 1, h, w)
    p = size // 2
    if p >= min(h, w):
        raise ConfigError(f"kernel: a {size}×{size} kernel needs slices larger than {h}×{w}")
    padded = F.pad(flat, (p, size - 1 - p, p, size - 1 - p), mode="reflect")
    y = F.conv2d(padded, kt[None, None], stride=scale)
    return y.reshape(*x.shape[:-2], *y.shape[-2:])


@dataclass(frozen=True)
class Kernel(Degradation):
    """Blur with the kernel in ``kernel`` (a ``.npy`` path) and decimate by ``scale``.

    ``scale`` may be left out when the kernel's sidecar records it (``mrisr learn-kernel``).
    """

    kernel: str = ""
    scale: int | None = None

    method = "kernel"
    integer_scale = True

    def __post_init__(self) -> None:
        if self.scale is None and self.kernel and Path(self.kernel).expanduser().is_file():
            object.__setattr__(self, "scale", self.load()[3])  # the sidecar's (frozen class)

    def load(self) -> tuple[np.ndarray, dict[str, Any], str, int]:
        if not self.kernel:
            raise ConfigError("kernel: give the kernel file (kernel: path/to/kernel.npy)")
        p = Path(self.kernel).expanduser().resolve()
        if not p.is_file():
            raise ConfigError(
                f"kernel: '{self.kernel}' does not exist; learn one with mrisr learn-kernel"
            )
        k, meta, digest = _cached(str(p), p.stat().st_mtime_ns)
        recorded = meta.get("scale")
        scale = self.scale if self.scale is not None else recorded
        if scale is None:
            raise ConfigError(
                f"kernel: '{p.name}' has no sidecar with its scale; give scale (--scale)"
            )
        if recorded is not None and int(recorded) != int(scale):
            raise ConfigError(
                f"kernel: '{p.name}' was learned at ×{recorded}, not ×{scale}; use a kernel of "
                "this scale"
            )
        if int(scale) < 1:
            raise ConfigError(f"kernel: scale must be >= 1, got {scale}")
        return k, meta, digest, int(scale)

    def apply(self, x, spacing=(1.0, 1.0), generator=None) -> Degraded:
        k, meta, digest, s = self.load()
        check_divisible(tuple(x.shape[-2:]), (s, s), "kernel")
        total = float(k.sum())
        y = kernel_downsample(x, k / total, s)
        off = centre_offset(k, s)
        params = {
            "method": self.method,
            "kernel": str(self.kernel),
            "scale": s,
            "kernel_sha256": digest,
            "kernel_size": int(k.shape[0]),
            "kernel_raw_sum": total,
            "grid_offset": off,
        }
        if meta.get("source"):
            params["kernel_source"] = meta["source"]
        m = AxisMap(float(s), off)
        return Degraded(y, params, (m, m))


def save_kernel(
    path: str | Path, kernel: np.ndarray, meta: dict[str, Any], overwrite: bool = False
) -> list[Path]:
    """Write ``path`` (.npy), its ``.json`` sidecar and a ``.png`` PSF plot, all or none."""
    from mrisr.io.atomic import atomic_outputs

    p = Path(path)
    if p.suffix != ".npy":
        raise ConfigError(f"kernel output '{p}' must end in .npy (its .json and .png go beside it)")
    outs = [p, p.with_suffix(".json"), p.with_suffix(".png")]
    k = np.asarray(kernel, np.float64)
    with atomic_outputs(outs, overwrite=overwrite) as (t_npy, t_json, t_png):
        with open(t_npy, "wb") as f:
            np.save(f, k.astype(np.float32), allow_pickle=False)
        t_json.write_text(json.dumps(meta, indent=2) + "\n")
        psf_plot(k, t_png, title=meta.get("title"), scale=meta.get("scale"))
    return outs


def psf_plot(
    k: np.ndarray,
    path: str | Path,
    title: str | None = None,
    scale: int | None = None,
    reference: dict[str, np.ndarray] | None = None,
) -> None:
    """The kernel as an image, its central row / column profiles and its (normalised) MTF
    (|FFT| along both axes); ``reference`` kernels are drawn dashed in the profile panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = np.asarray(k, np.float64)
    k = k / k.sum()
    n = k.shape[0]
    fig, ax = plt.subplots(1, 3, figsize=(11, 3.4), constrained_layout=True)
    im = ax[0].imshow(k, cmap="magma", interpolation="nearest")
    fig.colorbar(im, ax=ax[0], shrink=0.8)
    ax[0].set_title(f"kernel {n}×{n}" + (f" (×{scale})" if scale else ""))
    r, c = (int(round(v)) for v in _com(k))
    x = np.arange(n)
    ax[1].plot(x, k[r, :], "o-", label=f"row {r}")
    ax[1].plot(x, k[:, c], "s-", label=f"column {c}")
    refs = reference or {}
    for name, kr in refs.items():
        kr = np.asarray(kr, np.float64) / np.sum(kr)
        ax[1].plot(x, kr[r, :], "--", label=f"{name} (row)")
        ax[1].plot(x, kr[:, c], ":", label=f"{name} (column)")
    ax[1].set_title("profiles through the centre of mass")
    ax[1].set_xlabel("HR pixel")
    ax[1].legend(fontsize=7)
    f = np.fft.rfftfreq(64)
    for name, kk in {"learned": k, **refs}.items():
        kk = np.asarray(kk, np.float64) / np.sum(kk)
        F2 = np.abs(np.fft.fft2(kk, (64, 64)))
        ls = "-" if name == "learned" else "--"
        ax[2].plot(f, F2[0, : f.size], ls, label=f"{name}: along rows")
        ax[2].plot(f, F2[: f.size, 0], ls, label=f"{name}: along columns", alpha=0.7)
    if scale:
        ax[2].axvline(0.5 / scale, color="grey", lw=0.8)
        ax[2].text(0.5 / scale, 0.02, " LR Nyquist", fontsize=7, color="grey")
    ax[2].set_title("MTF (|FFT|)")
    ax[2].set_xlabel("cycles / HR pixel")
    ax[2].set_ylim(0, 1.05)
    ax[2].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def _com(k: np.ndarray) -> tuple[float, float]:
    return centre_of_mass(k)


def kernel_error(k: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """How far a kernel is from a reference (both normalised to sum 1): relative L2 error,
    max abs difference, and the centre-of-mass shift in pixels."""
    a = np.asarray(k, np.float64) / np.sum(k)
    b = np.asarray(ref, np.float64) / np.sum(ref)
    if a.shape != b.shape:
        raise ConfigError(f"kernels of different sizes: {a.shape} vs {b.shape}")
    ca, cb = np.array(centre_of_mass(a)), np.array(centre_of_mass(b))
    return {
        "rel_l2": float(np.linalg.norm(a - b) / np.linalg.norm(b)),
        "max_abs": float(np.abs(a - b).max()),
        "centre_shift_px": float(np.linalg.norm(ca - cb)),
    }


def centre_of_mass(k: np.ndarray) -> tuple[float, float]:
    """(row, col) centre of mass of a kernel."""
    k = np.asarray(k, np.float64)
    idx = np.arange(k.shape[0], dtype=np.float64)
    t = k.sum()
    return float((k.sum(1) * idx).sum() / t), float((k.sum(0) * idx).sum() / t)

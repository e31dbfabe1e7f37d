"""Figures: side-by-side panels of one slice with error maps, and MSCN histograms (PNG, atomic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mrisr.io.atomic import atomic_outputs


def _slice(vol: np.ndarray, k: int | None = None) -> np.ndarray:
    """The middle slice along the last axis, transposed for display (rows = 2nd axis)."""
    k = vol.shape[-1] // 2 if k is None else k
    return np.rot90(vol[:, :, k])


def comparison_panel(
    images: dict[str, np.ndarray],
    reference: np.ndarray | None,
    path: str | Path,
    metrics: dict[str, dict[str, Any]] | None = None,
    overwrite: bool = False,
    slice_fraction: float = 0.5,
) -> Path:
    """One row of images (the same slice of each volume, all shown over the same field of
    view, low-resolution ones with their own pixels) and, when a reference is given, a row of
    absolute-error maps on a shared scale. Titles carry PSNR/SSIM from ``metrics``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(images)
    k_ref = int(round((next(iter(images.values())).shape[-1] - 1) * slice_fraction))
    ref2d = _slice(reference, k_ref) if reference is not None else None
    vmax = float(np.percentile(ref2d if ref2d is not None else _slice(images[names[0]]), 99.5))
    rows = 2 if reference is not None else 1
    fig, axes = plt.subplots(
        rows,
        len(names),
        figsize=(3.2 * len(names), 3.4 * rows),
        squeeze=False,
        constrained_layout=True,
    )
    err_max = 0.0
    errs = {}
    for j, n in enumerate(names):
        img = _slice(images[n], min(k_ref, images[n].shape[-1] - 1))
        ax = axes[0, j]
        # Every panel spans the same field of view (the reference's pixel grid, or its own).
        fov = ref2d.shape if ref2d is not None else img.shape
        ax.imshow(
            img,
            cmap="gray",
            vmin=0,
            vmax=vmax,
            extent=(0, fov[1], 0, fov[0]),
            interpolation="nearest",
        )
        title = f"{n}\n{img.shape[1]}×{img.shape[0]}"
        if metrics and n in metrics:
            m = metrics[n]
            title += f"  {m['psnr']:.2f} dB / {m['ssim']:.4f}"
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        if ref2d is not None and img.shape == ref2d.shape:
            errs[n] = np.abs(img - ref2d)
            err_max = max(err_max, float(np.percentile(errs[n], 99.5)))
    if rows == 2:
        shown = []
        for j, n in enumerate(names):
            ax = axes[1, j]
            ax.axis("off")
            if n in errs and images[n] is not reference:
                im = ax.imshow(errs[n], cmap="inferno", vmin=0, vmax=err_max or 1)
                ax.set_title(f"|{n} − reference|", fontsize=9)
                shown.append(ax)
        if shown:
            free = [axes[1, j] for j in range(len(names)) if axes[1, j] not in shown]
            if free and free[-1] is axes[1, -1]:  # the empty slot under the reference
                cax = free[-1].inset_axes((0.05, 0.1, 0.06, 0.8))
                fig.colorbar(im, cax=cax, label="absolute error")
            else:
                fig.colorbar(im, ax=shown, shrink=0.8, label="absolute error")
    path = Path(path)
    with atomic_outputs([path], overwrite=overwrite) as (tmp,):
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


_MSCN_PANELS = {
    "mscn": "MSCN coefficients Î",
    "horizontal": "horizontal Î(m,n)·Î(m,n+1)",
    "vertical": "vertical Î(m,n)·Î(m+1,n)",
    "diagonal": "diagonal Î(m,n)·Î(m−1,n−1)",
    "off_diagonal": "off-diagonal Î(m,n)·Î(m−1,n+1)",
}


def mscn_histogram_plot(
    histograms: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
    path: str | Path,
    overwrite: bool = False,
) -> Path:
    """Density curves of MSCN coefficients and of their paired products, one curve per
    image (or volume), overlaid in five panels (as Fig. 5 of the realistic-downsampling GAN
    paper). ``histograms``: ``{label: mrisr.metrics.noref.mscn_histograms(...)}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(
        1, len(_MSCN_PANELS), figsize=(3.3 * len(_MSCN_PANELS), 3.2), constrained_layout=True
    )
    for ax, (panel, title) in zip(axes, _MSCN_PANELS.items(), strict=True):
        for j, (label, h) in enumerate(histograms.items()):
            x, d = h[panel]
            ax.plot(x, d, styles[j % len(styles)], lw=1.3, label=label)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("value", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("density", fontsize=8)
    if histograms:
        axes[0].legend(fontsize=7, loc="upper left")
    path = Path(path)
    with atomic_outputs([path], overwrite=overwrite) as (tmp,):
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def per_slice_curves_png(curves: dict[str, list[dict[str, Any]]]) -> bytes:
    """PSNR and SSIM against the slice index, one line per result, as PNG bytes (for the
    HTML report). ``curves``: ``{label: report["results"][key]["slices"]}`` of ``mrisr eval``."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8), constrained_layout=True)
    for ax, key, unit in zip(axes, ("psnr", "ssim"), (" (dB)", ""), strict=True):
        for label, rows in curves.items():
            idx = [r["index"] for r in rows if r.get(key) is not None]
            val = [r[key] for r in rows if r.get(key) is not None]
            ax.plot(idx, val, lw=1.2, label=label)
        ax.set_xlabel("slice", fontsize=8)
        ax.set_ylabel(key.upper() + unit, fontsize=8)
        ax.tick_params(labelsize=7)
    if curves:
        axes[0].legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()

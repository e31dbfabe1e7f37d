"""``mrisr learn-kernel OUT --hr HR --lr LR --scale S``: a scanner's degradation kernel from
an HR and a real LR scan; ``mrisr learn-kernel OUT --through-plane --lr SCAN``: the 1-D slice
profile of one thick-slice scan, learned from the scan itself (or, with ``--profile rect|gaussian
--thickness MM``, the analytic one of a known protocol, without learning).

Learning runs a recipe through the training engine in a run folder (``--run-dir``, or a
temporary one removed afterwards): ``dsgan_x{scale}`` (task ``dsgan``) for a kernel,
``profile_dsgan`` (task ``profile``) for a profile. Then ``OUT.npy`` (the kernel or profile, sum
1), ``OUT.json`` (how it was learned: scans and their sha256, steps, seed, wall time, the
engine's training card; for a profile its FWHM in mm and voxels, centre of mass, ``k``, ``d``
and ``S``) and ``OUT.png`` (PSF plot) are written together, or nothing. The output and the
options are checked before any work is done.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mrisr.errors import ConfigError
from mrisr.provenance import sidecar_header


def run_learn_kernel(
    hr: str | Path | None,
    lr: str | Path,
    scale: int | None,
    out: str | Path,
    *,
    steps: int | None = None,
    slice_index: int | None = None,
    denoise: bool = False,
    seed: int = 0,
    axis: int | None = None,
    run_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    argv: list[str] | None = None,
    through_plane: bool = False,
    profile: str | None = None,
    thickness: float | None = None,
) -> dict[str, Any]:
    """Learn the ×``scale`` kernel taking ``hr`` to ``lr`` (default 3000 steps), or with
    ``through_plane`` the slice profile of ``lr`` (:func:`run_learn_profile`); returns the
    sidecar written."""
    from mrisr.degrade.kernel import read_kernel, save_kernel
    from mrisr.train.config import load_config, recipe_names
    from mrisr.train.engine import train

    if through_plane:
        for value, what in ((hr, "--hr"), (scale, "--scale"), (slice_index, "--slice")):
            if value is not None:
                raise ConfigError(
                    f"{what}: --through-plane learns from the thick-slice scan alone (--lr "
                    "SCAN; k = its slice spacing / in-plane spacing); leave out " + what
                )
        if denoise:
            raise ConfigError("--denoise: not used with --through-plane; leave it out")
        return run_learn_profile(lr, out, steps=steps, seed=seed, axis=axis, run_dir=run_dir,
                                 profile=profile, thickness=thickness, overrides=overrides,
                                 overwrite=overwrite, argv=argv)  # fmt: skip
    if profile is not None or thickness is not None:
        raise ConfigError("--profile/--thickness: a slice profile; add --through-plane")
    if hr is None:
        raise ConfigError(
            "--hr: learning a kernel needs the HR scan (--hr HR); to learn a thick-slice scan's "
            "slice profile from the scan alone, pass --through-plane"
        )
    if scale is None:
        raise ConfigError("--scale: give the in-plane factor of the LR scan (--scale 2 or 4)")
    steps = 3000 if steps is None else steps
    out = _check_out(out, steps, seed, overwrite)
    recipe = f"dsgan_x{scale}"
    if recipe not in recipe_names():
        raise ConfigError(f"--scale {scale}: kernels are learned at ×2 or ×4")
    for p, what in ((hr, "--hr"), (lr, "--lr")):
        if not Path(p).exists():
            raise ConfigError(f"{what} '{p}' does not exist")
    over = [
        f"data.train=[{Path(hr).resolve()}]",
        f"data.lr_real=[{Path(lr).resolve()}]",
        f"train.steps={steps}",
        f"train.seed={seed}",
        f"dsgan.denoise={str(bool(denoise)).lower()}",
        "train.progress=off",
    ]
    if slice_index is not None:
        over.append(f"dsgan.slice={slice_index}")
    if axis is not None:
        over.append(f"data.axis={axis}")
    over += list(overrides or [])
    cfg = load_config(recipe, over)
    tmp = None
    if run_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix=".mrisr-kernel-", dir=out.parent))
        run = tmp / "run"
    else:
        run = Path(run_dir)
    t0 = time.perf_counter()
    try:
        train(cfg, run_dir=run)
        k, meta = read_kernel(run / "final" / "kernel.npy")
        wall = time.perf_counter() - t0
        meta.pop("title", None)
        card = meta.get("training", {})
        sidecar = {
            **sidecar_header(argv, {"hr": hr, "lr": lr}),
            "mode": card.get("dataset", {}).get("mode"),
            "seed": seed,
            "wall_s": round(wall, 1),
            "run_dir": None if tmp else str(run),
            **meta,
        }
        sidecar["title"] = (
            f"×{scale} kernel learned from {Path(lr).name} / {Path(hr).name} ({steps} steps)"
        )
        save_kernel(out, k, sidecar, overwrite=overwrite)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    com = sidecar["centre_of_mass"]
    print(
        f"wrote {out} ({k.shape[0]}×{k.shape[1]}, centre of mass ({com[0]:.2f}, {com[1]:.2f}), "
        f"raw sum {sidecar['raw_sum']:.3f}), {out.with_suffix('.json').name} and "
        f"{out.with_suffix('.png').name} in {wall:.0f} s",
        file=sys.stderr,
    )
    return sidecar


def _check_out(out: str | Path, steps: int | None, seed: int, overwrite: bool) -> Path:
    """The seed, the step count and OUT (.npy, with OUT.json and OUT.png writable)."""
    from mrisr.commands.entry import TRAIN_SEED_MAX, check_seed
    from mrisr.io.atomic import check_writable

    check_seed(seed, TRAIN_SEED_MAX)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"--steps must be an integer >= 1, got {steps}")
    out = Path(out)
    if out.suffix != ".npy":
        raise ConfigError(f"OUT '{out}' must end in .npy (OUT.json and OUT.png are written beside)")
    for p in (out, out.with_suffix(".json"), out.with_suffix(".png")):
        check_writable(p, overwrite)
    return out


def run_learn_profile(
    scan: str | Path,
    out: str | Path,
    *,
    steps: int | None = None,
    seed: int = 0,
    axis: int | None = None,
    run_dir: str | Path | None = None,
    profile: str | None = None,
    thickness: float | None = None,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """The slice profile of the thick-slice ``scan``: learned (recipe ``profile_dsgan``,
    ``steps`` default the recipe's) or, with ``profile`` and ``thickness`` (FWHM, mm), the
    analytic one on the scan's grid; writes ``out`` (.npy/.json/.png), returns the sidecar."""
    from mrisr.commands.entry import check_positive
    from mrisr.data.through_plane_lines import line_geometry
    from mrisr.degrade.profile import (
        PROFILES,
        analytic_profile,
        profile_length,
        profile_summary,
        save_profile,
    )
    from mrisr.io import load_volume
    from mrisr.train.slice_profile import learn_profile

    out = _check_out(out, steps, seed, overwrite)
    if (profile is None) != (thickness is None):
        raise ConfigError(
            "--profile and --thickness go together: the protocol's profile (rect or gaussian) "
            "and its slice thickness (FWHM, mm)"
        )
    if profile is not None and profile not in PROFILES:
        raise ConfigError(f"--profile must be 'rect' or 'gaussian', got '{profile}'")
    check_positive(thickness, "--thickness", " mm")
    if not Path(scan).exists():
        raise ConfigError(f"--lr '{scan}' does not exist")
    vol = load_volume(scan)
    geo = line_geometry(vol.zooms, vol.shape, axis, None, Path(scan).name)
    head = {**sidecar_header(argv, {"scan": scan}), "slice_axis": geo.axis}
    t0 = time.perf_counter()
    if profile is not None:
        assert thickness is not None
        fwhm = float(thickness) / geo.d
        h = analytic_profile(profile, fwhm, profile_length(fwhm, geo.k))
        meta = {**head, "mode": "analytic", "profile": profile, "thickness_mm": thickness,
                **profile_summary(h, geo.d, geo.k), "steps": None}  # fmt: skip
        meta["title"] = f"{profile} slice profile, FWHM {thickness:g} mm ({Path(scan).name})"
    else:
        h, learned = learn_profile(
            scan,
            steps=steps,
            seed=seed,
            axis=geo.axis,
            run_dir=run_dir,
            overrides=overrides,
            scratch=out.parent,
        )
        meta = {**head, "mode": "learned", "seed": seed, **learned}
        meta["title"] = (
            f"slice profile learned from {Path(scan).name} (k = {geo.k:.3g}, {meta['steps']} steps)"
        )
    meta["wall_s"] = round(time.perf_counter() - t0, 1)
    save_profile(out, h, meta, overwrite=overwrite)
    print(
        f"wrote {out} ({h.size} taps, FWHM {meta['fwhm_mm']:.3g} mm = {meta['fwhm_vox']:.3g} "
        f"voxels of {geo.d:.3g} mm, k = {geo.k:.3g}), {out.with_suffix('.json').name} and "
        f"{out.with_suffix('.png').name} in {meta['wall_s']:.0f} s",
        file=sys.stderr,
    )
    return meta

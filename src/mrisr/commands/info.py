"""``mrisr info IN``: header, geometry, plane and acquired resolution of a scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def run_info(inp: Path, assume_geometry: bool = False) -> None:
    import nibabel as nib

    from mrisr.io import load_volume

    vol = load_volume(inp, allow_empty=True, assume_geometry=assume_geometry)
    axcodes = "".join(nib.orientations.aff2axcodes(vol.affine))
    d = vol.data
    print(
        f"{inp}\n  format      {vol.meta.get('format')}\n  shape       {vol.shape}\n"
        f"  zooms (mm)  {tuple(round(z, 4) for z in vol.zooms)}\n  orientation {axcodes}\n"
        f"  dtype       {vol.orig_dtype}\n  range       [{d.min():.4g}, {d.max():.4g}] "
        f"mean {d.mean():.4g}"
    )
    np.set_printoptions(precision=4, suppress=True)
    print("  affine\n" + "\n".join("    " + str(r) for r in vol.affine))
    for what in vol.meta.get("assumed_geometry", []):
        print(f"  assumed     {what}")
    if d.ndim == 3 and d.size and float(d.max()) > float(d.min()):
        from mrisr.io.geometry import choose_plane
        from mrisr.io.protocol import through_plane_facts
        from mrisr.metrics.acquired import acquired_resolution

        plane = choose_plane(vol.zooms, vol.shape)
        acq = acquired_resolution(d, vol.zooms, plane.slice_axis, vol.meta)
        print(f"  plane       {plane.describe()}")
        facts = through_plane_facts(vol.zooms, plane.slice_axis, vol.meta)
        print(f"  slices      {facts['summary']}")
        print(f"  acquired    {acq['summary']}")
        for a, e in acq["spectrum"]["axes"].items():
            if e["outer_half_energy"] is not None:
                cut = (
                    f"a {e['cutoff_drop_db']:.0f} dB cutoff at {round(100 * e['bandwidth'])} % "
                    "of Nyquist"
                    if e["cliff"]
                    else "no cutoff below Nyquist"
                )
                print(
                    f"  spectrum    axis {a}: {100 * e['outer_half_energy']:.3g} % of the energy "
                    f"beyond Nyquist/2, {cut}"
                )

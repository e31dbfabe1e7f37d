"""Re-create the real-data crops shipped with mrisr from the project's shared data folder.

    python scripts/make_shipped_data.py ../shared/data

Crops keep the source header (orientation, units, scaling) through nibabel's slicer, which
moves the affine's origin to the crop's first voxel; the qform/sform codes are restored.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib

REPO = Path(__file__).resolve().parents[1]

CROPS = {
    # name: (source, slicer, destination)
    "demo": (
        "ixi002/IXI002-Guys-0828-T2.nii.gz",
        (slice(40, 216), slice(16, 208), slice(56, 80)),
        REPO / "src/mrisr/data/demo/IXI002-T2-demo.nii.gz",
    ),
    "t2-test": (
        "ixi002/IXI002-Guys-0828-T2.nii.gz",
        (slice(80, 176), slice(64, 160), slice(60, 66)),
        REPO / "tests/data/ixi002_t2_crop.nii.gz",
    ),
    "t2-mask-test": (
        "ixi002/IXI002-Guys-0828-T2_brainmask.nii.gz",
        (slice(80, 176), slice(64, 160), slice(60, 66)),
        REPO / "tests/data/ixi002_t2_crop_brainmask.nii.gz",
    ),
    # The T1 of the same subject on its own (sagittal) grid, covering the T2 crop's field of
    # view with a margin: the guide of the multi-contrast tests.
    "t1-guide-test": (
        "ixi002/IXI002-Guys-0828-T1.nii.gz",
        (slice(34, 114), slice(54, 154), slice(116, 150)),
        REPO / "tests/data/ixi002_t1_crop.nii.gz",
    ),
    "flair-test": (
        "flair/FLAIR.nii.gz",
        (slice(30, 94), slice(48, 112), slice(68, 72)),
        REPO / "tests/data/flair_crop.nii.gz",
    ),
}


#: The IXI002 T1 resampled (trilinear, through both headers: mrisr.data.pairs.pair_guide, what
#: `mrisr upscale --guide` does) onto the grid of T2 slices 60-69 of the demo crop's field of
#: view (the SANet weights' held-out slab), rounded to int16: the guide of the SANet weights'
#: default test. A crop of the T1 on its own grid that covers this oblique slab is 1.7 MB.
T1_ON_DEMO_SLAB = REPO / "tests/data/ixi002_t1_on_demo_slab.nii.gz"


def t1_on_demo_slab(shared: Path) -> None:
    import numpy as np

    from mrisr.data.pairs import pair_guide
    from mrisr.io import load_volume

    t2 = nib.load(shared / "ixi002/IXI002-Guys-0828-T2.nii.gz")
    slab = t2.slicer[40:216, 16:208, 60:70]
    t1 = load_volume(shared / "ixi002/IXI002-Guys-0828-T1.nii.gz")
    target = load_volume(REPO / "src/mrisr/data/demo/IXI002-T2-demo.nii.gz")
    target = target.replace(target.data[:, :, 4:14], slab.affine)
    guide, report = pair_guide(target, t1)
    img = nib.Nifti1Image(np.rint(guide.data).astype(np.int16), slab.affine)
    img.set_qform(slab.affine, code=int(t2.header["qform_code"]))
    img.set_sform(slab.affine, code=int(t2.header["sform_code"]))
    img.header.set_zooms(t2.header.get_zooms()[:3])
    img.header.set_xyzt_units(*t2.header.get_xyzt_units())
    nib.save(img, T1_ON_DEMO_SLAB)
    print(f"t1-on-demo-slab: {T1_ON_DEMO_SLAB.relative_to(REPO)} {img.shape} overlap "
          f"{report['overlap']:.3f} {T1_ON_DEMO_SLAB.stat().st_size / 1024:.0f} KiB")  # fmt: skip


def main(shared: Path) -> None:
    t1_on_demo_slab(shared)
    for name, (src, slicer, dst) in CROPS.items():
        img = nib.load(shared / src)
        crop = img.slicer[slicer]
        # The slicer resets the codes (qform 0, sform 2): restore the source's.
        crop.set_qform(crop.affine, code=int(img.header["qform_code"]))
        crop.set_sform(crop.affine, code=int(img.header["sform_code"]))
        dst.parent.mkdir(parents=True, exist_ok=True)
        nib.save(crop, dst)
        print(f"{name}: {dst.relative_to(REPO)} {crop.shape} {dst.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else REPO.parent / "shared" / "data"))

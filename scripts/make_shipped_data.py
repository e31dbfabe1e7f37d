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


def main(shared: Path) -> None:
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

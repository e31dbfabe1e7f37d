"""Make ``standard_iqa_reference.json``: standard BRISQUE / NIQE values from implementations
mrisr did not write, for ``tests/test_standard_iqa.py``.

- NIQE: BasicSR's ``calculate_niqe`` (``basicsr/metrics/niqe.py``, the code the pristine
  parameters come from; it reproduces MATLAB R2021a ``niqe`` on its ``baboon.png``:
  5.72957338) and pyiqa's ``niqe`` (``pyiqa/archs/niqe_arch.py``, float64), both with the
  pristine parameters shipped in ``src/mrisr/metrics/noref/models``.
- BRISQUE: pyiqa's MATLAB-faithful features (``natural_scene_statistics`` of
  ``pyiqa/archs/brisque_arch.py`` at full size and after pyiqa's MATLAB ``imresize``), scaled
  with the shipped range and scored by libsvm's own ``svm_predict`` on the shipped model.

Neither BasicSR nor pyiqa installs cleanly next to mrisr (they pull torchvision, lmdb, timm,
transformers, ...), so only their source files are used, with their package ``__init__``
modules (which import everything) replaced by empty ones. Nothing of mrisr is imported:
the 8-bit images are made here with the rule the module doc of
``mrisr.metrics.noref.standard`` states (the test checks that mrisr makes the same bytes).

Run from the repository root (needs torch, opencv-python-headless, libsvm-official, nibabel,
scikit-image, matplotlib)::

    pip download --no-deps pyiqa==0.1.16 && unzip pyiqa-0.1.16-py3-none-any.whl -d PYIQA
    git clone https://github.com/XPixelGroup/BasicSR BASICSR   # commit 8d56e3a0
    python tests/data/make_standard_iqa_reference.py PYIQA BASICSR
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
import types
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = HERE.parents[1] / "src" / "mrisr" / "metrics" / "noref" / "models"
OUT = HERE / "standard_iqa_reference.json"
RGB2GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])

# (name, file, slice axis, slice indices) of the MR images
MR = [
    ("flair_iso_crop", "flair_iso_crop.nii.gz", 2, [8, 24, 40]),
    ("ixi002_t1_crop", "ixi002_t1_crop.nii.gz", 2, [5, 17, 28]),
    ("ixi002_t2_slices", "ixi002_t2_slices.npy", 0, [0, 1, 2]),
    ("ixi002_t2_demo", "../../src/mrisr/data/demo/IXI002-T2-demo.nii.gz", 2, [4, 12, 20]),
]
NATURAL = ["camera", "astronaut", "coffee", "chelsea", "grace_hopper"]


def _pkg(name: str, path: Path) -> None:
    m = types.ModuleType(name)
    m.__path__ = [str(path)]
    sys.modules[name] = m


def _stub(name: str, **attrs) -> None:
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m


class _Registry:
    def register(self, *a, **k):
        return lambda f: f


def _no_network(*a, **k):
    raise RuntimeError("no download: the parameters are passed explicitly")


def load_pyiqa(root: Path):
    _pkg("pyiqa", root / "pyiqa")
    _pkg("pyiqa.utils", root / "pyiqa" / "utils")
    _pkg("pyiqa.archs", root / "pyiqa" / "archs")
    _stub("pyiqa.utils.registry", ARCH_REGISTRY=_Registry())
    _stub("pyiqa.utils.download_util", load_file_from_url=_no_network)
    _stub("pyiqa.archs.arch_util", get_url_from_name=lambda n: n)
    _stub("pyiqa.archs.fsim_arch", _construct_filters=None)
    return (
        importlib.import_module("pyiqa.archs.brisque_arch"),
        importlib.import_module("pyiqa.archs.niqe_arch"),
        importlib.import_module("pyiqa.matlab_utils"),
    )


def load_basicsr(root: Path):
    _pkg("basicsr", root / "basicsr")
    _pkg("basicsr.metrics", root / "basicsr" / "metrics")
    _pkg("basicsr.utils", root / "basicsr" / "utils")
    color = importlib.import_module("basicsr.utils.color_util")
    sys.modules["basicsr.utils"].bgr2ycbcr = color.bgr2ycbcr
    _stub("basicsr.utils.registry", METRIC_REGISTRY=_Registry())
    return importlib.import_module("basicsr.metrics.niqe")


def to8(a: np.ndarray, hi: float | None = None) -> np.ndarray:
    """The module doc's rule: RGB → MATLAB rgb2gray; MR → window (0, volume p99.5);
    clip; round half up."""
    a = a.astype(np.float64)
    if a.ndim == 3:
        a = a @ RGB2GRAY
    if hi is not None:
        a = np.clip(a * (255.0 / hi), 0, 255)
    return np.floor(a + 0.5)


def raw_images():
    """``(name, kind, image as stored, MR window top or None)`` of every reference image."""
    import nibabel as nib
    from PIL import Image
    from skimage import data

    for name, file, axis, idx in MR:
        p = HERE / file
        vol = np.load(p).astype(np.float64) if p.suffix == ".npy" else nib.load(p).get_fdata()
        hi = float(np.percentile(vol, 99.5))
        for i in idx:
            yield f"{name}[{i}]", "mr", np.take(vol, i, axis=axis), hi
    for name in NATURAL:
        if name == "grace_hopper":
            import matplotlib.cbook as cbook

            path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
            img = np.asarray(Image.open(path))
        else:
            img = getattr(data, name)()
        yield name, "natural", img, None


def images() -> list[tuple[str, str, np.ndarray]]:
    return [(name, kind, to8(img, hi)) for name, kind, img, hi in raw_images()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pyiqa", type=Path, help="unpacked pyiqa 0.1.16 wheel")
    ap.add_argument("basicsr", type=Path, help="BasicSR checkout")
    args = ap.parse_args()
    import cv2
    import torch
    from libsvm import svmutil

    brisque_arch, niqe_arch, mu = load_pyiqa(args.pyiqa)
    bsr = load_basicsr(args.basicsr)
    params = json.loads((MODELS / "niqe_natural_pristine.json").read_text())
    mu_p = torch.tensor(params["mu_pris_param"], dtype=torch.float64).reshape(1, 36)
    cov_p = torch.tensor(params["cov_pris_param"], dtype=torch.float64).reshape(1, 36, 36)
    rng = json.loads((MODELS / "brisque_live_range.json").read_text())
    lo, hi = np.array(rng["feature_min"]), np.array(rng["feature_max"])
    svm = svmutil.svm_load_model(str(MODELS / "brisque_live_svr.txt"))

    rows = []
    for name, kind, x in images():
        t = torch.from_numpy(x)[None, None]
        feats = torch.cat(
            [
                brisque_arch.natural_scene_statistics(t),
                brisque_arch.natural_scene_statistics(mu.imresize(t, scale=0.5)),
            ],
            dim=-1,
        ).numpy()[0]
        scaled = [float(v) for v in -1 + 2 * (feats - lo) / (hi - lo)]
        (score,), _, _ = svmutil.svm_predict([0.0], [scaled], svm, "-q")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            n_bsr = n_pyiqa = None
            if min(x.shape) >= 96:
                try:
                    n_bsr = float(bsr.calculate_niqe(x, 0, input_order="HW"))
                except np.linalg.LinAlgError:  # NaN covariance (one block)
                    n_bsr = None
                n_pyiqa = float(niqe_arch.niqe(t, mu_p, cov_p))
        fin = [v if v is None or np.isfinite(v) else None for v in (n_bsr, n_pyiqa)]
        rows.append(
            {
                "name": name,
                "kind": kind,
                "shape": list(x.shape),
                "sha256_uint8": hashlib.sha256(x.astype(np.uint8).tobytes()).hexdigest(),
                "brisque": float(score),
                "brisque_features": [float(v) for v in feats],
                "niqe_basicsr": fin[0],
                "niqe_pyiqa": fin[1],
            }
        )
        print(f"{name:22s} brisque {score:8.3f}  niqe {fin[0]} / {fin[1]}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        baboon = args.basicsr / "tests" / "data" / "baboon.png"
        baboon = (
            baboon if baboon.exists() else args.basicsr / "test_scripts" / "data" / "baboon.png"
        )
        n_baboon = float(bsr.calculate_niqe(cv2.imread(str(baboon)), 0, "HWC", "y"))
    doc = {
        "made_by": "tests/data/make_standard_iqa_reference.py (see its docstring)",
        "brisque": "pyiqa 0.1.16 natural_scene_statistics + pyiqa imresize (float64), shipped "
        "range, libsvm-official 3.37.0 svm_predict on the shipped model",
        "niqe_basicsr": "BasicSR 8d56e3a0 basicsr/metrics/niqe.py calculate_niqe(img, 0, 'HW') "
        "(float32, as published); null where it gives NaN (a single 96x96 block: np.cov of one "
        "row: NaN, then an SVD error) or the image is smaller than 96x96",
        "niqe_pyiqa": "pyiqa 0.1.16 niqe_arch.niqe (float64); null as above",
        "images": "MR: slice of the scan mapped with window (0, scan p99.5), clipped, rounded "
        "half up; natural: skimage.data / matplotlib sample, MATLAB rgb2gray, rounded",
        "baboon_check": {
            "image": "BasicSR test_scripts/data/baboon.png, Y of YCbCr (BasicSR to_y_channel)",
            "matlab_r2021a_published": 5.72957338,
            "basicsr": n_baboon,
        },
        "rows": rows,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"baboon: BasicSR {n_baboon:.7f} (MATLAB R2021a 5.72957338); wrote {OUT}")


if __name__ == "__main__":
    main()

"""The FID InceptionV3 (written here: no torchvision) and its 2048-d pool features.

FID is defined on the pool3 features of the TensorFlow Inception graph of 2015-12-05; the
PyTorch port of those weights (``pt_inception-2015-12-05-6726825d.pth``, published with
pytorch-fid) is what FID implementations load, and this network takes that file as it is. Its
parameter names follow torchvision's InceptionV3 (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch1x1.bn.running_mean``, ...); the classifier (``fc.*``, 1008 classes) is not
needed for features and is ignored.

The port differs from ImageNet InceptionV3 in four places, all kept here: the average pools
inside the Mixed_5*, Mixed_6b-e and Mixed_7b blocks exclude the zero padding
(``count_include_pad=False``), and Mixed_7c pools its last branch with a 3×3 *max* pool.
Batch-norm ε is 0.001 everywhere.

Input handling (``FIDInceptionV3.forward``): images in [0, 1], ``[B, C, H, W]``; grey images
(C = 1) are repeated to three channels — the common practice for FID of single-channel images
(e.g. medical SR papers, and the TTUR / pytorch-fid tools, which convert grey to RGB first);
bilinear resize to 299×299 (``align_corners=False``, as pytorch-fid); scaled to [−1, 1].
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_HELP = (
    f"get the FID Inception weights ({FID_WEIGHTS}, the PyTorch port of the TensorFlow "
    "2015-12-05 graph published with pytorch-fid on GitHub) and pass its path"
)
#: parameters of the feature trunk (torchvision's InceptionV3 has 27,161,264 with the
#: auxiliary classifier (3,326,696) and the 1000-class fc (2,049,000): 27,161,264 − both).
TRUNK_PARAMETERS = 21_785_568


class BasicConv(nn.Module):
    """conv (no bias) → batch norm (ε 0.001) → ReLU, torchvision's ``BasicConv2d`` names."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], **kw: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, bias=False, **kw)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg3(x: torch.Tensor) -> torch.Tensor:
    """3×3 average pool, stride 1, padding not counted (the FID port's variant)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class MixedA(nn.Module):
    """35×35 block: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg-pool→1×1 (64 + 64 + 96 + ``pool``)."""

    def __init__(self, cin: int, pool: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv(cin, 64, 1)
        self.branch5x5_1 = BasicConv(cin, 48, 1)
        self.branch5x5_2 = BasicConv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv(96, 96, 3, padding=1)
        self.branch_pool = BasicConv(cin, pool, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, c, self.branch_pool(_avg3(x))], 1)


class MixedB(nn.Module):
    """35→17 reduction: 3×3/2 | 1×1→3×3→3×3/2 | max-pool/2 (384 + 96 + C)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class MixedC(nn.Module):
    """17×17 block with factorised 7×7 convs of width ``c7`` (4 × 192 outputs)."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        h, v = {"padding": (0, 3)}, {"padding": (3, 0)}
        self.branch1x1 = BasicConv(cin, 192, 1)
        self.branch7x7_1 = BasicConv(cin, c7, 1)
        self.branch7x7_2 = BasicConv(c7, c7, (1, 7), **h)
        self.branch7x7_3 = BasicConv(c7, 192, (7, 1), **v)
        self.branch7x7dbl_1 = BasicConv(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv(c7, c7, (7, 1), **v)
        self.branch7x7dbl_3 = BasicConv(c7, c7, (1, 7), **h)
        self.branch7x7dbl_4 = BasicConv(c7, c7, (7, 1), **v)
        self.branch7x7dbl_5 = BasicConv(c7, 192, (1, 7), **h)
        self.branch_pool = BasicConv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = x
        for i in range(1, 6):
            c = getattr(self, f"branch7x7dbl_{i}")(c)
        return torch.cat([a, b, c, self.branch_pool(_avg3(x))], 1)


class MixedD(nn.Module):
    """17→8 reduction: 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max-pool/2 (320 + 192 + C)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv(cin, 192, 1)
        self.branch3x3_2 = BasicConv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = x
        for i in range(1, 5):
            b = getattr(self, f"branch7x7x3_{i}")(b)
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class MixedE(nn.Module):
    """8×8 block with split 1×3 / 3×1 outputs (320 + 768 + 768 + 192 = 2048 channels).

    ``max_pool``: the last block of the FID port pools its fourth branch with a max pool.
    """

    def __init__(self, cin: int, max_pool: bool = False) -> None:
        super().__init__()
        h, v = {"padding": (0, 1)}, {"padding": (1, 0)}
        self.max_pool = max_pool
        self.branch1x1 = BasicConv(cin, 320, 1)
        self.branch3x3_1 = BasicConv(cin, 384, 1)
        self.branch3x3_2a = BasicConv(384, 384, (1, 3), **h)
        self.branch3x3_2b = BasicConv(384, 384, (3, 1), **v)
        self.branch3x3dbl_1 = BasicConv(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv(384, 384, (1, 3), **h)
        self.branch3x3dbl_3b = BasicConv(384, 384, (3, 1), **v)
        self.branch_pool = BasicConv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)
        p = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([a, b, c, self.branch_pool(p)], 1)


class FIDInceptionV3(nn.Module):
    """InceptionV3 up to the global average pool: ``[B, 1|3, H, W]`` in [0, 1] → ``[B, 2048]``.

    Build it with :func:`load_fid_inception` (random weights give meaningless distances).
    """

    def __init__(self, resize: bool = True) -> None:
        super().__init__()
        self.resize = resize
        self.Conv2d_1a_3x3 = BasicConv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv(80, 192, 3)
        self.Mixed_5b = MixedA(192, 32)
        self.Mixed_5c = MixedA(256, 64)
        self.Mixed_5d = MixedA(288, 64)
        self.Mixed_6a = MixedB(288)
        self.Mixed_6b = MixedC(768, 128)
        self.Mixed_6c = MixedC(768, 160)
        self.Mixed_6d = MixedC(768, 160)
        self.Mixed_6e = MixedC(768, 192)
        self.Mixed_7a = MixedD(768)
        self.Mixed_7b = MixedE(1280)
        self.Mixed_7c = MixedE(2048, max_pool=True)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] grey or RGB → the network's input: 3 channels, 299×299, [−1, 1]."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images [B, 1 or 3, H, W], got shape {tuple(x.shape)}")
        x = x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.resize and tuple(x.shape[-2:]) != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return 2 * x - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prepare(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def load_fid_inception(path: str | os.PathLike[str]) -> FIDInceptionV3:
    """The FID network with the weights of ``path`` (``.pth`` or ``.safetensors``), frozen."""
    from mrisr.models.pretrained import load_matching, read_state_dict

    state = read_state_dict(path, "FID Inception", WEIGHTS_HELP)
    net = FIDInceptionV3()
    load_matching(
        net, state, path, "FID InceptionV3", WEIGHTS_HELP, optional=("num_batches_tracked",)
    )
    return net.eval().requires_grad_(False)

"""VGG19 feature extractor (written here: no torchvision) and the perceptual content loss.

The layer layout and parameter names follow the published ImageNet VGG19 weight file
(``features.<i>.weight`` / ``.bias``, e.g. PyTorch's ``vgg19-dcbb9e9d.pth``), so that file loads
as it is; its ``classifier.*`` tensors are ignored. Weights are read with
``torch.load(weights_only=True)`` (or safetensors) from a path the user gives: nothing is
downloaded.

:class:`VGGContentLoss` is SRGAN's / FA-GAN's l_content (Eq. 15): the grey image repeated to
three channels, ImageNet normalisation, features of a chosen layer (``relu5_4`` = φ5,4 by
default) scaled by 1/12.75, MSE (or L1).
"""

from __future__ import annotations

import os
from typing import Literal

import torch
from torch import nn

from mrisr.errors import InputError

#: conv widths of VGG19 configuration "E"; "M" is a 2×2 max-pool.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M") + (
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_HELP = (
    "get the ImageNet VGG19 weights published with PyTorch (vgg19-dcbb9e9d.pth, from "
    "download.pytorch.org/models/) or any state dict with the same 'features.N' names "
    "(.pth or .safetensors), and pass its path"
)


def _layer_names() -> dict[str, int]:
    """``{"conv1_1": 0, "relu1_1": 1, ..., "pool5": 36}`` (indices into ``features``)."""
    names, block, k, i = {}, 1, 1, 0
    for v in _CFG:
        if v == "M":
            names[f"pool{block}"] = i
            block, k, i = block + 1, 1, i + 1
        else:
            names[f"conv{block}_{k}"], names[f"relu{block}_{k}"] = i, i + 1
            k, i = k + 1, i + 2
    return names


LAYERS = _layer_names()


class VGG19Features(nn.Module):
    """``features`` of VGG19 up to and including ``layer`` (all 37 modules with ``pool5``)."""

    def __init__(self, layer: str = "relu5_4") -> None:
        super().__init__()
        if layer not in LAYERS:
            raise InputError(f"unknown VGG19 layer '{layer}'; choose one of: {', '.join(LAYERS)}")
        mods: list[nn.Module] = []
        cin = 3
        for v in _CFG:
            if v == "M":
                mods.append(nn.MaxPool2d(2, 2))
            else:
                mods += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                cin = int(v)
        self.features = nn.Sequential(*mods[: LAYERS[layer] + 1])
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def load_vgg19(path: str | os.PathLike[str], layer: str = "relu5_4") -> VGG19Features:
    """VGG19 features up to ``layer`` with the weights of ``path``, frozen, in eval mode."""
    from mrisr.models.pretrained import load_matching, read_state_dict

    state = read_state_dict(path, "VGG19", WEIGHTS_HELP)
    net = VGG19Features(layer)
    load_matching(net, state, path, "VGG19", WEIGHTS_HELP)
    return net.eval().requires_grad_(False)


class VGGContentLoss(nn.Module):
    """Perceptual loss on VGG19 features: ``crit(φ(sr)/s, φ(hr)/s)`` with ``s = 12.75``.

    Inputs are grey images ``[B, 1, H, W]`` with intensities in [0, 1] (as the training
    normalisation gives); they are repeated to RGB and ImageNet-normalised. The network is
    frozen; gradients flow to ``sr`` only.
    """

    def __init__(
        self,
        weights: str | os.PathLike[str],
        layer: str = "relu5_4",
        criterion: Literal["mse", "l1"] = "mse",
        feature_scale: float = 1 / 12.75,
    ) -> None:
        super().__init__()
        self.vgg = load_vgg19(weights, layer)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.crit = nn.MSELoss() if criterion == "mse" else nn.L1Loss()
        self.feature_scale = feature_scale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.vgg((x - self.mean) / self.std) * self.feature_scale

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(hr)
        return self.crit(self.features(sr), target)


def content_loss(
    kind: Literal["vgg", "l1", "l2"] = "vgg",
    weights: str | os.PathLike[str] | None = None,
    layer: str = "relu5_4",
) -> nn.Module:
    """The generator's content term: VGG19 features (needs ``weights``) or a weight-free
    pixel L1 / L2."""
    if kind == "l1":
        return nn.L1Loss()
    if kind == "l2":
        return nn.MSELoss()
    if kind != "vgg":
        raise InputError(f"content loss must be vgg, l1 or l2, not '{kind}'")
    if weights is None:
        raise InputError(f"the vgg content loss needs VGG19 weights; {WEIGHTS_HELP}")
    return VGGContentLoss(weights, layer)

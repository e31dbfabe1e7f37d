"""VGG19 features written in the project: the published layout (names, sizes), loading a
weight file safely, and the perceptual content loss."""

from __future__ import annotations

import pytest
import torch

from mrisr.errors import InputError
from mrisr.models.registry import count_parameters
from mrisr.models.vgg import LAYERS, VGG19Features, VGGContentLoss, content_loss, load_vgg19


def _published_layout(tmp_path, suffix=".pth"):
    """A file laid out like PyTorch's vgg19-dcbb9e9d.pth (features.* + classifier.*)."""
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in VGG19Features("pool5").features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 3)  # ignored
    path = tmp_path / f"vgg19{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path, state


def test_layout_and_size_of_vgg19_features() -> None:
    net = VGG19Features("pool5")
    assert count_parameters(net) == 20_024_384  # VGG19's convolutional part
    assert (LAYERS["relu5_4"], LAYERS["pool5"], LAYERS["relu2_2"]) == (35, 36, 8)
    assert VGG19Features("relu5_4")(torch.rand(1, 3, 96, 96)).shape == (1, 512, 6, 6)
    with pytest.raises(InputError, match="unknown VGG19 layer"):
        VGG19Features("relu6_1")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_loads_the_published_layout(tmp_path, suffix) -> None:
    path, state = _published_layout(tmp_path, suffix)
    net = load_vgg19(path, "relu3_4")
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k])


def test_bad_weight_files_are_clear_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="vgg19-dcbb9e9d.pth"):
        load_vgg19(tmp_path / "missing.pth")
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "part.pth")
    with pytest.raises(InputError, match="lacks"):
        load_vgg19(tmp_path / "part.pth")

    class Payload:
        def __reduce__(self):
            return (print, ("unpickled!",))

    torch.save({"x": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(InputError, match="will not unpickle"):
        load_vgg19(tmp_path / "evil.pth")
    with pytest.raises(InputError, match="needs VGG19 weights"):
        content_loss("vgg")


def test_content_loss(tmp_path) -> None:
    path, _ = _published_layout(tmp_path)
    loss = VGGContentLoss(path, layer="relu2_2")
    hr = torch.rand(2, 1, 32, 32)
    sr = (hr + 0.1 * torch.randn_like(hr)).requires_grad_(True)
    assert loss(hr, hr).item() == 0
    value = loss(sr, hr)
    assert value.item() > 0
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    # Grey is repeated to RGB, ImageNet-normalised and scaled by 1/12.75 before the MSE.
    rgb = (hr.expand(-1, 3, -1, -1) - loss.mean) / loss.std
    manual = loss.vgg(rgb) / 12.75
    assert torch.allclose(loss.features(hr), manual)
    assert isinstance(content_loss("l1"), torch.nn.L1Loss)
    assert isinstance(content_loss("l2"), torch.nn.MSELoss)

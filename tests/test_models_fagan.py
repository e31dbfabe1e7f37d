"""FA-GAN: spec parameter counts, exact memory-efficient self-attention, fusion, presets, and
the spectral-norm discriminator."""

from __future__ import annotations

import pytest
import torch

from mrisr.models.fagan import (
    GFFB,
    LFFB,
    FAGANDiscriminator,
    FAGANGenerator,
    SelfAttention,
    naive_attention,
    self_attention,
)
from mrisr.models.registry import REGISTRY, build_model, count_parameters


def test_generator_and_discriminator_match_the_spec_counts() -> None:
    """Spec §4.2/§4.7: LFFB 1,045,248, GFFB 9,941; G 16,929,110 / 17,076,886 / 17,224,662
    (×2/×4/×8, 16 LFFBs), 8.71M with 8 LFFBs at ×4; D 5,210,561."""
    assert count_parameters(LFFB(64)) == 1_045_248
    assert count_parameters(GFFB(64)) == 9_941
    with torch.device("meta"):
        counts = {s: count_parameters(build_model("fagan", s)) for s in (2, 4, 8)}
        eight = count_parameters(build_model("fagan", 4, n_blocks=8))
    assert counts == {2: 16_929_110, 4: 17_076_886, 8: 17_224_662}
    assert round(eight / 1e6, 2) == 8.71
    assert count_parameters(FAGANDiscriminator()) == 5_210_561


@pytest.mark.parametrize("mode", ["chunked", "sdpa"])
def test_memory_efficient_attention_equals_the_naive_formula(mode: str) -> None:
    g = torch.Generator().manual_seed(0)
    n = 777  # not a multiple of the chunk
    q, k = torch.randn(2, n, 8, generator=g), torch.randn(2, n, 8, generator=g)
    v = torch.randn(2, n, 64, generator=g)
    ref = naive_attention(q.double(), k.double(), v.double()).float()
    out = self_attention(q, k, v, mode=mode, chunk=100)  # type: ignore[arg-type]
    assert (out - ref).abs().max() < 1e-5


def test_self_attention_block_starts_as_identity_and_matches_naive_when_trained() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 64, 24, 20)
    sa = SelfAttention(64, mode="chunked", chunk=50)
    assert torch.equal(sa(x), x)  # γ = 0 at initialisation
    with torch.no_grad():
        sa.gamma.fill_(0.7)
    naive = SelfAttention(64, mode="naive")
    naive.load_state_dict(sa.state_dict())
    # By hand: s_ij = f(x_i)ᵀ g(x_j), softmax over i, o_j = Σ_i β_ji h(x_i).
    f, gq, h = (m(x).flatten(2) for m in (sa.f, sa.g, sa.h))
    beta = torch.softmax(torch.einsum("bci,bcj->bji", f, gq), dim=-1)
    o = torch.einsum("bji,bci->bcj", beta, h).reshape(2, 64, 24, 20)
    by_hand = 0.7 * sa.v(o) + x
    assert (sa(x) - by_hand).abs().max() < 1e-5
    assert (naive(x) - by_hand).abs().max() < 1e-5


def test_weighted_fusion_is_the_papers_formula_and_sign_safe() -> None:
    torch.manual_seed(0)
    gffb = GFFB(64, fusion="weighted").eval()
    with torch.no_grad():
        gffb.sa.gamma.fill_(0.3)  # type: ignore[union-attr]
    x = torch.rand(1, 64, 12, 12) + 0.1  # positive features: R, Y > 0
    r, y = 0.5 * gffb.ca(x), 0.5 * gffb.sa(x)  # type: ignore[misc]
    out = gffb(x)
    both = (r > 0) & (y > 0)
    assert both.float().mean() > 0.5
    paper = (r**2 + y**2) / (r + y)  # Eq. 13, which holds where both are positive
    assert torch.allclose(out[both], paper[both], atol=1e-5)
    assert torch.isfinite(out).all()
    direct = GFFB(64, fusion="direct")
    direct.load_state_dict(gffb.state_dict())
    assert torch.allclose(direct(x), r + y, atol=1e-6)
    # Opposite signs that cancel: Eq. 13 divides by zero, the sign-safe form stays finite.
    rr, yy = torch.tensor([1.0, -2.0]), torch.tensor([-1.0, 2.0])
    ar, ay = rr.abs(), yy.abs()
    assert torch.isfinite((ar * rr + ay * yy) / (ar + ay + 1e-6)).all()


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_output_size_and_guide_refused(scale: int) -> None:
    net = FAGANGenerator(scale, n_blocks=1, n_feats=16).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, 10, 12)).shape == (2, 1, 10 * scale, 12 * scale)
    with pytest.raises(ValueError, match="single-contrast"):
        net(torch.rand(1, 1, 8, 8), guide=torch.rand(1, 1, 8 * scale, 8 * scale))


def test_presets_build_and_differ_as_the_ablations_say() -> None:
    names = [n for n in REGISTRY if "gan" in n]
    assert set(names) >= {
        "fagan",
        "fagan-direct",
        "srgan",
        "ca-sr-gan",
        "sa-sr-gan",
        "fagan-no-sa",
        "fagan-no-ca",
        "fagan-no-lffb",
        "fagan-no-sa-ca",
        "fagan-no-sa-lffb",
        "fagan-no-ca-lffb",
    }
    with torch.device("meta"):
        nets = {n: build_model(n, 4) for n in names}
    has = {n: (m.gffb.ca is not None, m.gffb.sa is not None) for n, m in nets.items()}
    assert has["fagan"] == (True, True) and has["fagan-no-sa-ca"] == (False, False)
    assert has["fagan-no-sa"] == (True, False) and has["fagan-no-ca"] == (False, True)
    assert isinstance(nets["fagan"].body[0], LFFB)
    assert not isinstance(nets["fagan-no-lffb"].body[0], LFFB)
    assert nets["fagan-direct"].gffb.fusion == "direct"
    # SRGAN's generator (grey): 1,529,921 parameters at x4; CA adds 580, SA adds 9,361.
    c = {n: count_parameters(m) for n, m in nets.items()}
    assert c["srgan"] == 1_529_921
    assert c["ca-sr-gan"] - c["srgan"] == 580 and c["sa-sr-gan"] - c["srgan"] == 9_361


def test_discriminator_spectral_norm_switch_and_shapes() -> None:
    d = FAGANDiscriminator()
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 10 and all(hasattr(m, "parametrizations") for m in convs)
    feats = d.net[:16](torch.rand(2, 1, 96, 96))  # the 8 conv + LeakyReLU pairs
    assert feats.shape == (2, 512, 6, 6)
    assert d(torch.rand(2, 1, 96, 96)).shape == (2, 1)
    plain = FAGANDiscriminator(norm="none")
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())
    srgan = FAGANDiscriminator(norm="batch")
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in srgan.modules()) == 7
    with pytest.raises(ValueError, match="norm"):
        FAGANDiscriminator(norm="layer")  # type: ignore[arg-type]


def test_self_attention_runs_on_the_fused_kernel_without_the_full_map() -> None:
    """Only the flash backend is allowed here: if the module handed SDPA unequal widths or
    non-contiguous rows, PyTorch would need the N×N math path and refuse (65,536 positions
    would otherwise need 17 GB)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)
    sa = SelfAttention(64, mode="sdpa")
    with torch.no_grad():
        sa.gamma.fill_(0.5)
    x = torch.randn(1, 64, 32, 40)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]), torch.no_grad():
        out = sa(x)
    naive = SelfAttention(64, mode="naive")
    naive.load_state_dict(sa.state_dict())
    with torch.no_grad():
        assert (out - naive(x)).abs().max() < 1e-5

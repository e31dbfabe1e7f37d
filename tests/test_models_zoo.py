"""Model zoo: parameter counts pinned to the spec, shapes, SERAB semantics, interface contracts.

Spec: ``../shared/specs/model-specs.md`` §0 (conventions), §1 (SERAN); presets in
``mrisr.models.zoo``. Inputs are tiny (≤ 16×16) so the whole file runs in seconds on CPU.
"""

from __future__ import annotations

import pytest
import torch

from mrisr.degrade.resample import imresize
from mrisr.models import REGISTRY, build_model, count_parameters
from mrisr.models.seran import SERAB

PRESETS = ("edsr-baseline", "edsr-40", "srcnn", "vdsr", "seran")
CASES = [(name, s) for name in PRESETS for s in REGISTRY[name].scales]
COUNTED = [(n, s) for n, s in CASES if REGISTRY[n].paper_params[s] is not None]


def _lr(b: int = 1, h: int = 11, w: int = 14, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 1, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def models() -> dict[tuple[str, int], torch.nn.Module]:
    """Every (preset, scale) built once, seeded, in eval mode (shared by the tests below)."""
    torch.manual_seed(0)
    return {case: build_model(*case).eval() for case in CASES}


# --- parameter counts ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,scale", COUNTED)
def test_parameter_count_matches_spec(models, name: str, scale: int) -> None:
    assert count_parameters(models[name, scale]) == REGISTRY[name].paper_params[scale]


@pytest.mark.parametrize("scale", REGISTRY["vdsr"].scales)
def test_vdsr_parameter_count(models, scale: int) -> None:
    # 640 + 18 × 36,928 + 577 (3×3 convs with biases); the paper gives no number.
    assert count_parameters(models["vdsr", scale]) == 665_921


def test_serab_parameter_count() -> None:
    # θ 4,160 + ρ 4,160 + φ 1,040 + ψ 1,040 + W_g 4,160 + W_r 4,160 (spec §1.3); α is no Parameter.
    serab = SERAB(64, n_primitives=64, embed=16, alpha=0.01)
    assert count_parameters(serab) == 18_720
    assert "alpha" not in dict(serab.named_parameters())


def test_seran_is_edsr40_plus_serab(models) -> None:
    for s in REGISTRY["seran"].scales:
        diff = count_parameters(models["seran", s]) - count_parameters(models["edsr-40", s])
        assert diff == 18_720


# --- shapes and the common interface ------------------------------------------------------------


@pytest.mark.parametrize("name,scale", CASES)
def test_output_shape(models, name: str, scale: int) -> None:
    model = models[name, scale]
    with torch.no_grad():
        # odd × even and even × odd, h ≠ w; small, since VDSR/SRCNN work at the HR size.
        for h, w in ((5, 6), (4, 3)):
            out = model(_lr(1, h, w))
            assert out.shape == (1, 1, scale * h, scale * w)
            assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", PRESETS)
def test_guide_rejected(models, name: str) -> None:
    lr = _lr(1, 6, 6)
    guide = torch.rand(1, 1, 12, 12)
    with pytest.raises(ValueError, match="single-contrast"):
        models[name, 2](lr, guide)


@pytest.mark.parametrize("name", PRESETS)
def test_eval_determinism(models, name: str) -> None:
    model = models[name, 2]
    lr = _lr(1, 9, 10)
    with torch.no_grad():
        assert torch.equal(model(lr), model(lr))


@pytest.mark.parametrize("name", PRESETS)
def test_batch_independence(models, name: str) -> None:
    """Sample 0's output must not depend on sample 1 (SERAB mixes positions, never samples)."""
    model = models[name, 2]
    a = _lr(2, 8, 8, seed=1)
    b = a.clone()
    b[1] = _lr(1, 8, 8, seed=2)[0] * 5.0
    with torch.no_grad():
        out_a, out_b = model(a), model(b)
        alone = model(a[:1])
    assert not torch.allclose(out_a[1], out_b[1])
    torch.testing.assert_close(out_a[0], out_b[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(out_a[:1], alone, rtol=1e-5, atol=1e-5)


def test_edsr_and_seran_wiring(models) -> None:
    """Long skip around the body; SERAB on the body output *before* the skip (spec §1.2 row 4–5),
    not after it (the two readings have the same parameters, so only the output tells)."""
    lr = _lr(1, 6, 7)
    with torch.no_grad():
        edsr = models["edsr-baseline", 2]
        x = edsr.head(lr)
        torch.testing.assert_close(edsr(lr), edsr.tail(edsr.body(x) + x))
        seran = models["seran", 2]
        seran.serab.alpha = 1.0  # make the SERAB's contribution visible above float noise
        try:
            x = seran.head(lr)
            out = seran(lr)
            torch.testing.assert_close(out, seran.tail(seran.serab(seran.body(x)) + x))
            after_skip = seran.tail(seran.serab(seran.body(x) + x))
            assert not torch.allclose(out, after_skip, rtol=0, atol=1e-6)
        finally:
            seran.serab.alpha = 0.01


# --- SERAB --------------------------------------------------------------------------------------


def _serab(alpha: float = 0.01, channels: int = 16, p: int = 8, embed: int = 4) -> SERAB:
    torch.manual_seed(3)
    return SERAB(channels, n_primitives=p, embed=embed, alpha=alpha).eval()


def _reference_serab(m: SERAB, e: torch.Tensor) -> torch.Tensor:
    """Spec §1.3 written out independently with einsum on the module's weights."""
    b, c, h, w = e.shape
    p = m.n_primitives
    ef = e.reshape(b, c, h * w)
    logits_m = torch.einsum("pc,bcn->bpn", m.theta.weight[:, :, 0, 0], ef) + m.theta.bias[:, None]
    mm = logits_m.softmax(dim=2)
    v = torch.einsum("bcn,bpn->bcp", ef, mm)
    vt = v.transpose(1, 2)
    phi = vt @ m.phi.weight.T + m.phi.bias
    psi = vt @ m.psi.weight.T + m.psi.bias
    r = torch.einsum("bik,bjk->bij", phi, psi) / p
    u = torch.einsum("bij,bjc->bic", r, vt)
    u = (u @ m.w_g.weight.T + m.w_g.bias) @ m.w_r.weight.T + m.w_r.bias
    v = torch.sigmoid(u).transpose(1, 2) * v + v
    logits_d = torch.einsum("pc,bcn->bpn", m.rho.weight[:, :, 0, 0], ef) + m.rho.bias[:, None]
    d = logits_d.softmax(dim=1)
    z = torch.einsum("bcp,bpn->bcn", v, d).reshape(b, c, h, w)
    return e + m.alpha * z


def test_serab_matches_reference() -> None:
    m = _serab(alpha=0.5)
    e = torch.randn(2, 16, 6, 7, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(m(e), _reference_serab(m, e), rtol=1e-5, atol=1e-6)


def test_serab_alpha_zero_is_identity() -> None:
    e = torch.randn(2, 16, 5, 6, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(_serab(alpha=0.0)(e), e)
        out = _serab(alpha=0.01)(e)
    assert not torch.allclose(out, e, rtol=0, atol=1e-6)


def test_serab_softmax_axes() -> None:
    m = _serab()
    e = torch.randn(2, 16, 12, 12, generator=torch.Generator().manual_seed(6))  # N = 144 ≠ P = 8
    with torch.no_grad():
        out, maps = m.forward_with_maps(e)
    mm, d = maps["M"], maps["D"]
    assert mm.shape == d.shape == (2, 8, 144)
    # M: every primitive's gather weights sum to 1 over the N positions.
    torch.testing.assert_close(mm.sum(dim=2), torch.ones(2, 8))
    # D: every position's distribute weights sum to 1 over the P primitives.
    torch.testing.assert_close(d.sum(dim=1), torch.ones(2, 144))
    # The maps are the ones forward uses: V = E·Mᵀ and O = E + α·V_enh·D.
    ef = e.reshape(2, 16, 144)
    torch.testing.assert_close(maps["V"], ef @ mm.transpose(1, 2))
    torch.testing.assert_close(out, e + m.alpha * (maps["V_enh"] @ d).reshape(e.shape))


def test_serab_batch_independence() -> None:
    m = _serab(alpha=1.0)  # α = 1 so any cross-sample leak would be large
    e = torch.randn(2, 16, 6, 6, generator=torch.Generator().manual_seed(7))
    e2 = e.clone()
    e2[1] = torch.randn(16, 6, 6) * 10
    with torch.no_grad():
        out, out2 = m(e), m(e2)
    torch.testing.assert_close(out[0], out2[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(out[:1], m(e[:1]), rtol=1e-5, atol=1e-6)


# --- classic networks: the bicubic input ---------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3])
def test_vdsr_zero_residual_is_matlab_bicubic(scale: int) -> None:
    model = build_model("vdsr", scale, depth=4)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        lr = _lr(2, 7, 10)
        torch.testing.assert_close(model(lr), imresize(lr, scale=scale), rtol=0, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3])
def test_srcnn_identity_weights_give_matlab_bicubic(scale: int) -> None:
    """Centre-tap identity filters (biases lift values above the ReLUs, then undo it): the output
    is the network's input, which must be MATLAB bicubic, aligned (checks 'same' padding too)."""
    model = build_model("srcnn", scale)
    lift = 10.0
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        c1, c2, c3 = model.body[0], model.body[2], model.body[4]
        c1.weight[0, 0, 4, 4] = 1.0
        c1.bias[0] = lift
        c2.weight[0, 0, 0, 0] = 1.0
        c3.weight[0, 0, 2, 2] = 1.0
        c3.bias[0] = -lift
        lr = _lr(2, 7, 10)
        torch.testing.assert_close(model(lr), imresize(lr, scale=scale), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["srcnn", "vdsr"])
def test_classic_first_layer_sees_bicubic(name: str) -> None:
    model = build_model(name, 4).eval()
    seen: list[torch.Tensor] = []
    model.body[0].register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
    lr = _lr(1, 5, 6)
    with torch.no_grad():
        model(lr)
    torch.testing.assert_close(seen[0], imresize(lr, scale=4))

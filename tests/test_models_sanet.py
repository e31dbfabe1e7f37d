"""SANet (spec §3): parameter counts of both layouts and the ablations, the released model's
names and which of its modules run, the attention modules against their formulas, and the
guide contract."""

from __future__ import annotations

import pytest
import torch

from mrisr.models import REGISTRY, build_model, count_parameters
from mrisr.models.sanet import CSAM, MSIM, SANet, SeparableAttention


@pytest.mark.parametrize(
    ("scale", "groups", "paper", "code"),
    [
        (2, 6, 6_806_627, 11_413_707),
        (4, 6, 6_954_339, 11_856_843),
        (2, 2, 2_467_487, 4_871_912 - 577),  # see below
        (4, 2, 2_615_199, 5_315_048 - 577),
    ],
)
def test_parameter_counts_match_the_spec(scale, groups, paper, code) -> None:
    """Spec §3.6. At L = 2 the released code registers L + 1 = 3 map convs (3×3 64→1, 577
    parameters each); the spec's L = 2 figures count 4, so ours are 577 lower there."""
    assert count_parameters(SANet(scale, n_groups=groups)) == paper
    assert count_parameters(SANet(scale, n_groups=groups, mode="code")) == code


def test_zoo_presets_and_ablations() -> None:
    for name in ("sanet", "sanet-code"):
        for s, want in REGISTRY[name].paper_params.items():
            assert count_parameters(build_model(name, s)) == want
    rg, sa_one = 483_544, 43_392 + 577  # a residual group; one S^l with its map conv
    full = count_parameters(build_model("sanet", 2))
    ab4 = count_parameters(build_model("sanet-ab4", 2))
    ab3 = count_parameters(build_model("sanet-ab3", 2))
    ab2 = count_parameters(build_model("sanet-ab2", 2))
    ab1 = count_parameters(build_model("sanet-ab1", 2))
    assert full - ab4 == 6 * sa_one
    assert ab4 - ab3 == 1 + 442_432  # MSIM's γ and its 768→64 fusion conv
    assert ab3 - ab2 == 6 * rg + 640 + 29 + 36_928 + 577 + 64 * 64 * 9  # the guide branch
    assert ab2 - ab1 == 29  # CSAM
    assert [REGISTRY[n].needs_guide for n in ("sanet-ab1", "sanet-ab2", "sanet-ab3")] == [
        False,
        False,
        True,
    ]
    seatts = count_parameters(SANet(2, mode="code").Seatts)
    assert seatts + 4 * 577 == 212_868  # "SA modules in code" (4 Seatt + 4 used map convs)


def test_released_names_and_the_modules_its_forward_runs() -> None:
    torch.manual_seed(0)
    m = SANet(2, mode="code")
    names = m.state_dict()
    assert len(list(m.parameters())) == 1068 and len(names) == 1107
    for key in (
        "net2.body.3.body.5.body.3.conv_du.2.weight",
        "tail.0.0.weight",
        "tail.1.bias",
        "Seatts.3.convq.weight",
        "Seatts.0.rgbd_pred_layer.enlayer.1.running_var",
        "fusion_convs.6.weight",
        "map_convs.6.weight",
        "rgbd_global.outlayer.0.weight",
        "net1.add_mean.weight",
    ):
        assert key in names, key
    for gm in (m.net1.csa, m.net2.csa, m.net2.la):  # γ = 0 would stop their conv's gradient
        gm.gamma.data.fill_(0.5)
    tar, aux = m.forward_both(torch.rand(1, 1, 6, 6), torch.rand(1, 1, 12, 12))
    (tar.sum() + aux.sum()).backward()

    def used(mod: torch.nn.Module) -> bool:
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in mod.parameters())

    for mod in (m.tail, m.net2.body[3], m.net1.body[0], m.Seatts[3].reduce, m.map_convs[3],
                m.net2.last_conv, m.net2.last, m.net1.last1, m.net1.final, m.net2.csa):  # fmt: skip
        assert used(mod)
    for mod in (m.net1.tail, m.net2.tail, m.net1.body[4], m.net2.body[6], m.body, m.conv1,
                m.fusion_convs, m.map_convs[4], m.rgbd_global, m.Seatts[0].convq,
                m.net1.last_conv, m.net2.last1, m.last, m.net1.add_mean):  # fmt: skip
        assert not used(mod)
    with pytest.raises(ValueError, match="runs only with n_groups=6"):
        SANet(2, n_groups=2, mode="code")(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 8, 8))


def test_msim_csam_and_separable_attention_formulas() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 5, 6)
    msim = MSIM()
    torch.testing.assert_close(msim(x), x.reshape(2, 12, 5, 6))  # γ = 0: identity
    msim.gamma.data.fill_(0.5)
    f = x.reshape(2, 4, -1)
    e = f @ f.transpose(1, 2)
    a = torch.softmax(e.max(-1, keepdim=True).values - e, -1)
    torch.testing.assert_close(msim(x), (0.5 * a @ f + f).reshape(2, 12, 5, 6))
    csam = CSAM()
    y = torch.randn(2, 8, 5, 6)
    torch.testing.assert_close(csam(y), y)
    csam.gamma.data.fill_(2.0)
    att = torch.sigmoid(csam.conv(y[:, None]))[:, 0]
    torch.testing.assert_close(csam(y), y * 2.0 * att + y)
    sa = SeparableAttention(8, reduced=4).eval()
    fa, ft, logit = torch.randn(2, 8, 5, 6), torch.randn(2, 8, 5, 6), torch.randn(2, 1, 5, 6)
    f = sa.reduce(torch.cat([fa, ft], 1))
    h = torch.sigmoid(logit)
    want = sa.rgbd_pred_layer(torch.cat([sa.ff_conv(f * h), sa.bf_conv(f * (1 - h))], 1))
    torch.testing.assert_close(sa(fa, ft, logit), want)


def test_guide_contract_and_shapes() -> None:
    torch.manual_seed(0)
    small = {"n_groups": 2, "n_rcab": 1, "n_feats": 16, "reduction": 4}
    lr, guide = torch.rand(2, 1, 7, 5), torch.rand(2, 1, 28, 20)
    for name in ("sanet", "sanet-ab3", "sanet-ab4"):
        m = build_model(name, 4, **small).eval()
        with torch.no_grad():
            tar, aux = m.forward_both(lr, guide)
            assert tar.shape == aux.shape == (2, 1, 28, 20)
            assert torch.equal(m(lr, guide), tar)
            one = m(lr[:1], guide[:1])  # samples do not mix (BN in eval mode)
        torch.testing.assert_close(one, tar[:1], rtol=0, atol=1e-5)
        with pytest.raises(ValueError, match="needs the high-resolution guide"):
            m(lr)
        with pytest.raises(ValueError, match="must be on the output grid"):
            m(lr, guide[..., :-4])
    for name in ("sanet-ab1", "sanet-ab2"):
        m = build_model(name, 2, **small).eval()
        with torch.no_grad():
            tar, aux = m.forward_both(lr)
        assert tar.shape == (2, 1, 14, 10) and aux is None
        with pytest.raises(ValueError, match="single-contrast"):
            m(lr, torch.rand(2, 1, 14, 10))
    with pytest.raises(ValueError, match="need guide"):
        SANet(2, guide=False)

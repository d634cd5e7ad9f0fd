"""Backbones: parameter counts of the paper's networks, shapes, determinism; EDM preconditioning."""

import numpy as np
import pytest
import torch

from hiddengauss.edm import EDMDenoiser, edm_loss, edm_loss_weight, edm_preconditioning
from hiddengauss.networks import build_network, count_parameters

# EDM-VE (NCSN++, augment_dim 9) parameter counts measured on the official network (paper_spec 2.2)
PAPER_COUNTS = {
    (64, (1, 2, 2, 2)): [64.6e3, 252e3, 993e3, 3.94e6, 15.7e6, 62.8e6],
    (32, (2, 2, 2)): [58.2e3, 226e3, 892e3, 3.54e6, 14.1e6, 56.4e6],
}


@pytest.mark.parametrize("res,mult", list(PAPER_COUNTS))
def test_ncsnpp_parameter_counts_match_paper(res, mult):
    for scale, ref in zip([4, 8, 16, 32, 64, 128], PAPER_COUNTS[(res, mult)]):
        net = build_network("ncsnpp", img_resolution=res, in_channels=3, model_channels=scale, channel_mult=list(mult),
                            num_blocks=4, attn_resolutions=[16], augment_dim=9)  # fmt: skip
        n = count_parameters(net)
        assert abs(n / ref - 1) < 0.01, (res, scale, n, ref)  # the references are rounded to 3 digits


@pytest.mark.parametrize("arch", ["ncsnpp", "ddpmpp", "adm"])
@pytest.mark.parametrize("res,channels,scale", [(8, 1, 4), (16, 3, 8)])
def test_forward_shapes(arch, res, channels, scale):
    torch.manual_seed(0)
    net = build_network(arch, img_resolution=res, in_channels=channels, model_channels=scale, channel_mult=[1, 2],
                        num_blocks=1, attn_resolutions=[res // 2], dropout=0.1)  # fmt: skip
    x = torch.randn(2, channels, res, res)
    out = net(x, torch.tensor([0.3, -1.0]))
    assert out.shape == x.shape and torch.isfinite(out).all()
    if arch != "adm":  # output conv initialised at 1e-5 scale
        assert out.abs().max() < 1e-2
    else:  # zero-initialised output conv
        assert out.abs().max() == 0


def test_same_seed_same_weights():
    make = lambda: build_network("ncsnpp", img_resolution=8, in_channels=1, model_channels=4, channel_mult=[1, 2],  # noqa: E731
                                 num_blocks=1, attn_resolutions=[])  # fmt: skip
    torch.manual_seed(3)
    a = make().state_dict()
    torch.manual_seed(3)
    b = make().state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any("freqs" in k for k in a)  # the Fourier frequencies are part of the state


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown architecture 'unet'"):
        build_network("unet", img_resolution=8, in_channels=1, model_channels=4, channel_mult=[1], num_blocks=1, attn_resolutions=[])
    with pytest.raises(ValueError, match="model_channels must be >= 4"):
        build_network("ddpmpp", img_resolution=8, in_channels=1, model_channels=2, channel_mult=[1], num_blocks=1, attn_resolutions=[])
    with pytest.raises(ValueError, match="resolution 12 is not divisible by 2\\^3"):
        build_network("ddpmpp", img_resolution=12, in_channels=1, model_channels=4, channel_mult=[1, 1, 1, 1], num_blocks=1, attn_resolutions=[])


def test_preconditioning_identities():
    sigma = torch.logspace(-4, 3, 50, dtype=torch.float64)
    for sd in (0.5, 1.0):
        c_skip, c_out, c_in, c_noise = edm_preconditioning(sigma, sd)
        torch.testing.assert_close(edm_loss_weight(sigma, sd) * c_out**2, torch.ones_like(sigma))
        torch.testing.assert_close(c_skip + c_out**2 / sd**2, torch.ones_like(sigma))  # c_skip = 1 − c_out²/σd²
        torch.testing.assert_close(c_noise, sigma.log() / 4)


class Zero(torch.nn.Module):
    def forward(self, x, c_noise, augment_labels=None):
        return torch.zeros_like(x)


def test_zero_network_limits():
    d = EDMDenoiser(Zero(), sigma_data=0.5)
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(d(x, 1e-6), x, rtol=1e-10, atol=1e-10)  # D → x as σ → 0
    assert d(x, 1e6).abs().max() < 1e-10  # D → 0 as σ → ∞
    per_sample = d(x, torch.tensor([0.1, 1.0, 10.0]))
    for i, s in enumerate((0.1, 1.0, 10.0)):
        torch.testing.assert_close(per_sample[i], d(x[i : i + 1], s)[0])


def test_edm_loss_is_seeded():
    torch.manual_seed(0)
    net = build_network("ddpmpp", img_resolution=8, in_channels=1, model_channels=4, channel_mult=[1], num_blocks=1, attn_resolutions=[])
    d = EDMDenoiser(net)
    y = torch.rand(5, 1, 8, 8) * 2 - 1
    a = edm_loss(d, y, torch.Generator().manual_seed(1))
    b = edm_loss(d, y, torch.Generator().manual_seed(1))
    assert a.shape == (5,) and torch.equal(a, b)
    # with F = 0 the per-image loss is λ·c_skip²... check the analytic value for a zero net
    z = EDMDenoiser(Zero())
    g = torch.Generator().manual_seed(2)
    loss = edm_loss(z, y, g)
    g = torch.Generator().manual_seed(2)
    sig = (torch.randn(5, generator=g) * 1.2 - 1.2).exp().reshape(-1, 1, 1, 1)
    n = torch.randn(y.shape, generator=g)
    c_skip = 0.25 / (sig**2 + 0.25)
    expected = (edm_loss_weight(sig) * (c_skip * (y + sig * n) - y) ** 2).flatten(1).sum(1)
    torch.testing.assert_close(loss, expected)

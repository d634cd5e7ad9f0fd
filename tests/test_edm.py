"""EDM preconditioning, loss weight, training noise levels and loss."""

import math

import pytest
import torch

from hiddengauss.edm import (
    EDMDenoiser,
    edm_loss,
    edm_loss_weight,
    edm_preconditioning,
    sample_training_sigmas,
)
from hiddengauss.networks import build_network


class ZeroNet(torch.nn.Module):
    """A backbone F ≡ 0, so D(x;σ) = c_skip(σ)·x."""

    in_channels, img_resolution = 3, 8

    def forward(self, x, c_noise, augment_labels=None):
        return torch.zeros_like(x)


class RecordingNet(torch.nn.Module):
    """F(x; c) = x·c (per sample); records what it was called with."""

    in_channels, img_resolution = 1, 4

    def forward(self, x, c_noise, augment_labels=None):
        self.seen = (x, c_noise, augment_labels)
        return x * c_noise.reshape(-1, 1, 1, 1)


SIGMAS = torch.logspace(-4, 3, 57, dtype=torch.float64)


def tiny_denoiser(seed=0):
    torch.manual_seed(seed)
    net = build_network("ddpmpp", img_resolution=8, in_channels=1, model_channels=4, channel_mult=[1, 2],
                        num_blocks=1, attn_resolutions=[])  # fmt: skip
    return EDMDenoiser(net)


@pytest.mark.parametrize("sigma_data", [0.5, 1.0, 0.2])
def test_weight_times_c_out_squared_is_one(sigma_data):
    _, c_out, _, _ = edm_preconditioning(SIGMAS, sigma_data)
    torch.testing.assert_close(edm_loss_weight(SIGMAS, sigma_data) * c_out**2, torch.ones_like(SIGMAS), rtol=1e-12, atol=0)


def test_preconditioning_formulas_and_identities():
    c_skip, c_out, c_in, c_noise = edm_preconditioning(SIGMAS)
    sd2 = 0.25
    torch.testing.assert_close(c_skip, sd2 / (SIGMAS**2 + sd2))
    torch.testing.assert_close(c_noise, SIGMAS.log() / 4)
    torch.testing.assert_close(c_in, 1 / (SIGMAS**2 + sd2).sqrt())
    torch.testing.assert_close(c_skip + c_out**2 / sd2, torch.ones_like(SIGMAS))  # σd²/(σ²+σd²) + σ²/(σ²+σd²)
    torch.testing.assert_close(c_in**2 * (SIGMAS**2 + sd2), torch.ones_like(SIGMAS))  # unit-variance network input
    # Python floats work too
    cs, co, ci, cn = edm_preconditioning(1.0)
    assert math.isclose(float(cs), 0.2, rel_tol=1e-6) and math.isclose(float(co), 0.5 / math.sqrt(1.25), rel_tol=1e-6)
    assert math.isclose(float(ci), 1 / math.sqrt(1.25), rel_tol=1e-6) and float(cn) == 0.0


def test_zero_backbone_limits():
    """With F ≡ 0, D(x;σ) = c_skip·x → x as σ → 0 and → 0 as σ → ∞."""
    d = EDMDenoiser(ZeroNet())
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(d(x, 1e-6), x, rtol=1e-11, atol=1e-11)
    assert float(d(x, 1e6).abs().max()) < 1e-11
    assert d(x, 1e6).dtype == torch.float64
    x32 = x.float()
    torch.testing.assert_close(d(x32, 1e-6), x32, rtol=1e-6, atol=1e-7)
    assert float(d(x32, 1e6).abs().max()) < 1e-11


def test_denoiser_scalar_and_per_sample_sigma():
    rec = RecordingNet()
    d = EDMDenoiser(rec, sigma_data=0.5)
    assert (d.sigma_data, d.img_channels, d.img_resolution) == (0.5, 1, 4)
    x = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    sig = torch.tensor([0.1, 1.0, 10.0])
    out = d(x, sig)
    assert rec.seen[1].shape == (3,) and rec.seen[0].dtype == torch.float32
    c_skip, c_out, c_in, c_noise = edm_preconditioning(sig.reshape(-1, 1, 1, 1))
    torch.testing.assert_close(out, c_skip * x + c_out * (c_in * x) * c_noise)
    for s in (0.7, torch.tensor(0.7), torch.full((3,), 0.7)):  # number, 0-d tensor, per-sample tensor
        torch.testing.assert_close(d(x, s), d(x, torch.tensor([0.7, 0.7, 0.7])))
        assert rec.seen[1].shape == (3,)
    # float64 input: the network sees float32, the result is float64
    out64 = d(x.double(), sig.double())
    assert out64.dtype == torch.float64 and rec.seen[0].dtype == torch.float32
    torch.testing.assert_close(out64.float(), out, rtol=1e-5, atol=1e-6)
    labels = torch.zeros(3, 9)
    d(x, sig, labels)
    assert rec.seen[2] is labels


def test_denoiser_with_real_backbone_scalar_and_batch_sigma():
    d = tiny_denoiser()
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = d(x, 0.3), d(x, torch.tensor([0.3, 0.3]))
        c = d(x, torch.tensor([0.3, 5.0]))
    assert a.shape == x.shape and torch.isfinite(a).all()
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(c[0], a[0])


def test_training_sigmas_distribution_and_seeding():
    g = torch.Generator().manual_seed(0)
    s = sample_training_sigmas(200_000, generator=g)
    assert s.shape == (200_000,) and (s > 0).all()
    assert abs(float(s.log().mean()) + 1.2) < 0.01 and abs(float(s.log().std()) - 1.2) < 0.01
    assert abs(float(s.median()) - math.exp(-1.2)) < 0.01
    a = sample_training_sigmas(5, p_mean=0.0, p_std=2.0, generator=torch.Generator().manual_seed(3))
    b = sample_training_sigmas(5, p_mean=0.0, p_std=2.0, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_edm_loss_deterministic_shape_and_value():
    d = tiny_denoiser()
    y = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(5)) * 2 - 1
    l1 = edm_loss(d, y, generator=torch.Generator().manual_seed(7))
    l2 = edm_loss(d, y, generator=torch.Generator().manual_seed(7))
    l3 = edm_loss(d, y, generator=torch.Generator().manual_seed(8))
    assert l1.shape == (4,) and torch.isfinite(l1).all() and (l1 >= 0).all()
    torch.testing.assert_close(l1, l2, rtol=0, atol=0)
    assert not torch.allclose(l1, l3)
    # Recompute by hand with the same draws: σ first, then n; per-image sum over pixels.
    g = torch.Generator().manual_seed(7)
    sigma = sample_training_sigmas(4, generator=g)
    n = torch.randn(y.shape, generator=g)
    with torch.no_grad():
        ref = edm_loss_weight(sigma) * ((d(y + sigma.reshape(-1, 1, 1, 1) * n, sigma) - y) ** 2).sum(dim=(1, 2, 3))
    torch.testing.assert_close(l1.detach(), ref)


def test_edm_loss_of_zero_backbone_is_weighted_skip_error():
    """With F ≡ 0: D − y = c_skip(y + σn) − y, so the loss is known in closed form."""
    d = EDMDenoiser(ZeroNet())
    y = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    loss = edm_loss(d, y, generator=torch.Generator().manual_seed(1), p_mean=0.0, p_std=0.5)
    g = torch.Generator().manual_seed(1)
    sigma = sample_training_sigmas(3, 0.0, 0.5, generator=g)
    n = torch.randn(y.shape, generator=g)
    s = sigma.reshape(-1, 1, 1, 1)
    c_skip = 0.25 / (s**2 + 0.25)
    expected = edm_loss_weight(sigma) * ((c_skip * (y + s * n) - y) ** 2).sum(dim=(1, 2, 3))
    torch.testing.assert_close(loss, expected)


def test_edm_loss_backpropagates():
    d = tiny_denoiser()
    y = torch.rand(2, 1, 8, 8) * 2 - 1
    loss = edm_loss(d, y, generator=torch.Generator().manual_seed(0)).sum() / 2
    loss.backward()
    grads = [p.grad for p in d.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)

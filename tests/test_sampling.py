"""Samplers, teleportation and memorization metrics."""

import numpy as np
import pytest
import torch

from hiddengauss.gaussian import fit_gaussian
from hiddengauss.memorization import (
    gl_score,
    max_cosine_mean_removed,
    memorized_mask,
    nearest_neighbours,
)
from hiddengauss.sampling import PRESETS, SamplerConfig, nfe, sample, seeded_latents, teleport

D = 10


@pytest.fixture(scope="module")
def gauss():
    g = np.random.default_rng(0)
    a = g.normal(size=(D, D))
    return fit_gaussian([g.multivariate_normal(g.normal(size=D) * 0.2, a @ a.T / D * 0.3, size=400)], (1, 2, 5))


def test_heun_converges_to_closed_form_endpoint(gauss):
    z = seeded_latents(range(64), D)
    exact = gauss.sample(z)
    errors = {}
    for steps in (18, 36, 72, 144):
        x = sample(gauss.denoise, range(64), D, SamplerConfig("heun", steps))
        errors[steps] = float((x - exact).norm() / exact.norm())
    # stated bound for EDM's default 18 steps on this spectrum (λ from 1e-4 to 0.9): 5% relative
    assert errors[18] < 5e-2, errors
    for a, b in ((18, 36), (36, 72), (72, 144)):  # second order: each doubling cuts the error ~4x
        assert errors[b] < errors[a] / 3, errors
    assert errors[144] < 1e-3, errors
    euler = sample(gauss.denoise, range(64), D, PRESETS["euler10"])
    assert float((euler - exact).norm() / exact.norm()) > errors[18]  # Euler-10 is much coarser


def test_sample_does_not_depend_on_batch_size(gauss):
    a = sample(gauss.denoise, range(10), D, PRESETS["heun18"], batch_size=10)
    b = sample(gauss.denoise, range(10), D, PRESETS["heun18"], batch_size=3)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    c = sample(gauss.denoise, [5, 6], D, PRESETS["heun18"])
    torch.testing.assert_close(c, a[5:7], rtol=0, atol=1e-12)


def test_denoised_trajectory_ends_at_sample(gauss):
    x, den = sample(gauss.denoise, range(4), D, PRESETS["euler10"], return_denoised=True)
    assert den.shape == (10, 4, D)
    torch.testing.assert_close(den[-1], x)  # σ_N = 0: the last Euler step lands on D(x_9; σ_min)


def test_stochastic_churn_is_seeded(gauss):
    cfg = SamplerConfig("heun", 18, s_churn=10.0)
    a = sample(gauss.denoise, range(6), D, cfg, batch_size=6)
    b = sample(gauss.denoise, range(6), D, cfg, batch_size=2)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert not torch.allclose(a, sample(gauss.denoise, range(6), D, PRESETS["heun18"]))


def test_teleport_zero_skip_is_plain_sampler(gauss):
    z = seeded_latents(range(8), D)
    cfg = PRESETS["heun18"]
    plain = sample(gauss.denoise, range(8), D, cfg)
    torch.testing.assert_close(teleport(gauss.denoise, gauss.pf_ode, z, cfg, 0), plain, rtol=0, atol=1e-12)
    # for the Gaussian model itself, teleporting changes little (both approximate the exact map)
    far = teleport(gauss.denoise, gauss.pf_ode, z, cfg, 8)
    assert float((far - gauss.sample(z)).norm() / gauss.sample(z).norm()) < 5e-2
    assert nfe(cfg, 0) == 35 and nfe(cfg, 8) == 19 and nfe(PRESETS["euler10"], 2) == 8
    with pytest.raises(ValueError, match="skip must be in"):
        teleport(gauss.denoise, gauss.pf_ode, z, cfg, 18)


def test_nearest_neighbours_equal_brute_force():
    g = np.random.default_rng(1)
    train = g.normal(size=(500, 24))
    x = np.concatenate([train[[3, 99]] + 1e-4, g.normal(size=(40, 24))])
    d, i = nearest_neighbours(torch.tensor(x), torch.tensor(train), k=2, chunk=64, sample_chunk=7)
    brute = np.linalg.norm(x[:, None] - train[None], axis=2)
    order = np.argsort(brute, axis=1)[:, :2]
    np.testing.assert_array_equal(i.numpy(), order)
    np.testing.assert_allclose(d.numpy(), np.take_along_axis(brute, order, 1), rtol=1e-12)


def test_memorized_fraction_and_gl():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(200, 64, generator=g, dtype=torch.float64) * 2 - 1
    copies = train[:50] + 1e-3 * torch.randn(50, 64, generator=g, dtype=torch.float64)
    d, _ = nearest_neighbours(copies, train)
    assert memorized_mask(d[:, 0], d[:, 1]).all()
    assert gl_score(copies, d[:, 0]) < 0.01
    assert max_cosine_mean_removed(copies, train).min() > 0.999
    fresh = torch.randn(200, 64, generator=g, dtype=torch.float64) * 0.6
    d, _ = nearest_neighbours(fresh, train)
    assert memorized_mask(d[:, 0], d[:, 1]).double().mean() < 0.02
    assert gl_score(fresh, d[:, 0]) > 0.6

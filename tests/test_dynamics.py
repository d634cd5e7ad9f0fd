"""Sampler dynamics (issue 20): the empirical posterior's size and variance, step counts."""

import numpy as np
import pytest
import torch

from hiddengauss.dynamics import (
    effective_images,
    empirical_posterior,
    gaussian_step_limit,
    posterior_logits,
    posterior_rows,
    proxy_variance_fraction,
    solver_grid,
    step_count_rows,
    step_count_samples,
)
from hiddengauss.empirical import empirical_optimal_denoiser
from hiddengauss.gaussian import GaussianModel
from hiddengauss.sampling import seeded_latents

D = 16


def images(n, seed=0):
    return torch.randn(n, D, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_effective_images_is_one_at_small_sigma_and_n_at_large_sigma():
    train = images(20)
    x = train[:5] + 1e-3 * images(5, seed=1)  # inputs next to distinct training images
    assert empirical_posterior(x, 1e-3, train)["n_eff"] == pytest.approx(torch.ones(5), abs=1e-9)
    far = empirical_posterior(images(5, seed=2), 1e4, train)["n_eff"]
    assert far == pytest.approx(torch.full((5,), 20.0), rel=1e-4)


def test_effective_images_and_mean_match_a_brute_force_loop():
    train, x, sigma = images(7), images(3, seed=3), 1.3
    post = empirical_posterior(x, sigma, train, batch=2)
    for b in range(3):
        logits = np.array([-np.sum((x[b].numpy() - t) ** 2) / (2 * sigma**2) for t in train.numpy()])
        p = np.exp(logits - logits.max())
        p /= p.sum()
        assert float(post["n_eff"][b]) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-10)
        assert post["mean"][b].numpy() == pytest.approx(p @ train.numpy(), abs=1e-12)
        assert torch.equal(post["nearest"][b], train[int(np.argmax(logits))])
    assert post["mean"] == pytest.approx(empirical_optimal_denoiser(x, sigma, train), abs=1e-12)


def test_proxy_variance_is_zero_for_one_image_and_one_between_two_symmetric_images():
    one = images(1)
    for sigma in (0.01, 1.0, 100.0):
        assert empirical_posterior(images(4, seed=5), sigma, one)["proxy_fraction"] == pytest.approx(torch.zeros(4), abs=1e-12)
    two = torch.stack([torch.ones(D), -torch.ones(D)]).double()
    x = torch.zeros(1, D, dtype=torch.float64)  # midway: p = (1/2, 1/2), m = x, the target is all variance
    p = torch.log_softmax(posterior_logits(x, 0.7, two), 1).exp()
    assert float(proxy_variance_fraction(x, p, two)) == pytest.approx(1.0)
    assert float(effective_images(torch.log(p))) == pytest.approx(2.0)


def test_posterior_rows_name_every_distance_and_put_the_empirical_denoiser_at_zero():
    train, y = images(10), images(6, seed=7)
    noise = images(6, seed=8)
    emp = lambda x, s: empirical_optimal_denoiser(x, s, train)  # noqa: E731
    rows = posterior_rows(y, noise, [0.05, 1.0, 50.0], train, network=emp, gaussian=emp)
    assert [r["sigma"] for r in rows] == [0.05, 1.0, 50.0]
    for r in rows:
        assert r["network_to_empirical"] == pytest.approx(0.0, abs=1e-12)
        assert 1 <= r["n_eff_q10"] <= r["n_eff_q50"] <= r["n_eff_q90"] <= 10
        assert 0 <= r["proxy_fraction"] <= 1
    assert rows[0]["n_eff"] < rows[1]["n_eff"] < rows[2]["n_eff"]


def gaussian_model(rank=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(D, rank, generator=g, dtype=torch.float64))
    lam = torch.linspace(2.0, 0.05, rank, dtype=torch.float64)
    return GaussianModel(torch.randn(D, generator=g, dtype=torch.float64) * 0.1, lam, q, 100, (1, 4, 4))


def order(errors, steps):
    return np.polyfit(np.log(steps), np.log(errors), 1)[0]


def test_euler_converges_to_the_gaussian_closed_form_at_first_order_and_heun_at_second():
    gauss = gaussian_model()
    z = seeded_latents(range(16), D)
    steps = [16, 32, 64, 128]
    out = step_count_samples(gauss.denoise, z, solver_grid(["euler", "heun"], steps))
    limit = gaussian_step_limit(gauss, z, solver_grid(["euler"], [1])[0])
    err = {s: [float((out[s, n] - limit).pow(2).mean().sqrt()) for n in steps] for s in ("euler", "heun")}
    assert order(err["euler"], steps) == pytest.approx(-1.0, abs=0.15)
    assert order(err["heun"], steps) == pytest.approx(-2.0, abs=0.25)
    assert err["heun"][-1] < 0.1 * err["euler"][-1]  # second order: far ahead at the same step count
    # the limit itself is the exact map to sigma = 0 up to the last step from sigma_min = 0.002
    assert float((limit - gauss.sample(z)).abs().max()) < 0.01


def test_step_count_rows_report_nfe_and_distances_per_config():
    gauss, train = gaussian_model(), images(30)
    seeds = list(range(8))
    z = seeded_latents(seeds, D)
    configs = solver_grid(["euler", "heun"], [1, 4])
    refs = {"exact_limit": gaussian_step_limit(gauss, z, configs[0]), "exact_map": gauss.sample(z)}
    rows = step_count_rows("gaussian", gauss.denoise, z, configs, refs, train)
    assert [(r["solver"], r["steps"], r["nfe"], r["reference"]) for r in rows[::2]] == [
        ("euler", 1, 1, "exact_limit"), ("euler", 4, 4, "exact_limit"), ("heun", 1, 1, "exact_limit"), ("heun", 4, 7, "exact_limit")]
    rmse = {(r["solver"], r["steps"], r["reference"]): r["rmse"] for r in rows}
    assert rmse["euler", 4, "exact_limit"] < rmse["euler", 1, "exact_limit"]
    # with 4 steps on the rho-schedule Heun's trapezoid still overshoots (it uses the slope at the far end of
    # each long step; with 2 steps, at sigma_min = 0.002); it wins from about 8 steps on (previous test)
    assert rmse["heun", 4, "exact_limit"] > rmse["euler", 4, "exact_limit"]
    assert all(0 <= r["memorized_fraction"] <= 1 and r["n_samples"] == 8 for r in rows)
    # one step from sigma_max to 0 (Euler, and Heun, which skips the correction at 0) is D(x; 80):
    # the posterior mean, which is why one big step cannot reach a sample
    one = step_count_samples(gauss.denoise, z, configs[:1])["euler", 1]
    assert one == pytest.approx(gauss.denoise(80 * z, 80.0), abs=1e-12)
    assert rmse["euler", 1, "exact_map"] == pytest.approx(float((one - gauss.sample(z)).pow(2).mean(1).sqrt().mean()))
    assert rmse["heun", 1, "exact_map"] == pytest.approx(rmse["euler", 1, "exact_map"])


def test_network_and_closed_form_step_counts_cover_every_denoiser_and_reference():
    from hiddengauss.dynamics import closed_form_step_count, network_step_count

    gauss, train = gaussian_model(), images(12)
    settings = {"solvers": ["euler", "heun"], "steps": [1, 2], "reference_steps": 8}
    emp = lambda x, s: empirical_optimal_denoiser(x, s, train)  # noqa: E731
    net = network_step_count(emp, train, range(4), D, settings)
    assert {(r["denoiser"], r["reference"]) for r in net} == {("network", "fine_heun")} and len(net) == 4
    rows = closed_form_step_count(gauss, train, range(4), D, settings)
    assert {(r["denoiser"], r["reference"]) for r in rows} == {("gaussian", "exact_limit"), ("gaussian", "exact_map"),
                                                               ("empirical", "fine_heun")}  # fmt: skip
    # the empirical rows are the network rows when the network is the empirical denoiser
    assert [r["rmse"] for r in rows if r["denoiser"] == "empirical"] == pytest.approx([r["rmse"] for r in net])


def test_gaussian_modes_settle_at_the_noise_level_of_their_variance():
    from hiddengauss.dynamics import settling_sigmas

    gauss = gaussian_model(rank=6)
    z = seeded_latents(range(5), D)
    sigmas = np.geomspace(80, 0.002, 4000)
    states = torch.stack([gauss.pf_ode(80 * z, 80.0, float(s)) for s in sigmas])  # the exact flow
    denoised = torch.stack([gauss.denoise(x, float(s)) for x, s in zip(states, sigmas)])
    settle = settling_sigmas(denoised, sigmas, gauss.mean, gauss.eigenvectors, tol=0.1)
    expected = gauss.eigenvalues.sqrt() * np.sqrt(1 / 0.9**2 - 1)  # 0.484 sqrt(lambda_k)
    assert settle == pytest.approx(expected.expand(5, -1), rel=0.01)  # the grid's resolution


def test_trajectory_dimensionality_counts_the_directions_a_trajectory_moves_in():
    from hiddengauss.dynamics import trajectory_dimensionality

    t = torch.linspace(0, 1, 30, dtype=torch.float64)[:, None, None]
    a, b = images(1, seed=1)[None], images(1, seed=2)[None]
    line = a + t * b  # one direction: all variance in the first component
    plane = a + torch.sin(3 * t) * b + torch.cos(3 * t) * images(1, seed=3)[None]
    frac = trajectory_dimensionality(torch.cat([line, plane], 1), components=3)
    assert frac[0] == pytest.approx(torch.ones(3, dtype=torch.float64))
    assert float(frac[1, 0]) < 0.99 and frac[1, 1:] == pytest.approx(torch.ones(2, dtype=torch.float64))


def test_sampler_states_rebuild_the_sampler_and_late_perturbations_change_little():
    from hiddengauss.dynamics import perturbation_rows, sampler_states
    from hiddengauss.schedules import PRESETS
    from hiddengauss.sampling import sample

    gauss, train = gaussian_model(), images(40, seed=9)
    z = seeded_latents(range(12), D)
    xs, dens = sampler_states(gauss.denoise, z, PRESETS["heun18"])
    assert xs[-1] == pytest.approx(sample(gauss.denoise, range(12), D, PRESETS["heun18"]), abs=1e-12)
    assert dens.shape == (18, 12, D)
    rows = perturbation_rows("gaussian", gauss.denoise, z, PRESETS["heun18"], train, eta=0.1, seed=0)
    change = [r["rmse_change"] for r in rows]
    assert len(rows) == 18 and change[-1] < 0.01 * change[0]  # a fraction of sigma_t: early moves content, late only pixels
    assert all(0 <= r["nn_changed"] <= 1 for r in rows) and rows[0]["nn_changed"] >= rows[-1]["nn_changed"]

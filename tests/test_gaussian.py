"""The Gaussian model: moments, Wiener denoiser, score, exact probability-flow solution."""

import numpy as np
import pytest
import torch

from hiddengauss.gaussian import (
    GaussianModel,
    eigendecompose,
    empirical_mean_covariance,
    fit_gaussian,
    gaussian_pf_ode_solution,
    gaussian_sample,
    gaussian_score,
    wiener_denoiser,
)
from hiddengauss.schedules import karras_sigmas, sigma_grid


def random_gaussian(d, rank=None, seed=0):
    g = np.random.default_rng(seed)
    a = g.normal(size=(d, rank or d))
    cov = a @ a.T / (rank or d) + (0 if rank else 0.05 * np.eye(d))
    mu = g.normal(size=d) * 0.3
    return torch.tensor(mu), torch.tensor(cov)


def test_karras_grids_match_paper():
    g10 = karras_sigmas(10)
    expected = [80, 42.4152, 21.1087, 9.7232, 4.0661, 1.5017, 0.4700, 0.1166, 0.0204, 0.002]
    np.testing.assert_allclose(g10, expected, rtol=2e-3)  # paper values are rounded
    g40 = sigma_grid("G40")
    assert len(g40) == 40 and g40[0] == pytest.approx(80) and g40[-1] == pytest.approx(0.002)
    for s in (80, 9.7232, 0.47, 0.002):  # G40 contains these G10 values
        assert np.min(np.abs(g40 - s) / s) < 1e-3
    with pytest.raises(ValueError, match="unknown sigma grid"):
        sigma_grid("H10")


def test_chunked_covariance_equals_numpy():
    g = np.random.default_rng(1)
    x = g.normal(size=(1003, 37)) * g.uniform(0.1, 3, size=37) + 5.0  # offset stresses cancellation
    chunks = [x[i : i + 128] for i in range(0, len(x), 128)]
    mean, cov, n = empirical_mean_covariance(chunks)
    assert n == 1003
    np.testing.assert_allclose(mean.numpy(), x.mean(0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(cov.numpy(), np.cov(x.T, bias=True), rtol=0, atol=1e-10)


def test_eigendecompose_clips_and_orders():
    g = np.random.default_rng(2)
    x = g.normal(size=(5, 20))  # N < d: rank 4
    _, cov, _ = empirical_mean_covariance([x])
    lam, u, _ = eigendecompose(cov)
    assert torch.all(lam >= 0) and torch.all(lam[:-1] >= lam[1:])
    assert int((lam > 1e-10).sum()) == 4
    np.testing.assert_allclose((u * lam) @ u.T, cov, atol=1e-12)


@pytest.mark.parametrize("d", [7, 8])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_eigendecompose_matches_torch_and_leaves_input_alone(d, dtype):
    """The CPU path (LAPACK dsyevr, columns reversed in place) agrees with torch.linalg.eigh,
    leaves Σ untouched unless told to overwrite it, and returns orthonormal U."""
    _, cov = random_gaussian(d, seed=d)
    cov = cov.to(dtype)
    before = cov.clone()
    lam, u, _ = eigendecompose(cov)
    torch.testing.assert_close(cov, before, rtol=0, atol=0)
    ref_lam, ref_u = torch.linalg.eigh(cov.double())
    torch.testing.assert_close(lam, ref_lam.flip(0), rtol=0, atol=1e-12)
    signs = torch.sign((u * ref_u.flip(1)).sum(0))  # eigenvectors are defined up to sign
    torch.testing.assert_close(u * signs, ref_u.flip(1), rtol=0, atol=1e-10)
    torch.testing.assert_close(u.T @ u, torch.eye(d, dtype=torch.float64), rtol=0, atol=1e-12)
    lam2, u2, _ = eigendecompose(cov.double().clone(), overwrite=True)
    torch.testing.assert_close(lam2, lam, rtol=0, atol=0)
    torch.testing.assert_close(u2, u, rtol=0, atol=0)


def test_eigendecompose_refuses_non_finite_covariance():
    _, cov = random_gaussian(5)
    cov[2, 3] = cov[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        eigendecompose(cov)


@pytest.mark.parametrize("sigma", [0.01, 0.5, 3.0, 80.0])
def test_wiener_denoiser_is_gaussian_posterior_mean(sigma):
    mu, cov = random_gaussian(6)
    lam, u, _ = eigendecompose(cov)
    x = torch.randn(10, 6, dtype=torch.float64) * 2
    # Gaussian conditioning: E[y | x] = μ + Σ(Σ + σ²I)⁻¹(x − μ)
    expected = mu + (x - mu) @ torch.linalg.solve(cov + sigma**2 * torch.eye(6, dtype=torch.float64), cov)
    torch.testing.assert_close(wiener_denoiser(x, sigma, mu, lam, u), expected, rtol=1e-10, atol=1e-10)
    score = gaussian_score(x, sigma, mu, lam, u)
    expected_score = -(x - mu) @ torch.linalg.inv(cov + sigma**2 * torch.eye(6, dtype=torch.float64))
    torch.testing.assert_close(score, expected_score, rtol=1e-8, atol=1e-8)


def test_wiener_denoiser_matches_monte_carlo_regression():
    """E[y | y + σn] estimated by least squares on 400k draws equals D_G."""
    g = torch.Generator().manual_seed(0)
    mu, cov = random_gaussian(3, seed=3)
    lam, u, _ = eigendecompose(cov)
    sigma = 0.7
    y = mu + torch.randn(400_000, 3, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    x = y + sigma * torch.randn(y.shape, generator=g, dtype=torch.float64)
    design = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1)
    coef = torch.linalg.lstsq(design, y).solution  # E[y|x] = x W + b
    probe = torch.randn(5, 3, dtype=torch.float64)
    fitted = torch.cat([probe, torch.ones(5, 1, dtype=torch.float64)], 1) @ coef
    torch.testing.assert_close(fitted, wiener_denoiser(probe, sigma, mu, lam, u), atol=2e-2, rtol=0)


def test_per_sample_sigma():
    mu, cov = random_gaussian(4)
    lam, u, _ = eigendecompose(cov)
    x = torch.randn(3, 4, dtype=torch.float64)
    sig = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    batched = wiener_denoiser(x, sig, mu, lam, u)
    for i in range(3):
        torch.testing.assert_close(batched[i], wiener_denoiser(x[i : i + 1], float(sig[i]), mu, lam, u)[0])


def rk4_log_sigma(x, sigma_from, sigma_to, denoise, steps):
    """Integrate dx/dσ = (x − D(x;σ))/σ in t = ln σ, i.e. dx/dt = x − D(x; e^t), with RK4."""
    t0, t1 = np.log(sigma_from), np.log(sigma_to)
    h = (t1 - t0) / steps
    f = lambda t, x: x - denoise(x, float(np.exp(t)))  # noqa: E731
    t = t0
    for _ in range(steps):
        k1 = f(t, x)
        k2 = f(t + h / 2, x + h / 2 * k1)
        k3 = f(t + h / 2, x + h / 2 * k2)
        k4 = f(t + h, x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t += h
    return x


@pytest.mark.parametrize("rank", [None, 3])
def test_closed_form_matches_fine_ode_solve(rank):
    d = 8
    mu, cov = random_gaussian(d, seed=4)
    model = fit_gaussian([np.random.default_rng(5).multivariate_normal(mu.numpy(), cov.numpy(), 200)], (1, 2, 4)).truncated(rank)
    x_t = 80.0 * torch.randn(6, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for sigma_end in (5.0, 0.3, 0.002):
        numeric = rk4_log_sigma(x_t, 80.0, sigma_end, model.denoise, steps=4000)
        exact = model.pf_ode(x_t, 80.0, sigma_end)
        rel = torch.linalg.norm(numeric - exact) / torch.linalg.norm(exact)
        assert rel < 1e-4, (sigma_end, float(rel))


def test_sample_is_the_sigma_zero_end_point_and_has_data_moments():
    mu, cov = random_gaussian(5, seed=6)
    lam, u, _ = eigendecompose(cov)
    z = torch.randn(200_000, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = gaussian_sample(z, mu, lam, u, sigma_max=80.0)
    torch.testing.assert_close(x, gaussian_pf_ode_solution(80 * z, 80.0, 0.0, mu, lam, u))
    # exact covariance of the map: U diag(λ σ²/(λ+σ²)) Uᵀ with σ = 80, ≈ Σ
    expected_cov = (u * (lam * 6400 / (lam + 6400))) @ u.T
    torch.testing.assert_close(torch.cov(x.T, correction=0), expected_cov, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(x.mean(0), mu, atol=1e-2, rtol=0)


def test_save_load_roundtrip(tmp_path):
    x = np.random.default_rng(7).normal(size=(50, 12))
    m = fit_gaussian([x[:20], x[20:]], (3, 2, 2))
    m.save(tmp_path / "g.h5", attrs={"subset": "n50"})
    back = GaussianModel.load(tmp_path / "g.h5")
    assert back.n_images == 50 and back.image_shape == (3, 2, 2)
    torch.testing.assert_close(back.eigenvectors, m.eigenvectors)
    torch.testing.assert_close(back.mean, m.mean)
    assert not list(tmp_path.glob(".*tmp*"))


def test_empty_data_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        empirical_mean_covariance([np.zeros((0, 4))])


def _few_images(n, d, seed=8):
    """n < d images with a decaying spectrum and an offset mean (rank n − 1)."""
    g = np.random.default_rng(seed)
    return g.normal(size=(n, d)) * np.geomspace(2, 0.01, d) + g.normal(size=d)


@pytest.mark.parametrize("n", [2, 7, 40])
def test_gram_fit_gives_the_covariance_fits_denoiser_and_ode_map(n):
    d = 48
    x = _few_images(n, d)
    chunks = [x[i : i + 16] for i in range(0, n, 16)]
    full = fit_gaussian(chunks, (3, 4, 4), method="covariance")
    dual = fit_gaussian(chunks, (3, 4, 4), method="gram")
    assert full.eigenvectors.shape == (d, d) and dual.eigenvectors.shape == (d, n - 1)
    torch.testing.assert_close(dual.spectrum(), full.spectrum(), rtol=0, atol=1e-12)
    torch.testing.assert_close(dual.eigenvectors.T @ dual.eigenvectors, torch.eye(n - 1, dtype=torch.float64), rtol=0, atol=1e-13)
    probe = torch.from_numpy(_few_images(5, d, seed=9)) + 0.3 * torch.randn(5, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for sigma in (80.0, 1.0, 0.05, 0.01):
        torch.testing.assert_close(dual.denoise(probe, sigma), full.denoise(probe, sigma), rtol=0, atol=1e-10)
        torch.testing.assert_close(dual.pf_ode(80 * probe, 80.0, sigma), full.pf_ode(80 * probe, 80.0, sigma), rtol=0, atol=1e-10)
    # the sample map's gain sqrt(lambda/(lambda + 80^2)) lifts the covariance path's round-off
    # eigenvalues (~1e-15 instead of 0) to ~1e-7: compare with its top N - 1 directions
    torch.testing.assert_close(dual.sample(probe), full.truncated(n - 1).sample(probe), rtol=0, atol=1e-10)
    # at sigma = 0.002 the covariance path's round-off eigenvalues (~1e-15 instead of 0) leak
    # ~1e-9 through lambda/(lambda + sigma^2); the Gram path has exact zeros there and is the closer
    # one to the direct solve mu + Sigma (Sigma + sigma^2 I)^-1 (x - mu)
    y = torch.from_numpy(x) - torch.from_numpy(x).mean(0)
    cov = y.T @ y / n
    direct = full.mean + (probe - full.mean) @ torch.linalg.solve(cov + 0.002**2 * torch.eye(d, dtype=torch.float64), cov).T
    err = lambda m: float((m.denoise(probe, 0.002) - direct).abs().max())  # noqa: E731
    assert err(dual) <= err(full) + 1e-12, (err(dual), err(full))


def test_fit_method_auto_streams_the_covariance_once_there_are_more_than_d_over_2_rows():
    for n, basis in ((12, 11), (13, 24)):  # d = 24: the Gram path up to N = 12
        auto = fit_gaussian([x for x in np.array_split(_few_images(n, 24), 3)], (1, 4, 6))
        assert auto.eigenvectors.shape == (24, basis), n
    x = _few_images(60, 24)
    auto = fit_gaussian([x[i : i + 10] for i in range(0, 60, 10)], (1, 4, 6))
    assert auto.eigenvectors.shape == (24, 24)
    one = fit_gaussian([x[:1]], (1, 4, 6))
    assert one.eigenvectors.shape == (24, 0) and torch.equal(one.denoise(torch.from_numpy(x[1:3]), 0.5), one.mean.expand(2, 24))
    forced = fit_gaussian([x], (1, 4, 6), method="gram")
    assert forced.eigenvectors.shape == (24, 24)  # N > d: full rank from the Gram matrix too
    torch.testing.assert_close(forced.denoise(torch.from_numpy(x[:3]), 0.1), auto.denoise(torch.from_numpy(x[:3]), 0.1), rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="unknown Gaussian fit method 'svd'"):
        fit_gaussian([x], (1, 4, 6), method="svd")
    with pytest.raises(ValueError, match="empty set of images"):
        fit_gaussian([], (1, 4, 6))


def test_gram_fit_round_trips_and_reports_the_full_spectrum(tmp_path):
    from hiddengauss.gaussian import spectrum_table

    m = fit_gaussian([_few_images(10, 32)], (2, 4, 4))
    m.save(tmp_path / "g.h5", attrs={"subset": "n10"})
    back = GaussianModel.load(tmp_path / "g.h5")
    torch.testing.assert_close(back.eigenvectors, m.eigenvectors)
    table = spectrum_table([str(tmp_path / "g.h5")])
    assert list(table["k"]) == list(range(1, 33)) and (table["eigenvalue"].iloc[9:] == 0).all()
    np.testing.assert_allclose(table["eigenvalue"].iloc[:9], m.eigenvalues.numpy())

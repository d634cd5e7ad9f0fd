"""Linear distillation, the empirical-optimal denoiser and the linearity / distance measures."""

import numpy as np
import pytest
import torch

from hiddengauss.distill import (
    affine_least_squares,
    distill_closed_form,
    distill_sgd,
    eigenbasis_diagonal,
    official_sgd_lr,
    relative_frobenius_error,
    wiener_matrix,
)
from hiddengauss.empirical import empirical_optimal_denoiser
from hiddengauss.gaussian import fit_gaussian
from hiddengauss.metrics import denoiser_distance, linearity, mixing_weights

D = 12


@pytest.fixture(scope="module")
def gaussian():
    g = np.random.default_rng(0)
    a = g.normal(size=(D, D))
    x = g.multivariate_normal(g.normal(size=D) * 0.3, a @ a.T / D + 0.01 * np.eye(D), size=500)
    return fit_gaussian([x], (1, 3, 4))


def non_gaussian_inputs(n=300, seed=1):
    g = np.random.default_rng(seed)
    return torch.tensor(np.sign(g.normal(size=(n, D))) * g.exponential(size=(n, D)))  # heavy-tailed, bimodal


@pytest.mark.parametrize("sigma", [0.002, 0.5, 80.0])
@pytest.mark.parametrize("inputs", ["gaussian", "non_gaussian"])
def test_distilling_the_gaussian_denoiser_returns_it(gaussian, sigma, inputs):
    y = non_gaussian_inputs() if inputs == "non_gaussian" else gaussian.sample(torch.randn(300, D, dtype=torch.float64))
    w, b, fit = distill_closed_form(gaussian.denoise, y, sigma, n_samples=4 * D * 10, batch=97, seed=3)
    w_g = wiener_matrix(gaussian.eigenvalues, gaussian.eigenvectors, sigma)
    b_g = gaussian.mean - w_g @ gaussian.mean
    assert torch.allclose(w, w_g, atol=1e-6, rtol=0) and torch.allclose(b, b_g, atol=1e-6, rtol=0)
    assert fit < 1e-6


def test_distilling_any_affine_map_recovers_it():
    g = torch.Generator().manual_seed(0)
    w_true = torch.randn(D, D, generator=g, dtype=torch.float64)
    b_true = torch.randn(D, generator=g, dtype=torch.float64)
    w, b, fit = distill_closed_form(lambda x, s: x @ w_true.T + b_true, non_gaussian_inputs(), 0.3, 2000, seed=1)
    torch.testing.assert_close(w, w_true, atol=1e-8, rtol=0)
    torch.testing.assert_close(b, b_true, atol=1e-8, rtol=0)


def test_closed_form_is_least_squares_of_a_nonlinear_teacher():
    teacher = lambda x, s: torch.tanh(2 * x) + 0.1 * x**2  # noqa: E731
    y = non_gaussian_inputs(200)
    w, b, fit = distill_closed_form(teacher, y, 0.4, 1000, batch=128, seed=5)
    from hiddengauss.distill import noisy_inputs

    x = torch.cat(list(noisy_inputs(y, 0.4, 1000, 128, 5)))
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    coef = torch.linalg.lstsq(design, teacher(x, 0.4)).solution
    torch.testing.assert_close(w, coef[:-1].T, atol=1e-8, rtol=0)
    torch.testing.assert_close(b, coef[-1], atol=1e-8, rtol=0)
    resid = design @ coef - teacher(x, 0.4)
    assert fit == pytest.approx(float(resid.pow(2).mean().sqrt()), rel=1e-6)


def test_sgd_approaches_closed_form(gaussian):
    y = gaussian.sample(torch.randn(512, D, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))
    sigma = 1.0
    w_cf, b_cf, _ = distill_closed_form(gaussian.denoise, y, sigma, 4000, seed=0)
    start = relative_frobenius_error(torch.zeros_like(w_cf), w_cf)
    w_sgd, b_sgd, losses = distill_sgd(gaussian.denoise, y, sigma, epochs=60, lr=2e-2, batch=64, seed=0)
    assert losses[-1] < losses[0] / 5
    assert relative_frobenius_error(w_sgd, w_cf) < 0.1 * start


def test_official_lr_table():
    assert official_sgd_lr(80.0) == 5e-5 and official_sgd_lr(0.47) == 5e-4 and official_sgd_lr(0.0021) == 5e-2


def test_ridge_shrinks():
    c = torch.eye(3, dtype=torch.float64)
    w, _ = affine_least_squares(torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), c, c, ridge=1.0)
    torch.testing.assert_close(w, 0.5 * c)


def test_eigenbasis_diagonal_of_wiener(gaussian):
    w_g = wiener_matrix(gaussian.eigenvalues, gaussian.eigenvectors, 0.7)
    lam = gaussian.eigenvalues
    torch.testing.assert_close(eigenbasis_diagonal(w_g, gaussian.eigenvectors), lam / (lam + 0.49))


def test_eigenbasis_diagonal_does_not_depend_on_the_null_space_basis():
    """N ≤ d: any rotation of the null-space eigenvectors gives the same table values."""
    g = torch.Generator().manual_seed(5)
    y = torch.randn(6, 12, generator=g, dtype=torch.float64)
    from hiddengauss.gaussian import eigendecompose, empirical_mean_covariance

    _, cov, _ = empirical_mean_covariance([y])
    lam, u, _ = eigendecompose(cov)
    null = lam <= 1e-10 * lam.max()
    assert int(null.sum()) == 12 - 5
    q, _ = torch.linalg.qr(torch.randn(7, 7, generator=g, dtype=torch.float64))
    u2 = u.clone()
    u2[:, null] = u[:, null] @ q
    w = torch.randn(12, 12, generator=g, dtype=torch.float64)
    one, two = eigenbasis_diagonal(w, u, lam), eigenbasis_diagonal(w, u2, lam)
    torch.testing.assert_close(one, two, rtol=0, atol=1e-12)
    assert not torch.allclose(eigenbasis_diagonal(w, u)[null], eigenbasis_diagonal(w, u2)[null])  # raw diagonal does
    torch.testing.assert_close(one[~null], ((u.T @ w) * u.T).sum(1)[~null])


def test_empirical_denoiser_limits():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(50, D, generator=g, dtype=torch.float64) * 2 - 1
    x = train[[3, 17]] + 0.002 * torch.randn(2, D, generator=g, dtype=torch.float64)
    out = empirical_optimal_denoiser(x.to(torch.float32), 0.002, train.to(torch.float32), chunk=7)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out.to(torch.float64), train[[3, 17]], atol=1e-6, rtol=0)  # nearest image
    far = empirical_optimal_denoiser(torch.randn(4, D, dtype=torch.float64), 1e4, train, chunk=16)
    torch.testing.assert_close(far, train.mean(0).expand(4, D), atol=1e-6, rtol=0)  # training mean
    # chunking does not change the result; matches a direct softmax
    x = torch.randn(5, D, dtype=torch.float64, generator=g)
    w = torch.softmax(-torch.cdist(x, train) ** 2 / (2 * 0.3**2), dim=1)
    torch.testing.assert_close(empirical_optimal_denoiser(x, 0.3, train, chunk=9), w @ train)


def test_linearity_of_linear_and_gaussian(gaussian):
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(100, D, generator=g, dtype=torch.float64), torch.randn(100, D, generator=g, dtype=torch.float64)
    m = torch.randn(D, D, generator=g, dtype=torch.float64)
    cos, nmse = linearity(lambda x, s: x @ m.T, x1, x2, 1.0)
    assert cos == pytest.approx(1.0, abs=1e-12) and nmse == pytest.approx(0.0, abs=1e-12)
    # Gaussian denoiser at huge σ ≈ μ (constant): nMSE → (α+β−1)/(α+β)
    for a in (0.5, 0.8675, 0.99):
        al, be = mixing_weights(a)
        cos, nmse = linearity(gaussian.denoise, 80 * x1, 80 * x2, 1e4, a)
        assert nmse == pytest.approx((al + be - 1) / (al + be), rel=1e-3)
        assert cos == pytest.approx(1.0, abs=1e-6)
    # the score of an affine denoiser is affine too
    cos, _ = linearity(gaussian.denoise, x1, x2, 1.0, target="score")
    assert cos > 0.9


def test_denoiser_distance():
    d1 = torch.tensor([[1.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
    d2 = torch.tensor([[1.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    out = denoiser_distance(d1, d2)
    assert out["rmse"] == pytest.approx(np.sqrt(0.25)) and out["rms_mean"] == pytest.approx(np.sqrt(0.5) / 2)
    assert out["nmse"] == pytest.approx((1 / np.sqrt(2)) / 2)

"""Linear distillation: the closed form, the official SGD procedure and the eigenbasis diagonal."""

import numpy as np
import pytest
import torch

from denoiser_fixtures import D, fitted_gaussian, non_gaussian_inputs
from hiddengauss.distill import (
    affine_least_squares,
    distill_closed_form,
    distill_sgd,
    eigenbasis_diagonal,
    linear_family,
    load_linear_maps,
    official_sgd_lr,
    relative_frobenius_error,
    save_linear_maps,
)
from hiddengauss.gaussian import wiener_matrix


@pytest.fixture(scope="module")
def gaussian():
    return fitted_gaussian()


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


def test_linear_maps_round_trip_and_refuse_unfitted_sigmas(tmp_path):
    g = torch.Generator().manual_seed(3)
    maps = {s: (torch.randn(D, D, generator=g, dtype=torch.float64), torch.randn(D, generator=g, dtype=torch.float64))
            for s in (0.5, 2.0)}  # fmt: skip
    save_linear_maps(tmp_path / "l.h5", maps)
    back = load_linear_maps(tmp_path / "l.h5")
    x = torch.randn(4, D, generator=g, dtype=torch.float64)
    for s, (w, b) in maps.items():
        torch.testing.assert_close(linear_family(back)(x, s), x @ w.T.float().double() + b)  # W stored in float32
    with pytest.raises(KeyError, match="no distilled map at σ=1.0"):
        linear_family(back)(x, 1.0)
    save_linear_maps(tmp_path / "n.h5", maps, store="none")
    with pytest.raises(ValueError, match="keeps no weights"):
        load_linear_maps(tmp_path / "n.h5")


def test_eigenbasis_diagonal_of_a_span_basis_equals_the_full_basis():
    from hiddengauss.gaussian import fit_gaussian

    x = np.random.default_rng(3).normal(size=(9, 20)) * np.geomspace(1, 0.1, 20)
    full, dual = fit_gaussian([x], (1, 4, 5), method="covariance"), fit_gaussian([x], (1, 4, 5), method="gram")
    w = torch.from_numpy(np.random.default_rng(4).normal(size=(20, 20)))
    one = eigenbasis_diagonal(w, full.eigenvectors, full.eigenvalues)
    two = eigenbasis_diagonal(w, dual.eigenvectors, dual.eigenvalues)
    assert two.shape == (20,)
    torch.testing.assert_close(two, one, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="needs its eigenvalues"):
        eigenbasis_diagonal(w, dual.eigenvectors)

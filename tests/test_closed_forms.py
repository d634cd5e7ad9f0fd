"""Closed-form denoisers beyond the global Gaussian, where the answer is known: the limits that
give the empirical and the Wiener denoiser, brute-force loops on tiny cases, equivariance."""

import numpy as np
import pytest
import torch

from hiddengauss.closed_forms import (
    baseline_denoisers,
    calibrated_patch,
    els_denoiser,
    fit_gaussian_mixture,
    gaussian_mixture_denoiser,
    local_denoiser,
    patch_denoiser,
    wiener_locality_mask,
)
from hiddengauss.empirical import empirical_optimal_denoiser
from hiddengauss.gaussian import fit_gaussian


def images(n, shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, int(np.prod(shape)), generator=g, dtype=torch.float64) * 2 - 1


def noisy(n, shape, sigma, seed=99):
    return images(n, shape, seed) + sigma * torch.randn(n, int(np.prod(shape)), generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)


SIGMAS = (0.05, 0.5, 3.0)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_mixture_of_one_is_the_wiener_denoiser_and_of_n_the_empirical_one(sigma):
    shape = (1, 3, 4)
    y, x = images(20, shape, 0), noisy(6, shape, sigma)
    one = fit_gaussian_mixture(y, shape, 1)
    torch.testing.assert_close(gaussian_mixture_denoiser(x, sigma, one), fit_gaussian([y], shape).denoise(x, sigma), rtol=0, atol=1e-10)
    every = fit_gaussian_mixture(y, shape, 20)
    torch.testing.assert_close(gaussian_mixture_denoiser(x, sigma, every), empirical_optimal_denoiser(x, sigma, y), rtol=0, atol=1e-10)


def test_mixture_matches_the_posterior_mean_computed_densely():
    shape, sigma = (1, 2, 3), 0.4
    y, x = images(30, shape, 1), noisy(5, shape, sigma)
    mix = fit_gaussian_mixture(y, shape, 3, seed=0)
    d = y.shape[1]
    logits, means = [], []
    for w, g in zip(mix.weights, mix.components):
        u, lam = g.eigenvectors, g.eigenvalues
        cov = (u * lam) @ u.T + sigma**2 * torch.eye(d, dtype=torch.float64)
        dist = torch.distributions.MultivariateNormal(g.mean, covariance_matrix=cov)
        logits.append(torch.log(w) + dist.log_prob(x))
        means.append(g.mean + (x - g.mean) @ torch.linalg.solve(cov, (u * lam) @ u.T).T)
    r = torch.softmax(torch.stack(logits, 1), 1)
    expected = sum(r[:, k : k + 1] * means[k] for k in range(len(means)))
    torch.testing.assert_close(gaussian_mixture_denoiser(x, sigma, mix), expected, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="1 <= k <= 30"):
        fit_gaussian_mixture(y, shape, 31)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_local_model_with_an_all_ones_mask_is_the_empirical_denoiser(sigma):
    shape = (1, 3, 3)
    y, x = images(25, shape, 2), noisy(4, shape, sigma)
    ones = torch.ones(9, 9, dtype=torch.float64)
    torch.testing.assert_close(local_denoiser(x, sigma, y, ones, chunk=7), empirical_optimal_denoiser(x, sigma, y), rtol=0, atol=1e-10)


def test_local_model_matches_a_loop_over_pixels():
    shape, sigma, tau = (1, 2, 3), 0.3, 0.7
    y, x = images(8, shape, 3), noisy(3, shape, sigma)
    mask = (torch.rand(6, 6, generator=torch.Generator().manual_seed(4)) < 0.5).double()
    mask.fill_diagonal_(1)
    out = torch.empty_like(x)
    for b in range(3):
        for n in range(6):
            logit = torch.stack([-(mask[n] * (x[b] - y[i]) ** 2).sum() / (2 * sigma**2 * tau) for i in range(8)])
            out[b, n] = (torch.softmax(logit, 0) * y[:, n]).sum()
    torch.testing.assert_close(local_denoiser(x, sigma, y, mask, temperature=tau, chunk=3), out, rtol=0, atol=1e-12)


def _smooth_gaussian(scale=None):
    """A 4×4 Gaussian with neighbour correlations; ``scale`` (16,) multiplies each pixel."""
    g = torch.Generator().manual_seed(5)
    base = torch.randn(400, 1, 4, 4, generator=g, dtype=torch.float64)
    smooth = (base + base.roll(1, 2) + base.roll(1, 3)) / 3 + 0.1 * torch.randn(400, 1, 4, 4, generator=g, dtype=torch.float64)
    flat = smooth.reshape(400, -1) * (1 if scale is None else scale)
    return fit_gaussian([flat], (1, 4, 4))


@pytest.mark.parametrize("scope", ["row", "global"])
def test_wiener_locality_mask_limits(scope):
    """σ → 0 with a full-rank Σ: W_σ → I, the mask is the identity; σ → ∞: W_σ → Σ/σ², the mask
    thresholds Σ at 0.02 of each row's largest magnitude (row) or Σ[n,m]/Σ[n,n] at 0.02 of the
    whole matrix's (global)."""
    gauss = _smooth_gaussian()
    torch.testing.assert_close(wiener_locality_mask(gauss, 1e-4, scope=scope), torch.eye(16, dtype=torch.float64))
    cov = (gauss.eigenvectors * gauss.eigenvalues) @ gauss.eigenvectors.T
    if scope == "row":
        expected = cov.abs() >= 0.02 * cov.abs().amax(1, keepdim=True)
    else:
        a = (cov / torch.diagonal(cov)[:, None]).abs()
        expected = a >= 0.02 * a.max()
    wide = wiener_locality_mask(gauss, 1e4, scope=scope)
    torch.testing.assert_close(wide, expected.double())
    assert 16 < wide.sum() < 256  # local, not empty and not everything


def test_row_locality_mask_survives_a_low_variance_pixel():
    """One pixel with 1e-3 of the others' spread: the global threshold (the reference code's)
    empties most rows, the per-row one keeps every row its own pixel; at large σ (W_σ ∝ Σ, the
    scaled pixel's row and column scaled) every other row keeps the neighbourhood it has when
    all pixels share one scale, less the scaled pixel. A pixel without variance sees only itself."""
    scale = torch.ones(16, dtype=torch.float64)
    scale[5] = 1e-3
    even, uneven = _smooth_gaussian(), _smooth_gaussian(scale)
    for sigma in (0.3, 1.0, 1e4):
        glob = wiener_locality_mask(uneven, sigma, scope="global")
        assert (glob.sum(1) == 0).sum() >= 8, sigma  # most rows see nothing, not even their own pixel
        assert torch.all(torch.diagonal(wiener_locality_mask(uneven, sigma)) == 1)
    row, ref = wiener_locality_mask(uneven, 1e4), wiener_locality_mask(even, 1e4)
    others = [n for n in range(16) if n != 5]
    torch.testing.assert_close(row[others][:, others], ref[others][:, others])
    assert row[others, 5].sum() == 0 < ref[others, 5].sum()
    scale[5] = 0.0
    dead = wiener_locality_mask(_smooth_gaussian(scale), 1.0)
    torch.testing.assert_close(dead[5], torch.eye(16, dtype=torch.float64)[5])
    with pytest.raises(ValueError, match="'row' or 'global'"):
        wiener_locality_mask(even, 1.0, scope="column")


@pytest.mark.parametrize("sigma", SIGMAS)
def test_patch_model_with_the_whole_image_is_the_empirical_denoiser(sigma):
    shape = (3, 4, 4)
    y, x = images(12, shape, 6), noisy(3, shape, sigma)
    torch.testing.assert_close(patch_denoiser(x, sigma, y, shape, 4, chunk=5), empirical_optimal_denoiser(x, sigma, y), rtol=0, atol=1e-10)


def test_patch_model_matches_a_loop_over_crops():
    shape, sigma, k = (1, 4, 3), 0.4, 2
    y, x = images(6, shape, 7), noisy(2, shape, sigma)
    yi, xi = y.reshape(-1, *shape), x.reshape(-1, *shape)
    total, count = torch.zeros_like(xi), torch.zeros_like(xi)
    for a in range(4 - k + 1):
        for b in range(3 - k + 1):
            crop = (slice(None), slice(None), slice(a, a + k), slice(b, b + k))
            for j in range(2):
                logit = torch.stack([-((xi[j][crop[1:]] - yi[i][crop[1:]]) ** 2).sum() / (2 * sigma**2) for i in range(6)])
                w = torch.softmax(logit, 0)
                total[j][crop[1:]] += (w[:, None, None, None] * yi[(slice(None), *crop[1:])]).sum(0)
                count[j][crop[1:]] += 1
    torch.testing.assert_close(patch_denoiser(x, sigma, y, shape, k, chunk=4), (total / count).reshape(2, -1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("padding", ["zeros", "circular"])
def test_els_matches_a_loop_over_every_patch_of_every_image(padding):
    shape, sigma, k = (2, 3, 4), 0.5, 3
    y, x = images(3, shape, 8), noisy(2, shape, sigma)
    mode = "circular" if padding == "circular" else "constant"
    pad = lambda t: torch.nn.functional.pad(t.reshape(-1, *shape), (1, 1, 1, 1), mode=mode)  # noqa: E731
    yp, xp = pad(y), pad(x)
    patches = [yp[i, :, a : a + k, b : b + k] for i in range(3) for a in range(3) for b in range(4)]
    out = torch.empty(2, *shape, dtype=torch.float64)
    for j in range(2):
        for a in range(3):
            for b in range(4):
                nb = xp[j, :, a : a + k, b : b + k]
                w = torch.softmax(torch.stack([-((nb - p) ** 2).sum() / (2 * sigma**2) for p in patches]), 0)
                out[j, :, a, b] = sum(wi * p[:, 1, 1] for wi, p in zip(w, patches))
    torch.testing.assert_close(els_denoiser(x, sigma, y, shape, k, padding, chunk=2), out.reshape(2, -1), rtol=0, atol=1e-12)


def test_els_is_translation_equivariant_with_circular_padding():
    shape, sigma = (1, 5, 5), 0.3
    y, x = images(4, shape, 9), noisy(2, shape, sigma)
    shift = lambda t: t.reshape(-1, *shape).roll((2, 1), (2, 3)).reshape(t.shape[0], -1)  # noqa: E731
    out = els_denoiser(x, sigma, y, shape, 3, "circular")
    torch.testing.assert_close(els_denoiser(shift(x), sigma, y, shape, 3, "circular"), shift(out), rtol=0, atol=1e-12)


def test_els_patch_between_calibrated_sigmas_is_the_nearest_in_log_sigma():
    chosen = {0.01: 3, 1.0: 5, 80.0: 7}
    assert [calibrated_patch(chosen, s) for s in (0.002, 0.05, 0.2, 0.9, 8.0, 10.0, 500.0)] == [3, 3, 5, 5, 5, 7, 7]
    with pytest.raises(ValueError, match="no ELS calibration"):
        calibrated_patch({}, 1.0)


def test_baseline_set_runs_els_with_the_calibrated_patch_only_when_calibrated():
    shape = (1, 5, 5)
    y, x = images(6, shape, 3), noisy(2, shape, 0.4)
    gauss, settings = fit_gaussian([y], shape), {"models": ["els", "patch"], "els_padding": "zeros"}
    assert set(baseline_denoisers(settings, gauss, y, shape)) == {"patch"}  # no calibration: no ELS
    models = baseline_denoisers(settings, gauss, y, shape, {0.1: 3, 2.0: 5})
    torch.testing.assert_close(models["els"](x, 0.6), els_denoiser(x, 0.6, y, shape, 5), rtol=0, atol=0)  # log-nearest: 2.0
    torch.testing.assert_close(models["els"](x, 0.2), els_denoiser(x, 0.2, y, shape, 3), rtol=0, atol=0)

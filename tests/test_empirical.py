"""The empirical-optimal denoiser: the exact posterior mean of the training set."""

import torch

from denoiser_fixtures import D
from hiddengauss.empirical import empirical_optimal_denoiser


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

"""Linearity and distances between denoisers."""

import numpy as np
import pytest
import torch

from denoiser_fixtures import D, fitted_gaussian
from hiddengauss.metrics import denoiser_distance, linearity, mixing_weights


@pytest.fixture(scope="module")
def gaussian():
    return fitted_gaussian()


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

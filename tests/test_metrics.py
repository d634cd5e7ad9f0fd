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


def test_each_measure_draws_its_own_noise():
    """Distillation, linearity, distances and the ELS calibration use independent noise (the distilled map is scored
    on noise it was not fitted on), the same for every model: the seeds depend only on the
    config's noise seed and the measure."""
    from hiddengauss.distill import noisy_inputs
    from hiddengauss.metrics import MEASURES, fixed_noise, measure_seed

    seeds = {m: measure_seed(0, m) for m in MEASURES}
    assert len(set(seeds.values())) == len(MEASURES) == 4 and seeds == {m: measure_seed(0, m) for m in MEASURES}
    assert measure_seed(1, "linearity") != seeds["linearity"]
    y = torch.zeros(4, 6, dtype=torch.float64)
    fit_noise = next(noisy_inputs(y, 1.0, 4, 4, seeds["distill"]))
    for m in ("linearity", "distances"):
        assert not torch.allclose(fixed_noise(4, 6, seeds[m]), fit_noise)
    with pytest.raises(ValueError, match="unknown measure"):
        measure_seed(0, "sampling")


def test_unrelated_pairs_are_distinct_and_never_an_image_with_itself():
    from hiddengauss.memorization import paired_centred_cosine, unrelated_pairs_cosine

    images = torch.randn(7, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    floor = unrelated_pairs_cosine(images, 20)
    assert floor.shape == (20,) and (floor < 0.999).all()  # no pair of an image with itself
    i = torch.arange(20)
    a, b = i % 7, (i % 7 + 7 // 3 + i // 7) % 7
    pairs = {(int(x), int(y)) for x, y in zip(a, b)}
    assert len(pairs) == 20 - 0 and all(x != y for x, y in pairs)
    torch.testing.assert_close(floor[:3], paired_centred_cosine(images[:3], images[[2, 3, 4]]))
    with pytest.raises(ValueError, match="at least 3 images"):
        unrelated_pairs_cosine(images[:2], 4)

"""Measures on denoisers: linearity (paper Fig 1; paper_spec §1.6) and distances between two denoisers."""

from __future__ import annotations

import numpy as np
import torch

from .memorization import paired_cosine
from .sampling import Denoiser


def mixing_weights(a: float) -> tuple[float, float]:
    """α = √a, β = √(1−a), so α² + β² = 1 and a mixture of two noisy inputs keeps its noise level."""
    return float(np.sqrt(a)), float(np.sqrt(1 - a))


def score_from_denoiser(d: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Score of the noised data implied by a denoiser (Tweedie): s(x;σ) = (D(x;σ) − x)/σ²."""
    return (d - x) / sigma**2


def linearity(denoise: Denoiser, x1: torch.Tensor, x2: torch.Tensor, sigma: float, a: float = 0.5,
              target: str = "denoiser") -> tuple[float, float]:  # fmt: skip
    """Linearity of D (or of its score) on pairs: M = f(αx₁+βx₂), T = αf(x₁)+βf(x₂).

    Returns (mean cos(M, T), mean ‖T − M‖/‖T‖) over the pairs. For an affine D(x) = Wx + b,
    M − T = (1−α−β)·b, so the normalized difference tends to (α+β−1)/(α+β) where b dominates.
    """
    alpha, beta = mixing_weights(a)
    xm = alpha * x1 + beta * x2
    return linearity_from_outputs(x1, x2, xm, denoise(x1, sigma), denoise(x2, sigma), denoise(xm, sigma), sigma, a, target)


def linearity_from_outputs(x1, x2, xm, d1, d2, dm, sigma: float, a: float, target: str = "denoiser") -> tuple[float, float]:
    """:func:`linearity` from denoiser outputs already computed (d1 = D(x₁), d2 = D(x₂), dm = D(xm)),
    so that several mixing weights and both targets reuse the same network evaluations."""
    cos, nmse = linearity_per_pair(x1, x2, xm, d1, d2, dm, sigma, a, target)
    return float(cos.mean()), float(nmse.mean())


def linearity_per_pair(x1, x2, xm, d1, d2, dm, sigma: float, a: float, target: str = "denoiser"):
    """Per pair: cos(M, T) and ‖T − M‖/‖T‖ with M = f(xm), T = αf(x₁) + βf(x₂) (f = D or its score)."""
    alpha, beta = mixing_weights(a)
    if target == "score":
        d1, d2, dm = score_from_denoiser(d1, x1, sigma), score_from_denoiser(d2, x2, sigma), score_from_denoiser(dm, xm, sigma)
    elif target != "denoiser":
        raise ValueError(f"target must be 'denoiser' or 'score', got {target!r}")
    t = (alpha * d1 + beta * d2).to(torch.float64)
    fm = dm.to(torch.float64)
    return paired_cosine(fm, t), torch.linalg.norm(t - fm, dim=1) / torch.linalg.norm(t, dim=1)


def denoiser_distance(d1: torch.Tensor, d2: torch.Tensor) -> dict[str, float]:
    """Distances between two denoisers' outputs on the same inputs (rows = samples).

    rmse = √(mean over samples and pixels of (D1 − D2)²)  (square root outside, as the reviewer asked);
    rms_mean = mean over samples of √(mean over pixels)    (the paper's Eq. 8);
    nmse = mean over samples of ‖D1 − D2‖/‖D1‖            (the rebuttal's normalized error);
    r2 = median over samples of the r² of D2 as a model of D1 (:func:`denoiser_distance_per_sample`;
         the median, as Kamb & Ganguli report it: an input whose network output is almost flat
         has a near-zero denominator and an unbounded r²).
    """
    per = denoiser_distance_per_sample(d1, d2)
    return {"rmse": float((per["rms"] ** 2).mean().sqrt()), "rms_mean": float(per["rms"].mean()),
            "nmse": float(per["nmse"].mean()), "r2": float(per["r2"].median())}  # fmt: skip


def denoiser_distance_per_sample(d1: torch.Tensor, d2: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per sample: rms = √(‖D1 − D2‖²/d), nmse = ‖D1 − D2‖/‖D1‖ and the share of the variance of
    D1's output that D2 explains, r² = 1 − ‖D1 − D2‖² / ‖D1 − mean_pixels(D1)‖² (the closed-form
    papers' r², e.g. Lukoianov et al.'s ``calculate_r2_score``: 1 − SSE/(d·Var_pixels D1));
    float64. D1 is the network (the first denoiser of a pair). Also spread = ‖D1 − mean_pixels(D1)‖²/d,
    so that a pooled r² over inputs, 1 − mean(rms²)/mean(spread), can be formed from the items."""
    d1 = d1.to(torch.float64)
    diff = d1 - d2.to(torch.float64)
    spread = ((d1 - d1.mean(1, keepdim=True)) ** 2).sum(1)
    return {"rms": (diff**2).mean(1).sqrt(), "nmse": torch.linalg.norm(diff, dim=1) / torch.linalg.norm(d1, dim=1),
            "r2": 1 - (diff**2).sum(1) / spread.clamp_min(1e-300), "spread": spread / d1.shape[1]}  # fmt: skip


MEASURES = ("distill", "linearity", "distances", "els_calibration")


def measure_seed(seed: int, measure: str) -> int:
    """The noise seed of one measure (distillation, linearity, distances, the ELS calibration), derived from
    ``analysis.noise_seed`` so that the three measures draw independent noise."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}: one of {MEASURES}")
    return int(np.random.SeedSequence([seed, MEASURES.index(measure)]).generate_state(1)[0] % 2**31)


def fixed_noise(n: int, dim: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """Standard normal noise (n, dim) from ``seed``: the same draws for every model and σ."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)

"""EDM (Karras et al. 2022): denoiser preconditioning, loss weighting, training noise levels, loss.

Convention (paper_spec §1.2): noisy data x = y + σn with n ~ N(0, I); the denoiser D(x;σ)
estimates E[y | x]; the score is (D(x;σ) − x)/σ². σ_d (``sigma_data``) = 0.5.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# A noise level is "trained" when a run's training draws of ln σ within ±TRAINED_HALF_WIDTH of
# ln σ number at least TRAINED_MIN_DRAWS (about 100 (image, noise) pairs within ±28% of σ).
TRAINED_MIN_DRAWS = 100
TRAINED_HALF_WIDTH = 0.25


def edm_preconditioning(sigma, sigma_data: float = 0.5):
    """Scalings of D(x;σ) = c_skip·x + c_out·F(c_in·x; c_noise):

    c_skip = σd²/(σ²+σd²),  c_out = σ·σd/√(σ²+σd²),  c_in = 1/√(σ²+σd²),  c_noise = ln(σ)/4.

    ``sigma`` may be a number or a tensor of any shape; returns four tensors of that shape.
    """
    sigma = torch.as_tensor(sigma)
    s2 = sigma**2 + sigma_data**2
    return sigma_data**2 / s2, sigma * sigma_data / s2.sqrt(), 1 / s2.sqrt(), sigma.log() / 4


def edm_loss_weight(sigma, sigma_data: float = 0.5) -> torch.Tensor:
    """Loss weight λ(σ) = (σ²+σd²)/(σ·σd)², the inverse of c_out², so F's target has unit weight."""
    sigma = torch.as_tensor(sigma)
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def sample_training_sigmas(n: int, p_mean: float = -1.2, p_std: float = 1.2,
                           generator: torch.Generator | None = None, device=None) -> torch.Tensor:  # fmt: skip
    """Training noise levels, shape (n,): ln σ ~ N(P_mean, P_std²)."""
    return (torch.randn(n, generator=generator, device=device) * p_std + p_mean).exp()


def expected_sigma_draws(sigma, images_seen: float, p_mean: float = -1.2, p_std: float = 1.2,
                         half_width: float = TRAINED_HALF_WIDTH) -> np.ndarray:  # fmt: skip
    """Expected number of training draws near each σ of a run that saw ``images_seen`` images
    (one σ per image draw, ln σ ~ N(P_mean, P_std²)):

    E[draws(σ)] = images_seen · [Φ((ln σ + h − P_mean)/P_std) − Φ((ln σ − h − P_mean)/P_std)],

    with h = ``half_width`` in ln σ and Φ the standard normal CDF."""
    log_s = np.log(np.asarray(sigma, dtype=float))
    cdf = np.vectorize(lambda z: 0.5 * math.erfc(-z / math.sqrt(2)))
    return images_seen * (cdf((log_s + half_width - p_mean) / p_std) - cdf((log_s - half_width - p_mean) / p_std))


def trained_sigmas(sigma, images_seen: float, p_mean: float = -1.2, p_std: float = 1.2,
                   min_draws: float = TRAINED_MIN_DRAWS) -> np.ndarray:  # fmt: skip
    """Mask of the σ's a run was trained at: E[draws(σ)] ≥ ``min_draws`` (:func:`expected_sigma_draws`).

    With the EDM defaults, 50k images keep 0.0083 ≤ σ ≤ 10.9, 3.2k images 0.033 ≤ σ ≤ 2.7,
    and the paper's 70 Mimg runs 0.0009 ≤ σ ≤ 103 (all of G40)."""
    return expected_sigma_draws(sigma, images_seen, p_mean, p_std) >= min_draws


class EDMDenoiser(torch.nn.Module):
    """D(x;σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; c_noise(σ)) around a backbone F.

    ``forward(x, sigma, augment_labels=None)`` takes x of shape (B, C, H, W) and σ as a number,
    a 0-d tensor or a per-sample tensor of shape (B,) (broadcast to (B,1,1,1)). The scalings and
    the skip term are computed in x's dtype; F runs in float32. So a float64 sampler state gets a
    float64 result whose network part has float32 precision.
    """

    def __init__(self, net: torch.nn.Module, sigma_data: float = 0.5):
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)
        self.img_channels = getattr(net, "in_channels", None)
        self.img_resolution = getattr(net, "img_resolution", None)

    def forward(self, x: torch.Tensor, sigma, augment_labels: torch.Tensor | None = None) -> torch.Tensor:
        if isinstance(sigma, torch.Tensor):
            sigma = sigma.to(dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1).expand(x.shape[0], 1, 1, 1)
        else:  # a number: filled on the device (no host-to-device copy per evaluation)
            sigma = x.new_full((x.shape[0], 1, 1, 1), float(sigma))
        c_skip, c_out, c_in, c_noise = edm_preconditioning(sigma, self.sigma_data)
        f = self.net((c_in * x).to(torch.float32), c_noise.flatten().to(torch.float32), augment_labels)
        return c_skip * x + c_out * f.to(x.dtype)


def training_noise(shape, generator: torch.Generator | None = None, p_mean: float = -1.2, p_std: float = 1.2,
                   device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The random part of one EDM training step for a batch of ``shape`` (B, C, H, W): σ_i with
    ln σ_i ~ N(P_mean, P_std²) and n_i ~ N(0, I), drawn from ``generator``, σ first, then n."""
    sigma = sample_training_sigmas(shape[0], p_mean, p_std, generator, device).to(dtype)
    return sigma, torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)


def edm_loss(denoiser: torch.nn.Module, images: torch.Tensor, generator: torch.Generator | None = None,
             p_mean: float = -1.2, p_std: float = 1.2, augment_labels: torch.Tensor | None = None, *,
             sigma_data: float | None = None, draws: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:  # fmt: skip
    """Per-image EDM loss, shape (B,): loss_i = λ(σ_i)·Σ_pixels (D(y_i + σ_i·n_i; σ_i) − y_i)².

    σ_i and n_i come from :func:`training_noise` with ``generator``, or are given as ``draws``
    (the rows of a larger batch's draws: a data-parallel rank's share of the global batch), so a
    seeded generator makes the loss reproducible. The loss is *summed* over the C·H·W pixels
    of each image, as in EDM, whose training loop then divides the batch sum by the batch size
    (``loss.sum()/batch``): it is per image, not per pixel, which matters when porting the lr.
    ``sigma_data`` defaults to the denoiser's.
    """
    if sigma_data is None:
        sigma_data = getattr(denoiser, "sigma_data", 0.5)
    if draws is None:
        draws = training_noise(images.shape, generator, p_mean, p_std, images.device, images.dtype)
    sigma, noise = draws
    s = sigma.reshape(-1, 1, 1, 1)
    denoised = denoiser(images + s * noise, sigma, augment_labels)
    return edm_loss_weight(sigma, sigma_data) * (denoised - images).square().flatten(1).sum(1)

"""EDM (Karras et al. 2022): preconditioning of the denoiser and the training loss."""

from __future__ import annotations

import torch


def edm_preconditioning(sigma: torch.Tensor, sigma_data: float = 0.5):
    """EDM scalings of D(x;σ) = c_skip·x + c_out·F(c_in·x; c_noise).

    c_skip = σd²/(σ²+σd²),  c_out = σ·σd/√(σ²+σd²),  c_in = 1/√(σ²+σd²),  c_noise = ln(σ)/4.
    """
    sigma = torch.as_tensor(sigma)
    denom = sigma**2 + sigma_data**2
    return sigma_data**2 / denom, sigma * sigma_data / denom.sqrt(), 1 / denom.sqrt(), sigma.log() / 4


def edm_loss_weight(sigma: torch.Tensor, sigma_data: float = 0.5) -> torch.Tensor:
    """EDM loss weight λ(σ) = (σ²+σd²)/(σ·σd)², which makes λ·c_out² = 1."""
    sigma = torch.as_tensor(sigma)
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def sample_training_sigmas(
    n: int, p_mean: float = -1.2, p_std: float = 1.2, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Training noise levels: ln σ ~ N(P_mean, P_std²)."""
    return (torch.randn(n, generator=generator, device=device) * p_std + p_mean).exp()


class EDMDenoiser(torch.nn.Module):
    """D(x;σ) = c_skip·x + c_out·F(c_in·x; c_noise) around a backbone F (EDM preconditioning).

    ``sigma`` may be a number, a 0-d tensor or one value per sample. The backbone runs in
    float32 (or under autocast); the skip term keeps x's dtype (float64 sampling works).
    """

    def __init__(self, net: torch.nn.Module, sigma_data: float = 0.5):
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)
        self.img_channels = getattr(net, "in_channels", None)
        self.img_resolution = getattr(net, "img_resolution", None)

    def forward(self, x: torch.Tensor, sigma, augment_labels: torch.Tensor | None = None) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1).expand(x.shape[0], 1, 1, 1)
        c_skip, c_out, c_in, c_noise = edm_preconditioning(sigma, self.sigma_data)
        f = self.net((c_in * x).to(torch.float32), c_noise.flatten().to(torch.float32), augment_labels)
        return c_skip * x + c_out * f.to(x.dtype)


def edm_loss(
    denoiser: torch.nn.Module,
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    sigma_data: float = 0.5,
    augment_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-image EDM loss λ(σ)·‖D(y + σn; σ) − y‖², ln σ ~ N(P_mean, P_std²), n ~ N(0, I).

    Summed over pixels for each image (EDM's training loop then divides the batch sum by the
    batch size). All randomness comes from ``generator``.
    """
    b = images.shape[0]
    sigma = sample_training_sigmas(b, p_mean, p_std, generator, images.device).reshape(-1, 1, 1, 1)
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    denoised = denoiser(images + sigma * noise, sigma.flatten(), augment_labels)
    weight = edm_loss_weight(sigma, sigma_data)
    return (weight * (denoised - images) ** 2).flatten(1).sum(1)

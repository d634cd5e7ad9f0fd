"""Geometric data augmentation with conditioning labels (EDM's non-leaking augmentation, simplified).

Each transform is applied to an image with probability ``p`` times its weight, capped at 1, as
in EDM's AugmentPipe with the weights of EDM's training script: x-flip with weight 1e8 (so, for
any p > 0, every image is flipped with probability 1/2), and weight 1 for y-flip, isotropic
scaling (log2 s ~ N(0, 0.2²)), rotation (θ ~ U(−π, π)), anisotropic scaling along a random
angle (log2 a ~ N(0, 0.2²)) and translation (t ~ N(0, 0.125²) of the image size). The images
are resampled with bilinear interpolation and reflection padding (EDM uses a wavelet-filtered
resampler; this is the one simplification). The 9-dimensional label handed to the network,

    [xflip, yflip, log2 s, cos θ − 1, sin θ, log2 a·cos φ, log2 a·sin φ, t_x, t_y],

is zero when nothing was applied, and zero at sampling time, so the network learns the
augmented distribution as a separate condition and samples the clean one (non-leaking).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

AUGMENT_DIM = 9
XFLIP_WEIGHT = 1e8  # EDM train.py: xflip=1e8, yflip=1, scale=1, rotate_frac=1, aniso=1, translate_frac=1


def augment(images: torch.Tensor, p: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch (B, C, H, W); returns (augmented images, labels (B, 9))."""
    b, dev = images.shape[0], images.device

    def rand(*shape):
        return torch.rand(*shape, generator=generator, device=dev)

    def randn(*shape):
        return torch.randn(*shape, generator=generator, device=dev)

    def gate(values, weight=1.0):
        return torch.where(rand(b) < weight * p, values, torch.zeros_like(values))

    xflip = gate(torch.randint(0, 2, (b,), generator=generator, device=dev).float(), XFLIP_WEIGHT)
    yflip = gate(torch.randint(0, 2, (b,), generator=generator, device=dev).float())
    log_scale = gate(randn(b) * 0.2)
    theta = gate((rand(b) * 2 - 1) * math.pi)
    log_aniso = gate(randn(b) * 0.2)
    phi = (rand(b) * 2 - 1) * math.pi
    shift = torch.stack([gate(randn(b) * 0.125), gate(randn(b) * 0.125)], 1)
    labels = torch.stack([xflip, yflip, log_scale, theta.cos() - 1, theta.sin(),
                          log_aniso * phi.cos(), log_aniso * phi.sin(), shift[:, 0], shift[:, 1]], 1)  # fmt: skip
    m = augment_matrix(xflip, yflip, log_scale, theta, log_aniso, phi)
    touched = (labels != 0).any(1).reshape(-1, 1, 1, 1)  # untouched images stay bit for bit (no host sync)
    return torch.where(touched, warp(images, m, shift), images), labels.to(images.dtype)


def _rot(a: torch.Tensor) -> torch.Tensor:
    c, s = a.cos(), a.sin()
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def _diag(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.diag_embed(torch.stack([u, v], -1))


def augment_matrix(xflip, yflip, log_scale, theta, log_aniso, phi) -> torch.Tensor:
    """Linear part (B, 2, 2) of the augmentation: R(φ) A R(−φ) · R(θ) · s · Flip."""
    s, a = 2**log_scale, 2**log_aniso
    m = _diag(1 - 2 * xflip, 1 - 2 * yflip)
    m = _diag(s, s) @ m
    m = _rot(theta) @ m
    return _rot(phi) @ _diag(a, 1 / a) @ _rot(-phi) @ m


def warp(images: torch.Tensor, m: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Resample images so that output(M·u + t) = input(u) in normalized coordinates
    (t = 2·shift, shift in image widths); bilinear, reflection padding."""
    inv = torch.linalg.inv_ex(m).inverse  # always invertible; inv_ex skips inv's host-side check
    t = (shift * 2)[:, :, None]
    theta_grid = torch.cat([inv, -(inv @ t)], 2).to(images.dtype)
    grid = F.affine_grid(theta_grid, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

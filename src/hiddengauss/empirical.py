"""The empirical-optimal ("multi-delta") denoiser: the exact posterior mean of the training set.

If the data distribution were the empirical one, (1/N) Σ_i δ(y − y_i), the optimal denoiser is

    D_M(x;σ) = Σ_i w_i(x) y_i,   w = softmax_i(−‖x − y_i‖² / (2σ²)).

A diffusion model that minimized its training loss exactly would be D_M and could only
reproduce training images; it is the memorization reference of the paper.
"""

from __future__ import annotations

import torch


def empirical_optimal_denoiser(
    x: torch.Tensor, sigma: float, train: torch.Tensor, chunk: int = 4096
) -> torch.Tensor:
    """D_M(x;σ) = Σ_i softmax_i(−‖x − y_i‖²/(2σ²)) y_i over the training images ``train`` (N, d).

    Exact and numerically stable down to σ = 0.002: squared distances are formed in float64
    and the softmax is accumulated over chunks of the training set with a running maximum
    (streaming log-sum-exp), so no N-wide weight matrix is kept. Returns x's dtype.
    """
    xd = x.to(torch.float64)
    x2 = (xd * xd).sum(1, keepdim=True)
    run_max = torch.full((x.shape[0], 1), -torch.inf, dtype=torch.float64, device=x.device)
    run_sum = torch.zeros_like(run_max)
    acc = torch.zeros_like(xd)
    for start in range(0, train.shape[0], chunk):
        y = train[start : start + chunk].to(device=x.device, dtype=torch.float64)
        d2 = (x2 - 2 * xd @ y.T + (y * y).sum(1)[None]).clamp_min(0)
        logits = -d2 / (2 * sigma**2)
        new_max = torch.maximum(run_max, logits.max(1, keepdim=True).values)
        scale = torch.exp(run_max - new_max)
        w = torch.exp(logits - new_max)
        run_sum = run_sum * scale + w.sum(1, keepdim=True)
        acc = acc * scale + w @ y
        run_max = new_max
    return (acc / run_sum).to(x.dtype)

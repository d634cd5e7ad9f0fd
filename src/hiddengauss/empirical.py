"""The empirical-optimal ("multi-delta") denoiser: the exact posterior mean of the training set.

If the data distribution were the empirical one, (1/N) Σ_i δ(y − y_i), the optimal denoiser is

    D_M(x;σ) = Σ_i w_i(x) y_i,   w = softmax_i(−‖x − y_i‖² / (2σ²)).

A diffusion model that minimized its training loss exactly would be D_M and could only
reproduce training images; it is the memorization reference of the paper.
"""

from __future__ import annotations

import torch


class StreamingSoftmaxMean:
    """Σ_i softmax_i(logit_i) v_i accumulated over chunks of i with a running maximum (streaming
    log-sum-exp): keeps the max, Σ exp and Σ exp·v of the logits seen so far, rescaled whenever
    the maximum grows, so no N-wide weight matrix is kept (also used by :mod:`.closed_forms`)."""

    def __init__(self) -> None:
        self.run_max = self.run_sum = self.acc = None

    def add(self, logits: torch.Tensor, weighted_sum) -> None:
        """``logits`` (*batch, n); ``weighted_sum(w)`` returns Σ_i w_i v_i for weights w shaped
        like the logits (summing over the last axis)."""
        m = logits.max(-1, keepdim=True).values
        if self.run_max is None:
            new_max = m
        else:
            new_max = torch.maximum(self.run_max, m)
        w = torch.exp(logits - new_max)
        part, total = weighted_sum(w), w.sum(-1, keepdim=True)
        if self.run_max is None:
            self.acc, self.run_sum = part, total
        else:
            scale = torch.exp(self.run_max - new_max)
            self.acc = self.acc * _expand(scale, part) + part
            self.run_sum = self.run_sum * scale + total
        self.run_max = new_max

    def mean(self) -> torch.Tensor:
        return self.acc / _expand(self.run_sum, self.acc)


def _expand(s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (*batch, 1) factor shaped to multiply a (*batch, …) accumulator."""
    return s.reshape(*s.shape[:-1], *([1] * (like.ndim - s.ndim + 1)))


def squared_distance_chunks(x: torch.Tensor, train: torch.Tensor, chunk: int = 4096):
    """Yields (y, ‖x_b − y_i‖²) chunk by chunk of the training images ``train`` (N, d): y the
    chunk in float64 on x's device, the squared distances (B, len(y)) formed in float64 as
    ‖x‖² − 2 x·y + ‖y‖² (clamped at 0), so no N-wide matrix is needed at once."""
    xd = x.to(torch.float64)
    x2 = (xd * xd).sum(1, keepdim=True)
    for start in range(0, train.shape[0], chunk):
        y = train[start : start + chunk].to(device=x.device, dtype=torch.float64)
        yield y, (x2 - 2 * xd @ y.T + (y * y).sum(1)[None]).clamp_min(0)


def empirical_optimal_denoiser(
    x: torch.Tensor, sigma: float, train: torch.Tensor, chunk: int = 4096
) -> torch.Tensor:
    """D_M(x;σ) = Σ_i softmax_i(−‖x − y_i‖²/(2σ²)) y_i over the training images ``train`` (N, d).

    Exact and numerically stable down to σ = 0.002: squared distances are formed in float64
    and the softmax is accumulated over chunks of the training set with a running maximum
    (streaming log-sum-exp), so no N-wide weight matrix is kept. Returns x's dtype.
    """
    acc = StreamingSoftmaxMean()
    for y, d2 in squared_distance_chunks(x, train, chunk):
        acc.add(-d2 / (2 * sigma**2), lambda w, y=y: w @ y)
    return acc.mean().to(x.dtype)

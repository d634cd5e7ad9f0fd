"""Probability-flow samplers on the EDM ρ-schedule, with per-sample seeded latents.

Any denoiser plugs in as a function ``denoise(x, sigma) -> D(x;σ)`` on flattened batches (B, d).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from .schedules import PRESETS, SamplerConfig, nfe  # noqa: F401  (presets and nfe re-exported)

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]  # D(x;σ) on flattened batches (B, d): the one alias


def seeded_latents(seeds, dim: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """z_i ~ N(0, I) drawn from its own generator seeded with ``seeds[i]``.

    Sample i is therefore the same whatever the batch it is generated in (EDM's
    StackedRandomGenerator), and every denoiser can be started from the same latents.
    """
    rows = [torch.randn(dim, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float64) for s in seeds]
    return torch.stack(rows).to(device=device, dtype=dtype)


def pf_ode_sampler(
    denoise: Denoiser,
    x_start: torch.Tensor,
    sigmas: np.ndarray,
    solver: str = "heun",
    churn_noise: Callable[[int], torch.Tensor] | None = None,
    s_churn: float = 0.0,
    s_min: float = 0.0,
    s_max: float = float("inf"),
    s_noise: float = 1.0,
    return_denoised: bool = False,
):
    """Integrate the probability-flow ODE dx/dσ = (x − D(x;σ))/σ along ``sigmas`` (last one 0).

    Euler step: x ← x + (σ_{i+1} − σ_i)·d_i, d_i = (x − D(x;σ_i))/σ_i. Heun adds the
    trapezoidal correction with d' at σ_{i+1}, except on the last step (σ_N = 0); NFE = 2N − 1.
    Optional stochastic churn (EDM Alg. 2): σ̂ = σ_i(1+γ_i), x̂ = x + √(σ̂² − σ_i²)·S_noise·ε_i,
    γ_i = min(S_churn/N, √2 − 1) for σ_i ∈ [S_min, S_max]; ε_i comes from ``churn_noise(i)``.
    Returns x_N (and the per-step denoised estimates D(x_i;σ_i), (N, B, d), if asked).
    """
    x = x_start
    n = len(sigmas) - 1
    denoised = []
    for i in range(n):
        s_cur, s_next = float(sigmas[i]), float(sigmas[i + 1])
        gamma = min(s_churn / n, np.sqrt(2) - 1) if s_churn > 0 and s_min <= s_cur <= s_max else 0.0
        if gamma > 0:
            s_hat = s_cur * (1 + gamma)
            x = x + np.sqrt(s_hat**2 - s_cur**2) * s_noise * churn_noise(i).to(x)
            s_cur = s_hat
        d_cur = denoise(x, s_cur)
        denoised.append(d_cur)
        slope = (x - d_cur) / s_cur
        x_next = x + (s_next - s_cur) * slope
        if solver == "heun" and s_next > 0:
            slope_next = (x_next - denoise(x_next, s_next)) / s_next
            x_next = x + (s_next - s_cur) * (slope + slope_next) / 2
        elif solver not in ("heun", "euler"):
            raise ValueError(f"unknown solver {solver!r}: use 'euler' or 'heun'")
        x = x_next
    return (x, torch.stack(denoised)) if return_denoised else x


def sample(
    denoise: Denoiser,
    seeds,
    dim: int,
    config: SamplerConfig = PRESETS["heun18"],
    batch_size: int = 256,
    dtype=torch.float64,
    device="cpu",
    return_denoised: bool = False,
    keep_denoised: int | None = None,
):
    """Samples for ``seeds`` in batches: x_0 = σ_max·z_seed, then :func:`pf_ode_sampler`.

    With ``return_denoised``, also the per-step denoised estimates (steps, n, d), of the first
    ``keep_denoised`` samples only when given (the rest are dropped batch by batch)."""
    sigmas = config.sigmas()
    outs, dens = [], []
    seeds = list(seeds)
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start : start + batch_size]
        z = seeded_latents(chunk, dim, dtype=dtype, device=device)
        churn = None
        if config.s_churn > 0:
            gens = [torch.Generator().manual_seed(int(s) + 2**31) for s in chunk]
            churn = lambda i: torch.stack([torch.randn(dim, generator=g, dtype=torch.float64) for g in gens])  # noqa: E731
        res = pf_ode_sampler(
            denoise, z * float(sigmas[0]), sigmas, config.solver, churn, config.s_churn,
            config.s_min, config.s_max, config.s_noise, return_denoised,
        )  # fmt: skip
        if return_denoised:
            outs.append(res[0])
            dens.append(res[1] if keep_denoised is None else res[1][:, : max(keep_denoised - start, 0)])
        else:
            outs.append(res)
    x = torch.cat(outs)
    return (x, torch.cat(dens, dim=1)) if return_denoised else x


def network_denoiser(net: torch.nn.Module, image_shape: tuple[int, int, int]) -> Denoiser:
    """Wrap an EDM network (images in, images out) as a denoiser of flattened batches."""

    @torch.no_grad()
    def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
        out = net(x.reshape(-1, *image_shape), sigma)
        return out.reshape(x.shape[0], -1).to(x.dtype)

    return denoise


def teleport(
    denoise: Denoiser, gaussian_pf_ode: Callable[[torch.Tensor, float, float], torch.Tensor], z: torch.Tensor,
    config: SamplerConfig, skip: int,
) -> torch.Tensor:  # fmt: skip
    """Analytical teleportation (Wang & Vastola): jump from x(σ_max) = σ_max z to σ_k of the
    N-step schedule with the Gaussian model's exact probability-flow map, then finish with the
    sampler on a ρ-schedule re-spaced on [σ_min, σ_k] with N − k steps. ``skip = 0`` is the
    plain sampler; a Heun run saves 2k network evaluations."""
    sigmas = config.sigmas()
    if not 0 <= skip < config.steps:
        raise ValueError(f"skip must be in [0, {config.steps - 1}], got {skip}")
    x = z * float(sigmas[0])
    if skip == 0:
        return pf_ode_sampler(denoise, x, sigmas, config.solver)
    s_k = float(sigmas[skip])
    x = gaussian_pf_ode(x, float(sigmas[0]), s_k)
    rest = replace(config, steps=config.steps - skip, sigma_max=s_k).sigmas()
    return pf_ode_sampler(denoise, x, rest, config.solver)

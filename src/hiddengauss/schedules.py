"""Noise-level grids of the EDM (Karras et al. 2022) ρ-schedule and the sampler presets built on it
(numpy only: the study plan reads them when Snakemake builds the DAG)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIGMA_MIN = 0.002
SIGMA_MAX = 80.0
RHO = 7.0


def at_sigma(table: dict, sigma: float, what: str):
    """``table[σ']`` for the stored σ' equal to ``sigma`` within 1e-9 relative (a grid recomputed
    elsewhere differs in the last bits); KeyError naming ``what`` and the stored σ's otherwise."""
    keys = np.array(sorted(table))
    k = float(keys[np.argmin(np.abs(keys - sigma))]) if keys.size else None
    if k is None or abs(k - sigma) > 1e-9 * max(sigma, 1e-12):
        raise KeyError(f"no {what} at σ={sigma} (stored at {keys.tolist()})")
    return table[k]


def karras_sigmas(
    num_steps: int,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    rho: float = RHO,
) -> np.ndarray:
    """EDM ρ-schedule, decreasing from σ_max to σ_min (no trailing zero).

    σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,  i = 0 … N−1.

    ``karras_sigmas(10)`` is the paper's grid G10 (80, 42.4152, …, 0.002) and
    ``karras_sigmas(40)`` its grid G40. A sampler appends σ_N = 0 itself.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    if num_steps == 1:
        return np.array([sigma_max], dtype=np.float64)
    i = np.arange(num_steps, dtype=np.float64)
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return (a + i / (num_steps - 1) * (b - a)) ** rho


def sigma_grid(spec: str | list[float]) -> np.ndarray:
    """A σ grid from the config: ``"G10"``/``"G40"`` (any ``G<N>``) or an explicit list."""
    if isinstance(spec, str):
        if not (spec.startswith("G") and spec[1:].isdigit()):
            raise ValueError(f"unknown sigma grid {spec!r}: use 'G10', 'G40' (any 'G<N>') or a list")
        return karras_sigmas(int(spec[1:]))
    grid = np.asarray(spec, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or np.any(grid <= 0):
        raise ValueError(f"a sigma list must hold positive numbers, got {spec!r}")
    return grid


def log_spaced_epochs(final_epoch: int, count: int, first_epoch: int = 1, extra: list[int] | None = None) -> list[int]:
    """``count`` integer epochs log-spaced from ``first_epoch`` to ``final_epoch`` (both included),
    plus the ``extra`` ones (≤ final), sorted and unique."""
    if final_epoch < 1:
        raise ValueError(f"final epoch must be >= 1, got {final_epoch}")
    first = min(max(1, first_epoch), final_epoch)
    grid = {final_epoch}
    if count > 1:
        grid |= {int(round(e)) for e in np.geomspace(first, final_epoch, count)}
    grid |= {e for e in (extra or []) if 1 <= e <= final_epoch}
    return sorted(grid)


@dataclass(frozen=True)
class SamplerConfig:
    """``solver`` 'euler' or 'heun'; ``steps`` N of the ρ-schedule (σ_N = 0 appended)."""

    solver: str = "heun"
    steps: int = 18
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    s_churn: float = 0.0
    s_min: float = 0.0
    s_max: float = float("inf")
    s_noise: float = 1.0

    def sigmas(self) -> np.ndarray:
        return np.append(karras_sigmas(self.steps, self.sigma_min, self.sigma_max, self.rho), 0.0)

    @property
    def nfe(self) -> int:
        return nfe(self)


PRESETS = {
    "euler10": SamplerConfig(solver="euler", steps=10),  # the paper's notebook sampler
    "heun18": SamplerConfig(solver="heun", steps=18),  # EDM's default
}


def nfe(config: SamplerConfig, skip: int = 0) -> int:
    """Network evaluations of a run that skips its first k steps (teleportation; k = 0 is the
    plain sampler): Heun 2(N−k)−1 (no correction on the last step), Euler N−k."""
    n = config.steps - skip
    return 2 * n - 1 if config.solver == "heun" else n

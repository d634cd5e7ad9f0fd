"""Uncertainty of the claims' statistics: a paired bootstrap over items, permutation p-values for
rank statistics, and the three-valued verdict (holds / fails / inconclusive).

Every per-item value (a held-out input, a linearity pair, a generated sample) is measured on the
same items for every model (the same held-out images, noise draws and latents), so a bootstrap
replicate resamples the *same* items for every model: comparisons between models keep their
pairing. A replicate is a column of weights (how often each item is drawn); column 0 is all ones,
the point estimate. Statistics are computed on arrays whose last axis runs over these columns.
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pandas as pd

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
CONFIDENCE = 0.95  # two-sided percentile interval
ALPHA = 0.05  # a rank statistic holds only if its one-sided permutation p-value is below this
EXACT_PERMUTATIONS = 8  # up to this many points, the permutation test enumerates every ordering


def item_rng(seed: int, universe: str) -> np.random.Generator:
    """The generator of one item universe ('inputs', 'pairs', 'samples', 'seeds'), from the config's seed."""
    return np.random.default_rng([seed, zlib.crc32(universe.encode())])


def bootstrap_weights(n_items: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_items, 1 + n_boot) weights: column 0 all ones, column b the multinomial counts of a
    resample of ``n_items`` items with replacement."""
    draws = rng.integers(0, n_items, size=(n_boot, n_items))
    counts = np.zeros((n_items, n_boot))
    for b in range(n_boot):
        counts[:, b] = np.bincount(draws[b], minlength=n_items)
    return np.concatenate([np.ones((n_items, 1)), counts], axis=1)


def replicate_means(items: pd.DataFrame, by: list[str], value: str, weights: np.ndarray) -> pd.DataFrame:
    """Weighted mean of ``value`` over the items of every group of ``by``, for every weight column.

    ``items`` has an integer ``item`` column indexing the rows of ``weights``. Returns a frame
    indexed by ``by`` with columns 0 … n_boot (0 = the plain mean). A group that lacks some
    items averages the ones it has."""
    if items.empty:
        return pd.DataFrame(columns=range(weights.shape[1]), index=pd.MultiIndex.from_arrays([[]] * len(by), names=by))
    n_items = weights.shape[0]
    if items["item"].max() >= n_items or items["item"].min() < 0:
        raise ValueError(f"item index out of range 0..{n_items - 1} in column {value!r}")
    wide = items.pivot_table(index=by, columns="item", values=value, aggfunc="mean")
    wide = wide.reindex(columns=range(n_items))
    v = wide.to_numpy(dtype=float)
    have = np.isfinite(v)
    num, den = np.where(have, v, 0.0) @ weights, have.astype(float) @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(num / den, index=wide.index)


def spearman_columns(x, y: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of ``x`` (n,) with every column of ``y`` (n, R), average ranks
    for ties; NaN where there are fewer than 3 points or no spread."""
    x = np.asarray(x, float)
    y = np.asarray(y, float).reshape(len(x), -1)
    if len(x) < 3 or np.unique(x).size < 2:
        return np.full(y.shape[1], np.nan)
    rx = pd.Series(x).rank().to_numpy()
    ry = pd.DataFrame(y).rank(axis=0).to_numpy()
    rx, ry = rx - rx.mean(), ry - ry.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx @ ry) / np.sqrt((rx**2).sum() * (ry**2).sum(axis=0))


def permutation_p_value(x, y, direction: str, n_perm: int = 10_000, rng: np.random.Generator | None = None) -> float:
    """One-sided permutation p-value of Spearman ρ(x, y) in ``direction`` ('>' large ρ, '<' small).

    The null hypothesis: the ordering of ``y`` is unrelated to ``x``. Up to EXACT_PERMUTATIONS
    points every ordering of ``y`` is enumerated (p = share of orderings at least as extreme,
    the observed one included: 1/24 at best with four points); beyond, ``n_perm`` random
    orderings give p = (1 + count)/(1 + n_perm)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    obs = spearman_columns(x, y[:, None])[0]
    if not np.isfinite(obs):
        return float("nan")
    if len(y) <= EXACT_PERMUTATIONS:
        perms = np.array(list(itertools.permutations(y))).T
        stats = spearman_columns(x, perms)
        extreme = stats >= obs - 1e-12 if direction == ">" else stats <= obs + 1e-12
        return float(extreme.mean())
    rng = rng or np.random.default_rng(0)
    perms = np.stack([rng.permutation(y) for _ in range(n_perm)], axis=1)
    stats = spearman_columns(x, perms)
    extreme = stats >= obs - 1e-12 if direction == ">" else stats <= obs + 1e-12
    return float((1 + extreme.sum()) / (1 + n_perm))


def interval(replicates) -> tuple[float, float]:
    """Percentile bootstrap interval (CONFIDENCE) of the replicates (point estimate excluded)."""
    r = np.asarray(replicates, float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - CONFIDENCE) / 2
    lo, hi = np.percentile(r, [tail, 100 - tail])
    return float(lo), float(hi)


def verdict(ci_low: float, ci_high: float, threshold: float, direction: str, p_value: float | None = None,
            enough: bool = True) -> str:  # fmt: skip
    """holds: the whole interval lies beyond the threshold in ``direction`` (and, for a rank
    statistic, its permutation p-value is below ALPHA); fails: the whole interval lies on the
    other side (or on the threshold); inconclusive: the interval straddles the threshold, the
    ordering could be chance, the interval is undefined, or ``enough`` is False (too few points)."""
    if not enough or not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return INCONCLUSIVE
    if direction not in (">", "<"):
        raise ValueError(f"direction must be '>' or '<', got {direction!r}")
    beyond = ci_low > threshold if direction == ">" else ci_high < threshold
    short = ci_high <= threshold if direction == ">" else ci_low >= threshold
    if short:
        return FAILS
    if beyond and (p_value is None or (np.isfinite(p_value) and p_value < ALPHA)):
        return HOLDS
    return INCONCLUSIVE

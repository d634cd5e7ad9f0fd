"""When memorization sets in: the memorized fraction of a run's samples over training time, the
time τ_mem(N) at which it crosses a level, its exponent in N, and the time τ_gen after which the
generalization metric (KID to held-out images) stops improving.

Bonnaire, Urfin, Biroli & Mézard (NeurIPS 2025) report τ_mem ∝ N while τ_gen does not depend on
N. The statistics, and which sizes count, are fixed in docs/claims.md (claim
``memorization_time_linear_in_n``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .distributions import kernel_distance
from .inference import bootstrap_weights, interval, item_rng
from .memorization import generalization_summary

CROSSED, NOT_REACHED, ALREADY = "crossed", "not reached", "memorized at the first checkpoint"
COLUMNS = ("quantity", "dataset_size", "value", "ci_low", "ci_high", "epochs", "status", "n_sizes", "dropped_replicates")


def checkpoint_memorization(x: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor, n_boot: int = 200,
                            seed: int = 0) -> tuple[dict, pd.DataFrame]:  # fmt: skip
    """One checkpoint's samples ``x`` (n, d): the memorized fraction against its training images
    (the criterion of :func:`.memorization.generalization_summary`) and KID to the held-out
    images, with a percentile interval whose resamples (from ``seed``) are the same at every
    checkpoint of a study; per-sample items (item, nn_ratio, memorized)."""
    summary, per = generalization_summary(x, train, items=True)
    wa = bootstrap_weights(len(x), n_boot, item_rng(seed, "memorization_time:samples"))[:, 1:].T
    wb = bootstrap_weights(len(heldout), n_boot, item_rng(seed, "memorization_time:heldout"))[:, 1:].T
    kid = kernel_distance(x, heldout)
    lo, hi = interval(kernel_distance(x, heldout, torch.as_tensor(wa), torch.as_tensor(wb)).numpy())
    row = {"n_samples": summary["n_samples"], "memorized_fraction": summary["memorized_fraction"],
           "kid_heldout": kid, "kid_ci_low": lo, "kid_ci_high": hi}  # fmt: skip
    return row, pd.DataFrame({"item": np.arange(len(x)), **per})


def crossing_time(t: np.ndarray, f: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Where f first reaches ``level``, linear in log t between checkpoints:
    log τ = log t_{j−1} + (level − f_{j−1}) / (f_j − f_{j−1}) · (log t_j − log t_{j−1}), j the first
    checkpoint with f_j ≥ level. ``t`` (E,) increasing, ``f`` (E,) or (E, R) one curve per column.
    NaN where f never reaches the level, or already reaches it at the first checkpoint."""
    t, f = np.asarray(t, float), np.asarray(f, float)
    one = f.ndim == 1
    f = f.reshape(len(t), -1)
    above = f >= level
    j = np.argmax(above, axis=0)
    tau = np.full(f.shape[1], np.nan)
    ok = above.any(0) & (j > 0)
    c = np.flatnonzero(ok)
    j0, j1 = j[c] - 1, j[c]
    frac = (level - f[j0, c]) / (f[j1, c] - f[j0, c])
    tau[c] = np.exp(np.log(t[j0]) + frac * (np.log(t[j1]) - np.log(t[j0])))
    return tau[0] if one else tau


def power_law_exponent(n: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """β of τ ≈ c·N^β: the least-squares slope of log τ against log N,
    β = Σ (u − ū)(v − v̄) / Σ (u − ū)², u = log N, v = log τ; ``tau`` (S,) or (S, R) per column."""
    u = np.log(np.asarray(n, float))
    v = np.log(np.asarray(tau, float))
    uc = (u - u.mean())[:, None] if v.ndim > 1 else u - u.mean()
    return (uc * (v - v.mean(0))).sum(0) / (uc**2).sum(0)


def slope_interval(n: np.ndarray, tau: np.ndarray) -> tuple[float, float]:
    """The 95% t-interval β ± t₀.₉₇₅(S−2)·SE of the least-squares slope over S ≥ 3 sizes,
    SE² = Σ residual² / ((S − 2) Σ (u − ū)²)."""
    from scipy import stats

    u, v = np.log(np.asarray(n, float)), np.log(np.asarray(tau, float))
    beta = power_law_exponent(n, tau)
    resid = v - v.mean() - beta * (u - u.mean())
    se = np.sqrt((resid**2).sum() / ((len(u) - 2) * ((u - u.mean()) ** 2).sum()))
    half = stats.t.ppf(0.975, len(u) - 2) * se
    return float(beta - half), float(beta + half)


def generalization_time(t: np.ndarray, kid: np.ndarray, kid_high: np.ndarray) -> int:
    """Index of τ_gen: the first checkpoint whose KID to held-out images is at most the upper end
    of the interval of the smallest KID of the run (the metric stops improving beyond its noise)."""
    kid, kid_high = np.asarray(kid, float), np.asarray(kid_high, float)
    return int(np.argmax(kid <= kid_high[np.argmin(kid)]))


def curve_frame(curves: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The memorization_curve table with each checkpoint's ``images_seen`` from runs.csv (the
    memorization_time experiment's rows); raises naming a checkpoint runs.csv does not have."""
    seen = runs[runs["experiment"] == "memorization_time"][["run_id", "epoch", "images_seen"]].drop_duplicates()
    out = curves.merge(seen, on=["run_id", "epoch"], how="left")
    missing = out[out["images_seen"].isna()]
    if not missing.empty:
        r = missing.iloc[0]
        raise ValueError(f"runs.csv has no memorization_time row for {r['run_id']} epoch {r['epoch']}")
    return out


def memorization_time_table(curves: pd.DataFrame, items: pd.DataFrame, level: float = 0.5, n_boot: int = 1000,
                            seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """memorization_time.csv from the checkpoints' curves (run_id, epoch, dataset_size,
    images_seen, seed, memorized_fraction, kid_heldout, kid_ci_high) and per-sample items (run_id,
    epoch, item, memorized). Rows (``quantity``): ``tau_mem`` per size (value: images seen at the
    crossing of ``level``, interval from a bootstrap over the sample indices shared by every run,
    ``status`` crossed / not reached (value: the last checkpoint) / memorized at the first
    checkpoint (value: the first)); ``tau_gen`` per size (the checkpoint of
    :func:`generalization_time`, interval from the checkpoint before it); ``exponent_mem`` (β of
    τ_mem over the crossed sizes, bootstrap interval, ``dropped_replicates`` the share in which
    a crossed size did not cross) and ``exponent_gen`` (with the t-interval of
    :func:`slope_interval`), each when at least two (three) sizes allow it. Seeds of one size are
    pooled at each epoch."""
    n_items = int(items["item"].max()) + 1
    w = bootstrap_weights(n_items, n_boot, item_rng(seed, "memorization_time:items"))
    rows, taus = [], {}
    for size, c in curves.groupby("dataset_size"):
        grid = c.groupby("epoch").agg(t=("images_seen", "mean"), kid=("kid_heldout", "mean"),
                                      kid_high=("kid_ci_high", "mean")).sort_index()  # fmt: skip
        m = items.merge(c[["run_id", "epoch"]], on=["run_id", "epoch"])
        pivot = m.pivot_table(index="epoch", columns="item", values="memorized", aggfunc="mean").reindex(grid.index)
        if pivot.shape[1] != n_items or pivot.isna().any().any():
            raise ValueError(f"memorization items of N={size} do not cover items 0..{n_items - 1} at every epoch")
        frac = pivot.to_numpy() @ w / w.sum(0)  # (epochs, 1 + R)
        t = grid["t"].to_numpy()
        tau = crossing_time(t, frac, level)
        if np.isfinite(tau[0]) and np.isfinite(tau[1:]).any():
            status, value, (lo, hi) = CROSSED, tau[0], interval(tau[1:])
            taus[size] = tau
        elif frac[0, 0] >= level:
            status, value, lo, hi = ALREADY, t[0], t[0], t[0]
        else:  # not reached (or crossed on the full sample in no resample: as good as not)
            status, value, lo, hi = NOT_REACHED, t[-1], t[-1], t[-1]
        rows.append({"quantity": "tau_mem", "dataset_size": size, "value": value, "ci_low": lo, "ci_high": hi,
                     "epochs": value / size, "status": status, "n_sizes": 1,
                     "dropped_replicates": float(np.mean(~np.isfinite(tau[1:]))) if status == CROSSED else 0.0})  # fmt: skip
        g = generalization_time(t, grid["kid"], grid["kid_high"])
        rows.append({"quantity": "tau_gen", "dataset_size": size, "value": t[g], "ci_low": t[max(g - 1, 0)],
                     "ci_high": t[g], "epochs": t[g] / size, "status": "checkpoint resolution", "n_sizes": 1,
                     "dropped_replicates": 0.0})  # fmt: skip
    if len(taus) >= 2:
        sizes = np.array(sorted(taus))
        stack = np.stack([taus[s] for s in sizes])  # (S, 1 + R)
        keep = np.isfinite(stack[:, 1:]).all(0)
        beta = power_law_exponent(sizes, stack)
        lo, hi = interval(beta[1:][keep]) if keep.any() else (np.nan, np.nan)
        if np.isfinite(lo):
            rows.append({"quantity": "exponent_mem", "dataset_size": 0, "value": beta[0], "ci_low": lo, "ci_high": hi,
                         "epochs": 0.0, "status": f"fit over N = {', '.join(map(str, sizes))}", "n_sizes": len(sizes),
                         "dropped_replicates": float(1 - keep.mean())})  # fmt: skip
    gen = pd.DataFrame([r for r in rows if r["quantity"] == "tau_gen"])
    if len(gen) >= 3:
        beta = power_law_exponent(gen["dataset_size"], gen["value"])
        lo, hi = slope_interval(gen["dataset_size"], gen["value"])
        rows.append({"quantity": "exponent_gen", "dataset_size": 0, "value": beta, "ci_low": lo, "ci_high": hi,
                     "epochs": 0.0, "status": "least-squares t-interval over every size", "n_sizes": len(gen),
                     "dropped_replicates": 0.0})  # fmt: skip
    return pd.DataFrame(rows, columns=list(COLUMNS))

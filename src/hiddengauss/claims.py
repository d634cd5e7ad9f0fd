"""Verdicts on the paper's claims, computed from this run's tables (claims.csv).

Every statistic and threshold is fixed here, before any result is seen, and is the same for every
data set; a claim that does not hold on a run is reported with ``holds = False``. A claim whose
experiment is not in the config is reported with an empty ``holds`` and a note.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .tables import last_checkpoints, require_finite

INTERMEDIATE_SIGMA = (0.4, 10.0)  # the σ range where trained denoisers depart most from D_G [reb]
MEMORIZING = 0.5  # memorized fraction at or above which a checkpoint memorizes
GENERALIZING = 0.1  # memorized fraction at or below which a checkpoint generalizes
MAIN_A = 0.5  # the paper's linearity setting α = β = 1/√2
PREFERRED_SAMPLER = "heun18"

COLUMNS = ["claim_id", "claim", "statistic", "value", "threshold", "holds", "n", "note"]


def _row(cid, claim, statistic, value, threshold, holds, n, note="") -> dict:
    if holds is not None and not np.isfinite(value):
        holds, note = None, note or "statistic undefined: fewer than 3 distinct values, or no spread in one variable"
    return dict(claim_id=cid, claim=claim, statistic=statistic, value=value, threshold=threshold,
                holds=None if holds is None else bool(holds), n=n, note=note)  # fmt: skip


def spearman(x, y) -> float:
    """Spearman rank correlation (ties get average ranks); NaN with fewer than 3 points or no spread."""
    x, y = pd.Series(np.asarray(x, float)), pd.Series(np.asarray(y, float))
    if len(x) < 3 or x.nunique() < 2 or y.nunique() < 2:
        return float("nan")
    return float(x.rank().corr(y.rank()))


def _runs(tables, experiment, final_only=True) -> pd.DataFrame:
    runs = tables["runs"]
    rows = runs[runs["experiment"] == experiment]
    if final_only and not rows.empty:
        rows = last_checkpoints(rows)
    return rows


def _generalization(tables, final_only: bool = False) -> pd.DataFrame:
    """Memorization of every evaluated checkpoint (or of every run's final checkpoint: the trained
    models the paper's claims are about; early checkpoints of an untrained model copy nothing
    without generalizing either)."""
    gen = tables["generalization"]
    sampler = PREFERRED_SAMPLER if (gen["sampler"] == PREFERRED_SAMPLER).any() else gen["sampler"].iloc[0]
    gen = gen[gen["sampler"] == sampler][["run_id", "epoch", "memorized_fraction", "gl_score"]]
    if final_only:
        gen = gen.merge(last_checkpoints(tables["runs"])[["run_id", "epoch"]], on=["run_id", "epoch"])
    return gen


def gaussian_gap(tables, runs: pd.DataFrame) -> pd.DataFrame:
    """Mean RMSE(network, Gaussian) over the intermediate σ range, per (run_id, epoch) of ``runs``."""
    d = tables["denoiser_distances"]
    lo, hi = INTERMEDIATE_SIGMA
    d = d[(d["pair"] == "network-gaussian") & d["sigma"].between(lo, hi)]
    gap = d.groupby(["run_id", "epoch"])["rmse"].mean().rename("gap").reset_index()
    return runs.merge(gap, on=["run_id", "epoch"])


def _by(frame, column, value) -> pd.Series:
    """Mean of ``value`` over seeds, per value of ``column``."""
    return frame.groupby(column)[value].mean()


def linearity_grows_with_data(tables) -> dict:
    cid, claim = "linearity_grows_with_data", "denoisers become more linear as the training set grows"
    stat = f"Spearman rho(N, min over sigma of linearity cosine), denoiser, noisy held-out inputs, a={MAIN_A}"
    runs = _runs(tables, "dataset_size")
    if runs.empty:
        return _row(cid, claim, stat, np.nan, "> 0.5", None, 0, "dataset_size experiment not configured")
    lin = tables["linearity"]
    lin = lin[(lin["target"] == "denoiser") & (lin["inputs"] == "noisy") & np.isclose(lin["a"], MAIN_A)]
    mins = lin.groupby(["run_id", "epoch"])["cosine"].min().rename("min_cos").reset_index()
    per = _by(runs.merge(mins, on=["run_id", "epoch"]), "dataset_size", "min_cos")
    rho = spearman(per.index, per.values)
    return _row(cid, claim, stat, rho, "> 0.5", rho > 0.5, len(per))


def linear_is_gaussian_when_generalizing(tables) -> dict:
    cid, claim = "linear_is_gaussian_when_generalizing", "the distilled linear denoiser matches the Gaussian denoiser when the model generalizes"
    stat = f"mean over generalizing runs (final checkpoint, memorized fraction <= {GENERALIZING}) of max over sigma of nmse(linear, Gaussian)"
    gen = _generalization(tables, final_only=True)
    good = gen[gen["memorized_fraction"] <= GENERALIZING]
    d = tables["denoiser_distances"]
    d = d[d["pair"] == "linear-gaussian"].merge(good[["run_id", "epoch"]], on=["run_id", "epoch"])
    if d.empty:
        return _row(cid, claim, stat, np.nan, "< 0.2", None, 0, "no generalizing checkpoint")
    per = d.groupby(["run_id", "epoch"])["nmse"].max()
    return _row(cid, claim, stat, float(per.mean()), "< 0.2", per.mean() < 0.2, len(per))


def linear_departs_when_memorizing(tables) -> dict:
    cid, claim = "linear_departs_when_memorizing", "the linear-Gaussian match breaks when the model memorizes"
    stat = (f"mean nmse(linear, Gaussian) over sigma: memorizing (memorized fraction >= {MEMORIZING}) "
            f"divided by generalizing (<= {GENERALIZING}) runs, final checkpoints")  # fmt: skip
    gen = _generalization(tables, final_only=True)
    d = tables["denoiser_distances"]
    d = d[d["pair"] == "linear-gaussian"].groupby(["run_id", "epoch"])["nmse"].mean().rename("nmse").reset_index()
    d = d.merge(gen, on=["run_id", "epoch"])
    mem, good = d[d["memorized_fraction"] >= MEMORIZING], d[d["memorized_fraction"] <= GENERALIZING]
    if mem.empty or good.empty:
        return _row(cid, claim, stat, np.nan, "> 2", None, len(d), "needs both memorizing and generalizing checkpoints")
    ratio = float(mem["nmse"].mean() / good["nmse"].mean())
    return _row(cid, claim, stat, ratio, "> 2", ratio > 2, len(mem) + len(good))


def gaussian_gap_shrinks_with_data(tables) -> dict:
    cid, claim = "gaussian_gap_shrinks_with_data", "the network-Gaussian distance falls as the training set grows"
    lo, hi = INTERMEDIATE_SIGMA
    stat = f"Spearman rho(N, mean RMSE(network, Gaussian) over {lo} <= sigma <= {hi})"
    runs = _runs(tables, "dataset_size")
    if runs.empty:
        return _row(cid, claim, stat, np.nan, "< -0.5", None, 0, "dataset_size experiment not configured")
    per = _by(gaussian_gap(tables, runs), "dataset_size", "gap")
    rho = spearman(per.index, per.values)
    return _row(cid, claim, stat, rho, "< -0.5", rho < -0.5, len(per))


def gaussian_gap_grows_with_scale(tables) -> list[dict]:
    lo, hi = INTERMEDIATE_SIGMA
    runs = _runs(tables, "model_scale")
    specs = [("gaussian_gap_grows_with_scale", "at fixed small data, bigger models drift from the Gaussian denoiser",
              f"Spearman rho(model scale, mean RMSE(network, Gaussian) over {lo} <= sigma <= {hi})", "gap"),
             ("memorization_grows_with_scale", "at fixed small data, bigger models memorize",
              "Spearman rho(model scale, memorized fraction)", "memorized_fraction")]  # fmt: skip
    if runs.empty:
        return [_row(c, cl, st, np.nan, "> 0.5", None, 0, "model_scale experiment not configured") for c, cl, st, _ in specs]
    frame = gaussian_gap(tables, runs).merge(_generalization(tables), on=["run_id", "epoch"])
    out = []
    for cid, claim, stat, col in specs:
        per = _by(frame, "model_scale", col)
        rho = spearman(per.index, per.values)
        out.append(_row(cid, claim, stat, rho, "> 0.5", rho > 0.5, len(per)))
    return out


def early_training_is_gaussian(tables) -> list[dict]:
    runs = _runs(tables, "training_epochs", final_only=False)
    lo, hi = INTERMEDIATE_SIGMA
    specs = [("early_training_is_gaussian", "overparameterized models are closest to the Gaussian denoiser early in training",
              f"mean RMSE(network, Gaussian) over {lo} <= sigma <= {hi}: final checkpoint / earliest checkpoint", "> 1"),
             ("memorization_grows_with_epochs", "memorization sets in later in training",
              "Spearman rho(epoch, memorized fraction)", "> 0.5")]  # fmt: skip
    if runs.empty:
        return [_row(c, cl, st, np.nan, th, None, 0, "training_epochs experiment not configured") for c, cl, st, th in specs]
    frame = gaussian_gap(tables, runs).merge(_generalization(tables), on=["run_id", "epoch"])
    gap = _by(frame, "epoch", "gap")
    ratio = float(gap.iloc[-1] / gap.iloc[0])
    mem = _by(frame, "epoch", "memorized_fraction")
    rho = spearman(mem.index, mem.values)
    return [_row(*specs[0][:3], ratio, "> 1", ratio > 1, len(gap)), _row(*specs[1][:3], rho, "> 0.5", rho > 0.5, len(mem))]


def strong_generalization(tables) -> list[dict]:
    sg = tables.get("strong_generalization")
    c1 = ("strong_generalization", "models trained on disjoint halves agree when they generalize (large N), not when they memorize (small N)",
          "S1-S2 same-latent cosine of fully trained pairs: largest N minus smallest N", "> 0")  # fmt: skip
    c2 = ("strong_generalization_remedies", "early stopping or a small model restores agreement at small N",
          "smallest S1-S2 cosine of the remedy pairs minus that of the fully trained pair at the same N", "> 0")  # fmt: skip
    if sg is None or sg.empty:
        return [_row(*c[:3], np.nan, c[3], None, 0, "strong_generalization experiment not configured") for c in (c1, c2)]
    s = PREFERRED_SAMPLER if (sg["sampler"] == PREFERRED_SAMPLER).any() else sg["sampler"].iloc[0]
    sg = sg[sg["sampler"] == s]
    full = _by(sg[sg["kind"] == "full"], "dataset_size", "s1_s2_cosine")
    out = []
    if len(full) >= 2:
        diff = float(full.iloc[-1] - full.iloc[0])
        out.append(_row(*c1[:3], diff, "> 0", diff > 0, len(full)))
    else:
        out.append(_row(*c1[:3], np.nan, "> 0", None, len(full), "needs full pairs at two sizes"))
    smallest = full.index.min() if len(full) else None
    remedies = sg[(sg["kind"] != "full") & (sg["dataset_size"] == smallest)]
    if remedies.empty:
        out.append(_row(*c2[:3], np.nan, "> 0", None, 0, "no remedy pairs configured"))
    else:
        diff = float(remedies.groupby("kind")["s1_s2_cosine"].mean().min() - full.loc[smallest])
        out.append(_row(*c2[:3], diff, "> 0", diff > 0, len(remedies)))
    return out


def evaluate_claims(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """claims.csv from the run's tables (runs, linearity, denoiser_distances, generalization,
    strong_generalization)."""
    require_finite(tables)
    rows = [linearity_grows_with_data(tables), linear_is_gaussian_when_generalizing(tables),
            linear_departs_when_memorizing(tables), gaussian_gap_shrinks_with_data(tables),
            *gaussian_gap_grows_with_scale(tables), *early_training_is_gaussian(tables),
            *strong_generalization(tables)]  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)

"""Claims, their intervals and verdicts, on synthetic tables built to hold, to contradict, or to overlap."""

import numpy as np
import pandas as pd
import pytest
import synthetic_study as synth
import torch
from scipy import stats

from hiddengauss.claims import evaluate_claims
from hiddengauss.edm import expected_sigma_draws, sample_training_sigmas, trained_sigmas
from hiddengauss.inference import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    bootstrap_weights,
    interval,
    permutation_p_value,
    replicate_means,
    spearman_columns,
    verdict,
)

# claims whose evidence is the memorized fraction alone (their items carry no added noise)
MEMORIZATION_ONLY = {"memorization_grows_with_scale", "memorization_grows_with_epochs", "memorization_time_linear_in_n"}
# claims that need both regimes in one experiment: the contradicting world (memorization
# reversed) has no generalizing checkpoint there, so they are left open, with the reason
PREMISE = {"linear_is_gaussian_when_generalizing", "linear_departs_when_memorizing", "early_training_is_gaussian",
           "local_beats_gaussian_at_intermediate_sigma", "gaussian_suffices_at_high_sigma"}  # the last two: generalizing final checkpoints


def claims_of(tables, **kw):
    return evaluate_claims(tables, bootstrap=kw.pop("bootstrap", 300), **kw).set_index("claim_id")


@pytest.fixture(scope="module")
def held():
    return claims_of(synth.build_tables())


def test_every_claim_holds_on_tables_built_to_satisfy_it(held):
    assert (held["verdict"] == HOLDS).all(), held[["value", "ci_low", "ci_high", "p_value", "verdict", "note"]]
    assert held["holds"].tolist() == [True] * len(held)
    assert (held["ci_low"] <= held["value"] + 1e-9).all() and (held["value"] <= held["ci_high"] + 1e-9).all()
    assert held.loc["gaussian_gap_shrinks_with_data", "sigma_window"].startswith("0.47 <= sigma <= 9.72")


def test_every_claim_fails_on_tables_built_to_contradict_it():
    c = claims_of(synth.build_tables(flip=True))
    assert (c.drop(index=list(PREMISE))["verdict"] == FAILS).all(), c[["value", "ci_low", "ci_high", "verdict"]]
    for cid in PREMISE:
        assert c.loc[cid, "verdict"] == INCONCLUSIVE and "generalizing" in c.loc[cid, "note"]


def _reshape_distance(tables, pair, value_of):
    """Replace the per-item values of one denoiser pair with value_of(row of runs-like keys)."""
    d = tables["distance_items"]
    sel = d["pair"] == pair
    d.loc[sel, ["rms", "nmse"]] = np.repeat(value_of(d[sel])[:, None], 2, axis=1)


def test_closed_form_claims_fail_when_the_local_model_is_worse_and_the_gaussian_explains_little():
    tables = synth.build_tables()
    d = tables["distance_items"]
    local, gauss = d["pair"] == "network-local", d["pair"] == "network-gaussian"
    d.loc[local, "rms"] = d.loc[gauss, "rms"].to_numpy() * 1.5  # the same items, 50% larger errors
    d["spread"] = 0.005  # the network's output barely varies across pixels: the Gaussian explains < 90% of it
    c = claims_of(tables)
    assert c.loc["local_beats_gaussian_at_intermediate_sigma", "verdict"] == FAILS
    assert c.loc["gaussian_suffices_at_high_sigma", "verdict"] == FAILS
    tables["distance_items"] = d[~local]  # no local model configured: said so
    assert "lacks local" in claims_of(tables).loc["local_beats_gaussian_at_intermediate_sigma", "note"]


def test_linear_gaussian_claims_fail_when_the_linear_map_departs_in_the_wrong_regime():
    tables = synth.build_tables()
    mem = tables["generalization_items"].groupby(["run_id", "epoch"])["memorized"].mean()
    _reshape_distance(tables, "linear-gaussian",
                      lambda d: 0.5 - 0.4 * mem.loc[list(zip(d["run_id"], d["epoch"]))].to_numpy())  # fmt: skip
    c = claims_of(tables)
    assert c.loc["linear_is_gaussian_when_generalizing", "verdict"] == FAILS
    assert c.loc["linear_departs_when_memorizing", "verdict"] == FAILS


def test_early_training_fails_when_the_gap_keeps_falling_through_memorization():
    """The digits situation of issue 16: the gap falls monotonically while memorization rises."""
    tables = synth.build_tables()
    epochs_run = tables["runs"].query("experiment == 'training_epochs'")["run_id"].iloc[0]
    d = tables["distance_items"]
    sel = (d["pair"] == "network-gaussian") & (d["run_id"] == epochs_run)
    d.loc[sel, "rms"] = 1.0 / d.loc[sel, "epoch"]
    c = claims_of(tables)
    assert c.loc["early_training_is_gaussian", "verdict"] == FAILS
    assert c.loc["early_training_is_gaussian", "value"] < 1


def test_claims_are_inconclusive_when_intervals_overlap_the_threshold():
    c = claims_of(synth.build_tables(noise=1.0))
    open_ = c.drop(index=list(MEMORIZATION_ONLY))
    assert (open_["verdict"] == INCONCLUSIVE).all(), open_[["value", "ci_low", "ci_high", "p_value", "verdict"]]
    assert open_["holds"].isna().all()
    assert ((c["ci_high"] - c["ci_low"]) > 0).drop(index=list(MEMORIZATION_ONLY)).all()


def test_warm_up_checkpoints_never_count():
    tables = synth.build_tables()
    runs = tables["runs"]
    epochs_run = runs.query("experiment == 'training_epochs'")
    first = epochs_run["epoch"].min()
    runs.loc[(runs["run_id"] == epochs_run["run_id"].iloc[0]) & (runs["epoch"] == first), "images_seen"] = 10
    c = claims_of(tables)
    row = c.loc["early_training_is_gaussian"]
    assert f"@{first} " not in row["checkpoints"] + " " and "1 warm-up checkpoint" in row["note"]


def test_the_sigma_window_follows_the_images_each_checkpoint_saw(held):
    tables = synth.build_tables()
    tables["runs"]["images_seen"] = 3_000  # every checkpoint saw few images: a narrow window
    c = claims_of(tables)
    window = c.loc["gaussian_gap_shrinks_with_data", "sigma_window"]
    assert window != held.loc["gaussian_gap_shrinks_with_data", "sigma_window"] and "1.5" in window


def test_claims_without_an_experiment_are_left_open():
    tables = synth.build_tables()
    tables["runs"] = tables["runs"][tables["runs"]["experiment"] != "training_epochs"]
    claims = claims_of(tables)
    assert claims.loc["early_training_is_gaussian", "verdict"] == INCONCLUSIVE
    assert claims.loc["early_training_is_gaussian", "holds"] is None
    assert "training_epochs" in claims.loc["early_training_is_gaussian", "note"]
    assert claims.loc["linearity_grows_with_data", "verdict"] == HOLDS


def test_claims_are_deterministic_and_follow_the_seed():
    tables = synth.build_tables(noise=0.5)
    a, b = claims_of(tables, seed=3), claims_of(tables, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low"].fillna(0), claims_of(tables, seed=4)["ci_low"].fillna(0))


# --------------------------------------------------------------------------- inference


def test_spearman_columns_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    x = np.array([1, 2, 2, 3, 5.0])
    y = rng.integers(0, 3, size=(5, 20)).astype(float)
    got = spearman_columns(x, y)
    for j in range(20):
        want = stats.spearmanr(x, y[:, j]).statistic
        assert got[j] == pytest.approx(want) or (np.isnan(got[j]) and np.isnan(want))
    assert np.isnan(spearman_columns([1, 2], [[1], [2]])[0])


def test_permutation_p_value_of_a_random_ordering_is_not_small():
    rng = np.random.default_rng(0)
    ps = [permutation_p_value(np.arange(6), rng.permutation(6).astype(float), ">") for _ in range(200)]
    assert np.mean(ps) > 0.4 and np.mean(np.array(ps) < 0.05) < 0.1  # about uniform under the null
    assert permutation_p_value([1, 2, 3, 4], [1.0, 2, 3, 4], ">") == pytest.approx(1 / 24)  # best with 4 points
    assert permutation_p_value([1, 2, 3, 4], [1.0, 2, 3, 4], "<") == pytest.approx(1.0)
    x = np.arange(12.0)
    p = permutation_p_value(x, x + rng.normal(0, 0.1, 12), ">", n_perm=2000, rng=np.random.default_rng(1))
    assert p == pytest.approx(1 / 2001)
    assert permutation_p_value(x, rng.permutation(12).astype(float), ">", n_perm=2000) > 0.01


def test_bootstrap_weights_resample_items_with_replacement():
    w = bootstrap_weights(7, 500, np.random.default_rng(0))
    assert w.shape == (7, 501) and (w[:, 0] == 1).all() and (w.sum(0) == 7).all()
    assert w[:, 1:].mean() == pytest.approx(1.0, abs=0.05) and (w[:, 1:] == 0).any()


def test_replicate_means_pair_the_same_items_across_groups():
    """Two models measured on the same items: the bootstrap of their difference is tight when the
    item effect is shared, although each mean alone varies widely."""
    rng = np.random.default_rng(0)
    item_effect = rng.normal(0, 1, 50)
    items = pd.DataFrame({"model": np.repeat(["a", "b"], 50), "item": np.tile(np.arange(50), 2),
                          "v": np.concatenate([item_effect, item_effect + 0.1])})  # fmt: skip
    m = replicate_means(items, ["model"], "v", bootstrap_weights(50, 400, np.random.default_rng(1)))
    diff = (m.loc["b"] - m.loc["a"]).to_numpy()
    np.testing.assert_allclose(diff, 0.1, atol=1e-12)
    assert m.loc["a", 0] == pytest.approx(item_effect.mean())
    lo, hi = interval(m.loc["a"].to_numpy()[1:])
    assert hi - lo > 0.3  # one mean alone: about ±2/√50


def test_verdict_rules():
    assert verdict(0.6, 0.9, 0.5, ">") == HOLDS
    assert verdict(0.6, 0.9, 0.5, ">", p_value=0.2) == INCONCLUSIVE  # the ordering could be chance
    assert verdict(0.1, 0.4, 0.5, ">") == FAILS
    assert verdict(0.4, 0.6, 0.5, ">") == INCONCLUSIVE
    assert verdict(-0.9, -0.6, -0.5, "<") == HOLDS and verdict(-0.4, 0.2, -0.5, "<") == FAILS
    assert verdict(0.6, 0.9, 0.5, ">", enough=False) == INCONCLUSIVE
    assert verdict(np.nan, np.nan, 0.5, ">") == INCONCLUSIVE


def test_expected_sigma_draws_match_simulated_training_draws():
    n = 200_000
    sigmas = sample_training_sigmas(n, generator=torch.Generator().manual_seed(0)).numpy()
    for s in (0.01, 0.3, 2.0, 10.0):
        simulated = ((np.log(sigmas) > np.log(s) - 0.25) & (np.log(sigmas) < np.log(s) + 0.25)).sum()
        assert simulated == pytest.approx(expected_sigma_draws(s, n), rel=0.1, abs=10)
    grid = np.array([0.002, 0.02, 0.47, 9.72, 21.1, 80.0])
    assert trained_sigmas(grid, 50_000).tolist() == [False, True, True, True, False, False]
    assert trained_sigmas(grid, 70e6).all()

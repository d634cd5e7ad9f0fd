"""Memorization time: the crossing interpolation, the power-law exponent and the table that
decides claim memorization_time_linear_in_n, on curves whose answer is known."""

import numpy as np
import pandas as pd
import pytest
import torch

from hiddengauss.memorization_time import (
    ALREADY,
    CROSSED,
    NOT_REACHED,
    checkpoint_memorization,
    crossing_time,
    curve_frame,
    generalization_time,
    memorization_time_table,
    power_law_exponent,
    slope_interval,
)


def test_crossing_is_linear_in_log_time():
    t = np.array([1.0, 10.0, 100.0, 1000.0])
    assert crossing_time(t, np.array([0.0, 0.4, 0.6, 0.9])) == pytest.approx(10**1.5)
    assert crossing_time(t, np.array([0.0, 0.1, 0.5, 0.9])) == pytest.approx(100.0)  # exactly at a checkpoint
    assert crossing_time(t, np.array([0.0, 0.2, 0.9, 0.4]), level=0.3) == pytest.approx(10 ** (1 + 1 / 7))  # the first crossing
    assert np.isnan(crossing_time(t, np.array([0.0, 0.1, 0.2, 0.3])))  # never
    assert np.isnan(crossing_time(t, np.array([0.6, 0.7, 0.8, 0.9])))  # already at the first checkpoint
    cols = crossing_time(t, np.array([[0.0, 0.6], [0.4, 0.7], [0.6, 0.8], [0.9, 0.9]]))
    assert cols[0] == pytest.approx(10**1.5) and np.isnan(cols[1])


def test_power_law_exponent_and_its_interval():
    n = np.array([8.0, 16.0, 32.0, 64.0])
    assert power_law_exponent(n, 3.0 * n**0.7) == pytest.approx(0.7)
    both = power_law_exponent(n, np.stack([5 * n, 2 * n**1.3], 1))
    np.testing.assert_allclose(both, [1.0, 1.3])
    noisy = 3.0 * n * np.exp([0.1, -0.1, 0.05, -0.02])
    lo, hi = slope_interval(n, noisy)
    assert lo < power_law_exponent(n, noisy) < hi
    assert slope_interval(n, 3.0 * n)[1] - slope_interval(n, 3.0 * n)[0] == pytest.approx(0, abs=1e-9)


def synthetic_curves(sizes, beta, n_items=300, epochs=16, seed=0, start=None):
    """Checkpoints of one run per size on one log grid of images seen: item i of size N memorized
    from τ_i = 40 N^β e^{z_i} on (z_i ~ N(0, 0.3²), drawn per size), so the fraction crosses 0.5
    near 40 N^β."""
    curves, items = [], []
    for n in sizes:
        z = np.random.default_rng([seed, n]).normal(0, 0.3, n_items)
        rid = f"ncsnpp_c32_n{n}_s0"
        seen = np.geomspace(start or 20, 40 * 64 * 20, epochs)
        for e, t in enumerate(seen, 1):
            mem = (t >= 40 * n**beta * np.exp(z)).astype(float)
            kid = 0.5 / e + 0.01 * max(0, e - 8)  # improves, then worsens as the run memorizes
            curves.append({"run_id": rid, "epoch": e, "dataset_size": n, "seed": 0, "images_seen": t,
                           "memorized_fraction": mem.mean(), "kid_heldout": kid, "kid_ci_low": kid - 0.01,
                           "kid_ci_high": kid + 0.01})  # fmt: skip
            items.append(pd.DataFrame({"run_id": rid, "epoch": e, "item": np.arange(n_items), "memorized": mem}))
    return pd.DataFrame(curves), pd.concat(items, ignore_index=True)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_table_recovers_the_exponent(beta):
    curves, items = synthetic_curves([8, 16, 32, 64], beta)
    t = memorization_time_table(curves, items, n_boot=300)
    mem = t[t["quantity"] == "tau_mem"]
    assert (mem["status"] == CROSSED).all()
    np.testing.assert_allclose(mem["value"], 40 * mem["dataset_size"] ** beta, rtol=0.12)
    assert (mem["ci_low"] <= mem["value"]).all() and (mem["value"] <= mem["ci_high"]).all()
    fit = t[t["quantity"] == "exponent_mem"].iloc[0]
    assert fit["n_sizes"] == 4 and fit["value"] == pytest.approx(beta, abs=0.05)
    assert fit["ci_low"] < fit["value"] < fit["ci_high"]
    assert (fit["ci_low"] <= 1 <= fit["ci_high"]) == (beta == 1.0)  # a slope of 1/2 is told apart from 1
    np.testing.assert_array_equal(np.isfinite(t.select_dtypes("number")).all(), True)


def test_sizes_that_do_not_cross_are_named_and_left_out():
    curves, items = synthetic_curves([8, 16, 32], 1.0)
    late, late_items = synthetic_curves([64], 1.0, start=40 * 64 * 5)  # memorized from its first checkpoint on
    never = curves[curves["dataset_size"] == 32].copy()
    keep = ~((curves["dataset_size"] == 32))
    curves, items = curves[keep], items[~items["run_id"].str.contains("n32_")]
    never = never.assign(memorized_fraction=0.0)
    never_items = pd.DataFrame([{"run_id": r.run_id, "epoch": r.epoch, "item": i, "memorized": 0.0}
                                for r in never.itertuples() for i in range(300)])  # fmt: skip
    t = memorization_time_table(pd.concat([curves, never, late]), pd.concat([items, never_items, late_items]), n_boot=200)
    mem = t[t["quantity"] == "tau_mem"].set_index("dataset_size")
    assert mem.loc[32, "status"] == NOT_REACHED and mem.loc[32, "value"] == never["images_seen"].max()
    assert mem.loc[64, "status"] == ALREADY and mem.loc[64, "value"] == late["images_seen"].min()
    fit = t[t["quantity"] == "exponent_mem"].iloc[0]
    assert fit["n_sizes"] == 2 and fit["status"] == "fit over N = 8, 16"


def test_generalization_time_is_where_kid_reaches_the_noise_of_its_best():
    kid = np.array([0.9, 0.5, 0.21, 0.2, 0.25, 0.4])
    assert generalization_time(np.arange(6), kid, kid + 0.02) == 2
    assert generalization_time(np.arange(6), kid, kid + 0.001) == 3
    curves, items = synthetic_curves([8, 16, 32], 1.0)
    gen = memorization_time_table(curves, items, n_boot=100).query("quantity == 'tau_gen'")
    assert (gen["ci_low"] <= gen["value"]).all() and gen["status"].eq("checkpoint resolution").all()


def test_checkpoint_memorization_counts_copies():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(20, 16, generator=g, dtype=torch.float64) * 2 - 1
    held = torch.rand(40, 16, generator=g, dtype=torch.float64) * 2 - 1
    x = torch.cat([train[:6] + 1e-4, held[:4]])  # six copies, four new images
    row, items = checkpoint_memorization(x, train, held[4:], n_boot=100)
    assert row["memorized_fraction"] == pytest.approx(0.6)
    np.testing.assert_array_equal(items["memorized"], [1] * 6 + [0] * 4)
    assert row["kid_ci_low"] <= row["kid_heldout"] <= row["kid_ci_high"]


def test_curve_frame_needs_every_checkpoint_in_runs():
    curves, _ = synthetic_curves([8], 1.0, epochs=3)
    runs = curves[["run_id", "epoch", "images_seen"]].assign(experiment="memorization_time")
    assert curve_frame(curves.drop(columns="images_seen"), runs)["images_seen"].tolist() == curves["images_seen"].tolist()
    with pytest.raises(ValueError, match="epoch 3"):
        curve_frame(curves.drop(columns="images_seen"), runs.iloc[:2])

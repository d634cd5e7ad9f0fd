"""The row builders of the per-checkpoint tables, on denoisers whose answers are known."""

import numpy as np
import pandas as pd
import pytest
import torch

from denoiser_fixtures import D, fitted_gaussian
from hiddengauss.analysis import distance_rows, distill_rows, linearity_rows
from hiddengauss.distill import linear_family
from hiddengauss.gaussian import wiener_matrix
from hiddengauss.generation import (
    closed_form_generalization_rows,
    closed_form_sample_sets,
    generalization_rows,
    sample_sets,
    save_samples,
    strong_generalization_row,
    teleportation_rows,
)
from hiddengauss.metrics import mixing_weights
from hiddengauss.study import TABLES

SIGMAS = [0.05, 0.5, 5.0]


@pytest.fixture(scope="module")
def gaussian():
    return fitted_gaussian()


@pytest.fixture(scope="module")
def heldout(gaussian):
    return gaussian.sample(torch.randn(64, D, dtype=torch.float64, generator=torch.Generator().manual_seed(4)))


def columns(table: str, rows: list[dict]) -> None:
    assert set(TABLES[table].columns) <= set(rows[0]), (table, sorted(rows[0]))


def test_distilling_the_gaussian_denoiser_gives_its_wiener_filter(gaussian, heldout):
    rows, maps, diag = distill_rows(gaussian.denoise, heldout, SIGMAS, gaussian, samples_per_dim=20, seed=1, batch=100)
    columns("distillation", rows)
    assert [r["sigma"] for r in rows] == SIGMAS and all(r["n_samples"] == 20 * D for r in rows)
    for r in rows:
        assert r["weight_rel_error"] < 1e-6 and r["eigen_diagonal_mae"] < 1e-6 and r["fit_rmse"] < 1e-6, r
    assert set(TABLES["eigen_diagonal"].columns) <= set(diag.columns) and len(diag) == len(SIGMAS) * D
    np.testing.assert_allclose(diag["diagonal"], diag["shrinkage"], atol=1e-6)
    for s, (w, _) in maps.items():
        torch.testing.assert_close(w, wiener_matrix(gaussian.eigenvalues, gaussian.eigenvectors, s), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="unknown distillation method"):
        distill_rows(gaussian.denoise, heldout, SIGMAS, gaussian, method="adam")


def test_distances_vanish_between_a_denoiser_and_its_exact_linear_form(gaussian, heldout):
    maps = {}
    for s in SIGMAS:
        w = wiener_matrix(gaussian.eigenvalues, gaussian.eigenvectors, s)
        maps[s] = (w, gaussian.mean - w @ gaussian.mean)
    shifted = lambda x, s: gaussian.denoise(x, s) + 0.1  # noqa: E731  (off by 0.1 in every pixel)
    rows, items = distance_rows({"network": shifted, "gaussian": gaussian.denoise, "linear": linear_family(maps)},
                                heldout, SIGMAS, n_inputs=32, seed=2)  # fmt: skip
    columns("denoiser_distances", rows)
    columns("distance_items", items.to_dict("records"))
    assert len(items) == 3 * len(SIGMAS) * 32 and set(items["item"]) == set(range(32))
    np.testing.assert_allclose(items.loc[items["pair"] == "network-gaussian", "rms"], 0.1, rtol=1e-9)
    means = items.groupby(["pair", "sigma"])["nmse"].mean()  # the table's mean is the mean of its items
    for r in rows:
        assert means[r["pair"], r["sigma"]] == pytest.approx(r["nmse"], rel=1e-12)
    by = {(r["pair"], r["sigma"]): r for r in rows}
    assert {p for p, _ in by} == {"network-gaussian", "linear-gaussian", "network-linear"}  # no empirical given
    for s in SIGMAS:
        assert by["linear-gaussian", s]["rmse"] < 1e-12
        assert by["network-gaussian", s]["rmse"] == pytest.approx(0.1) == by["network-linear", s]["rms_mean"]


def test_linearity_rows_of_a_linear_and_of_a_constant_denoiser(heldout):
    m = torch.randn(D, D, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    alphas = [0.5, 0.99]
    rows, items = linearity_rows(lambda x, s: x @ m.T, heldout, SIGMAS, alphas, n_pairs=16, seed=3)
    columns("linearity", rows)
    columns("linearity_items", items.to_dict("records"))
    assert len(items) == len(SIGMAS) * len(alphas) * 16  # σ × a × pair: the denoiser on noisy pairs
    np.testing.assert_allclose(items["cosine"], 1, atol=1e-12)
    assert len(rows) == len(SIGMAS) * 2 * len(alphas) * 2  # σ × inputs × a × target
    assert all(r["cosine"] == pytest.approx(1, abs=1e-12) and r["nmse"] < 1e-12 for r in rows)
    const, _ = linearity_rows(lambda x, s: torch.ones_like(x), heldout, SIGMAS, alphas, n_pairs=16, seed=3)
    for r in const:
        if r["target"] == "denoiser":
            al, be = mixing_weights(r["a"])
            assert r["nmse"] == pytest.approx((al + be - 1) / (al + be)) and r["cosine"] == pytest.approx(1)
    with pytest.raises(ValueError, match="needs 2 x 40 held-out images"):
        linearity_rows(lambda x, s: x, heldout, SIGMAS, alphas, n_pairs=40)


def sample_file(path, samples: dict[str, np.ndarray]):
    save_samples(path, {k: {"samples": v.astype(np.float32)} for k, v in samples.items()}, list(range(16)), (1, 3, 4))
    return path


def test_generalization_rows_of_copies_and_of_new_samples(tmp_path):
    g = np.random.default_rng(0)
    train = torch.from_numpy(g.uniform(-1, 1, (16, D)))
    new = g.uniform(-1, 1, (16, D))
    samples = sample_file(tmp_path / "s.h5", {"network/copies": train.numpy(), "network/new": new})
    gaussian = sample_file(tmp_path / "g.h5", {"gaussian/copies": train.numpy(), "gaussian/new": new + 0.5})
    rows, items = generalization_rows(samples, gaussian, train)
    rows = {r["sampler"]: r for r in rows}
    columns("generalization", list(rows.values()))
    columns("generalization_items", items.to_dict("records"))
    per = items.groupby("sampler")["memorized"].mean()
    assert per["copies"] == rows["copies"]["memorized_fraction"] and per["new"] == rows["new"]["memorized_fraction"]
    gl = items.groupby("sampler")["nn_ratio"].mean()  # the GL score is the mean of the per-sample ratios
    assert gl["new"] == pytest.approx(rows["new"]["gl_score"], rel=1e-12)
    assert rows["copies"]["memorized_fraction"] == 1 and rows["copies"]["gl_score"] < 1e-6
    assert rows["copies"]["mean_max_cosine"] == pytest.approx(1) and rows["copies"]["gaussian_rmse"] < 1e-6
    assert rows["new"]["memorized_fraction"] < 0.5 and rows["new"]["gl_score"] > 0.3
    assert rows["new"]["gaussian_rmse"] == pytest.approx(0.5, abs=1e-6)


def test_closed_form_samples_share_the_networks_first_latents(gaussian):
    models = {"wiener": gaussian.denoise, "copy": lambda x, s: x / (1 + s**2)}
    sets, seeds = closed_form_sample_sets(models, {"wiener": 3, "copy": 5}, ["euler10"], 7, D)
    ref = sample_sets({"wiener": gaussian.denoise}, ["euler10"], list(range(7, 13)), D)
    assert seeds == [7, 8, 9, 10, 11] and sets["copy/euler10"]["samples"].shape == (5, D)
    np.testing.assert_array_equal(sets["wiener/euler10"]["samples"], ref["wiener/euler10"]["samples"][:3])


def test_closed_form_generalization_rows_of_a_copying_model_and_the_references(tmp_path):
    g = np.random.default_rng(2)
    train = torch.from_numpy(g.uniform(-1, 1, (16, D)))
    new = g.uniform(-1, 1, (16, D))
    samples = sample_file(tmp_path / "s.h5", {"network/euler10": new})
    gauss = sample_file(tmp_path / "g.h5", {"gaussian/euler10": new + 0.5, "gaussian/closed_form": new,
                                            "empirical/euler10": train.numpy()})  # fmt: skip
    closed = sample_file(tmp_path / "c.h5", {"copier/euler10": train.numpy()[:4], "fresh/euler10": new[:8] + 0.5})
    rows = closed_form_generalization_rows(closed, samples, gauss, train, n_reference=10)
    columns("closed_form_generalization", rows)
    by = {r["model"]: r for r in rows}
    assert [(r["model"], r["sampler"]) for r in rows] == [("network", "euler10"), ("gaussian", "euler10"),
                                                          ("empirical", "euler10"), ("copier", "euler10"),
                                                          ("fresh", "euler10")]  # no gaussian/closed_form row
    assert [by[m]["n_samples"] for m in ("network", "gaussian", "empirical", "copier", "fresh")] == [10, 10, 10, 4, 8]
    assert by["copier"]["memorized_fraction"] == 1 and by["empirical"]["memorized_fraction"] == 1
    assert by["fresh"]["gaussian_rmse"] < 1e-6 and by["network"]["gaussian_rmse"] == pytest.approx(0.5, abs=1e-6)


def test_strong_generalization_row_of_identical_and_of_opposite_models(tmp_path):
    g = np.random.default_rng(1)
    x = g.uniform(-1, 1, (16, D))
    train = torch.from_numpy(x)
    one = sample_file(tmp_path / "1.h5", {"network/euler10": x, "gaussian/euler10": x})
    other = sample_file(tmp_path / "2.h5", {"network/euler10": -x, "gaussian/euler10": x})
    heldout = torch.from_numpy(g.uniform(-1, 1, (10, D)))
    same, items = strong_generalization_row(one, one, one, one, train, train, "euler10", heldout)
    assert set(TABLES["strong_generalization"].columns) <= set(same)
    columns("strong_generalization_items", items.to_dict("records"))
    assert same["s1_s2_cosine"] == pytest.approx(1) and same["s1_s2_rmse"] < 1e-6 and same["s1_nn_cosine"] == pytest.approx(1)
    assert same["s1_s2_centred_cosine"] == pytest.approx(1) and len(items) == 16
    assert abs(same["floor_cosine"]) < 0.3  # unrelated uniform images: about 0 (16 pairs of 10 images)
    opposite, _ = strong_generalization_row(one, other, one, other, train, train, "euler10", heldout)
    assert opposite["s1_s2_cosine"] == pytest.approx(-1) and opposite["gaussian_s1_s2_cosine"] == pytest.approx(1)
    assert opposite["s1_s2_centred_cosine"] == pytest.approx(-1)
    assert opposite["network_gaussian_cosine"] == pytest.approx(0)  # (1 + (−1)) / 2
    # a shared dark level: plain cosine high, mean-removed cosine of unrelated content about 0
    bg = np.full(D, -0.8)
    a, b = bg + 0.3 * g.standard_normal((16, D)), bg + 0.3 * g.standard_normal((16, D))
    one_bg, other_bg = (sample_file(tmp_path / f"{n}.h5", {"network/euler10": v, "gaussian/euler10": v}) for n, v in (("a", a), ("b", b)))
    bg_row, _ = strong_generalization_row(one_bg, other_bg, one_bg, other_bg, train, train, "euler10", heldout)
    assert bg_row["s1_s2_cosine"] > 0.8 and abs(bg_row["s1_s2_centred_cosine"]) < 0.15


def test_teleporting_the_gaussian_model_stays_on_its_own_flow(gaussian):
    """With D_G as the network, jumping k steps with the exact map changes only Heun's
    discretization error: every skip lands close to the full run, and skip 0 is the full run."""
    train = gaussian.sample(torch.randn(32, D, dtype=torch.float64, generator=torch.Generator().manual_seed(6)))
    rows = teleportation_rows(gaussian.denoise, gaussian, list(range(16)), D, "heun18", [0, 4, 8, 30], train)
    columns("teleportation", rows)
    assert [r["skip_steps"] for r in rows] == [0, 4, 8]  # a skip beyond the schedule is left out
    assert rows[0]["rmse_to_full"] == 0 and [r["nfe_saved"] for r in rows] == [0, 8, 16]
    assert all(r["rmse_to_full"] < 0.02 and r["cosine_to_full"] > 0.999 for r in rows), rows


def test_closed_form_models_join_the_distance_table_with_r2_and_a_calibrated_els(tmp_path):
    """Every enabled model gets a network-<model> pair with r2 on the same inputs; the empirical
    denoiser explains itself (r2 = 1 when the "network" is the empirical denoiser: mixture K = N
    and the whole-image patch at sigma = 80); ELS runs on els_inputs items with one chosen patch
    size per sigma, calibrated on other images. The outputs are computed once (per subset),
    stored, and give the same rows as the models run directly on the same inputs."""
    from hiddengauss.analysis import (
        CALIBRATION,
        closed_form_denoisers,
        closed_form_outputs,
        load_closed_form_outputs,
        save_closed_form_outputs,
    )
    from hiddengauss.closed_forms import baseline_denoisers, els_denoiser
    from hiddengauss.empirical import empirical_optimal_denoiser

    shape = (1, 4, 4)
    g = torch.Generator().manual_seed(0)
    train = torch.rand(10, 16, generator=g, dtype=torch.float64) * 2 - 1
    held = torch.rand(20, 16, generator=g, dtype=torch.float64) * 2 - 1
    gauss = fit_gaussian_from(train, shape)
    network = lambda x, s: empirical_optimal_denoiser(x, s, train)  # noqa: E731
    settings = {"models": ["mixture", "local", "patch", "els"], "mixture_components": [4, 50], "els_patch_sizes": [1, 3],
                "els_inputs": 6}  # fmt: skip
    sigmas = [80.0, 0.5, 0.05]
    outputs = closed_form_outputs(settings, gauss, train, shape, held, sigmas, 16)
    save_closed_form_outputs(tmp_path / "cf.h5", outputs, {"n_inputs": 16})
    with pytest.raises(ValueError, match="cf.h5.*n_inputs"):
        load_closed_form_outputs(tmp_path / "cf.h5", {"n_inputs": 8})
    stored = load_closed_form_outputs(tmp_path / "cf.h5", {"n_inputs": 16})
    models, limits, cal = closed_form_denoisers(stored, network, held)
    assert set(models) == {"mixture4", "mixture10", "local", "patch", "els"} and limits == {"els": 6}
    rows, items = distance_rows({"network": network, **models}, held, sigmas, 16, 0, limits)
    frame = pd.DataFrame(rows).set_index(["pair", "sigma"])
    assert {f"network-{m}" for m in models} == set(frame.index.get_level_values(0))
    assert frame.loc[("network-mixture10", 0.5), "r2"] == pytest.approx(1, abs=1e-6)  # K = N: the empirical denoiser
    assert frame.loc[("network-patch", 80.0), "r2"] == pytest.approx(1, abs=1e-6)  # whole-image patch at sigma 80
    assert items.groupby("pair")["item"].nunique().to_dict() == {f"network-{m}": 6 if m == "els" else 16 for m in models}
    cal = pd.DataFrame(cal, columns=CALIBRATION)
    assert len(cal) == 3 * 2 and (cal.groupby("sigma")["chosen"].sum() == 1).all()
    # the same rows as the models run directly (float32 storage: agreement to ~1e-6)
    chosen = dict(zip(cal.loc[cal["chosen"], "sigma"], cal.loc[cal["chosen"], "patch"]))
    direct = baseline_denoisers(settings, gauss, train, shape)
    direct["els"] = lambda x, s: els_denoiser(x, s, train, shape, int(chosen[s]))
    ref, _ = distance_rows({"network": network, **direct}, held, sigmas, 16, 0, limits)
    ref = pd.DataFrame(ref).set_index(["pair", "sigma"])
    np.testing.assert_allclose(frame.loc[ref.index, "rmse"], ref["rmse"], rtol=1e-5, atol=1e-7)
    # the calibration chose by r2 against the network on the calibration inputs, not the measured ones
    best = cal.loc[cal.groupby("sigma")["r2"].idxmax()]
    assert best["chosen"].all()


def fit_gaussian_from(train, shape):
    from hiddengauss.gaussian import fit_gaussian

    return fit_gaussian([train], shape)

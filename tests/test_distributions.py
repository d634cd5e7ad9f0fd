"""Distribution distances (src/hiddengauss/distributions.py) where the answer is known."""

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from hiddengauss.distributions import (
    METRICS,
    PatchSWD,
    distances,
    frechet_distance,
    kernel_distance,
    laplacian_pyramid,
    polynomial_kernel,
    prdc,
    sliced_wasserstein,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def scipy_frechet(a, b):
    a, b = a.double().numpy(), b.double().numpy()
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    cross = scipy.linalg.sqrtm(scipy.linalg.sqrtm(ca) @ cb @ scipy.linalg.sqrtm(ca)).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.trace(cross))


def test_frechet_of_a_set_with_itself_is_zero_and_of_a_shifted_copy_the_squared_shift():
    a = torch.randn(50, 6, generator=gen(), dtype=torch.float64)
    delta = torch.tensor([0.5, -1.0, 0.0, 2.0, 0.1, 0.3], dtype=torch.float64)
    assert abs(frechet_distance(a, a)) < 1e-9
    assert frechet_distance(a, a + delta) == pytest.approx(float(delta.square().sum()), rel=1e-9)


@pytest.mark.parametrize("n,d", [(40, 5), (8, 20)])  # d×d form, and the n×n nuclear-norm form
def test_frechet_matches_the_matrix_square_root_formula(n, d):
    a = torch.randn(n, d, generator=gen(1))
    b = 0.5 * torch.randn(n + 3, d, generator=gen(2)) + 1.0
    assert frechet_distance(a, b) == pytest.approx(scipy_frechet(a, b), rel=1e-6)


def test_frechet_of_samples_approaches_the_closed_form_of_their_gaussians():
    mu, s = torch.tensor([1.0, 0.0, -0.5, 0.0]), torch.tensor([1.0, 2.0, 0.5, 1.0])
    a = torch.randn(4000, 4, generator=gen(3))
    b = mu + s * torch.randn(4000, 4, generator=gen(4))
    exact = float(mu.square().sum() + (1 - s).square().sum())  # ‖μ‖² + Σ (1 − s_i)² for diagonal covariances
    assert frechet_distance(a, b) == pytest.approx(exact, abs=0.05)


def test_kid_is_the_unbiased_mmd_and_weights_count_duplicates_without_self_pairs():
    a, b = torch.randn(7, 3, generator=gen(5)), torch.randn(5, 3, generator=gen(6)) + 1
    kaa, kbb, kab = polynomial_kernel(a.double(), a.double()), polynomial_kernel(b.double(), b.double()), polynomial_kernel(a.double(), b.double())
    brute = (kaa.sum() - kaa.trace()) / 42 + (kbb.sum() - kbb.trace()) / 20 - 2 * kab.mean()
    assert kernel_distance(a, b) == pytest.approx(float(brute), rel=1e-12)
    wa, wb = torch.tensor([2.0, 0, 1, 0, 0, 3, 1]), torch.tensor([1.0, 1, 0, 2, 1])
    ia, ib = np.repeat(np.arange(7), wa.int().numpy()), np.repeat(np.arange(5), wb.int().numpy())
    loop = 0.0  # pairs of distinct draws of distinct original images, by brute force
    for x, k, idx in ((a, kaa, ia), (b, kbb, ib)):
        pairs = [(i, j) for p, i in enumerate(idx) for q, j in enumerate(idx) if p != q and i != j]
        loop += sum(float(k[i, j]) for i, j in pairs) / len(pairs)
    loop -= 2 * float(kab[ia][:, ib].mean())
    assert float(kernel_distance(a, b, wa[None], wb[None])[0]) == pytest.approx(loop, rel=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    a, b = torch.randn(400, 16, generator=gen(7)), torch.randn(400, 16, generator=gen(8))
    rows = {r["metric"]: r for r in distances(a, b, (1, 4, 4), n_boot=200)}
    assert rows["kid"]["ci_low"] < 0 < rows["kid"]["ci_high"]
    rows = {r["metric"]: r for r in distances(a, b + 0.5, (1, 4, 4), n_boot=200)}
    assert rows["kid"]["ci_low"] > 0 and rows["frechet"]["ci_low"] > 0
    assert list(rows) == list(METRICS) and all(r["ci_low"] <= r["ci_high"] for r in rows.values())


def test_prdc_of_a_subset_has_full_precision_and_recall_below_one():
    a = torch.randn(200, 5, generator=gen(9))
    same = prdc(a, a)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    sub = prdc(a, a[:50])
    assert sub["precision"] == 1.0 and sub["recall"] < 1.0 and sub["coverage"] < 1.0


def test_laplacian_pyramid_reconstructs_the_image():
    x = torch.randn(3, 2, 16, 16, generator=gen(10), dtype=torch.float64)
    levels = laplacian_pyramid(x, 8)
    assert [lvl.shape[-1] for lvl in levels] == [16, 8, 4, 2]
    rec = levels[-1]
    for band in reversed(levels[:-1]):
        rec = band + F.interpolate(rec, size=band.shape[-2:], mode="nearest")
    torch.testing.assert_close(rec, x, rtol=0, atol=1e-12)


def test_patch_swd_is_zero_for_identical_sets_and_grows_with_a_contrast_change():
    a = torch.rand(64, 1 * 14 * 14, generator=gen(11), dtype=torch.float64)
    assert PatchSWD(a, a, (1, 14, 14), per_image=64).value() == 0.0  # 64 = every 7×7 position: the same patches
    small = PatchSWD(a, 1.1 * a, (1, 14, 14), per_image=16).value()
    large = PatchSWD(a, 2.0 * a, (1, 14, 14), per_image=16).value()
    assert 0 < small < large


def test_sliced_wasserstein_is_the_sorted_difference_and_weights_act_as_duplicates():
    a, b = torch.randn(30, 4, generator=gen(12), dtype=torch.float64), torch.randn(30, 4, generator=gen(13), dtype=torch.float64) + 0.3
    theta = torch.nn.functional.normalize(torch.randn(4, 5, generator=gen(14), dtype=torch.float64), dim=0)
    sorted_diff = ((a @ theta).sort(0).values - (b @ theta).sort(0).values).abs().mean()
    assert float(sliced_wasserstein(a, b, theta)[0]) == pytest.approx(float(sorted_diff), rel=1e-12)
    wa, wb = torch.randint(0, 3, (1, 30), generator=gen(15)), torch.randint(0, 3, (1, 30), generator=gen(16))
    ia, ib = np.repeat(np.arange(30), wa[0].numpy()), np.repeat(np.arange(30), wb[0].numpy())
    weighted = sliced_wasserstein(a, b, theta, wa, wb)[0]
    assert float(weighted) == pytest.approx(float(sliced_wasserstein(a[ia], b[ib], theta)[0]), rel=1e-12)


def test_distance_table_has_every_pair_of_sets_and_the_contrast_of_its_rows():
    from hiddengauss.distributions import distance_table

    base = torch.rand(40, 16, generator=gen(17), dtype=torch.float64)
    names = ("model_s1", "model_s2", "train_s1", "heldout")
    sets = {name: base + 0.3 * i * (name == "heldout") + 0.01 * torch.randn(40, 16, generator=gen(i), dtype=torch.float64)
            for i, name in enumerate(names)}  # fmt: skip
    table, contrasts = distance_table(sets, (1, 4, 4), n_boot=100, k=3)
    assert len(table) == 6 * len(METRICS) and set(zip(table["set_a"], table["set_b"])) == {
        (a, b) for i, a in enumerate(names) for b in names[i + 1 :]}  # fmt: skip
    kid = table[table["metric"] == "kid"].set_index(["set_a", "set_b"])["value"]
    expect = kid["model_s1", "model_s2"] - (kid["model_s1", "heldout"] + kid["model_s2", "heldout"]) / 2
    row = contrasts.set_index("metric").loc["kid"]
    assert row["value"] == pytest.approx(expect, rel=1e-12) and row["ci_high"] < 0  # the held-out set is shifted away

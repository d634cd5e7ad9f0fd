"""Splits: held-out disjoint from training, nested subsets, disjoint pairs, determinism."""

import numpy as np
import pytest

from hiddengauss.splits import SplitError, load_split, make_splits, save_split, split_indices


def test_disjoint_nested_deterministic():
    s = make_splits(1000, seed=3, held_out=100, nested_sizes=[10, 50, 400], pair_sizes=[50, 300])
    assert set(s) == {"heldout", "n10", "n50", "n300", "n400", "n50s2", "n300s2"}
    held = set(s["heldout"])
    assert len(held) == 100
    for name, idx in s.items():
        assert len(set(idx)) == len(idx), name  # no duplicates
        if name != "heldout":
            assert not held & set(idx), f"{name} overlaps the held-out set"
    assert set(s["n10"]) < set(s["n50"]) < set(s["n300"]) < set(s["n400"])
    for n in (50, 300):
        assert not set(s[f"n{n}"]) & set(s[f"n{n}s2"]), f"pair {n} is not disjoint"
        assert len(s[f"n{n}s2"]) == n
    assert set(s["n50s2"]) < set(s["n300s2"])
    again = make_splits(1000, seed=3, held_out=100, nested_sizes=[10, 50, 400], pair_sizes=[50, 300])
    for k in s:
        np.testing.assert_array_equal(s[k], again[k])
    other = make_splits(1000, seed=4, held_out=100, nested_sizes=[10], pair_sizes=[])
    assert set(other["n10"]) != set(s["n10"])


def test_subset_does_not_depend_on_other_sizes():
    a = make_splits(500, 0, 50, [20], [])
    b = make_splits(500, 0, 50, [20, 100, 200], [100])
    np.testing.assert_array_equal(a["n20"], b["n20"])
    np.testing.assert_array_equal(a["heldout"], b["heldout"])


@pytest.mark.parametrize(
    "nested,pairs,message",
    [([451], [], "451 is larger than the 450"), ([], [226], "2 x 226 = 452 disjoint images, but only 450")],
)
def test_too_large_sizes_name_both_numbers(nested, pairs, message):
    with pytest.raises(SplitError, match=message):
        make_splits(500, 0, 50, nested, pairs)


def test_held_out_too_large():
    with pytest.raises(SplitError, match="held-out size 500"):
        split_indices(500, 0, 500, "n1")


def test_save_load(tmp_path):
    idx = save_split(tmp_path / "n20.h5", "n20", 100, 1, 10, data_file="x.h5")
    np.testing.assert_array_equal(load_split(tmp_path / "n20.h5"), idx)
    np.testing.assert_array_equal(idx, split_indices(100, 1, 10, "n20"))
    ext = save_split(tmp_path / "heldout.h5", "heldout", 30, 1, 30, external=True)
    assert sorted(ext) == list(range(30))
    with pytest.raises(SplitError, match="larger than the 30 images"):
        save_split(tmp_path / "bad.h5", "heldout", 30, 1, 31, external=True)

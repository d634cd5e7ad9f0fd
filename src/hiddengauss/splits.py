"""Seeded splits of a data set: held-out set, nested training subsets, disjoint S1/S2 pairs.

One permutation π of the N images, drawn from ``seed``, defines everything:

* held-out set = π[:H]  (H = 0 when a separate evaluation data set is configured);
* pool = π[H:];
* nested subset of size n = pool[:n]  (so every smaller subset lies inside every larger one);
* strong-generalization pair of size n: S1 = pool[:n] (the nested subset itself, so its
  models are shared with the other experiments) and S2 = pool[−n:] (the last n), disjoint
  from S1 as long as 2n ≤ |pool|.

A subset depends only on (N, seed, H, its own size), never on the other configured sizes, so
adding a size to the config leaves every existing split file, and everything built on it, valid.
"""

from __future__ import annotations

import re

import numpy as np

# The subset-name grammar, defined once: n<size> (nested subset, S1 of a pair) or n<size>s2 (S2).
SUBSET_RE = re.compile(r"n(?P<size>[0-9]+)(?P<second>s2)?")
HELD_OUT = "heldout"


def unnamed(pattern: str) -> str:
    """A regex with its named groups made anonymous, to embed in another pattern (Snakemake's
    wildcard constraints may not define group names twice)."""
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


SUBSET_PATTERN = unnamed(SUBSET_RE.pattern)  # a training subset
SPLIT_PATTERN = f"{HELD_OUT}|{SUBSET_PATTERN}"  # any split file


class SplitError(ValueError):
    """A requested split cannot be made from the available images."""


def subset_id(size: int, second: bool = False) -> str:
    """Name of a training subset: ``n<size>`` (nested, S1) or ``n<size>s2`` (S2 of a pair)."""
    return f"n{size}s2" if second else f"n{size}"


def parse_subset_id(name: str) -> tuple[int, bool]:
    """Inverse of :func:`subset_id`: (size, is_second_of_pair)."""
    m = SUBSET_RE.fullmatch(name)
    if not m:
        raise ValueError(f"not a training subset name: {name!r} (expected n<size> or n<size>s2)")
    return int(m["size"]), m["second"] is not None


def permutation(n_images: int, seed: int) -> np.ndarray:
    """The split permutation π of range(n_images) drawn from numpy's PCG64 with ``seed``."""
    return np.random.default_rng(seed).permutation(n_images)


def check_sizes(n_images: int, held_out: int, nested_sizes: list[int], pair_sizes: list[int], where: str = "") -> None:
    """Raise SplitError, with both numbers, if a requested split does not fit in the data."""
    pool = n_images - held_out
    src = f" in {where}" if where else ""
    if held_out >= n_images:
        raise SplitError(
            f"held-out size {held_out} leaves no training images: the data set{src} has {n_images} images"
        )
    for n in nested_sizes:
        if n > pool:
            raise SplitError(
                f"training subset size {n} is larger than the {pool} images available "
                f"({n_images} images{src} minus {held_out} held out)"
            )
    for n in pair_sizes:
        if 2 * n > pool:
            raise SplitError(
                f"strong-generalization pair size {n} needs 2 x {n} = {2 * n} disjoint images, "
                f"but only {pool} are available ({n_images} images{src} minus {held_out} held out)"
            )


def split_indices(n_images: int, seed: int, held_out: int, name: str) -> np.ndarray:
    """Indices (into the data set) of the split called ``name`` (``heldout``, ``n<k>``, ``n<k>s2``)."""
    perm = permutation(n_images, seed)
    if name == HELD_OUT:
        if held_out == 0:
            raise SplitError("no held-out split: evaluation uses a separate data set")
        check_sizes(n_images, held_out, [], [])
        return perm[:held_out]
    size, second = parse_subset_id(name)
    if second:
        check_sizes(n_images, held_out, [], [size])
    else:
        check_sizes(n_images, held_out, [size], [])
    pool = perm[held_out:]
    return pool[len(pool) - size :] if second else pool[:size]


def make_splits(
    n_images: int, seed: int, held_out: int, nested_sizes: list[int], pair_sizes: list[int]
) -> dict[str, np.ndarray]:
    """All splits at once: {'heldout': …, 'n<k>': …, 'n<k>s2': …}. S1 of a pair is 'n<k>'."""
    check_sizes(n_images, held_out, nested_sizes, pair_sizes)
    names = [subset_id(n) for n in sorted(set(nested_sizes) | set(pair_sizes))]
    names += [subset_id(n, second=True) for n in sorted(set(pair_sizes))]
    if held_out:
        names.insert(0, HELD_OUT)
    return {name: split_indices(n_images, seed, held_out, name) for name in names}


def save_split(
    path, name: str, n_images: int, seed: int, held_out: int, data_file: str = "", external: bool = False
) -> np.ndarray:
    """Compute the split ``name`` and store its indices (HDF5 dataset ``indices``) atomically.

    ``external``: the held-out split of a separate evaluation data set, where all
    ``held_out`` images come from that set and nothing is trained on it.
    """
    from .io import atomic_h5

    if external:
        if held_out > n_images:
            raise SplitError(
                f"evaluation.size {held_out} is larger than the {n_images} images of the evaluation set {data_file}"
            )
        idx = permutation(n_images, seed)[:held_out]
    else:
        idx = split_indices(n_images, seed, held_out, name)
    with atomic_h5(path) as f:
        f["indices"] = idx.astype(np.int64)
        f.attrs.update(
            name=name, seed=seed, held_out=held_out, n_images=n_images, size=len(idx),
            data_file=str(data_file), external_evaluation=external,
        )  # fmt: skip
    return idx


def load_split(path) -> np.ndarray:
    """The indices stored by :func:`save_split`."""
    import h5py

    from .io import read_array

    with h5py.File(path, "r") as f:
        return read_array(f, "indices")

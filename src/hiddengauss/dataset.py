"""The prepared data set: one HDF5 file of uint8 images (N, C, H, W), labels and provenance,
written once by ``prepare_dataset`` and read by every later stage (images as floats in
[-1, 1] = uint8/127.5 − 1, flattened in C, H, W order)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from .io import require_numeric

FORMAT_VERSION = 1


class DataError(ValueError):
    """Bad or missing input data; the message names the file, folder or key and the fix."""



# ----------------------------------------------------------------------------- conversions
def to_float(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) → float32 (N, C·H·W) in [-1, 1]: x = v/127.5 − 1, flattened C, H, W."""
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8 images, got {images.dtype} (already converted?)")
    x = images.astype(np.float32)
    x /= np.float32(127.5)
    x -= np.float32(1.0)
    return x.reshape(len(images), int(np.prod(images.shape[1:], dtype=np.int64)))


def to_uint8(x_float: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`to_float`: round((x + 1)·127.5), clipped to 0…255, shaped (N, *shape)."""
    v = np.rint((np.asarray(x_float, dtype=np.float64) + 1.0) * 127.5)
    return np.clip(v, 0, 255).astype(np.uint8).reshape(-1, *shape)


# ----------------------------------------------------------------------------- HDF5
def _h5_attr(value):
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_dataset_h5(path, data, spec: dict) -> None:
    """Write a :class:`~hiddengauss.sources.SourceData`: ``images`` (uint8 N,C,H,W), ``labels``
    (int64, if any) and provenance attributes.

    Attributes: everything in ``data.attrs`` plus ``config`` (the dataset spec as sorted JSON)
    and ``format_version``. The file is written to a hidden temporary name and renamed into
    place, so a killed job never leaves a file at ``path`` that looks finished.
    """
    from .io import atomic_h5

    path = Path(path)
    images = np.ascontiguousarray(data.images)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise DataError(
            f"cannot write {path}: images must be a non-empty uint8 (N, C, H, W) array, got {images.dtype} {images.shape}"
        )
    if data.labels is not None and len(data.labels) != len(images):
        raise DataError(f"cannot write {path}: {len(data.labels)} labels for {len(images)} images")
    with atomic_h5(path) as f:
        f.create_dataset("images", data=images, chunks=(min(len(images), 256), *images.shape[1:]))
        if data.labels is not None:
            f.create_dataset("labels", data=np.asarray(data.labels, dtype=np.int64))
        for key, value in data.attrs.items():
            if value is not None:
                f.attrs[key] = _h5_attr(value)
        f.attrs["config"] = json.dumps(spec, sort_keys=True, default=str)
        f.attrs["format_version"] = FORMAT_VERSION


def _open_h5(path):
    if not Path(path).is_file():
        raise DataError(f"dataset file {path} does not exist; run the prepare_dataset rule to make it")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"cannot open {path} as HDF5 ({err}); delete it and prepare it again") from None


def _read_rows(ds, indices, where: str) -> np.ndarray:
    """Rows of an HDF5 dataset at ``indices`` (any order, duplicates allowed); numbers only."""
    require_numeric(ds, where, DataError)
    if indices is None:
        return ds[...]
    idx = np.asarray(indices)
    if idx.ndim != 1:
        raise DataError(f"indices into {where} must be 1-D, got shape {idx.shape}")
    n = ds.shape[0]
    if idx.size == 0:
        return np.empty((0, *ds.shape[1:]), dtype=ds.dtype)
    if idx.dtype.kind not in "iu":
        raise DataError(f"indices into {where} must be integers, got {idx.dtype}")
    if idx.min() < 0 or idx.max() >= n:
        raise DataError(f"indices into {where} must lie in 0..{n - 1}, got {idx.min()}..{idx.max()}")
    uniq, inverse = np.unique(idx.astype(np.int64), return_inverse=True)
    lo, hi = int(uniq[0]), int(uniq[-1]) + 1
    if hi - lo == len(uniq):  # one contiguous range
        rows = ds[lo:hi]
    elif len(uniq) <= 64:  # few scattered rows: h5py point selection
        rows = ds[uniq]
    else:  # many rows: read chunk-aligned blocks that hold any of them
        block = ds.chunks[0] if ds.chunks else 256
        rows = np.empty((len(uniq), *ds.shape[1:]), dtype=ds.dtype)
        blocks = uniq // block
        cuts = np.flatnonzero(np.diff(blocks)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(uniq)]):
            start = int(blocks[a]) * block
            part = uniq[a:b] - start
            stop = start + int(part[-1]) + 1
            rows[a:b] = ds[start:stop][part]
    return rows[inverse.reshape(-1)]


def read_images(path, indices=None) -> np.ndarray:
    """uint8 images (N, C, H, W) at ``indices`` (any order, duplicates allowed; None = all)."""
    with _open_h5(path) as f:
        if "images" not in f:
            raise DataError(f"{path} has no dataset 'images'; it is not a prepared data set file")
        return _read_rows(f["images"], indices, f"{path}:images")


def read_labels(path, indices=None) -> np.ndarray | None:
    """int64 labels at ``indices`` (as :func:`read_images`), or None when the file has none."""
    with _open_h5(path) as f:
        if "labels" not in f:
            return None
        return _read_rows(f["labels"], indices, f"{path}:labels")


def read_attrs(path) -> dict:
    """All attributes of a prepared data set file as plain Python values."""
    with _open_h5(path) as f:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}



def load_split_images(split_h5, data_h5, device="cpu"):
    """Images of a split as float64 rows in [-1, 1] (split order) on ``device``, and their (C, H, W)."""
    import torch

    from .splits import load_split

    u8 = read_images(data_h5, load_split(split_h5))
    return torch.from_numpy(to_float(u8)).to(device=device, dtype=torch.float64), tuple(u8.shape[1:])


def available_count(spec: dict | None, prepared_h5) -> int | None:
    """Number of images a data source provides, cheaply, for planning-time checks.

    Reads the prepared HDF5 file when it exists, else counts the source without decoding
    images. None when unknown (a missing source is reported by the job that reads it).
    """
    if spec is None:
        return None
    from .sources import count_source_images

    if Path(prepared_h5).exists():
        return int(read_attrs(prepared_h5)["count"])
    return count_source_images(spec)


def unreadable_sources(sections) -> tuple[list[str], list[str]]:
    """Planning-time check of the data sources ``sections`` = [(config key, spec, prepared file)]:
    (errors, missing paths) of :func:`hiddengauss.sources.source_problems` for every source whose
    prepared file does not exist yet (once prepared, the source is no longer read)."""
    from .sources import source_problems

    errors, missing = [], []
    for key, spec, prepared in sections:
        if not Path(prepared).exists():
            e, m = source_problems(spec, key)
            errors, missing = errors + e, missing + m
    return errors, missing

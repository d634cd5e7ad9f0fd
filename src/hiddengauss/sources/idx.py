"""MNIST and Fashion-MNIST in torchvision's layout: IDX files, raw or gzipped."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from ..dataset import DataError
from .base import (
    _IDX,
    _IDX_FILES,
    _IDX_IMAGES_MAGIC,
    _IDX_LABELS_MAGIC,
    SourceData,
    _hash_entry,
)
from .download import _download, _missing, _require_root


# ----------------------------------------------------------------------------- MNIST / Fashion-MNIST
def _idx_find(spec: dict) -> tuple[list[Path], Path | None]:
    """Paths of the (images, labels) IDX files of the split, and the first missing one."""
    raw = _require_root(spec) / _IDX[spec["source"]][0] / "raw"
    found = []
    for name in _IDX_FILES[spec.get("split", "train")]:
        hit = next((p for p in (raw / name, raw / f"{name}.gz") if p.is_file()), None)
        if hit is None:
            return found, raw / name
        found.append(hit)
    return found, None


def _open_idx(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _idx_header(f, path: Path, magic: int) -> list[int]:
    head = f.read(4)
    got = int.from_bytes(head, "big") if len(head) == 4 else None
    if got != magic:
        shown = "none (file too short)" if got is None else f"{got:#010x}"
        raise DataError(f"{path} is not the expected IDX file: magic number {shown}, expected {magic:#010x}")
    ndim = magic & 0xFF
    dims = f.read(4 * ndim)
    if len(dims) != 4 * ndim:
        raise DataError(f"{path} is truncated inside its IDX header")
    return [int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim)]


def _read_idx(path: Path, magic: int) -> np.ndarray:
    try:
        with _open_idx(path) as f:
            dims = _idx_header(f, path, magic)
            body = bytearray(f.read())
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"cannot read {path}: {err}. Delete it and download or copy it again") from None
    expected = int(np.prod(dims, dtype=np.int64))
    if len(body) != expected:
        raise DataError(f"{path} holds {len(body)} values but its header says {dims} ({expected}); the file is damaged")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _load_idx(spec: dict, log) -> SourceData:
    root = _require_root(spec)
    paths, missing = _idx_find(spec)
    if missing is not None and spec.get("download", False):
        _download(spec, root, log)
        paths, missing = _idx_find(spec)
    if missing is not None:
        raise _missing(spec, missing, " (nor its .gz)")
    images = _read_idx(paths[0], _IDX_IMAGES_MAGIC)[:, None]
    labels = _read_idx(paths[1], _IDX_LABELS_MAGIC).astype(np.int64)
    if len(labels) != len(images):
        raise DataError(f"{paths[1]} has {len(labels)} labels for the {len(images)} images of {paths[0]}")
    h = hashlib.sha256()
    for p in paths:  # images and labels files, in that order
        _hash_entry(h, p.name, p.read_bytes())
    return SourceData(images, labels, {
        "path": str(paths[0].resolve()), "labels_path": str(paths[1].resolve()),
        "split": spec.get("split", "train"), "source_sha256": h.hexdigest(),
    })  # fmt: skip

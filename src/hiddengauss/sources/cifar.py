"""CIFAR-10 in torchvision's layout: python batches (a restricted unpickler) or binary batches."""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
from pathlib import Path

import numpy as np

from ..dataset import DataError
from .base import _CIFAR_BIN, _CIFAR_PY, _CIFAR_RECORD, SourceData, _hash_entry
from .download import _download, _missing, _require_root


# ----------------------------------------------------------------------------- CIFAR-10
def _latin1_encode(obj, encoding="latin1"):
    """``_codecs.encode`` as Python-3 protocol-2 pickles of bytes use it, limited to latin1."""
    if encoding != "latin1" or not isinstance(obj, str):
        raise DataError(f"refusing _codecs.encode with encoding {encoding!r} in a CIFAR-10 batch")
    return obj.encode("latin1")


def _numpy_globals() -> dict:
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        if hasattr(numeric, "_frombuffer"):  # ndarray pickled with protocol 5
            allowed[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and builtin containers, and nothing else.

    ``find_class`` is the only way a pickle can reach code; it hands out the ndarray
    reconstruction functions (no import by name) and raises :class:`DataError` for every
    other global, before anything runs.
    """

    _ALLOWED = _numpy_globals()

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise DataError(f"refusing to unpickle {module}.{name}: CIFAR-10 batches may hold numpy arrays only") from None


def _cifar_batch_names(split: str) -> list[str]:
    return [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]


def _unpickle_batch(path: Path, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except DataError as err:
        raise DataError(f"{path}: {err}") from None
    except Exception as err:
        raise DataError(f"{path} is not a readable CIFAR-10 python batch ({type(err).__name__}: {err})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path} holds a {type(batch).__name__}, expected the dict of a CIFAR-10 batch")
    get = lambda key: batch[key.encode()] if key.encode() in batch else batch.get(key)  # noqa: E731
    data, labels = get("data"), get("labels")
    if data is None or labels is None:
        raise DataError(f"{path} lacks b'data' or b'labels' (keys: {sorted(map(repr, batch))}); not a CIFAR-10 batch")
    data, labels = np.asarray(data), np.asarray(labels)
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise DataError(f"{path}: b'data' must be uint8 of shape (n, 3072), got {data.dtype} {data.shape}")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: b'labels' must be {len(data)} integers, got {labels.dtype} {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _cifar_folder(root: Path) -> tuple[Path, bool] | None:
    """(folder, is_python_format) of the CIFAR-10 data under root, or None."""
    if (root / _CIFAR_PY).is_dir():
        return root / _CIFAR_PY, True
    if (root / _CIFAR_BIN).is_dir():
        return root / _CIFAR_BIN, False
    return None


def _cifar_batch_path(folder: Path, python: bool, name: str, spec: dict) -> Path:
    path = folder / (name if python else f"{name}.bin")
    if not path.is_file():
        raise _missing(spec, path)
    return path


def _load_cifar10(spec: dict, log) -> SourceData:
    root = _require_root(spec)
    split = spec.get("split", "train")
    found = _cifar_folder(root)
    if found is None and spec.get("download", False):
        _download(spec, root, log)
        found = _cifar_folder(root)
    if found is None:
        raise _missing(spec, root / _CIFAR_PY, f" (nor {root / _CIFAR_BIN})")
    folder, python = found
    images, labels, h = [], [], hashlib.sha256()
    for name in _cifar_batch_names(split):
        path = _cifar_batch_path(folder, python, name, spec)
        raw = path.read_bytes()
        _hash_entry(h, path.name, raw)
        if python:
            x, y = _unpickle_batch(path, raw)
        else:
            if len(raw) % _CIFAR_RECORD:
                raise DataError(f"{path} is not a CIFAR-10 binary batch: {len(raw)} bytes is not a multiple of {_CIFAR_RECORD}")
            rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
            x, y = rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)
        images.append(x)
        labels.append(y)
    return SourceData(np.concatenate(images), np.concatenate(labels), {
        "path": str(folder.resolve()), "split": split, "source_sha256": h.hexdigest(),
        "cifar_format": "python" if python else "binary",
    })  # fmt: skip


@functools.lru_cache(maxsize=64)
def _cifar_py_count(path: str, mtime_ns: int, size: int) -> int:
    p = Path(path)
    return len(_unpickle_batch(p, p.read_bytes())[1])


def _count_cifar10(spec: dict) -> int | None:
    found = _cifar_folder(Path(spec["root"]).expanduser())
    if found is None:
        return None
    folder, python = found
    n = 0
    for name in _cifar_batch_names(spec.get("split", "train")):
        path = folder / (name if python else f"{name}.bin")
        if not path.is_file():
            return None
        st = path.stat()
        # binary: exact from the size; python: the batch must be unpickled (no image decoding; cached)
        n += _cifar_py_count(str(path), st.st_mtime_ns, st.st_size) if python else st.st_size // _CIFAR_RECORD
    return n

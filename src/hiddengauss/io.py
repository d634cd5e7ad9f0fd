"""Files: atomic writes, safe checkpoint loading, logging for workflow scripts."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py

log = logging.getLogger("hiddengauss")


def file_sha256(path: str | Path, block: int = 1 << 22) -> str:
    """SHA-256 of a file's content, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only on success.

    A job killed mid-write leaves at most a hidden ``.name.tmp-PID`` file, never a file that
    looks finished.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_h5(path: str | Path) -> Iterator[h5py.File]:
    """An HDF5 file opened for writing that appears at ``path`` only when the block succeeds."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            yield f


NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats


def require_numeric(ds, where: str, error: type[Exception] = ValueError) -> None:
    """Refuse an HDF5 node that is not a dataset of plain numbers.

    HDF5 can hold opaque bytes, variable-length strings and object references; a file from
    elsewhere could carry a pickled payload there. Nothing in the pipeline unpickles; a
    non-numeric node where numbers belong raises ``error`` naming ``where``.
    """
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in NUMERIC_KINDS:
        kind = type(ds).__name__ if not isinstance(ds, h5py.Dataset) else f"dtype {ds.dtype}"
        raise error(f"{where} is not a numeric array ({kind}); refusing to read it "
                    "(only numbers are read from HDF5 files, nothing is unpickled)")  # fmt: skip


def read_array(f: h5py.File, key: str):
    """``f[key]`` as a numpy array of plain numbers (:func:`require_numeric`)."""
    if key not in f:
        raise KeyError(f"{f.filename} holds no {key!r} (has {sorted(f)})")
    require_numeric(f[key], f"{f.filename}: {key!r}")
    return f[key][...]


def write_csv(frame, path: str | Path) -> None:
    """Write a pandas DataFrame as CSV atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


@contextlib.contextmanager
def script_logging(log_file: str | Path | None, name: str = "hiddengauss") -> Iterator[logging.Logger]:
    """Send logging and stderr (tqdm bars, warnings, tracebacks) of a workflow script to its log.

    Exceptions are logged with their traceback and re-raised so Snakemake marks the job failed.
    """
    if log_file is None:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
        yield logging.getLogger(name)
        return
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w", buffering=1) as stream:
        old_stderr = sys.stderr
        sys.stderr = stream
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logger = logging.getLogger(name)
        try:
            yield logger
        except BaseException:
            logger.exception("job failed")
            raise
        finally:
            root.removeHandler(handler)
            sys.stderr = old_stderr

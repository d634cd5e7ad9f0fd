"""Image sources → one HDF5 file of uint8 images (N, C, H, W) with provenance (paper_spec §1.1).

Sources (``dataset.source`` in the config):

* ``digits`` — scikit-learn's bundled 8×8 digits (1797 images, offline). Gray levels
  v = 0…16 are mapped to uint8 by v ↦ round(v·255/16), so 0 ↦ 0, 8 ↦ 128, 16 ↦ 255.
  Labels are the digit classes.
* ``mnist``, ``fashion_mnist`` — torchvision's on-disk layout ``<root>/MNIST/raw`` and
  ``<root>/FashionMNIST/raw`` with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each raw or ``.gz``); ``split``
  train|test.
* ``cifar10`` — torchvision's ``<root>/cifar-10-batches-py`` (pickled batches, read with a
  restricted unpickler that rebuilds numpy arrays and builtin containers only, so a batch
  carrying code is refused) or, when that folder is absent, ``<root>/cifar-10-batches-bin``.
  Batches of any length are accepted.
* ``image_folder`` — a directory (searched recursively) or a .zip. Image files (png, jpg,
  jpeg, bmp, gif, webp, tif, tiff; case-insensitive) are taken in sorted relative-path order,
  which defines "image i". Other files, and macOS resource forks (``__MACOSX/``, ``._*``),
  are ignored and counted. Each image is converted to "L" or "RGB" (alpha is dropped),
  center-cropped to a square of side min(w, h) and resized to ``resolution`` with
  ``PIL.Image.LANCZOS`` (as NVlabs' ``dataset_tool.py --transform=center-crop``).
* ``npz`` — arrays in an .npz (``images_key``, ``labels_key``, ``layout``), loaded with
  ``allow_pickle=False``.

All sources accept ``resolution`` (center crop + Lanczos resize when it differs from the
native size), ``channels`` (1 or 3; RGB→L with PIL's "L" conversion, L→RGB replicates) and
``limit`` (keep the first ``limit`` images).

Nothing is downloaded unless ``download: true``. Every problem with input data raises
:class:`DataError` naming the file, folder or key, what is wrong and how to fix it. Progress
bars and log messages go to stderr / the given logger; nothing is printed to stdout.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import logging
import os
import pickle
import sys
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .io import require_numeric

_LOG = logging.getLogger("hiddengauss")

SOURCES = ("digits", "mnist", "fashion_mnist", "cifar10", "image_folder", "npz")
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
RESIZE_FILTER = "PIL.Image.LANCZOS after center crop"
FORMAT_VERSION = 1
DIGITS_COUNT = 1797
_PROGRESS_MIN = 1000  # show a progress bar for more items than this

# torchvision folder name, official base URL
_IDX = {
    "mnist": ("MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "fashion_mnist": ("FashionMNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC = 0x0803, 0x0801  # unsigned byte, 3-D resp. 1-D
_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
_CIFAR_FILE = "cifar-10-python.tar.gz"
_CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
_CIFAR_PY, _CIFAR_BIN = "cifar-10-batches-py", "cifar-10-batches-bin"
_CIFAR_RECORD = 1 + 3072  # binary format: label byte + 3×32×32 pixels


class DataError(ValueError):
    """Bad or missing input data; the message names the file, folder or key and the fix."""


@dataclass
class SourceData:
    """Images of one source: uint8 (N, C, H, W) C-contiguous, int64 labels or None, provenance."""

    images: np.ndarray
    labels: np.ndarray | None
    attrs: dict = field(default_factory=dict)


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


# ----------------------------------------------------------------------------- helpers
def _progress(iterable, total: int, desc: str):
    """A tqdm bar on stderr for more than ``_PROGRESS_MIN`` items (plain iterable otherwise)."""
    if total <= _PROGRESS_MIN:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, mininterval=5, unit="img")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _hash_entry(h, name: str, raw: bytes) -> None:
    """Add one (relative name, bytes) pair to a content hash, length-prefixed (unambiguous)."""
    encoded = name.encode("utf-8")
    h.update(len(encoded).to_bytes(8, "little") + encoded + len(raw).to_bytes(8, "little"))
    h.update(raw)


def _int_option(spec: dict, key: str, allowed=None) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"dataset.{key} must be a positive integer, got {value!r}")
    if allowed is not None and value not in allowed:
        raise DataError(f"dataset.{key} must be one of {list(allowed)}, got {value!r}")
    return int(value)


def _check_spec(spec: dict) -> str:
    """Validate the keys every source shares; return the source name."""
    if not isinstance(spec, dict):
        raise DataError(f"the dataset config must be a mapping, got {type(spec).__name__}")
    source = spec.get("source")
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r} in dataset.source; allowed: {', '.join(SOURCES)}")
    _int_option(spec, "limit")
    _int_option(spec, "resolution")
    _int_option(spec, "channels", (1, 3))
    split = spec.get("split", "train")
    if split not in _IDX_FILES:
        raise DataError(f"dataset.split must be 'train' or 'test', got {split!r}")
    layout = spec.get("layout", "auto")
    if layout not in ("auto", "NHW", "NHWC", "NCHW"):
        raise DataError(f"dataset.layout must be auto, NHW, NHWC or NCHW, got {layout!r}")
    return source


def _pil_to_array(img, channels: int) -> np.ndarray:
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def _crop_resize(img, resolution: int | None):
    """Center-crop a PIL image to a square of side min(w, h), then Lanczos-resize it.

    Returns (image, changed). With ``resolution`` None the image is returned unchanged.
    """
    from PIL import Image

    w, h = img.size
    if resolution is None or (w == h == resolution):
        return img, False
    side = min(w, h)
    if w != h:
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if side != resolution:
        img = img.resize((resolution, resolution), Image.LANCZOS)
    return img, True


def _convert(images: np.ndarray, resolution: int | None, channels: int | None, log) -> tuple[np.ndarray, bool, str]:
    """Channel conversion and square resize of a uint8 (N, C, H, W) array, image by image.

    Returns (images, resized, channel_conversion).
    """
    from PIL import Image

    n, c, h, w = images.shape
    out_c = channels or c
    resize = resolution is not None and (h, w) != (resolution, resolution)
    if out_c == c and not resize:
        return images, False, "none"
    if c not in (1, 3):
        raise DataError(f"cannot convert images with {c} channels (need 1 or 3)")
    conversion = "none" if out_c == c else ("PIL convert('L')" if out_c == 1 else "gray replicated to RGB")
    if not resize and c == 1:  # L → RGB replicates, exactly as PIL does
        return np.ascontiguousarray(np.repeat(images, 3, axis=1)), False, conversion
    side = resolution if resize else h
    out = np.empty((n, out_c, side, side if resize else w), dtype=np.uint8)
    mode = "L" if out_c == 1 else "RGB"
    log.info("converting %d images %dx%dx%d -> %dx%dx%d", n, c, h, w, *out.shape[1:])
    for i in _progress(range(n), n, "convert"):
        im = images[i]
        pil = Image.fromarray(im[0], mode="L") if c == 1 else Image.fromarray(im.transpose(1, 2, 0), mode="RGB")
        pil, _ = _crop_resize(pil.convert(mode), resolution)
        out[i] = _pil_to_array(pil, out_c)
    return out, resize, conversion


# ----------------------------------------------------------------------------- digits
def _load_digits(spec: dict, log) -> SourceData:
    from sklearn.datasets import load_digits

    d = load_digits()
    raw = np.asarray(d.images)  # (1797, 8, 8) float64, values 0..16
    images = np.rint(raw.astype(np.float64) * 255.0 / 16.0).astype(np.uint8)[:, None]
    return SourceData(np.ascontiguousarray(images), np.asarray(d.target, dtype=np.int64), {
        "path": "sklearn.datasets.load_digits",
        "source_sha256": hashlib.sha256(np.ascontiguousarray(raw).tobytes()).hexdigest(),
        "pixel_mapping": "uint8 = round(v * 255 / 16) for scikit-learn gray levels v in 0..16",
    })  # fmt: skip


# ----------------------------------------------------------------------------- downloads
def _fetch(url: str, dest: Path, md5: str | None, log) -> None:
    """Download ``url`` to ``dest`` (via ``dest.part``), checking its md5 when given."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    log.info("downloading %s -> %s", url, dest)
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            for block in iter(lambda: r.read(1 << 20), b""):
                f.write(block)
                digest.update(block)
    except (OSError, ValueError) as err:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"download of {url} failed: {err}. Check the network or `mirror`, or copy the file to {dest} yourself"
        ) from None
    if md5 is not None and digest.hexdigest() != md5:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"download of {url} is corrupt: md5 {digest.hexdigest()}, expected {md5}. Retry, or, for a "
            f"trusted `mirror` serving different files, set `verify_md5: false`"
        )
    os.replace(tmp, dest)


def _md5_wanted(spec: dict, md5: str, log) -> str | None:
    """The md5 to check: skipped only for a `mirror` with an explicit `verify_md5: false`."""
    if spec.get("verify_md5", True) is False:
        if spec.get("mirror"):
            return None
        log.warning("verify_md5: false is ignored for the official download location (it applies to a mirror)")
    return md5


def _check_md5(path: Path, md5: str | None) -> bool:
    if md5 is None:
        return True
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() == md5


def _safe_extract(archive: Path, root: Path) -> None:
    """Extract a tar archive into ``root``, refusing absolute paths, '..' and links/devices."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                parts = Path(m.name).parts
                if m.name.startswith(("/", "\\")) or os.path.isabs(m.name) or ".." in parts or not (m.isfile() or m.isdir()):
                    raise DataError(f"refusing unsafe member {m.name!r} in {archive} (absolute path, '..' or link)")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, members=members, filter="data")
            else:  # Python < 3.11.4: members were checked above
                tar.extractall(root, members=members)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"cannot extract {archive}: {err}. Delete it and download again") from None


def _download(spec: dict, root: Path, log) -> None:
    source = spec["source"]
    root.mkdir(parents=True, exist_ok=True)
    if source in _IDX:
        folder, base = _IDX[source]
        base = str(spec.get("mirror") or base).rstrip("/") + "/"
        raw = root / folder / "raw"
        for name in _IDX_FILES["train"] + _IDX_FILES["test"]:
            if not (raw / name).exists() and not (raw / f"{name}.gz").exists():
                _fetch(base + f"{name}.gz", raw / f"{name}.gz", _md5_wanted(spec, _MD5[source][f"{name}.gz"], log), log)
    else:
        base = str(spec.get("mirror") or _CIFAR_URL).rstrip("/") + "/"
        archive, md5 = root / _CIFAR_FILE, _md5_wanted(spec, _CIFAR_MD5, log)
        if not (archive.exists() and _check_md5(archive, md5)):
            _fetch(base + _CIFAR_FILE, archive, md5, log)
        _safe_extract(archive, root)
        if not (root / _CIFAR_PY).is_dir():
            raise DataError(f"{archive} did not contain {_CIFAR_PY}/; delete it and check `mirror`")


def _missing(spec: dict, what: Path, extra: str = "") -> DataError:
    return DataError(
        f"{spec['source']} data not found: {what}{extra} does not exist. Set `download: true` in the dataset "
        f"config to download it into root={str(spec['root'])!r}, or copy torchvision's files there."
    )


def _require_root(spec: dict) -> Path:
    if not spec.get("root"):
        raise DataError(f"source {spec['source']!r} needs dataset.root: the torchvision data folder")
    return Path(spec["root"]).expanduser()


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


# ----------------------------------------------------------------------------- image folder / zip
def _is_resource_fork(name: str) -> bool:
    return name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1].startswith("._")


def _list_images(path: Path) -> tuple[list[str], list[str], zipfile.ZipFile | None]:
    """Sorted image names (relative posix paths), the ignored names, and the open zip (or None)."""
    if path.is_dir():
        names = []
        for dirpath, _, files in os.walk(path):
            rel = Path(dirpath).relative_to(path)
            names += [(rel / f).as_posix() for f in files]
        archive = None
    elif path.is_file():
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as err:
            raise DataError(f"image_folder path {path} is neither a directory nor a readable .zip ({err})") from None
        names = [n for n in archive.namelist() if not n.endswith("/")]
    else:
        raise DataError(f"image_folder path {path} does not exist; set dataset.path to a folder or .zip of images")
    names.sort()
    images = [n for n in names if Path(n).suffix.lower() in IMAGE_EXTENSIONS and not _is_resource_fork(n)]
    keep = set(images)
    return images, [n for n in names if n not in keep], archive


def _load_image_folder(spec: dict, log) -> SourceData:
    from PIL import Image

    if not spec.get("path"):
        raise DataError("source 'image_folder' needs dataset.path: a directory or a .zip of images")
    if spec.get("resolution") is None:
        raise DataError(f"source 'image_folder' needs dataset.resolution (output side length) for {spec['path']}")
    path = Path(spec["path"]).expanduser()
    res, channels, limit = int(spec["resolution"]), int(spec.get("channels") or 3), spec.get("limit")
    names, others, archive = _list_images(path)
    try:
        if others:
            log.info("ignoring %d non-image files in %s (e.g. %s)", len(others), path, ", ".join(others[:3]))
        if not names:
            raise DataError(
                f"no image files found in {path} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}; "
                f"{len(others)} non-image files ignored)"
            )
        n_max = min(len(names), limit) if limit else len(names)
        out = np.empty((n_max, channels, res, res), dtype=np.uint8)
        mode = "L" if channels == 1 else "RGB"
        skip_bad = bool(spec.get("skip_bad_images", False))
        h, bad, k, resized = hashlib.sha256(), [], 0, False
        log.info("reading %d of %d images from %s", n_max, len(names), path)
        for name in _progress(names, len(names), "images"):
            if k >= n_max:
                break
            where = f"{name} in {path}" if archive else str(path / name)
            try:
                raw = archive.read(name) if archive else (path / name).read_bytes()
                with Image.open(io.BytesIO(raw)) as im:
                    pil, changed = _crop_resize(im.convert(mode), res)
                out[k] = _pil_to_array(pil, channels)
            except Exception as err:
                if not skip_bad:
                    raise DataError(
                        f"cannot read image {where}: {type(err).__name__}: {err}. "
                        f"Fix or remove the file, or set skip_bad_images: true to skip unreadable images"
                    ) from None
                bad.append(where)
                continue
            _hash_entry(h, name, raw)
            resized |= changed
            k += 1
    finally:
        if archive is not None:
            archive.close()
    if bad:
        log.warning("skipped %d unreadable images: %s", len(bad), "; ".join(bad[:20]) + (" ..." if len(bad) > 20 else ""))
    if k == 0:
        raise DataError(f"none of the {len(names)} image files in {path} could be read ({len(bad)} skipped as unreadable)")
    return SourceData(out[:k], None, {
        "path": str(path.resolve()), "source_sha256": h.hexdigest(), "skipped_images": len(bad),
        "resize_filter": RESIZE_FILTER if resized else "none", "ignored_files": len(others),
        "color_mode": mode, "container": "zip" if archive is not None else "directory",
    })  # fmt: skip


# ----------------------------------------------------------------------------- npz
def _npz_keys(spec: dict, keys: list[str], path) -> tuple[str, str | None]:
    ikey = spec.get("images_key")
    if ikey is not None:
        if ikey not in keys:
            raise DataError(f"{path} has no array {ikey!r} (images_key); arrays found: {keys}")
    elif "x_train" in keys:
        ikey = "x_train"
    elif "images" in keys:
        ikey = "images"
    else:
        raise DataError(f"{path} has neither 'x_train' nor 'images': set images_key to one of the arrays found: {keys}")
    lkey = spec.get("labels_key")
    if lkey is not None and lkey not in keys:
        raise DataError(f"{path} has no array {lkey!r} (labels_key); arrays found: {keys}")
    if lkey is None and ikey == "x_train" and "y_train" in keys:
        lkey = "y_train"
    return ikey, lkey


def _apply_layout(arr: np.ndarray, layout: str, where: str) -> np.ndarray:
    if layout == "auto":
        if arr.ndim == 3:
            layout = "NHW"
        elif arr.ndim == 4 and arr.shape[-1] in (1, 3):
            layout = "NHWC"
        elif arr.ndim == 4 and arr.shape[1] in (1, 3):
            layout = "NCHW"
        else:
            raise DataError(f"{where}: cannot infer the layout of an array of shape {arr.shape}; set layout to NHW, NHWC or NCHW")
    want = 3 if layout == "NHW" else 4
    if arr.ndim != want:
        raise DataError(f"{where}: layout {layout} needs a {want}-D array, got shape {arr.shape}")
    if layout == "NHW":
        return arr[:, None]
    return arr.transpose(0, 3, 1, 2) if layout == "NHWC" else arr


def _load_npz(spec: dict, log) -> SourceData:
    if not spec.get("path"):
        raise DataError("source 'npz' needs dataset.path: an .npz file")
    path = Path(spec["path"]).expanduser()
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist; set dataset.path to an existing .npz")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as err:
        raise DataError(f"cannot read {path} as .npz: {err}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{path} is a single .npy array, not an .npz archive; save it with np.savez(path, images=...)")
    with npz:
        keys = list(npz.files)
        ikey, lkey = _npz_keys(spec, keys, path)
        try:
            arr = npz[ikey]
            labels = npz[lkey] if lkey else None
        except ValueError as err:  # object arrays need pickle: refused
            raise DataError(f"{path}: cannot read {ikey!r}/{lkey!r} without unpickling ({err}); store plain arrays") from None
    where = f"{path}[{ikey!r}]"
    if arr.dtype != np.uint8:
        lo, hi = (arr.min(), arr.max()) if arr.size and arr.dtype.kind in "biuf" else (None, None)
        if arr.dtype.kind not in "iu" or (arr.size and (lo < 0 or hi > 255)):
            raise DataError(
                f"{where} must hold uint8 pixels (or integers in 0..255), got {arr.dtype} with range [{lo}, {hi}]; "
                f"convert it to uint8 (e.g. np.round(x * 255).astype(np.uint8) for floats in [0, 1])"
            )
        arr = arr.astype(np.uint8)
    arr = np.ascontiguousarray(_apply_layout(arr, spec.get("layout", "auto"), where))
    if labels is not None:
        if labels.ndim != 1 or len(labels) != len(arr) or labels.dtype.kind not in "iu":
            raise DataError(
                f"{path}[{lkey!r}] must be {len(arr)} integer labels (one per image of {ikey!r}), "
                f"got {labels.dtype} {labels.shape}"
            )
        labels = labels.astype(np.int64)
    return SourceData(arr, labels, {
        "path": str(path.resolve()), "source_sha256": _sha256_file(path), "images_key": ikey,
        "labels_key": lkey or "", "layout": spec.get("layout", "auto"),
    })  # fmt: skip


def _count_npz(spec: dict) -> int | None:
    path = Path(spec["path"]).expanduser()
    with zipfile.ZipFile(path) as z:
        keys = [k[:-4] for k in z.namelist() if k.endswith(".npy")]
        ikey, _ = _npz_keys(spec, keys, path)
        with z.open(ikey + ".npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape = np.lib.format.read_array_header_1_0(f)[0]
            else:
                shape = np.lib.format.read_array_header_2_0(f)[0]
    return int(shape[0]) if len(shape) else None


# ----------------------------------------------------------------------------- public API
_LOADERS = {
    "digits": _load_digits, "mnist": _load_idx, "fashion_mnist": _load_idx,
    "cifar10": _load_cifar10, "image_folder": _load_image_folder, "npz": _load_npz,
}  # fmt: skip


def load_source(spec: dict, log: logging.Logger | None = None) -> SourceData:
    """Load the images described by one ``dataset`` config section (see the module docstring).

    Returns uint8 (N, C, H, W) C-contiguous images, int64 labels (or None) and provenance
    attributes: ``source``, ``path``, ``resolution`` (when square), ``height``, ``width``,
    ``channels``, ``count``, ``source_sha256``, ``skipped_images``, ``resize_filter`` and a few
    source-specific ones. Raises :class:`DataError` for every problem with the input data.
    """
    log = log or _LOG
    source = _check_spec(spec)
    data = _LOADERS[source](spec, log)
    limit = spec.get("limit")
    images, labels = data.images, data.labels
    if limit:
        images, labels = images[:limit], (labels[:limit] if labels is not None else None)
    if len(images) == 0:
        raise DataError(f"data source {source!r} at {data.attrs.get('path')} holds no images")
    _, c0, h0, w0 = images.shape
    attrs = {"skipped_images": 0, "resize_filter": "none", "channel_conversion": "none"}
    if source != "image_folder":  # image_folder converts while decoding
        images, resized, conversion = _convert(images, spec.get("resolution"), spec.get("channels"), log)
        attrs["resize_filter"] = RESIZE_FILTER if resized else "none"
        attrs["channel_conversion"] = conversion
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise DataError(f"{data.attrs.get('path')}: images have {c} channels; only 1 (gray) or 3 (RGB) are supported")
    attrs.update(data.attrs)
    attrs.update({
        "source": source, "height": int(h), "width": int(w), "channels": int(c), "count": int(n),
        "native_height": int(h0), "native_width": int(w0), "native_channels": int(c0),
    })  # fmt: skip
    if h == w:
        attrs["resolution"] = int(h)
    if "split" in spec and "split" not in attrs:
        attrs["split"] = spec["split"]
    if limit:
        attrs["limit"] = int(limit)
    log.info("%s: %d images %dx%dx%d from %s", source, n, c, h, w, attrs["path"])
    images = np.require(images, dtype=np.uint8, requirements=["C", "W"])
    return SourceData(images, labels, attrs)


def count_source_images(spec: dict) -> int | None:
    """Number of images ``load_source(spec)`` will return, cheaply (no image decoding).

    digits: 1797; mnist/fashion_mnist: the IDX header; cifar10: binary batch sizes, or the
    python batches' label lists (cached per file); npz: the .npy header inside the zip;
    image_folder: the number of image files (an upper bound when ``skip_bad_images`` skips
    some). ``limit`` applies. None when the source is missing or unreadable: the loader
    reports that with a clear error later.
    """
    try:
        source = _check_spec(spec)
        n = None
        if source == "digits":
            n = DIGITS_COUNT
        elif source in _IDX and spec.get("root"):
            paths, missing = _idx_find(spec)
            if missing is None:
                with _open_idx(paths[0]) as f:
                    n = _idx_header(f, paths[0], _IDX_IMAGES_MAGIC)[0]
        elif source == "cifar10" and spec.get("root"):
            n = _count_cifar10(spec)
        elif source == "npz" and spec.get("path") and Path(spec["path"]).expanduser().is_file():
            n = _count_npz(spec)
        elif source == "image_folder" and spec.get("path") and Path(spec["path"]).expanduser().exists():
            names, _, archive = _list_images(Path(spec["path"]).expanduser())
            if archive is not None:
                archive.close()
            n = len(names) or None
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError):  # DataError is a ValueError
        return None
    if n is None:
        return None
    limit = spec.get("limit")
    return min(n, int(limit)) if limit else int(n)


# ----------------------------------------------------------------------------- HDF5
def _h5_attr(value):
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_dataset_h5(path, data: SourceData, spec: dict) -> None:
    """Write ``images`` (uint8 N,C,H,W), ``labels`` (int64, if any) and provenance attributes.

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

"""Image sources → one HDF5 file of uint8 images (N, C, H, W) with provenance.

Sources (``dataset.source`` in the config):

* ``digits`` — scikit-learn's bundled 8×8 digits (1797 images, offline). Gray levels 0…16 are
  mapped to uint8 by v ↦ round(v·255/16), so 0 ↦ 0, 8 ↦ 128, 16 ↦ 255.
* ``mnist``, ``fashion_mnist`` — torchvision's on-disk layout ``<root>/MNIST/raw`` and
  ``<root>/FashionMNIST/raw`` (IDX files, optionally ``.gz``).
* ``cifar10`` — torchvision's ``<root>/cifar-10-batches-py`` (pickled batches, read with a
  restricted unpickler that accepts numpy arrays only) or ``<root>/cifar-10-batches-bin``.
* ``image_folder`` — a directory (recursive) or a .zip of images, sorted by relative path,
  center-cropped to a square and resized with ``PIL.Image.LANCZOS``.
* ``npz`` — arrays in an .npz (``images_key``, ``labels_key``, ``layout``).

Nothing is downloaded unless ``download: true``. Every problem raises :class:`DataError`
naming the file or key and what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import pickle
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

log = logging.getLogger("hiddengauss")

SOURCES = ("digits", "mnist", "fashion_mnist", "cifar10", "image_folder", "npz")
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
RESIZE_FILTER = "PIL.Image.LANCZOS after center crop"

_IDX = {
    "mnist": ("MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "fashion_mnist": ("FashionMNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
}
_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
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
_CIFAR_URL, _CIFAR_FILE, _CIFAR_MD5 = "https://www.cs.toronto.edu/~kriz/", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"


class DataError(ValueError):
    """Bad or missing input data; the message names the file or key."""


@dataclass
class SourceData:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray | None
    attrs: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- conversions
def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) → float32 (N, C·H·W) in [-1, 1]: x = v/127.5 − 1, C-H-W order."""
    return (np.asarray(images, dtype=np.float32) / 127.5 - 1.0).reshape(len(images), -1)


def to_uint8(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`to_float`, rounded and clipped to 0…255."""
    v = np.rint((np.asarray(x, dtype=np.float64) + 1.0) * 127.5)
    return np.clip(v, 0, 255).astype(np.uint8).reshape(-1, *shape)


def _square_resize(img, resolution: int | None):
    """Center-crop a PIL image to a square, then Lanczos-resize it to ``resolution``."""
    from PIL import Image

    w, h = img.size
    if resolution is None and w == h:
        return img
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if resolution is not None and side != resolution:
        img = img.resize((resolution, resolution), Image.LANCZOS)
    return img


def _convert(images: np.ndarray, resolution: int | None, channels: int | None) -> np.ndarray:
    """Channel conversion and square resize of a uint8 (N, C, H, W) array (PIL, per image)."""
    from PIL import Image

    n, c, h, w = images.shape
    need_resize = (resolution is not None and (h, w) != (resolution, resolution)) or h != w
    if channels in (None, c) and not need_resize:
        return images
    out_c = channels or c
    if c not in (1, 3):
        raise DataError(f"cannot convert images with {c} channels (need 1 or 3)")
    out = []
    for im in images:
        pil = Image.fromarray(im[0] if c == 1 else im.transpose(1, 2, 0), mode="L" if c == 1 else "RGB")
        pil = _square_resize(pil.convert("L" if out_c == 1 else "RGB"), resolution)
        a = np.asarray(pil, dtype=np.uint8)
        out.append(a[None] if out_c == 1 else a.transpose(2, 0, 1))
    return np.stack(out)


# ----------------------------------------------------------------------------- sources
def _sha256_bytes(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_digits(spec: dict) -> SourceData:
    from sklearn.datasets import load_digits

    d = load_digits()
    raw = d.images.astype(np.float64)  # (1797, 8, 8), values 0..16
    images = np.rint(raw * 255.0 / 16.0).astype(np.uint8)[:, None]
    return SourceData(images, d.target.astype(np.int64), {
        "path": "sklearn.datasets.load_digits", "source_sha256": _sha256_bytes(raw.tobytes()),
        "mapping": "uint8 = round(v * 255 / 16) for scikit-learn gray levels v in 0..16",
    })  # fmt: skip


def _read_idx(path: Path, expected_magic: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{path} is not an IDX file of the expected kind (magic {magic:#x}, expected {expected_magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: header says {dims}, found {body.size} values")
    return body.reshape(dims)


def _idx_paths(spec: dict) -> tuple[Path, Path]:
    folder, _ = _IDX[spec["source"]]
    raw = Path(spec.get("root", "")) / folder / "raw"
    found = []
    for name in _IDX_FILES[spec.get("split", "train")]:
        cands = [raw / name, raw / f"{name}.gz"]
        hit = next((p for p in cands if p.exists()), None)
        if hit is None:
            return None
        found.append(hit)
    return tuple(found)


def _require_root(spec: dict) -> Path:
    if "root" not in spec:
        raise DataError(f"source {spec['source']!r} needs 'root': the torchvision data folder")
    return Path(spec["root"]).expanduser()


def _missing(spec: dict, what: Path) -> DataError:
    return DataError(
        f"{spec['source']} data not found: {what} does not exist. Set `download: true` in the "
        f"dataset config to fetch it into root={spec['root']!r}, or copy torchvision's files there."
    )


def _fetch(url: str, dest: Path, md5: str | None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s", url)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            for block in iter(lambda: r.read(1 << 20), b""):
                f.write(block)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DataError(f"download of {url} failed: {err}") from None
    if md5 is not None:
        got = hashlib.md5(tmp.read_bytes()).hexdigest()
        if got != md5:
            tmp.unlink()
            raise DataError(f"download of {url} is corrupt: md5 {got}, expected {md5}")
    os.replace(tmp, dest)


def _download(spec: dict, root: Path) -> None:
    source, verify = spec["source"], spec.get("verify_md5", True)
    if source in _IDX:
        folder, base = _IDX[source]
        base = spec.get("mirror", base).rstrip("/") + "/"
        for name in _IDX_FILES["train"] + _IDX_FILES["test"]:
            gz = f"{name}.gz"
            if not (root / folder / "raw" / name).exists() and not (root / folder / "raw" / gz).exists():
                _fetch(base + gz, root / folder / "raw" / gz, _MD5[source][gz] if verify else None)
    else:
        base = spec.get("mirror", _CIFAR_URL).rstrip("/") + "/"
        archive = root / _CIFAR_FILE
        _fetch(base + _CIFAR_FILE, archive, _CIFAR_MD5 if verify else None)
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                if m.name.startswith("/") or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
                    raise DataError(f"refusing unsafe member {m.name!r} in {archive}")
            tar.extractall(root, filter="data")


def _load_idx_source(spec: dict) -> SourceData:
    root = _require_root(spec)
    paths = _idx_paths(spec)
    if paths is None and spec.get("download", False):
        _download(spec, root)
        paths = _idx_paths(spec)
    if paths is None:
        raise _missing(spec, root / _IDX[spec["source"]][0] / "raw" / _IDX_FILES[spec.get("split", "train")][0])
    images = _read_idx(paths[0], 0x0803)[:, None]
    labels = _read_idx(paths[1], 0x0801).astype(np.int64)
    if len(labels) != len(images):
        raise DataError(f"{paths[1]} has {len(labels)} labels for {len(images)} images in {paths[0]}")
    return SourceData(images, labels, {"path": str(paths[0].resolve()), "source_sha256": _sha256_file(paths[0])})


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that reconstructs numpy arrays and builtin containers, and nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }  # fmt: skip

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise DataError(f"refusing to unpickle {module}.{name}: CIFAR batches may hold numpy arrays only")


def _cifar_batch_names(split: str) -> list[str]:
    return [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]


def _load_cifar10(spec: dict) -> SourceData:
    root = _require_root(spec)
    split = spec.get("split", "train")
    py, binary = root / "cifar-10-batches-py", root / "cifar-10-batches-bin"
    if not py.exists() and not binary.exists() and spec.get("download", False):
        _download(spec, root)
    images, labels, digest = [], [], hashlib.sha256()
    if py.exists():
        for name in _cifar_batch_names(split):
            path = py / name
            if not path.exists():
                raise DataError(f"CIFAR-10 batch {path} is missing")
            raw = path.read_bytes()
            digest.update(raw)
            try:
                batch = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
            except DataError as err:
                raise DataError(f"{path}: {err}") from None
            except Exception as err:
                raise DataError(f"{path} is not a readable CIFAR-10 batch: {err}") from None
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        where = py
    elif binary.exists():
        for name in _cifar_batch_names(split):
            path = binary / f"{name}.bin"
            if not path.exists():
                raise DataError(f"CIFAR-10 batch {path} is missing")
            raw = path.read_bytes()
            digest.update(raw)
            if len(raw) % 3073:
                raise DataError(f"{path} is not a CIFAR-10 binary batch (size {len(raw)} is not a multiple of 3073)")
            rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3073)
            labels.append(rec[:, 0].astype(np.int64))
            images.append(rec[:, 1:].reshape(-1, 3, 32, 32))
        where = binary
    else:
        raise _missing(spec, py)
    return SourceData(np.concatenate(images), np.concatenate(labels), {"path": str(where.resolve()), "source_sha256": digest.hexdigest()})


def _list_images(path: Path) -> tuple[list[str], list[str], zipfile.ZipFile | None]:
    """Sorted image names (relative paths) and the ignored non-image names."""
    if path.is_dir():
        names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        archive = None
    elif path.is_file() and zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        names = sorted(n for n in archive.namelist() if not n.endswith("/"))
    elif path.exists():
        raise DataError(f"image_folder path {path} is neither a directory nor a zip file")
    else:
        raise DataError(f"image_folder path {path} does not exist")
    images = [n for n in names if Path(n).suffix.lower() in IMAGE_EXTENSIONS]
    others = [n for n in names if Path(n).suffix.lower() not in IMAGE_EXTENSIONS]
    return images, others, archive


def _load_image_folder(spec: dict) -> SourceData:
    from PIL import Image
    from tqdm.auto import tqdm

    if "path" not in spec:
        raise DataError("source 'image_folder' needs 'path': a directory or a .zip of images")
    if "resolution" not in spec:
        raise DataError(f"source 'image_folder' needs 'resolution' (the output side length) for {spec['path']}")
    path = Path(spec["path"]).expanduser()
    names, others, archive = _list_images(path)
    if others:
        log.info("ignoring %d non-image files in %s (e.g. %s)", len(others), path, ", ".join(others[:3]))
    if not names:
        raise DataError(f"no images found in {path} (extensions {sorted(IMAGE_EXTENSIONS)}; {len(others)} non-image files ignored)")
    limit = spec.get("limit")
    mode = "L" if spec.get("channels", 3) == 1 else "RGB"
    res = int(spec["resolution"])
    digest, images, bad = hashlib.sha256(), [], []
    for name in tqdm(names, desc="images", disable=len(names) < 1000, mininterval=5):
        if limit is not None and len(images) >= limit:
            break
        raw = archive.read(name) if archive else (path / name).read_bytes()
        try:
            with Image.open(io.BytesIO(raw)) as im:
                im.load()
                pil = _square_resize(im.convert(mode), res)
        except Exception as err:
            where = f"{name} in {path}" if archive else str(path / name)
            if not spec.get("skip_bad_images", False):
                raise DataError(f"cannot read image {where}: {err}. Fix or remove it, or set skip_bad_images: true") from None
            bad.append(where)
            continue
        digest.update(name.encode() + b"\0" + raw)
        a = np.asarray(pil, dtype=np.uint8)
        images.append(a[None] if mode == "L" else a.transpose(2, 0, 1))
    if archive:
        archive.close()
    if bad:
        log.warning("skipped %d unreadable images: %s", len(bad), ", ".join(bad[:10]))
    if not images:
        raise DataError(f"no readable images in {path} ({len(bad)} unreadable)")
    return SourceData(np.stack(images), None, {
        "path": str(path.resolve()), "source_sha256": digest.hexdigest(), "skipped_images": len(bad),
        "resize_filter": RESIZE_FILTER, "ignored_files": len(others),
    })  # fmt: skip


def _npz_keys(spec: dict, keys: list[str]) -> tuple[str, str | None]:
    path = spec["path"]
    if "images_key" in spec:
        ikey = spec["images_key"]
        if ikey not in keys:
            raise DataError(f"{path} has no array {ikey!r} (images_key); arrays found: {keys}")
    elif "x_train" in keys:
        ikey = "x_train"
    elif "images" in keys:
        ikey = "images"
    else:
        raise DataError(f"{path}: set images_key to one of the arrays found: {keys}")
    lkey = spec.get("labels_key")
    if lkey is not None and lkey not in keys:
        raise DataError(f"{path} has no array {lkey!r} (labels_key); arrays found: {keys}")
    if lkey is None and ikey == "x_train" and "y_train" in keys:
        lkey = "y_train"
    return ikey, lkey


def _layout(arr: np.ndarray, layout: str, where: str) -> np.ndarray:
    if layout == "auto":
        if arr.ndim == 3:
            layout = "NHW"
        elif arr.ndim == 4 and arr.shape[-1] in (1, 3):
            layout = "NHWC"
        elif arr.ndim == 4 and arr.shape[1] in (1, 3):
            layout = "NCHW"
        else:
            raise DataError(f"{where}: cannot infer the layout of an array of shape {arr.shape}; set layout")
    want = {"NHW": 3, "NHWC": 4, "NCHW": 4}[layout]
    if arr.ndim != want:
        raise DataError(f"{where}: layout {layout} needs a {want}-D array, got shape {arr.shape}")
    if layout == "NHW":
        return arr[:, None]
    return arr.transpose(0, 3, 1, 2) if layout == "NHWC" else arr


def _load_npz(spec: dict) -> SourceData:
    if "path" not in spec:
        raise DataError("source 'npz' needs 'path': an .npz file")
    path = Path(spec["path"]).expanduser()
    if not path.exists():
        raise DataError(f"npz file {path} does not exist")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as err:
        raise DataError(f"cannot read {path} as .npz: {err}") from None
    with npz:
        ikey, lkey = _npz_keys({**spec, "path": str(path)}, list(npz.files))
        try:
            arr = npz[ikey]
        except ValueError as err:  # object arrays need pickle: refused
            raise DataError(f"{path}[{ikey!r}] cannot be read without unpickling: {err}") from None
        labels = npz[lkey].astype(np.int64) if lkey else None
    where = f"{path}[{ikey!r}]"
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.integer) or arr.size and (arr.min() < 0 or arr.max() > 255):
            lo, hi = (arr.min(), arr.max()) if arr.size else (0, 0)
            raise DataError(f"{where} must hold uint8 pixels (or integers in 0..255), got {arr.dtype} in [{lo}, {hi}]")
        arr = arr.astype(np.uint8)
    arr = np.ascontiguousarray(_layout(arr, spec.get("layout", "auto"), where))
    if labels is not None and len(labels) != len(arr):
        raise DataError(f"{path}: {len(labels)} labels ({lkey!r}) for {len(arr)} images ({ikey!r})")
    return SourceData(arr, labels, {"path": str(path.resolve()), "source_sha256": _sha256_file(path), "images_key": ikey})


_LOADERS = {
    "digits": _load_digits, "mnist": _load_idx_source, "fashion_mnist": _load_idx_source,
    "cifar10": _load_cifar10, "image_folder": _load_image_folder, "npz": _load_npz,
}  # fmt: skip


def load_source(spec: dict, log: logging.Logger | None = None) -> SourceData:
    """Load the images described by one ``dataset`` config section (see module docstring)."""
    source = spec.get("source")
    if source not in _LOADERS:
        raise DataError(f"unknown data source {source!r}; allowed: {', '.join(SOURCES)}")
    data = _LOADERS[source](spec)
    limit = spec.get("limit")
    images = data.images[:limit] if limit else data.images
    labels = data.labels[:limit] if (limit and data.labels is not None) else data.labels
    if source != "image_folder":
        images = _convert(images, spec.get("resolution"), spec.get("channels"))
    if len(images) == 0:
        raise DataError(f"data source {source!r} at {data.attrs.get('path')} holds no images")
    n, c, h, w = images.shape
    attrs = {
        "source": source, "resolution": int(h), "height": int(h), "width": int(w), "channels": int(c),
        "count": int(n), "skipped_images": 0, "resize_filter": "none",
        **data.attrs,
    }  # fmt: skip
    if source != "image_folder" and (spec.get("resolution") or h != w):
        attrs["resize_filter"] = RESIZE_FILTER
    (log or logging.getLogger("hiddengauss")).info("%s: %d images %dx%dx%d from %s", source, n, c, h, w, attrs["path"])
    return SourceData(np.ascontiguousarray(images), labels, attrs)


def count_source_images(spec: dict) -> int | None:
    """Number of images a source holds, without decoding them (None when it is missing)."""
    source = spec.get("source")
    limit = spec.get("limit")
    n = None
    try:
        if source == "digits":
            n = 1797
        elif source in _IDX:
            paths = _idx_paths(spec) if "root" in spec else None
            if paths:
                opener = gzip.open if paths[0].suffix == ".gz" else open
                with opener(paths[0], "rb") as f:
                    n = int.from_bytes(f.read(8)[4:8], "big")
        elif source == "cifar10" and "root" in spec:
            root = Path(spec["root"]).expanduser()
            if (root / "cifar-10-batches-py").exists() or (root / "cifar-10-batches-bin").exists():
                n = 50000 if spec.get("split", "train") == "train" else 10000
        elif source == "npz" and Path(spec.get("path", "")).is_file():
            with zipfile.ZipFile(spec["path"]) as z:
                keys = [k[:-4] for k in z.namelist() if k.endswith(".npy")]
                ikey, _ = _npz_keys(spec, keys)
                with z.open(ikey + ".npy") as f:
                    major, _ = np.lib.format.read_magic(f)
                    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                    shape = read_header(f)[0]
                n = int(shape[0])
        elif source == "image_folder" and Path(spec.get("path", "")).exists():
            names, _, archive = _list_images(Path(spec["path"]).expanduser())
            if archive:
                archive.close()
            n = len(names)
    except (OSError, zipfile.BadZipFile, DataError, ValueError):
        return None
    return None if n is None else (min(n, limit) if limit else n)


# ----------------------------------------------------------------------------- HDF5
def write_dataset_h5(path: str | Path, data: SourceData, spec: dict) -> None:
    """Write ``images`` (uint8 N,C,H,W), ``labels`` and provenance attributes, atomically."""
    from .io import atomic_h5

    images = np.ascontiguousarray(data.images, dtype=np.uint8)
    with atomic_h5(path) as f:
        f.create_dataset("images", data=images, chunks=(min(len(images), 256), *images.shape[1:]))
        if data.labels is not None:
            f["labels"] = np.asarray(data.labels, dtype=np.int64)
        f.attrs.update({k: v for k, v in data.attrs.items() if v is not None})
        f.attrs["config"] = json.dumps(spec, sort_keys=True)
        f.attrs["format_version"] = 1


def _read(path, key: str, indices) -> np.ndarray:
    with h5py.File(path, "r") as f:
        if key not in f:
            raise DataError(f"{path} has no dataset {key!r}")
        ds = f[key]
        if indices is None:
            return ds[...]
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(ds)):
            raise DataError(f"indices out of range for {path} ({len(ds)} images)")
        uniq, inverse = np.unique(idx, return_inverse=True)
        return ds[uniq][inverse] if uniq.size else ds[:0]


def read_images(path, indices=None) -> np.ndarray:
    """uint8 images (N, C, H, W) at ``indices`` (any order, duplicates allowed; None = all)."""
    return _read(path, "images", indices)


def read_labels(path, indices=None) -> np.ndarray | None:
    with h5py.File(path, "r") as f:
        if "labels" not in f:
            return None
    return _read(path, "labels", indices)


def read_attrs(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: (v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v) for k, v in f.attrs.items()}

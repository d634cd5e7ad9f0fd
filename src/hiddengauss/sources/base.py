"""What every image source shares: the loaded images, progress, content hashes, crop and resize."""

from __future__ import annotations

import hashlib
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..dataset import DataError  # noqa: F401  (raised by every source)

_LOG = logging.getLogger("hiddengauss")

SOURCES = ("digits", "mnist", "fashion_mnist", "cifar10", "image_folder", "npz")
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
RESIZE_FILTER = "PIL.Image.LANCZOS after center crop"
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


@dataclass
class SourceData:
    """Images of one source: uint8 (N, C, H, W) C-contiguous, int64 labels or None, provenance."""

    images: np.ndarray
    labels: np.ndarray | None
    attrs: dict = field(default_factory=dict)



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

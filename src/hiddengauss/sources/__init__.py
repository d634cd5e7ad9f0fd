"""Image sources: every supported format read into uint8 images (N, C, H, W) with provenance
(paper_spec §1.1); :mod:`hiddengauss.dataset` stores them in the HDF5 file every later stage reads.

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

import hashlib
import logging
import zipfile
from pathlib import Path

import numpy as np

from ..dataset import DataError
from .base import (
    _IDX,
    _IDX_FILES,
    _IDX_IMAGES_MAGIC,
    _LOG,
    DIGITS_COUNT,
    RESIZE_FILTER,
    SOURCES,
    SourceData,
    _convert,
    _int_option,
)
from .cifar import _count_cifar10, _load_cifar10
from .folder import _list_images, _load_image_folder
from .idx import _idx_find, _idx_header, _load_idx, _open_idx
from .npz import _count_npz, _load_npz


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


# options each source cannot do without (the schema cannot say this per source)
REQUIRED_OPTIONS = {"mnist": ("root",), "fashion_mnist": ("root",), "cifar10": ("root",),
                    "image_folder": ("path", "resolution"), "npz": ("path",)}  # fmt: skip


def source_problems(spec: dict, key: str = "dataset") -> tuple[list[str], list[str]]:
    """What stops ``spec`` (config section ``key``) from being read, found before any job runs.

    Returns (errors, missing paths): an option the source needs and lacks is an error in every
    run; a ``path`` or ``root`` that does not exist (and is not to be downloaded) is listed in
    the second list, which a dry run may only warn about (paper-scale configs are planned on
    machines without their data).
    """
    source = spec["source"]
    errors = [f"config key '{key}.{opt}': source {source!r} needs it" + (" (the output side length in pixels; "
              "images are center-cropped and resized to it)" if opt == "resolution" else "")
              for opt in REQUIRED_OPTIONS.get(source, ()) if spec.get(opt) is None]  # fmt: skip
    missing = []
    for opt in ("path", "root"):
        if opt in REQUIRED_OPTIONS.get(source, ()) and spec.get(opt) is not None:
            where = Path(spec[opt]).expanduser()
            if not where.exists() and not (opt == "root" and spec.get("download")):
                missing.append(f"config key '{key}.{opt}': {where} does not exist")
    return errors, missing


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

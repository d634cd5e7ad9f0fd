"""Arrays in an .npz archive, loaded without unpickling."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..dataset import DataError
from .base import SourceData, _sha256_file


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

"""A directory or .zip of image files, decoded with PIL."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np

from ..dataset import DataError
from .base import (
    IMAGE_EXTENSIONS,
    RESIZE_FILTER,
    SourceData,
    _crop_resize,
    _hash_entry,
    _pil_to_array,
    _progress,
)


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

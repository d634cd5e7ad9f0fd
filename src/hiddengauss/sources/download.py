"""Downloads (only with ``download: true``): md5-checked fetches and safe archive extraction."""

from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.request
from pathlib import Path

from ..dataset import DataError
from .base import _CIFAR_FILE, _CIFAR_MD5, _CIFAR_PY, _CIFAR_URL, _IDX, _IDX_FILES, _MD5


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

"""Every image source (hiddengauss.sources) on small data the tests make themselves."""

import gzip
import hashlib
import io
import logging
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hiddengauss.sources.download as download_mod
from hiddengauss.dataset import DataError
from hiddengauss.sources import count_source_images, load_source, source_problems

MNIST_NPZ = Path(__file__).parents[2] / "shared/data/mnist/mnist_uint8.npz"


def assert_count_matches(spec: dict, loaded) -> None:
    assert count_source_images(spec) == len(loaded.images) == loaded.attrs["count"]


# ----------------------------------------------------------------------------- image folder / zip
def make_folder(root: Path) -> Path:
    """Mixed sizes and modes (L, RGB, RGBA, P), a JPEG in a subfolder, and files to ignore."""
    root.mkdir(parents=True)
    g = np.random.default_rng(0)
    Image.fromarray(g.integers(0, 256, (20, 30, 3), dtype=np.uint8), "RGB").save(root / "b.png")
    Image.fromarray(g.integers(0, 256, (16, 16), dtype=np.uint8), "L").save(root / "a.png")
    (root / "sub").mkdir()
    Image.fromarray(g.integers(0, 256, (40, 24, 4), dtype=np.uint8), "RGBA").save(root / "sub" / "c.PNG")
    Image.fromarray(g.integers(0, 256, (12, 12, 3), dtype=np.uint8), "RGB").convert("P").save(root / "sub" / "d.gif")
    Image.fromarray(g.integers(0, 256, (10, 14, 3), dtype=np.uint8), "RGB").save(root / "sub" / "e.JPG", quality=90)
    (root / "dataset.json").write_text('{"labels": null}')
    (root / "README.txt").write_text("not an image")
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    return root


FOLDER_ORDER = ["a.png", "b.png", "sub/c.PNG", "sub/d.gif", "sub/e.JPG"]
N_IGNORED = 3


def reference_pipeline(path: Path, mode: str, res: int) -> np.ndarray:
    """convert → center crop → LANCZOS resize, written out independently of the loader."""
    with Image.open(path) as im:
        im = im.convert(mode)
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        if s != res:
            im = im.resize((res, res), Image.LANCZOS)
        a = np.asarray(im)
    return a[None] if mode == "L" else a.transpose(2, 0, 1)


def zip_folder(folder: Path, dest: Path, extra: dict | None = None) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(folder.rglob("*"), reverse=True):  # zip order must not matter
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
        for name, raw in (extra or {}).items():
            zf.writestr(name, raw)
    return dest


def test_image_folder_matches_reference_pipeline(tmp_path, caplog):
    folder = make_folder(tmp_path / "imgs")
    spec = {"source": "image_folder", "path": str(folder), "resolution": 8}
    with caplog.at_level(logging.INFO, logger="test"):
        d = load_source(spec, log=logging.getLogger("test"))
    assert "ignoring 3 non-image files" in caplog.text
    assert d.images.shape == (5, 3, 8, 8) and d.images.dtype == np.uint8 and d.images.flags.c_contiguous
    assert d.labels is None
    for i, name in enumerate(FOLDER_ORDER):  # sorted relative-path order defines image i
        np.testing.assert_array_equal(d.images[i], reference_pipeline(folder / name, "RGB", 8))
    assert np.array_equal(d.images[0, 0], d.images[0, 1])  # gray a.png replicated to RGB
    a = d.attrs
    assert a["source"] == "image_folder" and a["path"] == str(folder.resolve())
    assert (a["resolution"], a["channels"], a["count"], a["skipped_images"], a["ignored_files"]) == (8, 3, 5, 0, N_IGNORED)
    assert a["resize_filter"] == "PIL.Image.LANCZOS after center crop"
    assert len(a["source_sha256"]) == 64
    assert_count_matches(spec, d)


def test_image_folder_gray_and_no_resize(tmp_path):
    folder = make_folder(tmp_path / "imgs")
    gray = load_source({"source": "image_folder", "path": str(folder), "resolution": 4, "channels": 1})
    assert gray.images.shape == (5, 1, 4, 4) and gray.attrs["channels"] == 1
    np.testing.assert_array_equal(gray.images[1], reference_pipeline(folder / "b.png", "L", 4))
    only = tmp_path / "only"
    only.mkdir()
    (folder / "a.png").rename(only / "a.png")
    d = load_source({"source": "image_folder", "path": str(only), "resolution": 16, "channels": 1})
    with Image.open(only / "a.png") as im:  # already 16×16: pixels untouched
        np.testing.assert_array_equal(d.images[0, 0], np.asarray(im))
    assert d.attrs["resize_filter"] == "none"


def test_image_zip_equals_folder(tmp_path):
    folder = make_folder(tmp_path / "imgs")
    z = zip_folder(folder, tmp_path / "imgs.zip", {"__MACOSX/._a.png": b"\x00\x05\x16\x07", "._b.png": b"junk"})
    spec = {"source": "image_folder", "path": str(folder), "resolution": 8}
    d = load_source(spec)
    zspec = {**spec, "path": str(z)}
    dz = load_source(zspec)
    np.testing.assert_array_equal(dz.images, d.images)
    assert dz.attrs["source_sha256"] == d.attrs["source_sha256"]
    assert dz.attrs["ignored_files"] == N_IGNORED + 2  # resource forks are not images
    assert_count_matches(zspec, dz)
    assert count_source_images({**zspec, "limit": 2}) == 2


def test_content_hash(tmp_path):
    folder = make_folder(tmp_path / "imgs")
    spec = {"source": "image_folder", "path": str(folder), "resolution": 8}
    before = load_source(spec).attrs["source_sha256"]
    (folder / "README.txt").write_text("changed")  # not an image: hash unchanged
    assert load_source(spec).attrs["source_sha256"] == before
    limited = load_source({**spec, "limit": 2})
    assert limited.attrs["source_sha256"] != before and limited.attrs["count"] == 2  # only files read
    Image.fromarray(np.zeros((16, 16), np.uint8), "L").save(folder / "a.png")
    assert load_source(spec).attrs["source_sha256"] != before
    # npz: the sha256 of the file's bytes
    path = tmp_path / "x.npz"
    np.savez(path, images=np.zeros((2, 4, 4), np.uint8))
    h = load_source({"source": "npz", "path": str(path)}).attrs["source_sha256"]
    assert h == hashlib.sha256(path.read_bytes()).hexdigest()


def test_corrupt_image_stops_or_is_skipped(tmp_path):
    folder = make_folder(tmp_path / "imgs")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    spec = {"source": "image_folder", "path": str(folder), "resolution": 8}
    with pytest.raises(DataError, match=r"cannot read image .*broken\.png.*skip_bad_images: true"):
        load_source(spec)
    d = load_source({**spec, "skip_bad_images": True})
    assert d.attrs["skipped_images"] == 1 and len(d.images) == 5 and d.attrs["count"] == 5
    # with a limit, the skipped image does not use up a slot
    assert len(load_source({**spec, "skip_bad_images": True, "limit": 5}).images) == 5
    z = zip_folder(folder, tmp_path / "imgs.zip")
    with pytest.raises(DataError, match=r"cannot read image broken\.png in .*imgs\.zip"):
        load_source({**spec, "path": str(z)})


def test_empty_missing_and_bad_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    spec = {"source": "image_folder", "path": str(tmp_path / "empty"), "resolution": 8}
    with pytest.raises(DataError, match=r"no image files found in .*empty.*1 non-image files ignored"):
        load_source(spec)
    assert count_source_images(spec) is None
    with pytest.raises(DataError, match=r"nope does not exist"):
        load_source({**spec, "path": str(tmp_path / "nope")})
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataError, match=r"f\.txt is neither a directory nor a readable \.zip"):
        load_source({**spec, "path": str(tmp_path / "f.txt")})
    with pytest.raises(DataError, match="needs dataset.resolution"):
        load_source({"source": "image_folder", "path": str(tmp_path / "empty")})
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"none of the 1 image files .* could be read"):
        load_source({**spec, "path": str(bad), "skip_bad_images": True})


# ----------------------------------------------------------------------------- npz
@pytest.mark.parametrize(
    "layout,shape,to_nchw",
    [
        ("NHW", (5, 6, 6), lambda a: a[:, None]),
        ("NHWC", (5, 6, 6, 3), lambda a: a.transpose(0, 3, 1, 2)),
        ("NHWC", (5, 6, 6, 1), lambda a: a.transpose(0, 3, 1, 2)),
        ("NCHW", (5, 3, 6, 6), lambda a: a),
    ],
)
@pytest.mark.parametrize("explicit", [False, True])
def test_npz_layouts(tmp_path, layout, shape, to_nchw, explicit):
    arr = np.random.default_rng(1).integers(0, 256, shape).astype(np.uint8)
    path = tmp_path / "x.npz"
    np.savez_compressed(path, images=arr, y=np.arange(5))
    spec = {"source": "npz", "path": str(path), "labels_key": "y", **({"layout": layout} if explicit else {})}
    d = load_source(spec)
    np.testing.assert_array_equal(d.images, to_nchw(arr))
    assert d.images.flags.c_contiguous and d.labels.dtype == np.int64
    np.testing.assert_array_equal(d.labels, np.arange(5))
    assert d.attrs["images_key"] == "images" and d.attrs["resolution"] == 6
    assert_count_matches(spec, d)


def test_npz_defaults_and_integer_cast(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, x_train=np.arange(3 * 16, dtype=np.int16).reshape(3, 4, 4), y_train=np.array([3, 1, 2], np.uint8))
    spec = {"source": "npz", "path": str(path)}
    d = load_source(spec)
    assert d.images.dtype == np.uint8 and d.images.shape == (3, 1, 4, 4) and d.labels.tolist() == [3, 1, 2]
    assert_count_matches(spec, d)
    assert count_source_images({**spec, "limit": 2}) == 2 == len(load_source({**spec, "limit": 2}).images)


def test_npz_errors(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, pix=np.zeros((2, 4, 4), np.uint8), bad=np.full((2, 4, 4), 300.0), neg=np.full((2, 4, 4), -1),
             odd=np.zeros((2, 5, 5, 5), np.uint8), lab=np.zeros(3), objs=np.array([1, "a"], dtype=object))  # fmt: skip
    spec = {"source": "npz", "path": str(path)}
    with pytest.raises(DataError, match=r"set images_key to one of the arrays found: \['pix', 'bad'"):
        load_source(spec)
    assert count_source_images(spec) is None
    with pytest.raises(DataError, match=r"has no array 'x_test' \(images_key\); arrays found: \['pix'"):
        load_source({**spec, "images_key": "x_test"})
    with pytest.raises(DataError, match=r"has no array 'labels' \(labels_key\)"):
        load_source({**spec, "images_key": "pix", "labels_key": "labels"})
    with pytest.raises(DataError, match=r"\['bad'\] must hold uint8 pixels .*float64 with range \[300\.0, 300\.0\]"):
        load_source({**spec, "images_key": "bad"})
    with pytest.raises(DataError, match=r"\['neg'\] must hold uint8 pixels .*int64 with range \[-1, -1\]"):
        load_source({**spec, "images_key": "neg"})
    with pytest.raises(DataError, match=r"cannot infer the layout .*\(2, 5, 5, 5\)"):
        load_source({**spec, "images_key": "odd"})
    with pytest.raises(DataError, match=r"layout NHW needs a 3-D array"):
        load_source({**spec, "images_key": "odd", "layout": "NHW"})
    with pytest.raises(DataError, match=r"\['lab'\] must be 2 integer labels"):
        load_source({**spec, "images_key": "pix", "labels_key": "lab"})
    with pytest.raises(DataError, match=r"without unpickling"):
        load_source({**spec, "images_key": "objs"})
    with pytest.raises(DataError, match=r"images have 5 channels"):
        load_source({**spec, "images_key": "odd", "layout": "NCHW"})
    np.save(tmp_path / "single.npy", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(DataError, match=r"single \.npy array, not an \.npz"):
        load_source({"source": "npz", "path": str(tmp_path / "single.npy")})
    with pytest.raises(DataError, match=r"missing\.npz does not exist"):
        load_source({"source": "npz", "path": str(tmp_path / "missing.npz")})
    assert count_source_images({"source": "npz", "path": str(tmp_path / "missing.npz")}) is None


# ----------------------------------------------------------------------------- digits
def test_digits_mapping():
    from sklearn.datasets import load_digits

    d = load_source({"source": "digits"})
    assert d.images.shape == (1797, 1, 8, 8) and d.images.dtype == np.uint8 and d.images.max() == 255
    raw = load_digits().images
    np.testing.assert_array_equal(d.images[:, 0][raw == 16], 255)
    np.testing.assert_array_equal(d.images[:, 0][raw == 8], 128)
    np.testing.assert_array_equal(d.images[:, 0][raw == 0], 0)
    np.testing.assert_array_equal(d.images[:, 0], np.round(raw * 255 / 16).astype(np.uint8))
    np.testing.assert_array_equal(d.labels, load_digits().target)
    assert d.attrs["path"] == "sklearn.datasets.load_digits" and d.attrs["resize_filter"] == "none"
    assert d.attrs["source_sha256"] == hashlib.sha256(raw.tobytes()).hexdigest()
    assert_count_matches({"source": "digits"}, d)
    assert count_source_images({"source": "digits", "limit": 100}) == 100


# ----------------------------------------------------------------------------- MNIST / Fashion-MNIST
def write_idx(path: Path, arr: np.ndarray, magic: int, compress: bool) -> None:
    header = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(header + np.asarray(arr).astype(np.uint8).tobytes())


@pytest.mark.parametrize("source,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_sources(tmp_path, source, folder, compress):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    imgs = np.random.default_rng(2).integers(0, 256, (7, 5, 5))
    sfx = ".gz" if compress else ""
    write_idx(raw / f"t10k-images-idx3-ubyte{sfx}", imgs, 0x0803, compress)
    write_idx(raw / f"t10k-labels-idx1-ubyte{sfx}", np.arange(7), 0x0801, compress)
    spec = {"source": source, "root": str(tmp_path), "split": "test"}
    d = load_source(spec)
    np.testing.assert_array_equal(d.images[:, 0], imgs)
    np.testing.assert_array_equal(d.labels, np.arange(7))
    assert d.attrs["split"] == "test" and d.attrs["path"].endswith(f"t10k-images-idx3-ubyte{sfx}")
    assert_count_matches(spec, d)
    missing = raw / "train-images-idx3-ubyte"
    with pytest.raises(DataError, match=rf"{missing} \(nor its \.gz\) does not exist\. Set `download: true`"):
        load_source({**spec, "split": "train"})
    assert count_source_images({**spec, "split": "train"}) is None


def test_idx_errors(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    spec = {"source": "mnist", "root": str(tmp_path), "split": "test"}
    write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((3, 2, 2)), 0x0803, False)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte \(nor its \.gz\) does not exist"):
        load_source(spec)  # names the file that is actually missing
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(2), 0x0801, False)
    with pytest.raises(DataError, match=r"has 2 labels for the 3 images"):
        load_source(spec)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros((3, 2, 2)), 0x0803, False)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte is not the expected IDX file: magic number 0x00000803"):
        load_source(spec)
    header = b"".join(i.to_bytes(4, "big") for i in (0x0803, 3, 2, 2))
    (raw / "t10k-images-idx3-ubyte").write_bytes(header + b"\0" * 5)
    with pytest.raises(DataError, match=r"holds 5 values but its header says \[3, 2, 2\]"):
        load_source(spec)
    with pytest.raises(DataError, match=r"dataset.split must be 'train' or 'test'"):
        load_source({**spec, "split": "val"})
    with pytest.raises(DataError, match=r"needs dataset.root"):
        load_source({"source": "mnist"})


def test_download_from_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for split, n in (("train", 6), ("t10k", 3)):
        write_idx(mirror / f"{split}-images-idx3-ubyte.gz", np.full((n, 4, 4), 9), 0x0803, True)
        write_idx(mirror / f"{split}-labels-idx1-ubyte.gz", np.arange(n), 0x0801, True)
    root = tmp_path / "root"
    spec = {"source": "mnist", "root": str(root), "download": True, "mirror": mirror.as_uri()}
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz is corrupt: md5 .* expected f68b3c2d"):
        load_source(spec)  # md5 is checked for a mirror unless verify_md5: false
    assert not any(p.is_file() for p in root.rglob("*"))  # no partial file left behind
    d = load_source({**spec, "verify_md5": False})
    assert d.images.shape == (6, 1, 4, 4) and (d.images == 9).all() and d.labels.tolist() == list(range(6))
    raw = root / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(p.name for p in mirror.iterdir())
    assert_count_matches({"source": "mnist", "root": str(root)}, d)
    test = load_source({"source": "mnist", "root": str(root), "split": "test"})  # no download needed now
    assert len(test.images) == 3
    with pytest.raises(DataError, match=r"download of .*nothere/train-images-idx3-ubyte\.gz failed"):
        load_source({**spec, "root": str(tmp_path / "r2"), "mirror": (tmp_path / "nothere").as_uri(), "verify_md5": False})


def test_official_downloads_always_check_md5(tmp_path, monkeypatch):
    calls = []

    def fake_fetch(url, dest, md5, log):
        calls.append((url, md5))
        raise DataError("stop")

    monkeypatch.setattr(download_mod, "_fetch", fake_fetch)
    for spec in ({"verify_md5": False}, {}):  # verify_md5: false only applies to a mirror
        with pytest.raises(DataError, match="stop"):
            load_source({"source": "fashion_mnist", "root": str(tmp_path), "download": True, **spec})
    assert calls == [("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
                      "8d4fb7e6c68d591d4c3dfef9ec88bf0d")] * 2  # fmt: skip
    with pytest.raises(DataError, match="stop"):
        load_source({"source": "cifar10", "root": str(tmp_path), "download": True})
    assert calls[-1] == ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")


def test_missing_root_says_how_to_get_data(tmp_path):
    for spec, path in [
        ({"source": "cifar10", "root": str(tmp_path / "none")}, tmp_path / "none" / "cifar-10-batches-py"),
        ({"source": "fashion_mnist", "root": str(tmp_path / "none")},
         tmp_path / "none" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"),
    ]:  # fmt: skip
        with pytest.raises(DataError, match=rf"{path} .*does not exist\. Set `download: true`.*copy torchvision's files"):
            load_source(spec)
        assert count_source_images(spec) is None
    allowed = "allowed: digits, mnist, fashion_mnist, cifar10, image_folder, npz"
    with pytest.raises(DataError, match=rf"unknown data source 'imagenet'.*{allowed}"):
        load_source({"source": "imagenet"})
    assert count_source_images({"source": "imagenet"}) is None
    with pytest.raises(DataError, match=r"dataset.limit must be a positive integer"):
        load_source({"source": "digits", "limit": 0})
    with pytest.raises(DataError, match=r"dataset.channels must be one of \[1, 3\]"):
        load_source({"source": "digits", "channels": 2})


# ----------------------------------------------------------------------------- CIFAR-10
def cifar_batches(batches=5, per=4, seed=3):
    g = np.random.default_rng(seed)
    names = [f"data_batch_{k}" for k in range(1, batches + 1)] + ["test_batch"]
    return {
        n: (g.integers(0, 256, (per, 3072)).astype(np.uint8), [(i + j) % 10 for j in range(per)]) for i, n in enumerate(names)
    }


def write_cifar_py(root: Path, batches: dict, protocol=pickle.DEFAULT_PROTOCOL, payload=None) -> Path:
    py = root / "cifar-10-batches-py"
    py.mkdir(parents=True)
    for i, (name, (x, y)) in enumerate(batches.items()):
        obj = {b"batch_label": b"batch", b"labels": y, b"data": x, b"filenames": [b"f.png"] * len(y)}
        if payload is not None and i == 0:
            obj[b"extra"] = payload
        (py / name).write_bytes(pickle.dumps(obj, protocol=protocol))
    (py / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"]}))
    return py


def py2_style_batch(x: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled as the real CIFAR-10 files are: Python 2 cPickle protocol 2 of numpy arrays."""
    sbs = lambda s: b"U" + bytes([len(s)]) + s  # noqa: E731  SHORT_BINSTRING (a py2 str)
    raw = x.tobytes()
    out = b"\x80\x02}q\x00(" + sbs(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85" + sbs(b"b") + b"\x87R"
    out += b"(K\x01M" + struct.pack("<H", x.shape[0]) + b"M" + struct.pack("<H", x.shape[1]) + b"\x86"
    out += b"cnumpy\ndtype\n" + sbs(b"u1") + b"K\x00K\x01\x87R"
    out += b"(K\x03" + sbs(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += b"\x89T" + struct.pack("<I", len(raw)) + raw + b"tb"
    out += sbs(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return out + b"u."


@pytest.mark.parametrize("protocol", [2, 4, 5, "py2"])
def test_cifar10_py(tmp_path, protocol):
    batches = cifar_batches()
    if protocol == "py2":
        py = tmp_path / "cifar-10-batches-py"
        py.mkdir()
        for name, (x, y) in batches.items():
            (py / name).write_bytes(py2_style_batch(x, y))
    else:
        write_cifar_py(tmp_path, batches, protocol=protocol)
    spec = {"source": "cifar10", "root": str(tmp_path)}
    d = load_source(spec)
    train_x = np.concatenate([batches[f"data_batch_{k}"][0] for k in range(1, 6)])
    assert d.images.shape == (20, 3, 32, 32) and d.attrs["resolution"] == 32 and d.attrs["cifar_format"] == "python"
    np.testing.assert_array_equal(d.images, train_x.reshape(-1, 3, 32, 32))
    assert d.labels.tolist() == sum((batches[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    assert_count_matches(spec, d)
    t = load_source({**spec, "split": "test"})
    assert len(t.images) == 4 and t.labels.tolist() == batches["test_batch"][1]
    assert_count_matches({**spec, "split": "test"}, t)


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


class EvalExploit:
    def __reduce__(self):
        return (eval, ("open('PWNED2', 'w')",))


def test_cifar10_pickle_payload_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for sub, payload, culprit in [("evil", Exploit(), r"posix\.system"), ("evil2", EvalExploit(), r"builtins\.eval")]:
        write_cifar_py(tmp_path / sub, cifar_batches(), payload=payload)
        spec = {"source": "cifar10", "root": str(tmp_path / sub)}
        with pytest.raises(DataError, match=rf"data_batch_1: refusing to unpickle {culprit}"):
            load_source(spec)
        assert count_source_images(spec) is None
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()
    # a global from inside numpy that is not an array constructor is refused too
    evil = tmp_path / "evil3" / "cifar-10-batches-py"
    evil.mkdir(parents=True)
    (evil / "data_batch_1").write_bytes(b"\x80\x02cnumpy\nload\nU\x03PWNq\x00\x85R.")
    with pytest.raises(DataError, match=r"refusing to unpickle numpy\.load"):
        load_source({"source": "cifar10", "root": str(tmp_path / "evil3")})
    (evil / "data_batch_1").write_bytes(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x04\x00\x00\x00zlib\x86R.")
    with pytest.raises(DataError, match=r"refusing _codecs\.encode with encoding 'zlib'"):
        load_source({"source": "cifar10", "root": str(tmp_path / "evil3")})


def test_cifar10_bad_batches(tmp_path):
    write_cifar_py(tmp_path / "a", {"data_batch_1": (np.zeros((2, 100), np.uint8), [0, 1])})
    with pytest.raises(DataError, match=r"data_batch_1: b'data' must be uint8 of shape \(n, 3072\)"):
        load_source({"source": "cifar10", "root": str(tmp_path / "a")})
    write_cifar_py(tmp_path / "b", {"test_batch": (np.zeros((2, 3072), np.uint8), [0])})
    with pytest.raises(DataError, match=r"b'labels' must be 2 integers"):
        load_source({"source": "cifar10", "root": str(tmp_path / "b"), "split": "test"})
    with pytest.raises(DataError, match=r"cifar-10-batches-py/data_batch_1 does not exist\. Set `download: true`"):
        load_source({"source": "cifar10", "root": str(tmp_path / "b")})
    (tmp_path / "b" / "cifar-10-batches-py" / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"test_batch is not a readable CIFAR-10 python batch"):
        load_source({"source": "cifar10", "root": str(tmp_path / "b"), "split": "test"})


def test_cifar10_bin(tmp_path):
    binary = tmp_path / "cifar-10-batches-bin"
    binary.mkdir(parents=True)
    g = np.random.default_rng(5)
    expected = {}
    for name, n in [(f"data_batch_{k}", 3) for k in range(1, 6)] + [("test_batch", 2)]:
        lab, pix = g.integers(0, 10, n), g.integers(0, 256, (n, 3072))
        (binary / f"{name}.bin").write_bytes(np.concatenate([lab[:, None], pix], 1).astype(np.uint8).tobytes())
        expected[name] = (lab, pix.reshape(n, 3, 32, 32))
    spec = {"source": "cifar10", "root": str(tmp_path), "split": "test"}
    b = load_source(spec)
    assert b.attrs["cifar_format"] == "binary" and b.labels.tolist() == expected["test_batch"][0].tolist()
    np.testing.assert_array_equal(b.images, expected["test_batch"][1])
    assert_count_matches(spec, b)
    train = load_source({**spec, "split": "train"})
    assert train.images.shape == (15, 3, 32, 32)
    assert_count_matches({**spec, "split": "train"}, train)
    (binary / "test_batch.bin").write_bytes(b"\0" * 3074)
    with pytest.raises(DataError, match=r"3074 bytes is not a multiple of 3073"):
        load_source(spec)


def make_cifar_tar(dest: Path, batches: dict, evil_member: str | None = None) -> Path:
    src = dest.parent / "src"
    write_cifar_py(src, batches)
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        if evil_member:
            info = tarfile.TarInfo(evil_member)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    return dest


def test_cifar10_download_from_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    batches = cifar_batches(per=2)
    make_cifar_tar(mirror / "cifar-10-python.tar.gz", batches)
    root = tmp_path / "root"
    spec = {"source": "cifar10", "root": str(root), "download": True, "mirror": mirror.as_uri()}
    with pytest.raises(DataError, match=r"is corrupt: md5 .* expected c58f30108f"):
        load_source(spec)
    d = load_source({**spec, "verify_md5": False})
    assert d.images.shape == (10, 3, 32, 32) and (root / "cifar-10-batches-py" / "test_batch").is_file()
    evil_mirror = tmp_path / "evil_mirror"
    evil_mirror.mkdir()
    make_cifar_tar(evil_mirror / "cifar-10-python.tar.gz", batches, evil_member="../escaped.txt")
    spec2 = {**spec, "root": str(tmp_path / "root2"), "mirror": evil_mirror.as_uri(), "verify_md5": False}
    with pytest.raises(DataError, match=r"refusing unsafe member '\.\./escaped\.txt'"):
        load_source(spec2)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "root2" / "cifar-10-batches-py").exists()


# ----------------------------------------------------------------------------- conversions
def test_resolution_and_channel_conversion(tmp_path, capsys):
    d = load_source({"source": "digits", "resolution": 4, "channels": 3})  # > 1000 images: progress bar
    captured = capsys.readouterr()
    assert captured.out == "" and "convert" in captured.err  # progress bar on stderr, never stdout
    assert d.images.shape == (1797, 3, 4, 4) and d.attrs["resize_filter"] == "PIL.Image.LANCZOS after center crop"
    assert (d.images[:, 0] == d.images[:, 2]).all() and d.attrs["native_height"] == 8
    rgb = np.random.default_rng(4).integers(0, 256, (3, 6, 10, 3)).astype(np.uint8)  # non-square NHWC
    path = tmp_path / "rgb.npz"
    np.savez(path, images=rgb)
    gray = load_source({"source": "npz", "path": str(path), "channels": 1})
    assert gray.images.shape == (3, 1, 6, 10) and gray.attrs["resize_filter"] == "none"
    assert "resolution" not in gray.attrs and (gray.attrs["height"], gray.attrs["width"]) == (6, 10)
    np.testing.assert_array_equal(gray.images[1, 0], np.asarray(Image.fromarray(rgb[1], "RGB").convert("L")))
    sq = load_source({"source": "npz", "path": str(path), "resolution": 4})
    assert sq.images.shape == (3, 3, 4, 4) and sq.attrs["resolution"] == 4
    ref = Image.fromarray(rgb[2], "RGB").crop((2, 0, 8, 6)).resize((4, 4), Image.LANCZOS)
    np.testing.assert_array_equal(sq.images[2], np.asarray(ref).transpose(2, 0, 1))
    same = load_source({"source": "npz", "path": str(path), "resolution": 6, "channels": 3})  # crop only
    np.testing.assert_array_equal(same.images, rgb[:, :, 2:8].transpose(0, 3, 1, 2))


@pytest.mark.skipif(not MNIST_NPZ.exists(), reason="shared MNIST file not present")
def test_shared_mnist_npz():
    spec = {"source": "npz", "path": str(MNIST_NPZ)}
    assert count_source_images(spec) == 60000
    d = load_source(spec)
    assert d.images.shape == (60000, 1, 28, 28) and d.images.dtype == np.uint8
    assert d.labels is not None and d.attrs["images_key"] == "x_train" and d.attrs["labels_key"] == "y_train"
    assert np.bincount(d.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(d.images.mean() - 33.3184) < 1e-3


def test_source_problems_name_the_missing_option_and_path(tmp_path):
    errors, missing = source_problems({"source": "image_folder", "path": str(tmp_path / "nope")}, "evaluation.dataset")
    assert errors == ["config key 'evaluation.dataset.resolution': source 'image_folder' needs it (the output side "
                      "length in pixels; images are center-cropped and resized to it)"]  # fmt: skip
    assert missing == [f"config key 'evaluation.dataset.path': {tmp_path / 'nope'} does not exist"]
    assert source_problems({"source": "mnist"}) == (["config key 'dataset.root': source 'mnist' needs it"], [])
    assert source_problems({"source": "cifar10", "root": str(tmp_path / "r"), "download": True}) == ([], [])  # made by the download
    assert source_problems({"source": "npz", "path": str(tmp_path)}) == ([], [])
    assert source_problems({"source": "digits"}) == ([], [])

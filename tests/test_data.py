"""Every data source on small data the tests make themselves, and the HDF5 round trip."""

import gzip
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hiddengauss.data import (
    DataError,
    count_source_images,
    load_source,
    read_attrs,
    read_images,
    read_labels,
    to_float,
    to_uint8,
    write_dataset_h5,
)

MNIST_NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist" / "mnist_uint8.npz"


def make_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    g = np.random.default_rng(0)
    Image.fromarray(g.integers(0, 256, (20, 30, 3), dtype=np.uint8), "RGB").save(root / "b.png")
    Image.fromarray(g.integers(0, 256, (16, 16), dtype=np.uint8), "L").save(root / "a.png")
    (root / "sub").mkdir()
    Image.fromarray(g.integers(0, 256, (40, 24, 4), dtype=np.uint8), "RGBA").save(root / "sub" / "c.PNG")
    (root / "dataset.json").write_text("{}")
    (root / "README.txt").write_text("not an image")
    return root


def test_image_folder_and_zip(tmp_path):
    folder = make_folder(tmp_path / "imgs")
    d = load_source({"source": "image_folder", "path": str(folder), "resolution": 8, "channels": 3})
    assert d.images.shape == (3, 3, 8, 8) and d.images.dtype == np.uint8
    assert d.attrs["count"] == 3 and d.attrs["ignored_files"] == 2 and "LANCZOS" in d.attrs["resize_filter"]
    # sorted order: a.png (gray) first -> its three channels are equal
    assert np.array_equal(d.images[0, 0], d.images[0, 1])
    z = tmp_path / "imgs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    dz = load_source({"source": "image_folder", "path": str(z), "resolution": 8, "channels": 3})
    np.testing.assert_array_equal(dz.images, d.images)
    assert dz.attrs["source_sha256"] == d.attrs["source_sha256"]
    gray = load_source({"source": "image_folder", "path": str(folder), "resolution": 4, "channels": 1})
    assert gray.images.shape == (3, 1, 4, 4)
    assert count_source_images({"source": "image_folder", "path": str(z), "resolution": 8}) == 3


def test_content_hash_changes_with_one_image(tmp_path):
    folder = make_folder(tmp_path / "imgs")
    spec = {"source": "image_folder", "path": str(folder), "resolution": 8}
    before = load_source(spec).attrs["source_sha256"]
    Image.fromarray(np.zeros((16, 16), np.uint8), "L").save(folder / "a.png")
    assert load_source(spec).attrs["source_sha256"] != before


def test_corrupt_image_stops_or_is_skipped(tmp_path):
    folder = make_folder(tmp_path / "imgs")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    spec = {"source": "image_folder", "path": str(folder), "resolution": 8}
    with pytest.raises(DataError, match=r"cannot read image .*broken\.png.*skip_bad_images"):
        load_source(spec)
    d = load_source({**spec, "skip_bad_images": True})
    assert d.attrs["skipped_images"] == 1 and len(d.images) == 3


def test_empty_and_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"no images found in .*empty.*1 non-image files ignored"):
        load_source({"source": "image_folder", "path": str(tmp_path / "empty"), "resolution": 8})
    with pytest.raises(DataError, match="does not exist"):
        load_source({"source": "image_folder", "path": str(tmp_path / "nope"), "resolution": 8})


@pytest.mark.parametrize("layout,shape", [("NHW", (5, 6, 6)), ("NHWC", (5, 6, 6, 3)), ("NCHW", (5, 3, 6, 6))])
def test_npz_layouts(tmp_path, layout, shape):
    arr = np.random.default_rng(1).integers(0, 256, shape).astype(np.uint8)
    path = tmp_path / "x.npz"
    np.savez(path, images=arr, y=np.arange(5))
    d = load_source({"source": "npz", "path": str(path), "labels_key": "y"})
    expected = {"NHW": lambda: arr[:, None], "NHWC": lambda: arr.transpose(0, 3, 1, 2), "NCHW": lambda: arr}[layout]()
    np.testing.assert_array_equal(d.images, expected)
    np.testing.assert_array_equal(d.labels, np.arange(5))
    assert count_source_images({"source": "npz", "path": str(path)}) == 5


def test_npz_errors(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, pix=np.zeros((2, 4, 4), np.uint8), bad=np.full((2, 4, 4), 300.0))
    with pytest.raises(DataError, match=r"set images_key to one of the arrays found: \['pix', 'bad'\]"):
        load_source({"source": "npz", "path": str(path)})
    with pytest.raises(DataError, match=r"has no array 'x_test' \(images_key\)"):
        load_source({"source": "npz", "path": str(path), "images_key": "x_test"})
    with pytest.raises(DataError, match=r"\[\'bad\'\] must hold uint8 pixels .*float64"):
        load_source({"source": "npz", "path": str(path), "images_key": "bad"})


def test_digits_mapping():
    d = load_source({"source": "digits"})
    assert d.images.shape == (1797, 1, 8, 8) and d.images.max() == 255 and d.labels.shape == (1797,)
    from sklearn.datasets import load_digits

    raw = load_digits().images
    np.testing.assert_array_equal(d.images[:, 0][raw == 16], 255)
    np.testing.assert_array_equal(d.images[:, 0][raw == 8], 128)
    assert count_source_images({"source": "digits", "limit": 100}) == 100


def write_idx(path: Path, arr: np.ndarray, magic: int, compress: bool):
    header = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


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
    assert count_source_images(spec) == 7
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte does not exist\. Set `download: true`"):
        load_source({**spec, "split": "train"})


def test_download_from_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for split, n in (("train", 6), ("t10k", 3)):
        write_idx(mirror / f"{split}-images-idx3-ubyte.gz", np.full((n, 4, 4), 9), 0x0803, True)
        write_idx(mirror / f"{split}-labels-idx1-ubyte.gz", np.zeros(n), 0x0801, True)
    spec = {"source": "mnist", "root": str(tmp_path / "root"), "download": True, "mirror": mirror.as_uri()}
    with pytest.raises(DataError, match="is corrupt: md5"):
        load_source(spec)
    d = load_source({**spec, "verify_md5": False})
    assert d.images.shape == (6, 1, 4, 4) and (tmp_path / "root" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists()


def write_cifar_py(root: Path, batches=5, per=4, payload=None):
    py = root / "cifar-10-batches-py"
    py.mkdir(parents=True)
    g = np.random.default_rng(3)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, batches + 1)] + ["test_batch"]):
        obj = {b"data": g.integers(0, 256, (per, 3072)).astype(np.uint8), b"labels": list(range(per))}
        if payload is not None and i == 0:
            obj[b"extra"] = payload
        (py / name).write_bytes(pickle.dumps(obj))
    return py


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_cifar10_py_and_bin(tmp_path):
    write_cifar_py(tmp_path / "py")
    d = load_source({"source": "cifar10", "root": str(tmp_path / "py")})
    assert d.images.shape == (20, 3, 32, 32) and d.labels.tolist() == [0, 1, 2, 3] * 5
    t = load_source({"source": "cifar10", "root": str(tmp_path / "py"), "split": "test"})
    assert len(t.images) == 4
    binary = tmp_path / "bin" / "cifar-10-batches-bin"
    binary.mkdir(parents=True)
    rec = np.concatenate([np.arange(3)[:, None], np.full((3, 3072), 7)], 1).astype(np.uint8)
    (binary / "test_batch.bin").write_bytes(rec.tobytes())
    b = load_source({"source": "cifar10", "root": str(tmp_path / "bin"), "split": "test"})
    assert b.images.shape == (3, 3, 32, 32) and b.labels.tolist() == [0, 1, 2] and (b.images == 7).all()


def test_cifar10_pickle_payload_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cifar_py(tmp_path / "evil", payload=Exploit())
    with pytest.raises(DataError, match=r"refusing to unpickle posix\.system"):
        load_source({"source": "cifar10", "root": str(tmp_path / "evil")})
    assert not (tmp_path / "PWNED").exists()


def test_missing_root_says_how_to_get_data(tmp_path):
    with pytest.raises(DataError, match=r"cifar-10-batches-py does not exist\. Set `download: true`"):
        load_source({"source": "cifar10", "root": str(tmp_path / "none")})
    assert count_source_images({"source": "cifar10", "root": str(tmp_path / "none")}) is None
    with pytest.raises(DataError, match="unknown data source 'imagenet'"):
        load_source({"source": "imagenet"})


def test_h5_roundtrip_and_atomicity(tmp_path):
    d = load_source({"source": "digits", "limit": 50})
    out = tmp_path / "d.h5"
    write_dataset_h5(out, d, {"source": "digits", "limit": 50})
    assert read_attrs(out)["count"] == 50 and '"limit": 50' in read_attrs(out)["config"]
    idx = [7, 3, 3, 49, 0]
    np.testing.assert_array_equal(read_images(out, idx), d.images[idx])
    np.testing.assert_array_equal(read_labels(out, idx), d.labels[idx])
    assert [p.name for p in tmp_path.iterdir()] == ["d.h5"]


def test_float_conversion_roundtrip():
    u = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    x = to_float(u)
    assert x.shape == (1, 256) and x.min() == -1 and x.max() == 1
    np.testing.assert_array_equal(to_uint8(x, (1, 16, 16)), u)


def test_resolution_and_channel_conversion():
    d = load_source({"source": "digits", "limit": 3, "resolution": 4, "channels": 3})
    assert d.images.shape == (3, 3, 4, 4) and d.attrs["resize_filter"].startswith("PIL")


@pytest.mark.skipif(not MNIST_NPZ.exists(), reason="shared MNIST file not present")
def test_shared_mnist_npz():
    spec = {"source": "npz", "path": str(MNIST_NPZ)}
    assert count_source_images(spec) == 60000
    d = load_source({**spec, "limit": 100})
    assert d.images.shape == (100, 1, 28, 28) and d.labels is not None

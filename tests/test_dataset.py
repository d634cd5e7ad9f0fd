"""The prepared data set (hiddengauss.dataset): float conversion and the HDF5 store."""

import json

import h5py
import numpy as np
import pytest

import hiddengauss.io as io_mod
from hiddengauss.dataset import (
    DataError,
    available_count,
    read_attrs,
    read_images,
    read_labels,
    to_float,
    to_uint8,
    write_dataset_h5,
)
from hiddengauss.sources import SourceData, load_source


def test_float_conversion_roundtrip():
    u = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    x = to_float(u)
    assert x.dtype == np.float32 and x.shape == (1, 256) and x.min() == -1 and x.max() == 1
    np.testing.assert_allclose(x[0], np.arange(256) / 127.5 - 1, atol=1e-7)
    np.testing.assert_array_equal(to_uint8(x, (1, 16, 16)), u)
    c = np.random.default_rng(0).integers(0, 256, (4, 3, 5, 6)).astype(np.uint8)
    xc = to_float(c)
    assert xc.shape == (4, 90) and xc[2, 1 * 30 + 2 * 6 + 3] == np.float32(c[2, 1, 2, 3]) / np.float32(127.5) - 1  # C, H, W
    # bit-identical to EDM's float32 `x / 127.5 - 1`
    np.testing.assert_array_equal(xc, (c.astype(np.float32) / np.float32(127.5) - np.float32(1)).reshape(4, -1))
    np.testing.assert_array_equal(to_uint8(xc, (3, 5, 6)), c)
    np.testing.assert_array_equal(to_uint8(np.array([[-1.5, 2.0, 0.0]]), (1, 1, 3)).ravel(), [0, 255, 128])
    assert to_float(np.zeros((0, 1, 2, 2), np.uint8)).shape == (0, 4)
    with pytest.raises(TypeError, match="expects uint8"):
        to_float(xc)


# ----------------------------------------------------------------------------- HDF5
def test_h5_roundtrip_and_atomicity(tmp_path, monkeypatch):
    spec = {"source": "digits", "limit": 300}
    d = load_source(spec)
    out = tmp_path / "d.h5"
    (tmp_path / "d.h5.tmp").write_bytes(b"left over by a killed job")
    with pytest.raises(DataError, match=r"d\.h5 does not exist"):
        read_images(out)  # a leftover .tmp is not the output
    write_dataset_h5(out, d, spec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5", "d.h5.tmp"]  # no temp file of its own left
    attrs = read_attrs(out)
    assert attrs["count"] == 300 and attrs["format_version"] == 1 and json.loads(attrs["config"]) == spec
    for key in ("source", "path", "resolution", "channels", "source_sha256", "skipped_images", "resize_filter"):
        assert attrs[key] == d.attrs[key], key
    with h5py.File(out) as f:
        assert f["images"].dtype == np.uint8 and f["images"].chunks == (256, 1, 8, 8) and f["labels"].dtype == np.int64
    np.testing.assert_array_equal(read_images(out), d.images)
    np.testing.assert_array_equal(read_labels(out), d.labels)
    g = np.random.default_rng(0)
    for idx in ([7, 3, 3, 299, 0], list(range(40, 90)), g.integers(0, 300, 200), np.array([5], np.uint32)):
        np.testing.assert_array_equal(read_images(out, idx), d.images[np.asarray(idx)])
        np.testing.assert_array_equal(read_labels(out, idx), d.labels[np.asarray(idx)])
    assert read_images(out, []).shape == (0, 1, 8, 8)
    with pytest.raises(DataError, match=r"must lie in 0\.\.299"):
        read_images(out, [300])
    # a write that fails before the rename leaves neither a finished-looking file nor the .tmp
    out2 = tmp_path / "e.h5"
    monkeypatch.setattr(io_mod.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError, match="killed"):
        write_dataset_h5(out2, d, spec)
    assert not out2.exists() and not (tmp_path / "e.h5.tmp").exists()


def test_h5_without_labels_and_non_square(tmp_path):
    d = SourceData(np.zeros((3, 1, 2, 5), np.uint8), None, {"source": "npz", "height": 2, "width": 5, "count": 3})
    out = tmp_path / "sub" / "x.h5"
    write_dataset_h5(out, d, {"source": "npz", "path": "x.npz"})
    assert read_labels(out) is None and read_images(out).shape == (3, 1, 2, 5) and read_attrs(out)["width"] == 5
    with pytest.raises(DataError, match="non-empty uint8"):
        write_dataset_h5(out, SourceData(np.zeros((0, 1, 2, 2), np.uint8), None, {}), {})


def test_available_count_prefers_the_prepared_file(tmp_path):
    spec = {"source": "digits", "limit": 300}
    assert available_count(None, tmp_path / "x.h5") is None
    assert available_count(spec, tmp_path / "x.h5") == 300  # counted from the source
    write_dataset_h5(tmp_path / "x.h5", load_source({"source": "digits", "limit": 20}), spec)
    assert available_count(spec, tmp_path / "x.h5") == 20  # the prepared file wins


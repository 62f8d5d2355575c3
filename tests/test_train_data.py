"""Data loaders: IDX round trips on files written here, CSV/NPZ parsing, seeded splits, one-line errors."""
import gzip
import os

import numpy as np
import pytest

from varprop.nn import data


def _write_fashion(directory, n_train=12, n_test=5, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for stem, a in arrays.items():
        data.write_idx(os.path.join(directory, stem + (".gz" if compress else "")), a, compress=compress)
    return arrays


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip_every_type(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    p = tmp_path / "a.idx"
    data.write_idx(p, a)
    b = data.read_idx(p)
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_idx_header_is_big_endian_per_spec(tmp_path):
    # bytes written by hand from the IDX definition, not by write_idx
    raw = bytes([0, 0, 0x0B, 2]) + (2).to_bytes(4, "big") + (2).to_bytes(4, "big") + \
        b"".join(v.to_bytes(2, "big", signed=True) for v in (1, -2, 300, 4))
    p = tmp_path / "h.idx.gz"
    p.write_bytes(gzip.compress(raw))
    assert data.read_idx(p).tolist() == [[1, -2], [300, 4]]


def test_idx_bad_magic_and_truncation(tmp_path):
    p = tmp_path / "bad.idx"
    p.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="bad magic"):
        data.read_idx(p)
    p.write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + b"\x01\x02")
    with pytest.raises(ValueError, match="size mismatch"):
        data.read_idx(p)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_from_small_idx_files(tmp_path, compress):
    arrays = _write_fashion(tmp_path, compress=compress)
    ds = data.load(f"fashion-mnist:{tmp_path}", seed=3, val_fraction=0.25)
    assert ds.image_shape == (28, 28) and ds.n_classes == 10
    assert len(ds.y_test) == 5 and len(ds.y_train) + len(ds.y_val) == 12 and len(ds.y_val) == 3
    # the shipped test set is kept in order and scaled by 1/255
    np.testing.assert_allclose(ds.X_test, arrays["t10k-images-idx3-ubyte"].reshape(5, -1) / 255.0, rtol=1e-6)
    # train + validation is a permutation of the training file
    got = np.concatenate([ds.X_train, ds.X_val])
    want = (arrays["train-images-idx3-ubyte"].reshape(12, -1) / 255.0).astype(np.float32)
    assert sorted(map(bytes, got)) == sorted(map(bytes, want))


def test_fashion_mnist_missing_names_the_package(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="fashion-mnist:DIR"):
        data.load(f"fashion-mnist:{tmp_path}")
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="apt-get install dataset-fashion-mnist"):
        data.load("fashion-mnist")


def test_fashion_mnist_label_out_of_range(tmp_path):
    _write_fashion(tmp_path)
    data.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 11], np.uint8), compress=True)
    with pytest.raises(ValueError, match="labels out of range: found 11"):
        data.load(f"fashion-mnist:{tmp_path}")


def test_fashion_mnist_count_mismatch(tmp_path):
    _write_fashion(tmp_path)
    data.write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8), compress=True)
    with pytest.raises(ValueError, match="shape mismatch: 12 feature rows but 11 labels"):
        data.load(f"fashion-mnist:{tmp_path}")


def test_digits_split_is_fixed_by_the_seed():
    a = data.load("digits", seed=5)
    b = data.load("digits", seed=5)
    c = data.load("digits", seed=6)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)
    assert a.X_train.dtype == np.float32 and 0.0 <= a.X_train.min() and a.X_train.max() <= 1.0
    n = 1797
    assert len(a.y_test) == round(0.2 * n)
    assert len(a.y_val) == round(0.1 * (n - len(a.y_test)))
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == n


def test_split_partitions_rows():
    X = np.arange(50.0).reshape(25, 2)
    y = np.arange(25)
    Xa, ya, Xb, yb = data.split(X, y, 0.2, seed=0)
    assert len(yb) == 5 and sorted(np.concatenate([ya, yb]).tolist()) == list(range(25))
    np.testing.assert_array_equal(Xa[:, 0], 2 * ya)  # rows stay with their labels


def test_mnist1d_generated_locally_and_global_rng_untouched():
    pytest.importorskip("mnist1d")
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    X, y, Xt, yt = data.load_mnist1d()
    after = np.random.get_state()[1]
    np.testing.assert_array_equal(before, after)
    assert X.shape == (4000, 40) and Xt.shape == (1000, 40)
    assert set(np.unique(y).tolist()) == set(range(10))
    # the package's generator with its defaults (seed 42) starts with these labels
    assert y[:10].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1]


def test_csv_with_header_and_errors(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,label\n0.5,1,0\n1.5,2,1\n2.5,3,2\n")
    X, y = data.load_csv(p)
    np.testing.assert_array_equal(X, [[0.5, 1], [1.5, 2], [2.5, 3]])
    assert y.tolist() == [0, 1, 2]
    p.write_text("0.5,1,0\n1.5,nan,1\n")
    with pytest.raises(ValueError, match="NaN or infinite feature at row 1, column 1"):
        data.load_csv(p)
    p.write_text("0.5,1,0\n1.5,2\n")
    with pytest.raises(ValueError, match="shape mismatch"):
        data.load_csv(p)
    p.write_text("0.5,1,0\n1.5,2,-1\n")
    with pytest.raises(ValueError, match="labels out of range: found -1"):
        data.load_csv(p)
    p.write_text("0.5,1,0\n1.5,2,0.5\n")
    with pytest.raises(ValueError, match="labels must be integers"):
        data.load_csv(p)


def test_npz_load_and_no_pickle(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.arange(40) % 4
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = data.load(str(tmp_path / "d.npz"), seed=0, test_fraction=0.25, val_fraction=0.0)
    assert ds.n_classes == 4 and len(ds.y_test) == 10 and len(ds.y_train) == 30 and len(ds.y_val) == 0
    np.savez(tmp_path / "o.npz", X=np.array([object()] * 2, dtype=object), y=np.zeros(2))
    with pytest.raises(ValueError, match="without pickle"):
        data.load_npz(tmp_path / "o.npz")
    np.savez(tmp_path / "m.npz", X=X, y=y[:-1])
    with pytest.raises(ValueError, match="shape mismatch: 40 feature rows but 39 labels"):
        data.load_npz(tmp_path / "m.npz")
    np.savez(tmp_path / "t.npz", X=X, y=y, X_test=X[:5, :2], y_test=y[:5])
    with pytest.raises(ValueError, match="shape mismatch: X has 3 features, X_test 2"):
        data.load_npz(tmp_path / "t.npz")


def test_unknown_dataset_and_bad_fractions():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        data.load("cifar")
    with pytest.raises(ValueError, match="validation fraction"):
        data.load("digits", val_fraction=1.5)


def test_validate_messages_are_one_line():
    for X, y in (([[1.0, np.nan]], [0]), ([[1.0]], [0, 1]), ([[1.0]], [[0]])):
        with pytest.raises(ValueError) as info:
            data.validate(X, y)
        assert "\n" not in str(info.value)


@pytest.mark.slow
@pytest.mark.skipif(not data.fashion_mnist_available(), reason="dataset-fashion-mnist is not installed")
def test_installed_fashion_mnist_has_the_published_counts():
    # Xiao, Rasul & Vollgraf (2017): 60000 training and 10000 test images, 6000 and 1000 per class
    (X, y, Xt, yt), shape = data.load_fashion_mnist()
    assert shape == (28, 28) and X.shape == (60000, 784) and Xt.shape == (10000, 784)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    assert X.dtype == np.float32 and X.min() == 0.0 and X.max() == 1.0


def test_labels_that_are_not_class_indices_are_refused_before_any_cast(tmp_path):
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="imply 1000001 classes but only 2"):
        data.validate(X, [0, 1000000, 0, 1000000])
    with pytest.raises(ValueError, match=r"label 1e\+30 is not a class index") as e:
        data.validate(X, [0.0, 1e30, 0.0, 1.0])
    assert "-9223372036854775808" not in str(e.value)
    with pytest.raises(TypeError, match="complex"):
        data.validate(X + 1j, [0, 1, 0, 1])
    with pytest.raises(TypeError, match="complex"):
        data.validate(X, np.array([0, 1, 0, 1]) + 0j)
    X3, y3 = data.validate(np.zeros((3, 2)), [0, 2, 2])      # 2 of 3 classes present: fine
    assert y3.tolist() == [0, 2, 2]
    p = tmp_path / "bad.npz"
    p.write_bytes(b"PK\x03\x04not really")
    with pytest.raises(ValueError, match="not a zip archive"):
        data.load_npz(p)


def test_trainer_labels_out_of_range_quote_the_value_written():
    from varprop.nn import build_mlp
    from varprop.nn.trainer import Trainer
    t = Trainer(build_mlp(2, [4], 2, seed=0), "cross_entropy", "sgd", epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"found 0 \.\. 1e\+30"):
        t.fit(np.zeros((2, 2), np.float32), np.array([0.0, 1e30]))

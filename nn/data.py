"""Datasets for the trainer: digits, MNIST-1D, Fashion-MNIST (IDX files), and any CSV or NPZ file.

Every loader returns features ``X`` (n, d) float and integer labels ``y`` (n,) in ``[0, K)``; images are
flattened row-major and scaled to [0, 1]. Labels are class indices: K is the largest label + 1 (over the
training and test labels), and at least half of those K classes must appear, so labels 0 and 1000000 are
refused (relabel them 0 .. K-1 first) rather than trained as a million-class softmax. Complex data, labels
that are not integers in [0, 2^31) and archives that are not what they claim are refused in one line. ``load(spec, seed)`` turns a name into a ``Dataset`` with
train/validation/test splits fixed by the seed:

- ``digits``: scikit-learn's 8x8 handwritten digits (1797 images, shipped inside scikit-learn).
- ``mnist1d``: MNIST-1D (Greydanus 2020) generated locally by the ``mnist1d`` package's generator with its
  default arguments (4000 train + 1000 test signals of length 40); nothing is downloaded.
- ``fashion-mnist[:DIR]``: the IDX files of Fashion-MNIST (Xiao, Rasul & Vollgraf 2017), plain or gzip'd;
  without DIR, ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package).
- ``PATH.csv``: numeric rows, the label in the last column, an optional header line.
- ``PATH.npz``: arrays ``X`` and ``y`` (and optionally ``X_test``, ``y_test``), loaded without pickle.

Splits: a dataset that ships a test set keeps it; otherwise ``test_fraction`` of a seeded permutation is the
test set. ``val_fraction`` of the (permuted) training rows is held out for validation.

>>> ds = load("digits", seed=0)
>>> ds.X_train.shape[1], ds.n_classes, ds.image_shape
(64, 10, (8, 8))
>>> len(ds.y_train) + len(ds.y_val) + len(ds.y_test)
1797
"""
from __future__ import annotations

import csv
import gzip
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Dataset", "load", "load_digits", "load_mnist1d", "load_fashion_mnist", "load_csv", "load_npz",
           "fashion_mnist_available", "read_idx", "write_idx", "split", "validate", "int_labels", "check_class_set",
           "DATASETS", "FASHION_MNIST_DIR", "MAX_LABEL"]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATASETS = ("digits", "mnist1d", "fashion-mnist")

# IDX type codes (LeCun's MNIST page): the third byte of the magic number
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_TYPES.items()}


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test splits of one dataset; ``image_shape`` is (H, W) for image data, else None."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    image_shape: tuple | None = None
    info: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def summary(self) -> str:
        return (f"{self.name}: {self.n_features} features, {self.n_classes} classes, "
                f"{len(self.y_train)} train / {len(self.y_val)} validation / {len(self.y_test)} test")


# ---------------------------------------------------------------------------------------------- validation

def validate(X, y, n_classes: int | None = None, what: str = "data",
             dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Check features and labels; return ``(X 2-D of dtype, y int64)`` or raise ValueError in one line.

    Labels must be integers in ``[0, n_classes)`` (``n_classes`` defaults to ``max(y) + 1``, and then at
    least half of those classes must appear: see :func:`check_class_set`). Complex features or labels are
    refused (TypeError), never cast to their real part.

    >>> validate([[0.0, 1.0]], [3], n_classes=2)
    Traceback (most recent call last):
    ...
    ValueError: data: labels out of range: found 3, expected integers in [0, 2)
    """
    if np.iscomplexobj(X) or np.iscomplexobj(y):
        raise TypeError(f"{what}: complex {'features' if np.iscomplexobj(X) else 'labels'} are not supported "
                        f"(features and labels must be real numbers)")
    try:
        X = np.asarray(X, dtype=dtype)
        y_raw = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: features and labels must be numeric ({exc})") from None
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"{what}: features must be a 2-D array (samples, features), got shape {X.shape}")
    if y_raw.ndim != 1:
        raise ValueError(f"{what}: labels must be a 1-D array, got shape {y_raw.shape}")
    if X.shape[0] != y_raw.shape[0]:
        raise ValueError(f"{what}: shape mismatch: {X.shape[0]} feature rows but {y_raw.shape[0]} labels")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{what}: no data (features of shape {X.shape})")
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{what}: NaN or infinite feature at row {r}, column {c} "
                         f"({int(bad.sum())} non-finite values)")
    y = int_labels(y_raw, what)
    if n_classes is None:
        k = int(y.max()) + 1
        check_class_set(y, k, what)
    else:
        k = int(n_classes)
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= k:
        raise ValueError(f"{what}: labels out of range: found {lo if lo < 0 else hi}, "
                         f"expected integers in [0, {k})")
    return X, y


MAX_LABEL = 2 ** 31 - 1   # a class index beyond this is no class index (and would not fit a one-hot row)


def int_labels(y, what: str = "data") -> np.ndarray:
    """Labels as int64 class indices: integer-valued, finite, ``0 <= y <= MAX_LABEL``; the value refused is
    quoted as the user wrote it (checked before any cast, so 1e30 is never reported as a wrapped integer).

    >>> int_labels(np.array([0.0, 1e30]))
    Traceback (most recent call last):
    ...
    ValueError: data: label 1e+30 is not a class index (labels are integers 0 .. K-1)
    """
    y = np.asarray(y)
    if y.dtype.kind == "c":
        raise TypeError(f"{what}: complex labels are not supported")
    if y.dtype.kind not in "iub":
        try:
            yf = y.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: labels must be integers, got dtype {y.dtype}") from None
        if not np.isfinite(yf).all():
            raise ValueError(f"{what}: NaN or infinite label")
        if (yf != np.round(yf)).any():
            raise ValueError(f"{what}: labels must be integers, found {yf[yf != np.round(yf)][0]!r}")
        y = yf
    if y.size == 0:
        return y.astype(np.int64)
    lo, hi = y.min(), y.max()
    shown = (lambda v: f"{float(v):g}" if y.dtype.kind == "f" else str(int(v)))
    if lo < 0:
        raise ValueError(f"{what}: labels out of range: found {shown(lo)}, expected class indices 0 .. K-1")
    if hi > MAX_LABEL:
        raise ValueError(f"{what}: label {shown(hi)} is not a class index (labels are integers 0 .. K-1)")
    return y.astype(np.int64)


def check_class_set(y, k: int, what: str = "data") -> None:
    """Refuse labels that name K = max(label) + 1 classes of which fewer than half appear.

    Labels are class indices 0 .. K-1, so labels 0 and 1000000 would mean a softmax over a million
    classes with two of them present. Such labels are identifiers, not indices: relabel them first
    (``np.unique(y, return_inverse=True)``, as scikit-learn's LabelEncoder does; the estimator API does so).

    >>> check_class_set(np.array([0, 1000000]), 1000001)
    Traceback (most recent call last):
    ...
    ValueError: data: labels 0 .. 1000000 imply 1000001 classes but only 2 distinct labels appear; labels are class indices 0 .. K-1: relabel them (e.g. np.unique(y, return_inverse=True))
    """
    y = np.asarray(y)
    present = int(np.unique(y).size)
    if 2 * present < k:
        raise ValueError(f"{what}: labels {int(y.min())} .. {k - 1} imply {k} classes but only {present} distinct "
                         f"labels appear; labels are class indices 0 .. K-1: relabel them "
                         f"(e.g. np.unique(y, return_inverse=True))")


# -------------------------------------------------------------------------------------------------- IDX

def _open_maybe_gzip(path):
    with open(path, "rb") as fh:
        head = fh.read(2)
    return gzip.open(path, "rb") if head == b"\x1f\x8b" else open(path, "rb")


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain or gzip'd): magic ``00 00 TYPE NDIM``, NDIM big-endian int32 sizes, data.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.idx")
    >>> _ = write_idx(p, np.arange(6, dtype=np.uint8).reshape(2, 3))
    >>> read_idx(p).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    try:
        with _open_maybe_gzip(path) as fh:
            data = fh.read()
    except OSError as exc:
        raise ValueError(f"cannot read IDX file {os.fspath(path)!r}: {exc.strerror or exc}") from None
    name = os.path.basename(os.fspath(path))
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{name}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(data, ">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != count * dtype.itemsize:
        raise ValueError(f"{name}: IDX size mismatch: header says shape {shape} "
                         f"({count * dtype.itemsize} bytes), file holds {len(data) - header} bytes")
    return np.frombuffer(data, dtype, count=count, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array, compress: bool = False) -> str:
    """Write ``array`` as an IDX file (gzip'd if ``compress``), atomically; the inverse of ``read_idx``."""
    from varprop.io import atomic_write_bytes
    a = np.asarray(array)
    code = _IDX_CODES.get(a.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX cannot store dtype {a.dtype}")
    raw = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, ">i4").tobytes() + a.astype(_IDX_TYPES[code]).tobytes()
    return atomic_write_bytes(path, gzip.compress(raw, mtime=0) if compress else raw)


# ---------------------------------------------------------------------------------------------- loaders

def load_digits():
    """scikit-learn's 8x8 digits: ``(X (1797, 64) in [0, 1], y)``; pixel counts 0..16 divided by 16."""
    from sklearn.datasets import load_digits as sk_load
    X, y = sk_load(return_X_y=True)
    return X / 16.0, y.astype(np.int64)


def load_mnist1d(seed: int = 42):
    """MNIST-1D generated by ``mnist1d.data.make_dataset`` with its default arguments and ``seed``.

    Returns ``(X, y, X_test, y_test)``. The generator seeds NumPy's global generator, so we save and
    restore that state around the call: loading data never changes the caller's random numbers.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ValueError("mnist1d is not installed: pip install mnist1d (it generates the data locally)") from None
    args = get_dataset_args()
    args.seed = int(seed)
    state = np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    return (np.asarray(d["x"], np.float64), np.asarray(d["y"], np.int64),
            np.asarray(d["x_test"], np.float64), np.asarray(d["y_test"], np.int64))


_FASHION_FILES = {"X": "train-images-idx3-ubyte", "y": "train-labels-idx1-ubyte",
                  "X_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def _find_idx(directory, stem):
    for candidate in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        p = os.path.join(directory, candidate)
        if os.path.isfile(p):
            return p
    return None


def fashion_mnist_available(directory: str | None = None) -> bool:
    """Whether the four Fashion-MNIST IDX files are in ``directory`` (default ``FASHION_MNIST_DIR``)."""
    directory = FASHION_MNIST_DIR if directory is None else directory
    return all(_find_idx(directory, stem) for stem in _FASHION_FILES.values())


def load_fashion_mnist(directory: str | None = None):
    """Fashion-MNIST from its four IDX files in ``directory``: ``(X, y, X_test, y_test)``, X in [0, 1].

    Images are 28x28 uint8 (divided by 255 here), labels 0..9; 60000 train and 10000 test images.
    """
    directory = FASHION_MNIST_DIR if directory is None else directory
    paths = {k: _find_idx(directory, stem) for k, stem in _FASHION_FILES.items()}
    missing = [_FASHION_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        hint = ("apt-get install dataset-fashion-mnist" if directory == FASHION_MNIST_DIR
                else "pass the directory holding the four IDX files as fashion-mnist:DIR")
        raise ValueError(f"Fashion-MNIST not found in {directory} (missing {', '.join(missing)}[.gz]): {hint}")
    arrays = {k: read_idx(p) for k, p in paths.items()}
    out = []
    for xs, ys in (("X", "y"), ("X_test", "y_test")):
        images, labels = arrays[xs], arrays[ys]
        if images.ndim != 3 or labels.ndim != 1:
            raise ValueError(f"Fashion-MNIST: expected images (n, H, W) and labels (n,), "
                             f"got {images.shape} and {labels.shape}")
        # float32 straight from the bytes: a float64 copy of 60000 images would take 376 MB
        X, y = validate(images.reshape(len(images), -1).astype(np.float32) / np.float32(255), labels,
                        n_classes=10, what=f"Fashion-MNIST {'test' if xs == 'X_test' else 'train'}",
                        dtype=np.float32)
        out += [X, y]
    return tuple(out), arrays["X"].shape[1:]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_csv(path):
    """A CSV of numeric rows, the label in the last column; a first line that is not numeric is a header."""
    try:
        with open(path, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except OSError as exc:
        raise ValueError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from None
    if rows and not all(_is_number(c) for c in rows[0]):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{os.fspath(path)}: no data rows")
    width = len(rows[0])
    if width < 2:
        raise ValueError(f"{os.fspath(path)}: need at least one feature column and a label column")
    values = np.empty((len(rows), width))
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"{os.fspath(path)}: shape mismatch: row {i + 1} has {len(r)} columns, "
                             f"the first has {width}")
        try:
            values[i] = [float(c) for c in r]
        except ValueError:
            raise ValueError(f"{os.fspath(path)}: row {i + 1} holds a value that is not a number") from None
    return validate(values[:, :-1], values[:, -1], what=os.path.basename(os.fspath(path)))


def load_npz(path):
    """An NPZ with ``X`` and ``y`` (optionally ``X_test`` and ``y_test``), loaded with allow_pickle=False.

    Returns ``(X, y)`` or ``(X, y, X_test, y_test)``.
    """
    name = os.path.basename(os.fspath(path))
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a single .npy array, not an archive of named arrays")
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = "not a zip archive" if isinstance(exc, zipfile.BadZipFile) else \
            "the file is empty or truncated" if isinstance(exc, EOFError) else str(exc)
        raise ValueError(f"cannot read {os.fspath(path)!r} as NPZ without pickle: {reason}") from None
    for k in ("X", "y"):
        if k not in arrays:
            raise ValueError(f"{name}: missing array {k!r} (found {', '.join(sorted(arrays)) or 'none'})")
    X, y = arrays["X"], arrays["y"]
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise ValueError(f"{name}: X_test and y_test must come together")
    if "X_test" not in arrays:
        return validate(X.reshape(len(X), -1) if X.ndim > 2 else X, y, what=name)
    Xt = arrays["X_test"]
    k = None
    if len(y) and len(arrays["y_test"]):
        # train and test labels share the classes 0 .. K-1
        both = np.concatenate([int_labels(y, name), int_labels(arrays["y_test"], f"{name} test")])
        k = int(both.max()) + 1
        check_class_set(both, k, name)
    X, y = validate(X.reshape(len(X), -1) if X.ndim > 2 else X, y, n_classes=k, what=name)
    Xt, yt = validate(Xt.reshape(len(Xt), -1) if Xt.ndim > 2 else Xt, arrays["y_test"], n_classes=k,
                      what=f"{name} test")
    if Xt.shape[1] != X.shape[1]:
        raise ValueError(f"{name}: shape mismatch: X has {X.shape[1]} features, X_test {Xt.shape[1]}")
    return X, y, Xt, yt


# ------------------------------------------------------------------------------------------------ splits

def _check_fraction(name, value, upper=1.0):
    value = float(value)
    if not 0.0 <= value < upper:
        raise ValueError(f"{name} must be in [0, {upper:g}), got {value:g}")
    return value


def split(X, y, fraction: float, seed: int = 0):
    """Split rows by a seeded permutation: ``(X_a, y_a, X_b, y_b)`` with ``round(fraction * n)`` rows in b.

    >>> Xa, ya, Xb, yb = split(np.arange(10.0)[:, None], np.arange(10), 0.3, seed=1)
    >>> len(ya), len(yb), sorted(ya.tolist() + yb.tolist()) == list(range(10))
    (7, 3, True)
    """
    fraction = _check_fraction("fraction", fraction)
    n = len(y)
    perm = np.random.default_rng(seed).permutation(n)
    nb = int(round(fraction * n))
    if fraction > 0 and n - nb < 1:
        raise ValueError(f"cannot hold out {fraction:g} of {n} samples and keep any")
    a, b = perm[: n - nb], perm[n - nb:]
    return X[a], y[a], X[b], y[b]


def _parse_spec(spec: str):
    name, _, arg = spec.partition(":")
    return name.strip().lower(), arg


def load(spec: str, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2,
         dtype=np.float32, mnist1d_seed: int = 42) -> Dataset:
    """Load ``spec`` (``digits``, ``mnist1d``, ``fashion-mnist[:DIR]``, ``PATH.csv``, ``PATH.npz``) and split it.

    The permutation that splits off the test set uses stream ``seed``; validation uses ``seed + 1``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("dataset must be a name or a path")
    _check_fraction("validation fraction", val_fraction)
    _check_fraction("test fraction", test_fraction)
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    name, arg = _parse_spec(spec)
    image_shape, test = None, None
    if name == "digits":
        X, y = load_digits()
        image_shape = (8, 8)
    elif name == "mnist1d":
        X, y, *test = load_mnist1d(mnist1d_seed)
    elif name == "fashion-mnist":
        (X, y, *test), image_shape = load_fashion_mnist(arg or None)
        image_shape = tuple(int(s) for s in image_shape)
    elif spec.lower().endswith(".csv"):
        X, y = load_csv(spec)
        name = os.path.basename(spec)
    elif spec.lower().endswith(".npz"):
        X, y, *test = load_npz(spec)
        name = os.path.basename(spec)
    else:
        raise ValueError(f"unknown dataset {spec!r}: expected one of {', '.join(DATASETS)}, "
                         f"fashion-mnist:DIR, or a .csv or .npz file")
    if test:
        Xt, yt = test
    else:
        X, y, Xt, yt = split(X, y, test_fraction, seed)
    Xtr, ytr, Xv, yv = split(X, y, val_fraction, seed + 1)
    n_classes = int(max(y.max(), yt.max() if len(yt) else 0)) + 1
    if len(np.unique(ytr)) < 2:
        raise ValueError(f"{name}: the training split holds fewer than two classes")
    cast = (lambda a: np.ascontiguousarray(a, dtype=dtype))
    return Dataset(name=name, X_train=cast(Xtr), y_train=ytr, X_val=cast(Xv), y_val=yv,
                   X_test=cast(Xt), y_test=yt, n_classes=n_classes, image_shape=image_shape,
                   info={"spec": spec, "seed": seed, "val_fraction": val_fraction,
                         "test_fraction": test_fraction if not test else None})

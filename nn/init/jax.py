"""JAX-style front end: factories returning ``init(key, shape, dtype)`` as ``jax.nn.initializers`` does.

No JAX dependency: ``key`` is an int seed or a ``numpy.random.Generator`` and the result a NumPy array.
Names, arguments, defaults and semantics follow ``jax.nn.initializers``: the layout is (*kernel, in, out)
(``in_axis=-2``, ``out_axis=-1``); ``he_normal``, ``lecun_normal`` and ``glorot_normal`` are *truncated*
normals corrected to the stated variance (``variance_scaling(..., "truncated_normal")``); ``normal(stddev)``
and ``uniform(scale)`` (U[0, scale)) default to 1e-2; ``truncated_normal(stddev)`` is stddev times the
standard normal cut to [lower, upper], *not* corrected (its std is 0.8796 stddev), as in JAX. ``zeros`` and
``ones`` are initializers themselves.

Each returned callable also carries the core's ``variance(shape)``, ``mean(shape)`` and ``initializer``.

>>> init = he_normal()
>>> w = init(0, (3, 3, 64, 128))                  # a 3x3 conv kernel, 64 -> 128 channels
>>> w.shape, init.variance(w.shape) == 2 / (3 * 3 * 64)
((3, 3, 64, 128), True)
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .core import Constant, Initializer, Normal, TruncatedNormal, Uniform, VarianceScaling
from .draw import Source, check_dtype
from .structured import Orthogonal, orthogonal_matrix

__all__ = ["KeyInitializer", "variance_scaling", "glorot_normal", "glorot_uniform", "xavier_normal",
           "xavier_uniform", "lecun_normal", "lecun_uniform", "he_normal", "he_uniform", "kaiming_normal",
           "kaiming_uniform", "normal", "uniform", "truncated_normal", "constant", "zeros", "ones",
           "orthogonal", "delta_orthogonal"]


class KeyInitializer:
    """``init(key, shape, dtype=None)``: a core :class:`Initializer` with JAX's argument order."""

    def __init__(self, initializer: Initializer, dtype=np.float32):
        self.initializer = initializer
        self.dtype = check_dtype(dtype)

    def __call__(self, key, shape, dtype=None) -> np.ndarray:
        return self.initializer(shape, rng=key, dtype=self.dtype if dtype is None else dtype)

    def variance(self, shape) -> float:
        return self.initializer.variance(shape)

    def mean(self, shape) -> float:
        return self.initializer.mean(shape)

    @property
    def name(self) -> str:
        return self.initializer.name

    @property
    def distribution(self) -> str:
        return self.initializer.distribution

    def __repr__(self) -> str:
        return f"<jax-style {self.initializer!r}>"


def variance_scaling(scale, mode: str, distribution: str, in_axis=-2, out_axis=-1, batch_axis=(),
                     dtype=np.float32) -> KeyInitializer:
    """Entries of variance scale / fan(mode), fans from the given axes (JAX's variance_scaling)."""
    layout = (in_axis, out_axis, batch_axis)
    return KeyInitializer(VarianceScaling(scale, mode, distribution, layout), dtype)


def _scale(activation: str) -> float:
    from varprop.derive.gains import forward_scale_value
    return forward_scale_value(activation)


def glorot_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32) -> KeyInitializer:
    """Truncated normal of variance 1 / fan_avg."""
    return variance_scaling(_scale("linear"), "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def glorot_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32) -> KeyInitializer:
    """Uniform of variance 1 / fan_avg."""
    return variance_scaling(_scale("linear"), "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32) -> KeyInitializer:
    """Truncated normal of variance 1 / fan_in."""
    return variance_scaling(_scale("linear"), "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def lecun_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32) -> KeyInitializer:
    """Uniform of variance 1 / fan_in."""
    return variance_scaling(_scale("linear"), "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32) -> KeyInitializer:
    """Truncated normal of variance 2 / fan_in (the ReLU forward scale)."""
    return variance_scaling(_scale("relu"), "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def he_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32) -> KeyInitializer:
    """Uniform of variance 2 / fan_in."""
    return variance_scaling(_scale("relu"), "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


xavier_normal, xavier_uniform = glorot_normal, glorot_uniform
kaiming_normal, kaiming_uniform = he_normal, he_uniform


def normal(stddev: float = 1e-2, dtype=np.float32) -> KeyInitializer:
    """N(0, stddev^2)."""
    return KeyInitializer(Normal(stddev), dtype)


def uniform(scale: float = 1e-2, dtype=np.float32) -> KeyInitializer:
    """U[0, scale)."""
    return KeyInitializer(Uniform(0.0, scale), dtype)


def truncated_normal(stddev: float = 1e-2, dtype=np.float32, lower: float = -2.0,
                     upper: float = 2.0) -> KeyInitializer:
    """stddev * Z, Z ~ N(0, 1) cut to [lower, upper] (JAX's: not corrected to std ``stddev``)."""
    from varprop import truncnorm
    lower, upper = truncnorm.check_bounds(lower, upper)
    return KeyInitializer(TruncatedNormal(stddev * truncnorm.std(lower, upper), lower, upper), dtype)


def constant(value, dtype=np.float32) -> KeyInitializer:
    """Every entry ``value``."""
    return KeyInitializer(Constant(value), dtype)


zeros = KeyInitializer(Constant(0.0, name="zeros"))
ones = KeyInitializer(Constant(1.0, name="ones"))


class _ColumnOrthogonal(Orthogonal):
    """Orthogonal with the column axis named: the matrix is (size / shape[c]) x shape[c], as JAX's."""

    def __init__(self, gain: float, column_axis: int):
        super().__init__(gain, name="orthogonal")
        if isinstance(column_axis, bool) or not isinstance(column_axis, numbers.Integral):
            raise TypeError(f"column_axis must be an integer, got {type(column_axis).__name__}")
        self.column_axis = int(column_axis)

    def check_shape(self, shape):
        dims = super().check_shape(shape)
        if not -len(dims) <= self.column_axis < len(dims):
            raise ValueError(f"column_axis {self.column_axis} is out of range for shape {dims}")
        return dims

    def _rows_cols(self, dims):
        cols = dims[self.column_axis]
        return math.prod(dims) // cols, cols

    def _draw(self, dims, src: Source, dt):
        rows, cols = self._rows_cols(dims)
        q = self.gain * orthogonal_matrix(src, rows, cols)
        c = self.column_axis % len(dims)
        q = q.reshape(tuple(d for i, d in enumerate(dims) if i != c) + (cols,))
        return np.moveaxis(q, -1, c).astype(dt)


def orthogonal(scale: float = 1.0, column_axis: int = -1, dtype=np.float32) -> KeyInitializer:
    """``scale`` times a random matrix with orthonormal columns (or rows), columns along ``column_axis``."""
    return KeyInitializer(_ColumnOrthogonal(scale, column_axis), dtype)


class _DeltaOrthogonal(Initializer):
    """Zero everywhere but the kernel's centre tap, which is an orthogonal (in, out) matrix (Xiao et al. 2018)."""
    distribution = "orthogonal"

    def __init__(self, gain: float, column_axis: int):
        self.inner = _ColumnOrthogonal(gain, column_axis)
        self.name = "delta_orthogonal"

    def check_shape(self, shape):
        from .core import check_shape
        dims = check_shape(shape)
        if len(dims) not in (3, 4, 5):
            raise ValueError(f"delta_orthogonal needs a 3-, 4- or 5-D kernel (*kernel, in, out), got {dims}")
        if dims[-2] > dims[-1]:
            raise ValueError(f"delta_orthogonal needs in <= out channels, got in={dims[-2]}, out={dims[-1]}")
        return dims

    def _draw(self, dims, src, dt):
        out = np.zeros(dims, dtype=dt)
        # JAX's tap: (k - 1) // 2, the lower middle of an even kernel
        out[tuple((k - 1) // 2 for k in dims[:-2])] = self.inner._draw(dims[-2:], src, dt)
        return out

    def _variance(self, dims):
        return self.inner._variance(dims[-2:]) / math.prod(dims[:-2])

    def _params(self, dims):
        return {"gain": self.inner.gain, "n": dims[-1], "taps": math.prod(dims[:-2])}


def delta_orthogonal(scale: float = 1.0, column_axis: int = -1, dtype=np.float32) -> KeyInitializer:
    """A conv kernel that is ``scale`` times an orthogonal matrix at its centre tap and zero elsewhere."""
    return KeyInitializer(_DeltaOrthogonal(scale, column_axis), dtype)

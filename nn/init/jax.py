"""JAX front end: ``jax.nn.initializers``' factories, returning ``init(key, shape, dtype=None, out_sharding=None)``.

Names, arguments, defaults and semantics follow ``jax.nn.initializers``, so each initializer can be a Flax or
Equinox ``kernel_init``: the layout is (*kernel, in, out) (``in_axis=-2``, ``out_axis=-1``, each also a
sequence of axes, ``batch_axis`` axes ignored); ``he_normal``, ``lecun_normal`` and ``glorot_normal`` are
*truncated* normals corrected to the stated variance (``variance_scaling(..., "truncated_normal")``);
``normal(stddev)`` and ``uniform(scale)`` (U[0, scale), or (scale, 0] for a negative scale) default to 1e-2;
``truncated_normal(stddev)`` is stddev times the standard normal cut to [lower, upper], *not* corrected (its
std is 0.8796 stddev), as in JAX. ``zeros`` and ``ones`` are initializers themselves. The variances come
from the one core (:mod:`.core`), the scales of the presets from :mod:`varprop.derive.gains`.

What ``key`` is chooses the arrays:

* a JAX PRNG key (``jax.random.key(seed)`` or a raw ``jax.random.PRNGKey(seed)``, traced under ``jax.jit``
  or ``jax.vmap`` or not): the draw is made by ``jax.random`` and the result is a ``jax.Array`` in any
  floating or complex dtype JAX has (bfloat16, float16, float32, float64 with x64 enabled, complex64, ...;
  ``dtype=None`` is JAX's default float). ``out_sharding`` (a ``NamedSharding``, or a ``PartitionSpec`` under
  ``jax.set_mesh``) places the result. Zero-size shapes give empty arrays. Raw key data held in NumPy (a
  uint32 array) is a JAX key too.
* an int seed, a ``numpy.random.Generator`` or None: NumPy, as every varprop initializer (float32 by
  default); JAX is not needed and not imported.

Complex dtypes (JAX path) follow JAX's constructions with the variance read as E|w|^2 = scale / n: a
complex normal; a uniform disk; a complex normal whose modulus is cut at 2. The last one differs from JAX's
on purpose: JAX divides by 0.9531, which leaves E|w|^2 1.8% above scale / n; here the divisor is the
exact std of the cut law (:func:`complex_truncated_std`), so the variance is scale / n.

Each returned callable also carries the core's ``variance(shape)``, ``mean(shape)`` and ``initializer``.

>>> init = he_normal()
>>> w = init(0, (3, 3, 64, 128))                  # a 3x3 conv kernel, 64 -> 128 channels: NumPy
>>> w.shape, init.variance(w.shape) == 2 / (3 * 3 * 64)
((3, 3, 64, 128), True)
>>> variance_scaling(1.0, "fan_in", "normal", in_axis=(0, 1), out_axis=2).variance((4, 5, 6))
0.05
"""
from __future__ import annotations

import math
import numbers
import sys
import warnings

import numpy as np

from .core import (Constant, Initializer, Normal, TruncatedNormal, Uniform, VarianceScaling, check_scale,
                   check_shape)
from .draw import Source, check_dtype
from .structured import Orthogonal, orthogonal_matrix

__all__ = ["KeyInitializer", "variance_scaling", "glorot_normal", "glorot_uniform", "xavier_normal",
           "xavier_uniform", "lecun_normal", "lecun_uniform", "he_normal", "he_uniform", "kaiming_normal",
           "kaiming_uniform", "normal", "uniform", "truncated_normal", "constant", "zeros", "ones",
           "orthogonal", "delta_orthogonal", "complex_truncated_std"]

INSTALL = 'pip install "varprop[jax]"'


# --- arguments -------------------------------------------------------------------------------------------

def _number(value, what: str) -> float:
    """A real Python, NumPy or concrete JAX scalar as a float (JAX's initializers take jnp scalars)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a real number, got {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    dtype = getattr(value, "dtype", None)
    if dtype is not None and np.ndim(value) == 0 and np.dtype(dtype).kind not in "bcSUO":
        try:
            return float(value)
        except TypeError:           # a tracer: the factory runs outside the traced function
            raise ValueError(f"{what} must be a concrete number; build the initializer outside jax.jit "
                             f"(got a traced value)") from None
    raise ValueError(f"{what} must be a real number, got {value!r}")


def _dtype_arg(dtype):
    """A factory's dtype: None, or anything NumPy reads as a floating or complex dtype (bfloat16 included).

    Which dtypes an array can have is checked when it is drawn: NumPy's floats, or every inexact dtype of JAX.
    """
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be a floating or complex dtype, got {dtype!r}") from None
    # kind "V": the ml_dtypes JAX adds (bfloat16, float8_*), checked by JAX at the draw
    if dt.kind not in "fcV":
        raise ValueError(f"dtype must be a floating or complex dtype, got {dt.name}")
    return dtype


def _axes(value, what: str):
    """An axis argument: an int (kept, as JAX tells the default in_axis=-2 by it) or a tuple of ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    try:
        axes = tuple(value)
    except TypeError:
        raise ValueError(f"{what} must be an int or a sequence of ints, got {value!r}") from None
    if not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes):
        raise ValueError(f"{what} must be an int or a sequence of ints, got {value!r}")
    return tuple(int(a) for a in axes)


def _sizes(shape) -> tuple[int, ...]:
    """A shape as a tuple of ints >= 0: JAX allows zero sizes (an empty array, nothing drawn)."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a tuple of non-negative integers, got {shape!r}") from None
    if not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise ValueError(f"shape must be a tuple of non-negative integers, got {shape!r}")
    return tuple(int(d) for d in dims)


# --- keys -------------------------------------------------------------------------------------------------

def _is_jax_key(key) -> bool:
    """A JAX array (a typed or raw key, a tracer under jit), or raw key data held in NumPy (uint32)."""
    jax = sys.modules.get("jax")            # a JAX array cannot exist unless jax has been imported
    if jax is not None and isinstance(key, jax.Array):
        return True
    return isinstance(key, np.ndarray) and key.dtype == np.uint32


def _import_jax():
    try:
        import jax
    except ImportError:
        raise ModuleNotFoundError(f"a JAX PRNG key needs JAX, which is not installed: {INSTALL}") from None
    return jax


def _check_jax_key(jax, key):
    dt = key.dtype
    if jax.dtypes.issubdtype(dt, jax.dtypes.prng_key) or dt == np.uint32:
        return key
    raise ValueError(f"key must be a JAX PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), "
                     f"got an array of dtype {dt} and shape {tuple(key.shape)}")


def _check_numpy_rng(key):
    if key is None or isinstance(key, np.random.Generator) or (
            isinstance(key, numbers.Integral) and not isinstance(key, bool)):
        return key
    raise ValueError(f"key must be a JAX PRNG key (jax.random.key(seed)), an int seed, a "
                     f"numpy.random.Generator or None, got {type(key).__name__}")


def _jax_dtype(jax, dtype):
    """JAX's dtype for an array: the default float for None; float64 without x64 becomes float32, with
    JAX's warning."""
    if dtype is None:
        return jax.dtypes.canonicalize_dtype(np.float64)
    dt = jax.numpy.dtype(dtype)
    if not jax.numpy.issubdtype(dt, jax.numpy.inexact):
        raise ValueError(f"dtype must be a floating or complex dtype, got {dt.name}")
    canonical = jax.dtypes.canonicalize_dtype(dt)
    if canonical != dt:
        warnings.warn(f"Explicitly requested dtype {dt.name} is not available, and will be truncated to dtype "
                      f"{canonical.name}; enable it with jax.config.update('jax_enable_x64', True)",
                      stacklevel=3)
    return canonical


# --- the front end ----------------------------------------------------------------------------------------

class KeyInitializer:
    """``init(key, shape, dtype=None, out_sharding=None)``: a core :class:`Initializer` with JAX's signature.

    A JAX key draws with ``jax.random`` and returns a ``jax.Array``; an int seed, a Generator or None
    draws with NumPy (see the module docstring).
    """

    def __init__(self, initializer: Initializer, dtype=None):
        self.initializer = initializer
        self.dtype = _dtype_arg(dtype)

    def __call__(self, key, shape, dtype=None, out_sharding=None):
        dtype = self.dtype if dtype is None else _dtype_arg(dtype)
        dims = _sizes(shape)
        if _is_jax_key(key):
            jax = _import_jax()
            key = _check_jax_key(jax, key)
            dt = _jax_dtype(jax, dtype)
            if 0 in dims:
                self._check_empty(dims)
                return _reshard(jax, jax.numpy.zeros(dims, dt), out_sharding)
            return _draw_jax(jax, self.initializer, key, self.initializer.check_shape(dims), dt,
                             out_sharding)
        if out_sharding is not None:
            raise ValueError("out_sharding places a jax.Array: it needs a JAX PRNG key, not a NumPy seed")
        _check_numpy_rng(key)
        dtype = np.float32 if dtype is None else dtype
        if 0 in dims:
            self._check_empty(dims)
            return np.zeros(dims, check_dtype(dtype))
        return self.initializer(dims, rng=key, dtype=dtype)

    def _check_empty(self, dims):
        """An empty shape gets the errors (rank, axes) of the same shape with its zeros made ones."""
        self.initializer.check_shape(tuple(d or 1 for d in dims))

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


class _AxesVarianceScaling(VarianceScaling):
    """The core's variance_scaling with JAX's axis arguments (an int or a sequence of axes for each).

    The shape is collapsed to (prod of the in axes, prod of the out axes, prod of the other non-batch
    axes), the core's (in, out, receptive field) layout, and the core computes the fans and the law.
    """
    min_ndim = 0

    def __init__(self, scale, mode, distribution, in_axis=-2, out_axis=-1, batch_axis=(),
                 name="variance_scaling"):
        super().__init__(scale, mode, distribution, layout=(0, 1), name=name)
        self.axes = (_axes(in_axis, "in_axis"), _axes(out_axis, "out_axis"), _axes(batch_axis, "batch_axis"))

    def collapse(self, dims) -> tuple[int, int, int]:
        """(in size, out size, receptive field) of a shape, for the core's layout (0, 1)."""
        in_axis, out_axis, batch_axis = self.axes
        nd = len(dims)
        if in_axis == -2 and nd <= 1:        # JAX's words, which JAX's own tests expect
            raise ValueError(f"Can't compute input and output sizes of a {nd}-dimensional weights tensor "
                             "with default in_axis. Must be at least 2D or specify in_axis explicitly.")
        groups = []
        for axes in (in_axis, out_axis, batch_axis):
            group = []
            for a in (axes,) if isinstance(axes, int) else axes:
                if not -nd <= a < nd:
                    raise ValueError(f"axis {a} is out of range for a shape with {nd} dimensions")
                group.append(a % nd)
            groups.append(group)
        used = [a for g in groups for a in g]
        if len(set(used)) != len(used):
            raise ValueError(f"in_axis, out_axis and batch axes must all differ, got {tuple(used)}")
        return (math.prod(dims[a] for a in groups[0]), math.prod(dims[a] for a in groups[1]),
                math.prod(d for i, d in enumerate(dims) if i not in used))

    def check_shape(self, shape):
        dims = check_shape(shape)
        self.collapse(dims)
        return dims

    def law(self, shape) -> Initializer:
        return super().law(self.collapse(self.check_shape(shape)))

    def _variance(self, dims):
        return super()._variance(self.collapse(dims))

    def __repr__(self) -> str:
        return (f"<Initializer {self.name}: variance_scaling({self.scale!r}, {self.mode!r}, "
                f"{self.distribution!r}, in_axis={self.axes[0]!r}, out_axis={self.axes[1]!r}, "
                f"batch_axis={self.axes[2]!r})>")


def variance_scaling(scale, mode: str, distribution: str, in_axis=-2, out_axis=-1, batch_axis=(),
                     dtype=None) -> KeyInitializer:
    """Entries of variance scale / fan(mode), fans from the given axes (JAX's variance_scaling)."""
    return KeyInitializer(_AxesVarianceScaling(_number(scale, "scale"), mode, distribution, in_axis, out_axis,
                                               batch_axis), dtype)


def _scale(activation: str) -> float:
    from varprop.derive.gains import forward_scale_value
    return forward_scale_value(activation)


def glorot_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> KeyInitializer:
    """Truncated normal of variance 1 / fan_avg."""
    return variance_scaling(_scale("linear"), "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def glorot_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> KeyInitializer:
    """Uniform of variance 1 / fan_avg."""
    return variance_scaling(_scale("linear"), "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> KeyInitializer:
    """Truncated normal of variance 1 / fan_in."""
    return variance_scaling(_scale("linear"), "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def lecun_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> KeyInitializer:
    """Uniform of variance 1 / fan_in."""
    return variance_scaling(_scale("linear"), "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> KeyInitializer:
    """Truncated normal of variance 2 / fan_in (the ReLU forward scale)."""
    return variance_scaling(_scale("relu"), "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def he_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> KeyInitializer:
    """Uniform of variance 2 / fan_in."""
    return variance_scaling(_scale("relu"), "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


xavier_normal, xavier_uniform = glorot_normal, glorot_uniform
kaiming_normal, kaiming_uniform = he_normal, he_uniform


def normal(stddev=1e-2, dtype=None) -> KeyInitializer:
    """N(0, stddev^2) (a complex normal of E|w|^2 = stddev^2 for a complex dtype)."""
    return KeyInitializer(Normal(_number(stddev, "stddev")), dtype)


def uniform(scale=1e-2, dtype=None) -> KeyInitializer:
    """scale * U[0, 1): U[0, scale), or (scale, 0] for a negative scale."""
    scale = _number(scale, "scale")
    return KeyInitializer(Uniform(min(scale, 0.0), max(scale, 0.0)), dtype)


def truncated_normal(stddev=1e-2, dtype=None, lower=-2.0, upper=2.0) -> KeyInitializer:
    """stddev * Z, Z ~ N(0, 1) cut to [lower, upper] (JAX's: not corrected to std ``stddev``)."""
    from varprop import truncnorm
    lower, upper = truncnorm.check_bounds(_number(lower, "lower"), _number(upper, "upper"))
    std = check_scale(_number(stddev, "stddev"), "stddev") * truncnorm.std(lower, upper)
    return KeyInitializer(TruncatedNormal(std, lower, upper), dtype)


def constant(value, dtype=None) -> KeyInitializer:
    """Every entry ``value``."""
    return KeyInitializer(Constant(_number(value, "value")), dtype)


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

    def _columns_last(self, q, dims, xp):
        """The rows x cols matrix back to ``dims``, its columns along the column axis."""
        c = self.column_axis % len(dims)
        q = q.reshape(tuple(d for i, d in enumerate(dims) if i != c) + (dims[c],))
        return xp.moveaxis(q, -1, c)

    def _draw(self, dims, src: Source, dt):
        rows, cols = self._rows_cols(dims)
        return self._columns_last(self.gain * orthogonal_matrix(src, rows, cols), dims, np).astype(dt)


def orthogonal(scale=1.0, column_axis: int = -1, dtype=None) -> KeyInitializer:
    """``scale`` times a random matrix with orthonormal columns (or rows), columns along ``column_axis``."""
    return KeyInitializer(_ColumnOrthogonal(_number(scale, "scale"), column_axis), dtype)


class _DeltaOrthogonal(Initializer):
    """Zero everywhere but the kernel's centre tap, which is an orthogonal (in, out) matrix (Xiao et al. 2018)."""
    distribution = "orthogonal"

    def __init__(self, gain: float, column_axis: int):
        self.inner = _ColumnOrthogonal(gain, column_axis)
        self.name = "delta_orthogonal"

    def check_shape(self, shape):
        dims = check_shape(shape)
        if len(dims) not in (3, 4, 5):
            raise ValueError(f"delta_orthogonal needs a 3-, 4- or 5-D kernel (*kernel, in, out), got {dims}")
        if dims[-2] > dims[-1]:
            raise ValueError(f"delta_orthogonal needs in <= out channels, got in={dims[-2]}, out={dims[-1]}")
        return dims

    @staticmethod
    def tap(dims) -> tuple[int, ...]:
        # JAX's tap: (k - 1) // 2, the lower middle of an even kernel
        return tuple((k - 1) // 2 for k in dims[:-2])

    def _draw(self, dims, src, dt):
        out = np.zeros(dims, dtype=dt)
        out[self.tap(dims)] = self.inner._draw(dims[-2:], src, dt)
        return out

    def _variance(self, dims):
        return self.inner._variance(dims[-2:]) / math.prod(dims[:-2])

    def _params(self, dims):
        return {"gain": self.inner.gain, "n": dims[-1], "taps": math.prod(dims[:-2])}


def delta_orthogonal(scale=1.0, column_axis: int = -1, dtype=None) -> KeyInitializer:
    """A conv kernel that is ``scale`` times an orthogonal matrix at its centre tap and zero elsewhere."""
    return KeyInitializer(_DeltaOrthogonal(_number(scale, "scale"), column_axis), dtype)


# --- drawing with jax.random ------------------------------------------------------------------------------

def complex_truncated_std(b: float = 2.0) -> float:
    """sqrt(E|z|^2) of a standard complex normal (E|z|^2 = 1) whose modulus is cut to |z| <= b.

    |z|^2 of a standard complex normal is Exp(1); cut at b^2 its mean is
    int_0^{b^2} t e^{-t} dt / (1 - e^{-b^2}) = 1 - b^2 / (e^{b^2} - 1), so the std is

        sqrt(1 - b^2 / expm1(b^2)) = 0.96196... at b = 2.

    >>> round(complex_truncated_std(2.0), 6)
    0.961962
    """
    b = check_scale(b, "b", positive=True)
    return math.sqrt(1.0 - b * b / math.expm1(b * b))


def _draw_jax(jax, init: Initializer, key, dims, dt, sharding):
    """One draw of ``init``'s law by jax.random: a jax.Array of shape ``dims`` and dtype ``dt``."""
    jnp = jax.numpy
    complex_ = jnp.issubdtype(dt, jnp.complexfloating)
    if isinstance(init, _AxesVarianceScaling):
        law = init.law(dims)
        if complex_:
            return _reshard(jax, _complex_variance_scaling(jax, law, key, dims, dt), sharding)
        return _draw_law(jax, law, key, dims, dt, sharding)
    if isinstance(init, (Normal, Uniform, TruncatedNormal)):
        if complex_ and not isinstance(init, Normal):
            raise ValueError(f"{init.name} draws real numbers: dtype must be floating, got {dt.name}")
        return _draw_law(jax, init, key, dims, dt, sharding)
    if isinstance(init, Constant):
        return _reshard(jax, jnp.full(dims, init.value, dt), sharding)
    if isinstance(init, _DeltaOrthogonal):
        inner = _orthogonal_jax(jax, init.inner, key, dims[-2:], dt)
        return _reshard(jax, jnp.zeros(dims, dt).at[init.tap(dims)].set(inner), sharding)
    if isinstance(init, _ColumnOrthogonal):
        return _reshard(jax, _orthogonal_jax(jax, init, key, dims, dt), sharding)
    raise ValueError(f"the JAX path cannot draw {init!r}")


def _reshard(jax, x, sharding):
    # only asked for when given: an older JAX without out_sharding still draws
    return x if sharding is None else jax.sharding.reshard(x, sharding)


def _draw_law(jax, law: Initializer, key, dims, dt, sharding):
    """Normal, Uniform or TruncatedNormal in a real dtype, written as JAX's initializers write them."""
    jnp, random = jax.numpy, jax.random
    kw = {} if sharding is None else {"out_sharding": sharding}
    if isinstance(law, Normal):
        x = random.normal(key, dims, dt, **kw) * jnp.asarray(law.std_, dt)
        return x if law.mean_ == 0.0 else x + jnp.asarray(law.mean_, dt)
    if isinstance(law, Uniform):
        if law.low == -law.high:                     # variance_scaling: U(-1, 1) * limit
            return random.uniform(key, dims, dt, -1.0, 1.0, **kw) * jnp.asarray(law.high, dt)
        if law.low == 0.0 or law.high == 0.0:        # uniform(scale): U[0, 1) * scale, either sign
            return random.uniform(key, dims, dt, **kw) * jnp.asarray(law.low or law.high, dt)
        return random.uniform(key, dims, dt, law.low, law.high, **kw)
    x = random.truncated_normal(key, law.low, law.high, dims, dt, **kw) * jnp.asarray(law.sigma, dt)
    return x if law.loc == 0.0 else x + jnp.asarray(law.loc, dt)


def _complex_variance_scaling(jax, law: Initializer, key, dims, dt):
    """variance_scaling in a complex dtype: E|w|^2 = Var of the real law, by JAX's complex constructions."""
    jnp, random = jax.numpy, jax.random
    std = math.sqrt(law.variance(dims))
    real = jnp.finfo(dt).dtype
    if isinstance(law, Normal):                      # a standard complex normal has E|z|^2 = 1
        return random.normal(key, dims, dt) * jnp.asarray(std, dt)
    key_r, key_theta = random.split(key)
    theta = 2 * np.pi * random.uniform(key_theta, dims, real).astype(dt)
    u = random.uniform(key_r, dims, real).astype(dt)
    if isinstance(law, Uniform):                     # the disk of radius sqrt(2): E|z|^2 = 1
        r = jnp.sqrt(2 * u)
        return r * jnp.exp(1j * theta) * jnp.asarray(std, dt)
    b = law.high                                     # |z|^2 ~ Exp(1) cut at b^2, by its inverse CDF
    t = -jnp.expm1(jnp.asarray(-b * b, dt)) * u
    r = jnp.sqrt(-jnp.log1p(-t))
    return r * jnp.exp(1j * theta) * jnp.asarray(std / complex_truncated_std(b), dt)


def _orthogonal_jax(jax, init: _ColumnOrthogonal, key, dims, dt):
    jnp = jax.numpy
    rows, cols = init._rows_cols(dims)
    # the QR behind it has no kernel below 32 bits (bfloat16, float16): drawn in float32, then cast
    work = dt if jnp.finfo(dt).bits >= 32 else jnp.float32
    q = jax.random.orthogonal(key, rows, (), work, cols).astype(dt)
    return jnp.asarray(init.gain, dt) * init._columns_last(q, dims, jnp)

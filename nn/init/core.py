"""The one parametric core: fans, the :class:`Initializer` contract, and ``variance_scaling``.

Fans (Glorot & Bengio 2010; PyTorch's ``_calculate_fan_in_and_fan_out``): for a weight of shape
``(out, in, *kernel)`` (the torch layout), with r = prod(kernel) the receptive field,

    fan_in = in * r,    fan_out = out * r.

The JAX/Keras layout is ``(*kernel, in, out)``. ``variance_scaling(scale, mode, distribution)`` draws iid
entries of mean 0 and variance ``scale / n`` with n the fan named by ``mode``: ``fan_in``, ``fan_out``,
``fan_avg`` = (fan_in + fan_out) / 2 or ``fan_geo_avg`` = sqrt(fan_in fan_out). The distribution is

* ``normal``:           N(0, scale / n);
* ``uniform``:          U(-l, l) with l = sqrt(3 scale / n), since Var U(-l, l) = l^2 / 3;
* ``truncated_normal``: sigma Z, Z ~ N(0, 1) cut at +-2, sigma = sqrt(scale / n) / s2 with s2 the std of the
                        cut normal (:data:`varprop.truncnorm.STD_2SIGMA`), so the variance really is
                        scale / n (as JAX does; Keras's "truncated_normal" too).

Every fan-based preset (He, Glorot/Xavier, LeCun, dropout-aware He, Fixup) is this with one scale.

>>> init = variance_scaling(2.0, "fan_in", "normal")
>>> init.variance((256, 128, 3, 3))                     # 2 / (128 * 9)
0.001736111111111111
>>> init((256, 128, 3, 3), rng=0).shape
(256, 128, 3, 3)
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from varprop import truncnorm

from .checks import distribution_name
from .draw import Source, check_dtype

__all__ = ["MODES", "DISTRIBUTIONS", "LAYOUTS", "Initializer", "Deterministic", "Normal", "Uniform", "TruncatedNormal",
           "Constant", "VarianceScaling", "Expression", "variance_scaling", "fans", "fans_from_axes", "fan",
           "check_shape", "check_scale", "check_layout"]

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")
LAYOUTS = {"torch": (1, 0), "jax": (-2, -1), "keras": (-2, -1)}     # (in_axis, out_axis)


def check_shape(shape, min_ndim: int = 0) -> tuple[int, ...]:
    """A shape as a tuple of positive ints with at least ``min_ndim`` dimensions, else ValueError."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a tuple of positive integers, got {shape!r}") from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise ValueError(f"shape must be a tuple of positive integers, got {shape!r}")
        if d <= 0:
            raise ValueError(f"shape sizes must be positive, got {tuple(dims)}")
    if len(dims) < min_ndim:
        raise ValueError(f"this initializer needs a shape with at least {min_ndim} dimensions, "
                         f"got {tuple(dims)}")
    return tuple(int(d) for d in dims)


def check_scale(value, what: str = "scale", positive: bool = False) -> float:
    """A finite float >= 0 (> 0 if ``positive``), else ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {value}")
    if v < 0 or (positive and v == 0):
        raise ValueError(f"{what} must be {'> 0' if positive else '>= 0'}, got {value}")
    return v


def _check_real(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{what} must be a finite real number, got {value!r}")
    return float(value)


def fans_from_axes(shape, in_axis: int, out_axis: int, batch_axis=()) -> tuple[int, int]:
    """(fan_in, fan_out) = (shape[in] r, shape[out] r), r = the product of the other non-batch sizes."""
    dims = check_shape(shape, 2)
    nd = len(dims)
    axes = []
    for a in (in_axis, out_axis, *tuple(batch_axis)):
        if not -nd <= a < nd:
            raise ValueError(f"axis {a} is out of range for a shape with {nd} dimensions")
        axes.append(a % nd)
    if len(set(axes)) != len(axes):
        raise ValueError(f"in_axis, out_axis and batch axes must all differ, got {tuple(axes)}")
    r = math.prod(d for i, d in enumerate(dims) if i not in axes)
    return dims[axes[0]] * r, dims[axes[1]] * r


def check_layout(layout):
    """A layout name of :data:`LAYOUTS`, or explicit axes ``(in_axis, out_axis[, batch_axes])``."""
    if isinstance(layout, str):
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)} or (in_axis, out_axis)")
        return layout
    try:
        axes = tuple(layout)
    except TypeError:
        raise ValueError(f"layout must be a name or (in_axis, out_axis[, batch_axes]), got {layout!r}") from None
    ok = len(axes) in (2, 3) and all(isinstance(a, numbers.Integral) and not isinstance(a, bool)
                                     for a in axes[:2])
    if ok and len(axes) == 3:
        batch = axes[2]
        batch = (batch,) if isinstance(batch, numbers.Integral) else tuple(batch)
        ok = all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in batch)
        axes = (axes[0], axes[1], batch)
    if not ok:
        raise ValueError(f"layout must be a name or (in_axis, out_axis[, batch_axes]), got {layout!r}")
    return axes


def fans(shape, layout="torch") -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape: ``layout`` "torch" (out, in, *kernel) or "jax"/"keras" (*kernel, in, out).

    ``layout`` may also give the axes, ``(in_axis, out_axis)`` or ``(in_axis, out_axis, batch_axes)``.

    >>> fans((64, 3, 5, 5)), fans((5, 5, 3, 64), layout="jax")
    ((75, 1600), (75, 1600))
    """
    layout = check_layout(layout)
    return fans_from_axes(shape, *(LAYOUTS[layout] if isinstance(layout, str) else layout))


def fan(shape, mode: str, layout="torch") -> float:
    """The fan named by ``mode`` (one of :data:`MODES`)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
    fi, fo = fans(shape, layout)
    return {"fan_in": fi, "fan_out": fo, "fan_avg": (fi + fo) / 2, "fan_geo_avg": math.sqrt(fi * fo)}[mode]


# |Z| of a standard normal draw stays below this (P(|Z| > 12) ~ 4e-33): the bound used to refuse laws whose
# draws would overflow the requested dtype
_NORMAL_REACH = 12.0


def _dtype_max(dt) -> float:
    return float(np.finfo(np.dtype(dt)).max)


def _largest(law) -> float:
    """The largest magnitude a draw of ``law`` (Normal, Uniform or TruncatedNormal) can reach."""
    if isinstance(law, Normal):
        return abs(law.mean_) + _NORMAL_REACH * law.std_
    if isinstance(law, Uniform):
        return max(abs(law.low), abs(law.high))
    return abs(law.loc) + law.sigma * max(abs(law.low), abs(law.high))


def _check_fits(law, dt, what: str) -> None:
    """Refuse (ValueError naming ``what``) a law whose draws would overflow ``dt`` to infinity."""
    if np.dtype(dt).kind in "fc" and _largest(law) > _dtype_max(dt):
        raise ValueError(f"{law.name}: {what} gives draws up to {_largest(law):.3g}, which overflow "
                         f"{np.dtype(dt).name} (largest {_dtype_max(dt):.3g})")


class Initializer:
    """``init(shape, rng=None, dtype=np.float32) -> array``, with its exact per-entry moments.

    ``variance(shape)`` and ``mean(shape)`` describe an entry chosen at random from an array of that shape:
    for iid initializers the law every entry is drawn from; for structured ones (orthogonal, sparse) the
    marginal law of an entry; for deterministic fills (constant, eye, dirac) the spread of the entries.
    """
    name = "initializer"
    distribution = ""
    min_ndim = 0

    def __call__(self, shape, rng=None, dtype=np.float32) -> np.ndarray:
        dims = self.check_shape(shape)
        dt = check_dtype(dtype)
        return self._draw(dims, Source.of(rng), dt)

    def check_shape(self, shape) -> tuple[int, ...]:
        return check_shape(shape, self.min_ndim)

    def variance(self, shape) -> float:
        return self._variance(self.check_shape(shape))

    def mean(self, shape) -> float:
        return self._mean(self.check_shape(shape))

    def std(self, shape) -> float:
        return math.sqrt(self.variance(shape))

    def params(self, shape) -> dict:
        """The law's parameters for this shape (``std``, ``low``/``high``, ``scale`` and bounds, ...)."""
        return self._params(self.check_shape(shape))

    def _mean(self, dims) -> float:
        return 0.0

    def as_expression(self) -> str | None:
        """The law as a distribution written in fan_in and fan_out (:mod:`varprop.expr`'s grammar, the one
        ``varprop check`` audits), or None for laws that are not iid or not expressible there.

        >>> from varprop.nn.init import get
        >>> get("xavier_uniform").as_expression()
        'uniform(-sqrt(3*1.0/((fan_in+fan_out)/2)), sqrt(3*1.0/((fan_in+fan_out)/2)))'
        """
        return None

    def __repr__(self) -> str:
        return f"<Initializer {self.name} ({self.distribution})>"


class Normal(Initializer):
    """N(mean, std^2) iid."""
    distribution = "normal"

    def __init__(self, std: float = 1.0, mean: float = 0.0, name: str = "normal"):
        self.std_ = check_scale(std, "std")
        self.mean_ = _check_real(mean, "mean")
        self.name = name

    def _draw(self, dims, src, dt):
        _check_fits(self, dt, f"std {self.std_!r}")
        return src.normal(dims, dt, self.mean_, self.std_)

    def _variance(self, dims):
        return self.std_ ** 2

    def _mean(self, dims):
        return self.mean_

    def _params(self, dims):
        return {"mean": self.mean_, "std": self.std_}

    def as_expression(self):
        return f"normal({self.mean_!r}, {self.std_!r})"


class Uniform(Initializer):
    """U(low, high) iid: mean (low + high) / 2, variance (high - low)^2 / 12."""
    distribution = "uniform"

    def __init__(self, low: float = 0.0, high: float = 1.0, name: str = "uniform"):
        self.low, self.high = _check_real(low, "low"), _check_real(high, "high")
        if not self.low <= self.high:
            raise ValueError(f"uniform needs low <= high, got low={low}, high={high}")
        self.name = name

    def _draw(self, dims, src, dt):
        _check_fits(self, dt, f"bounds [{self.low!r}, {self.high!r}]")
        return src.uniform(dims, dt, self.low, self.high)

    def _variance(self, dims):
        return (self.high - self.low) ** 2 / 12.0

    def _mean(self, dims):
        return (self.low + self.high) / 2.0

    def _params(self, dims):
        return {"low": self.low, "high": self.high}

    def as_expression(self):
        return f"uniform({self.low!r}, {self.high!r})"


class TruncatedNormal(Initializer):
    """mean + sigma Z, Z ~ N(0, 1) cut to [low, high], sigma chosen so that the std is ``std`` exactly.

    sigma = std / sd(low, high), sd the std of the cut standard normal (:mod:`varprop.truncnorm`);
    the bounds are in units of sigma. The mean is ``mean + sigma E[Z]`` (``mean`` unless the cut is skewed).
    """
    distribution = "truncated_normal"

    def __init__(self, std: float = 1.0, low: float = -2.0, high: float = 2.0, mean: float = 0.0,
                 name: str = "truncated_normal"):
        self.std_ = check_scale(std, "std")
        self.low, self.high = truncnorm.check_bounds(low, high)
        self.loc = _check_real(mean, "mean")
        self.sigma = self.std_ / truncnorm.std(self.low, self.high)
        self.name = name

    def _draw(self, dims, src, dt):
        _check_fits(self, dt, f"std {self.std_!r}")
        return src.truncated(dims, dt, self.loc, self.sigma, self.low, self.high)

    def _variance(self, dims):
        return self.std_ ** 2

    def _mean(self, dims):
        return self.loc + self.sigma * truncnorm.mean(self.low, self.high)

    def _params(self, dims):
        return {"loc": self.loc, "scale": self.sigma, "a": self.low, "b": self.high}

    def as_expression(self):
        # the expression's std is the parent normal's sigma (bounds in units of it); a shifted law has no form
        return None if self.loc else f"truncated_normal({self.sigma!r}, {self.low!r}, {self.high!r})"


class Deterministic(Initializer):
    """An initializer that draws nothing (constant, eye, dirac): ``rng`` is checked, then ignored."""

    def __call__(self, shape, rng=None, dtype=np.float32) -> np.ndarray:
        if rng is not None:
            Source.of(rng)
        return self._draw(self.check_shape(shape), None, check_dtype(dtype))


class Constant(Deterministic):
    """Every entry equal to ``value`` (zeros, ones)."""
    distribution = "constant"

    def __init__(self, value: float = 0.0, name: str = "constant"):
        self.value = _check_real(value, "value")
        self.name = name

    def _draw(self, dims, src, dt):
        return np.full(dims, self.value, dtype=dt)

    def _variance(self, dims):
        return 0.0

    def _mean(self, dims):
        return self.value

    def _params(self, dims):
        return {"value": self.value}

    def as_expression(self):
        return f"constant({self.value!r})"


class VarianceScaling(Initializer):
    """Entries of mean 0 and variance ``scale / fan(mode)``; see the module docstring."""
    min_ndim = 2

    def __init__(self, scale: float, mode: str = "fan_in", distribution: str = "truncated_normal",
                 layout="torch", name: str = "variance_scaling"):
        self.scale = check_scale(scale)
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        distribution_name(distribution, DISTRIBUTIONS)
        self.mode, self.distribution, self.name = mode, distribution, name
        self.layout = check_layout(layout)

    def law(self, shape) -> Initializer:
        """The iid law this initializer draws from for ``shape``: a Normal, Uniform or TruncatedNormal."""
        std = math.sqrt(self.scale / fan(shape, self.mode, self.layout))
        if self.distribution == "normal":
            return Normal(std, name=self.name)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0) * std
            return Uniform(-limit, limit, name=self.name)
        return TruncatedNormal(std, name=self.name)

    def _draw(self, dims, src, dt):
        law = self.law(dims)
        bound = _largest(law)
        if bound > _dtype_max(dt):
            raise ValueError(f"{self.name}: scale {self.scale!r} gives std {law.std(dims):.3g} for shape {dims} "
                             f"(fan {fan(dims, self.mode, self.layout):g}), so its draws (up to {bound:.3g}) "
                             f"overflow {np.dtype(dt).name} (largest {_dtype_max(dt):.3g}); use a smaller scale")
        return law._draw(dims, src, dt)

    def _variance(self, dims):
        return self.scale / fan(dims, self.mode, self.layout)

    def _params(self, dims):
        return self.law(dims)._params(dims)

    _FAN_TEXT = {"fan_in": "fan_in", "fan_out": "fan_out", "fan_avg": "((fan_in+fan_out)/2)",
                 "fan_geo_avg": "sqrt(fan_in*fan_out)"}

    def as_expression(self):
        var = f"{self.scale!r}/{self._FAN_TEXT[self.mode]}"
        if self.distribution == "normal":
            return f"normal(0, sqrt({var}))"
        if self.distribution == "uniform":
            return f"uniform(-sqrt(3*{var}), sqrt(3*{var}))"
        # std sqrt(var) exactly: the parent normal's sigma is that over the std of N(0, 1) cut at +-2
        return f"truncated_normal(sqrt({var})/{truncnorm.std(-2.0, 2.0)!r})"

    def __repr__(self) -> str:
        return (f"<Initializer {self.name}: variance_scaling({self.scale!r}, {self.mode!r}, "
                f"{self.distribution!r}, layout={self.layout!r})>")


def variance_scaling(scale: float, mode: str = "fan_in", distribution: str = "truncated_normal",
                     layout="torch", name: str = "variance_scaling") -> VarianceScaling:
    """The initializer with iid entries of variance ``scale / fan(mode)`` (module docstring)."""
    return VarianceScaling(scale, mode, distribution, layout, name)


class Expression(Initializer):
    """iid entries from a distribution written in fan_in and fan_out (:mod:`varprop.expr`), its parameters
    evaluated at the fans of the shape being drawn: the grammar ``varprop simulate --init`` and
    ``varprop check`` take, usable wherever an initializer name is (``get("normal(0, sqrt(2/fan_in))")``).

    ``truncated_normal(std, low, high)`` there is N(0, std^2) cut to [low std, high std]; here that is
    :class:`TruncatedNormal` with sigma = std, so the variance is the expression's exactly.

    >>> e = Expression("uniform(-sqrt(6/(fan_in+fan_out)), sqrt(6/(fan_in+fan_out)))")
    >>> e.variance((30, 70))                 # 2 / (fan_in + fan_out)
    0.02
    >>> e((30, 70), rng=0).shape
    (30, 70)
    """
    min_ndim = 2

    def __init__(self, text: str, layout="torch"):
        from varprop.expr import parse_distribution
        self.dist = parse_distribution(text)
        self.name = self.dist.text
        self.distribution = self.dist.kind
        self.layout = check_layout(layout)

    def law(self, shape) -> Initializer:
        """The law of the entries for ``shape``: a Normal, Uniform, TruncatedNormal or Constant."""
        fi, fo = fans(shape, self.layout)
        p = self.dist.params(fi, fo)
        if self.dist.kind == "normal":
            return Normal(p["std"], p["mean"], name=self.name)
        if self.dist.kind == "uniform":
            return Uniform(p["low"], p["high"], name=self.name)
        if self.dist.kind == "constant":
            return Constant(p["value"], name=self.name)
        return TruncatedNormal(p["std"] * truncnorm.std(p["low"], p["high"]), p["low"], p["high"], name=self.name)

    def _draw(self, dims, src, dt):
        law = self.law(dims)
        return law._draw(dims, None if isinstance(law, Deterministic) else src, dt)

    def _variance(self, dims):
        return self.dist.variance(*fans(dims, self.layout))

    def _mean(self, dims):
        return self.dist.mean(*fans(dims, self.layout))

    def _params(self, dims):
        return self.law(dims)._params(dims)

    def as_expression(self):
        return self.dist.text

    def __repr__(self) -> str:
        return f"<Initializer {self.name!r} ({self.distribution}, layout={self.layout!r})>"

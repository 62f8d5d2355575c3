"""The one registry of activation functions.

Every activation is written once, as a function of a *math namespace*: the same definition evaluates in
SymPy (exact expressions for derive/), in NumPy (vectorized float arrays) and in mpmath (arbitrary
precision for the Gaussian moments). The Numba scalar kernels in :mod:`varprop.kernels` are the only
second copy, and a test holds them against this registry.

>>> from varprop.activations import get
>>> act = get("leaky_relu", negative_slope="0.2")
>>> float(act.numpy([-1.0, 2.0])[0])
-0.2
>>> act.sympy()                                   # exact parameters: 0.2 is 1/5
Piecewise((x, x > 0), (x/5, True))

Parameters are kept exact (``fractions.Fraction``) so that SymPy sees ``1/100`` rather than the float
``0.01``; SELU's constants are the closed forms of its fixed point (Klambauer et al. 2017, eq. 14).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from types import SimpleNamespace
from typing import Callable, Mapping

import numpy as np

__all__ = ["Activation", "Bound", "Param", "REGISTRY", "names", "get", "parse_params", "to_fraction", "fmt",
           "decimal_string", "MAX_NUMBER_DIGITS", "RRELU_NOTE"]


# --------------------------------------------------------------------------------------------------
# math namespaces: the three back ends one definition evaluates in
# --------------------------------------------------------------------------------------------------

def _np_where(c, a, b):
    return np.where(c, a, b)


def _np_erf(x):
    # SciPy is resolved on first use, not at `import varprop` (scipy.special alone costs ~0.2 s)
    from scipy.special import erf
    return erf(x)


def _np_erfc(x):
    from scipy.special import erfc
    return erfc(x)


NUMPY = SimpleNamespace(
    name="numpy", exp=np.exp, expm1=np.expm1, log=np.log, tanh=np.tanh, erf=_np_erf, erfc=_np_erfc, sqrt=np.sqrt,
    pi=np.pi, abs=np.abs, where=_np_where, num=float, e=math.e,
)

MATH = SimpleNamespace(
    name="math", exp=math.exp, expm1=math.expm1, log=math.log, tanh=math.tanh, erf=math.erf, erfc=math.erfc,
    sqrt=math.sqrt, pi=math.pi, abs=abs, where=lambda c, a, b: a if c else b, num=float, e=math.e,
)


@functools.lru_cache(maxsize=None)
def mpmath_namespace():
    import mpmath as mp
    return SimpleNamespace(
        name="mpmath", exp=mp.exp, expm1=mp.expm1, log=mp.log, tanh=mp.tanh, erf=mp.erf, erfc=mp.erfc, sqrt=mp.sqrt,
        pi=mp.pi, abs=abs, where=lambda c, a, b: a if c else b,
        num=lambda v: mp.mpf(v.numerator) / v.denominator if isinstance(v, Fraction) else mp.mpf(v),
        e=mp.e,
    )


@functools.lru_cache(maxsize=None)
def sympy_namespace():
    import sympy as sp

    def num(v):
        if isinstance(v, Fraction):
            return sp.Rational(v.numerator, v.denominator)
        return sp.sympify(v) if isinstance(v, (int, sp.Basic)) else sp.nsimplify(v, rational=True)

    return SimpleNamespace(
        name="sympy", exp=sp.exp, expm1=lambda x: sp.exp(x) - 1, log=sp.log, tanh=sp.tanh, erf=sp.erf, erfc=sp.erfc, sqrt=sp.sqrt,
        pi=sp.pi, abs=sp.Abs, where=lambda c, a, b: sp.Piecewise((a, c), (b, True)), num=num, e=sp.E,
    )


# --------------------------------------------------------------------------------------------------
# SELU's constants: the closed form of the self-normalizing fixed point (mean 0, variance 1)
# --------------------------------------------------------------------------------------------------

def selu_alpha(ns):
    """alpha_01 = -sqrt(2/pi) / (erfc(1/sqrt 2) e^(1/2) - 1) (Klambauer et al. 2017, eq. 14)."""
    return _selu_constants(ns)[0]


def selu_lambda(ns):
    """lambda_01 of Klambauer et al. 2017, eq. 14."""
    return _selu_constants(ns)[1]


_SELU_CACHE: dict = {}


def _selu_constants(ns):
    # evaluated once per namespace and working precision: SELU's forward calls these at every point
    key = (ns.name, _precision(ns))
    if key not in _SELU_CACHE:
        alpha = -ns.sqrt(2 / ns.pi) / (ns.erfc(1 / ns.sqrt(2)) * ns.sqrt(ns.e) - 1)
        c = ns.erfc(1 / ns.sqrt(2))
        den = (2 * ns.erfc(ns.sqrt(2)) * ns.e ** 2 + ns.pi * c ** 2 * ns.e
               - 2 * (2 + ns.pi) * c * ns.sqrt(ns.e) + ns.pi + 2)
        lam = (1 - c * ns.sqrt(ns.e)) * ns.sqrt(2 * ns.pi) / ns.sqrt(den)
        _SELU_CACHE[key] = (alpha, lam)
    return _SELU_CACHE[key]


def _precision(ns):
    if ns.name == "mpmath":
        import mpmath as mp
        return mp.mp.prec
    return None


# --------------------------------------------------------------------------------------------------
# definitions: f(x, ns, **p) and its derivative df(x, ns, **p)
# --------------------------------------------------------------------------------------------------

def _sigmoid(x, ns):
    return 1 / (1 + ns.exp(-x))


def _softplus_core(x, ns):
    # log(1 + e^x) written so that NumPy does not overflow: max(x, 0) + log(1 + e^-|x|)
    if ns.name == "numpy":
        return np.logaddexp(0.0, x)
    return ns.log(1 + ns.exp(x))


def _phi_cdf(x, ns):
    return (1 + ns.erf(x / ns.sqrt(2))) / 2


def _phi_pdf(x, ns):
    return ns.exp(-x ** 2 / 2) / ns.sqrt(2 * ns.pi)


_GELU_TANH_C = Fraction(44715, 1000000)


def _gelu_tanh_inner(x, ns):
    return ns.sqrt(2 / ns.pi) * (x + ns.num(_GELU_TANH_C) * x ** 3)


def _elu(x, ns, alpha):
    return ns.where(x > 0, x, alpha * ns.expm1(x))


def _d_elu(x, ns, alpha):
    return ns.where(x > 0, 1 + 0 * x, alpha * ns.exp(x))


def _leaky(x, ns, slope):
    return ns.where(x > 0, x, slope * x)


def _d_leaky(x, ns, slope):
    return ns.where(x > 0, 1 + 0 * x, slope + 0 * x)


def _swish(x, ns, beta):
    return x * _sigmoid(beta * x, ns)


def _d_swish(x, ns, beta):
    s = _sigmoid(beta * x, ns)
    return s + beta * x * s * (1 - s)


def _mish(x, ns):
    return x * ns.tanh(_softplus_core(x, ns))


def _d_mish(x, ns):
    t = ns.tanh(_softplus_core(x, ns))
    return t + x * (1 - t ** 2) * _sigmoid(x, ns)


def _hardtanh(x, ns, min_val, max_val):
    return ns.where(x < min_val, min_val + 0 * x, ns.where(x > max_val, max_val + 0 * x, x))


def _d_hardtanh(x, ns, min_val, max_val):
    return ns.where(x < min_val, 0 * x, ns.where(x > max_val, 0 * x, 1 + 0 * x))


def _hardsigmoid(x, ns):
    return ns.where(x < -3, 0 * x, ns.where(x > 3, 1 + 0 * x, x / 6 + ns.num(Fraction(1, 2))))


def _d_hardsigmoid(x, ns):
    return ns.where(x < -3, 0 * x, ns.where(x > 3, 0 * x, ns.num(Fraction(1, 6)) + 0 * x))


def _gelu_tanh(x, ns):
    return x * (1 + ns.tanh(_gelu_tanh_inner(x, ns))) / 2


def _d_gelu_tanh(x, ns):
    t = ns.tanh(_gelu_tanh_inner(x, ns))
    dinner = ns.sqrt(2 / ns.pi) * (1 + 3 * ns.num(_GELU_TANH_C) * x ** 2)
    return (1 + t) / 2 + x * (1 - t ** 2) * dinner / 2


def _maxout(x, ns, k):
    # the map of one unit on ONE of its k pre-activations is the identity; the max over k
    # independent pre-activations is handled by the moments (density of the max) and the kernels.
    return x


def _d_maxout(x, ns, k):
    return 1 + 0 * x


# --------------------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    name: str
    default: Fraction
    doc: str
    check: Callable[[Fraction], str | None] = lambda v: None  # returns an error message or None
    integer: bool = False


def _positive(v):
    return None if v > 0 else "must be > 0"


def _nonnegative(v):
    return None if v >= 0 else "must be >= 0"


RRELU_NOTE = ("rrelu uses its test-time map, the fixed slope (lower + upper)/2 on x < 0; during training the "
              "slope is random per element and the moments differ")
"""Said beside every rrelu gain or check: its moments are those of the test-time map."""

PARAM_RANGE = (Fraction(1, 10 ** 9), Fraction(10 ** 9))   # |value| of a nonzero activation parameter


def _in_range(v):
    # beyond this, exp(x/alpha) and erfc(1/alpha) leave every floating-point range the moments use
    lo, hi = PARAM_RANGE
    return None if v == 0 or lo <= abs(v) <= hi else "must be 0 or between 1e-9 and 1e9 in absolute value"


MAXOUT_K_MAX = 4096   # maxout's k: every weight matrix has k rows per unit, and the moments' quadrature of the
                      # max of k normals stays exact to the digits claimed well past this


def _maxout_k(v):
    if not (v.denominator == 1 and v >= 2):
        return "must be an integer >= 2"
    return None if v <= MAXOUT_K_MAX else f"must be at most {MAXOUT_K_MAX}"


@dataclass(frozen=True)
class Activation:
    """One registry entry.

    ``f(x, ns, **params)`` and ``df`` are written once for every namespace. ``kinks`` gives the points
    (as functions of the params) where f or f' is not smooth, for quadrature. ``closed`` names the
    Gaussian moments ('mean', 'second', 'deriv2') that have a closed form. ``code`` indexes the Numba
    kernels; ``kernel_params`` maps params to the kernels' two float slots.
    """
    name: str
    f: Callable
    df: Callable
    params: tuple[Param, ...] = ()
    doc: str = ""
    code: int = 0
    closed: frozenset = frozenset()
    kinks: Callable[..., tuple] = lambda **p: ()
    kernel_params: Callable[..., tuple] = lambda **p: (0.0, 0.0)
    # "relu": piecewise linear with its one kink at 0 (relu, leaky_relu, prelu, rrelu, abs); the mean-field
    # theory and the simulator report a dead fraction (phi'(h) = 0) for these, which is 0 for abs and leaky
    # slopes != 0, and can be large for relu
    family: str = ""
    arity: Callable[..., int] = lambda **p: 1
    aliases: tuple[str, ...] = ()
    sympy_form: Callable | None = None  # an exact sympy expression when it differs from f's (maxout)

    def bind(self, **params) -> "Bound":
        values = {}
        known = {p.name: p for p in self.params}
        for key in params:
            if key not in known:
                allowed = ", ".join(known) or "none"
                raise ValueError(f"activation {self.name!r} has no parameter {key!r} (parameters: {allowed})")
        for p in self.params:
            v = params.get(p.name, p.default)
            v = to_fraction(v, f"{self.name}.{p.name}")
            err = p.check(v) or _in_range(v)
            if err:
                raise ValueError(f"parameter {p.name}={fmt(v)} of {self.name}: {err}")
            values[p.name] = v
        if self.name == "hardtanh" and not values["min_val"] < values["max_val"]:
            raise ValueError("hardtanh needs min_val < max_val")
        if self.name == "rrelu" and not values["lower"] <= values["upper"]:
            raise ValueError("rrelu needs lower <= upper")
        return Bound(self, values)


MAX_NUMBER_DIGITS = 320    # digits of a numerator or denominator accepted (1e-300 has 301)
_MAX_EXPONENT = MAX_NUMBER_DIGITS   # |exponent| of a decimal, checked before Python expands it
_SCI_BEYOND = 15           # fmt writes a terminating decimal outside 1e-15 .. 1e15 in scientific notation


def fmt(v: Fraction) -> str:
    """An exact, short spelling: 2, 0.01 (terminating decimals), 1e-30 (far from 1) or 1/3.

    >>> fmt(Fraction(1, 100)), fmt(Fraction(1, 3)), fmt(Fraction(10) ** 200)
    ('0.01', '1/3', '1e+200')
    """
    v = Fraction(v)
    d = v.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return f"{v.numerator}/{v.denominator}"
    from decimal import Decimal, localcontext
    with localcontext() as ctx:
        ctx.prec = len(str(abs(v.numerator))) + len(str(v.denominator)) + 5   # exact: the decimal terminates
        dec = Decimal(v.numerator) / Decimal(v.denominator)
        if v != 0 and not Fraction(1, 10 ** _SCI_BEYOND) <= abs(v) < 10 ** _SCI_BEYOND:
            return format(dec.normalize(), "e").replace("E", "e")
        return str(v.numerator) if v.denominator == 1 else format(dec, "f")


def decimal_string(value, digits: int) -> str:
    """``value`` (mpmath, float, int) to ``digits`` significant digits, trailing zeros stripped.

    The one spelling of a computed number across varprop: fixed notation between 1e-30 and 1e30,
    scientific beyond, no trailing ".0" (``decimal_string(mpf(5e-31), 15) == '5e-31'``).

    >>> import mpmath as mp
    >>> decimal_string(mp.mpf(1) / 3, 5), decimal_string(mp.mpf(2), 15), decimal_string(mp.mpf("5e-31"), 15)
    ('0.33333', '2', '5e-31')
    """
    import mpmath as mp
    if value == 0:
        return "0"
    with mp.workdps(digits + 10):  # nstr rounds through the working precision
        s = mp.nstr(mp.mpf(value), digits, strip_zeros=True, min_fixed=-30, max_fixed=30)
    mantissa, e, exponent = s.partition("e")
    if mantissa.endswith(".0"):
        mantissa = mantissa[:-2]
    return mantissa + e + exponent


def _check_size(out: Fraction, what: str, v) -> Fraction:
    if max(abs(out.numerator), out.denominator) >= 10 ** MAX_NUMBER_DIGITS:
        raise ValueError(f"{what}: {v!r} is too large or too finely written (numerator and denominator are "
                         f"limited to {MAX_NUMBER_DIGITS} digits)")
    return out


def _check_written(s: str, what: str, v) -> None:
    """Refuse a decimal whose exponent or length would make Fraction() expand a huge integer."""
    import re
    for m in re.finditer(r"[eE]\s*([+-]?\d+)", s):
        if len(m.group(1).lstrip("+-")) > 4 or abs(int(m.group(1))) > _MAX_EXPONENT:
            raise ValueError(f"{what}: {v!r} has an exponent beyond 10^+-{_MAX_EXPONENT}")
    if len(s) > 2 * MAX_NUMBER_DIGITS:
        raise ValueError(f"{what}: {v!r} is longer than {2 * MAX_NUMBER_DIGITS} characters")


def to_fraction(v, what: str) -> Fraction:
    """A number the user wrote (int, float, Fraction, or a string such as '0.2', '1/5', '1e-3') as a Fraction.

    A float is read as the decimal it prints as; sizes are bounded (``MAX_NUMBER_DIGITS``) so that no
    input makes exact arithmetic hang. Errors are ValueError/TypeError naming ``what``.

    >>> to_fraction("1/5", "p"), to_fraction(0.1, "p")
    (Fraction(1, 5), Fraction(1, 10))
    """
    if isinstance(v, bool):
        raise TypeError(f"{what}: expected a number, got a bool")
    if isinstance(v, Fraction):
        return _check_size(v, what, v)
    if isinstance(v, int):
        if v.bit_length() > 4 * MAX_NUMBER_DIGITS:
            raise ValueError(f"{what}: {v} is too large (at most {MAX_NUMBER_DIGITS} digits)")
        return _check_size(Fraction(v), what, v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{what}: must be finite, got {v}")
        return Fraction(str(v))  # the decimal the user wrote, not the binary float
    if isinstance(v, str):
        s = v.strip()
        _check_written(s, what, v)
        try:
            if "/" in s:
                num, den = s.split("/", 1)
                out = Fraction(num.strip()) / Fraction(den.strip())
            else:
                out = Fraction(s)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{what}: {v!r} is not a number (write e.g. 0.2 or 1/5)") from None
        return _check_size(out, what, v)
    if isinstance(v, (np.floating, np.integer)):
        return to_fraction(v.item(), what)
    raise TypeError(f"{what}: expected a number, got {type(v).__name__}")


@dataclass(frozen=True)
class Bound:
    """An activation with its parameters fixed: the object every part of varprop works with."""
    act: Activation
    params: Mapping[str, Fraction] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.act.name

    def label(self) -> str:
        if not self.params:
            return self.name
        inner = ", ".join(f"{k}={fmt(v)}" for k, v in self.params.items())
        return f"{self.name}({inner})"

    def _p(self, ns):
        return {k: ns.num(v) for k, v in self.params.items()}

    @property
    def arity(self) -> int:
        return int(self.act.arity(**self.params))

    # NumPy ---------------------------------------------------------------------------------------
    def numpy(self, x):
        x = np.asarray(x, dtype=np.result_type(np.asarray(x).dtype, np.float32))
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(self.act.f(x, NUMPY, **self._p(NUMPY)), dtype=x.dtype)

    def numpy_derivative(self, x):
        x = np.asarray(x, dtype=np.result_type(np.asarray(x).dtype, np.float32))
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(self.act.df(x, NUMPY, **self._p(NUMPY)), dtype=x.dtype)

    # mpmath (scalars at the current mp.dps) ------------------------------------------------------
    def mpmath(self, x):
        ns = mpmath_namespace()
        return self.act.f(x, ns, **self._p(ns))

    def mpmath_derivative(self, x):
        ns = mpmath_namespace()
        return self.act.df(x, ns, **self._p(ns))

    # SymPy -----------------------------------------------------------------------------------------
    def sympy(self, x=None):
        import sympy as sp
        x = sp.Symbol("x", real=True) if x is None else x
        ns = sympy_namespace()
        if self.act.sympy_form is not None:
            return self.act.sympy_form(x, ns, **self._p(ns))
        return self.act.f(x, ns, **self._p(ns))

    def sympy_derivative(self, x=None):
        """The derivative written in the registry (tests hold it against ``sympy.diff``)."""
        import sympy as sp
        x = sp.Symbol("x", real=True) if x is None else x
        ns = sympy_namespace()
        return self.act.df(x, ns, **self._p(ns))

    # the rest ----------------------------------------------------------------------------------------
    def kinks(self) -> tuple:
        return tuple(self.act.kinks(**self.params))

    def kernel_params(self) -> tuple[float, float]:
        a, b = self.act.kernel_params(**{k: float(v) for k, v in self.params.items()})
        return float(a), float(b)

    @property
    def code(self) -> int:
        return self.act.code


def _P(name, default, doc, check=lambda v: None, integer=False):
    return Param(name, Fraction(default), doc, check, integer)


def _sympy_maxout(x, ns, k):
    import sympy as sp
    zs = sp.symbols(f"z1:{int(k) + 1}", real=True)
    return sp.Max(*zs)


_ENTRIES = [
    Activation("linear", lambda x, ns: x, lambda x, ns: 1 + 0 * x, doc="identity, y = x", code=0,
               closed=frozenset({"mean", "second", "deriv2"}), aliases=("identity",)),
    Activation("sigmoid", lambda x, ns: _sigmoid(x, ns),
               lambda x, ns: _sigmoid(x, ns) * (1 - _sigmoid(x, ns)),
               doc="logistic 1/(1+e^-x)", code=1, closed=frozenset({"mean"}), aliases=("logistic",)),
    Activation("tanh", lambda x, ns: ns.tanh(x), lambda x, ns: 1 - ns.tanh(x) ** 2, doc="hyperbolic tangent",
               code=2, closed=frozenset({"mean"})),
    Activation("relu", lambda x, ns: ns.where(x > 0, x, 0 * x), lambda x, ns: ns.where(x > 0, 1 + 0 * x, 0 * x),
               doc="max(0, x)", code=3, closed=frozenset({"mean", "second", "deriv2"}),
               kinks=lambda: (0,), family="relu"),
    Activation("leaky_relu", lambda x, ns, negative_slope: _leaky(x, ns, negative_slope),
               lambda x, ns, negative_slope: _d_leaky(x, ns, negative_slope),
               params=(_P("negative_slope", Fraction(1, 100), "slope for x < 0", _nonnegative),),
               doc="x for x > 0, a x otherwise", code=4, closed=frozenset({"mean", "second", "deriv2"}),
               kinks=lambda negative_slope: (0,), kernel_params=lambda negative_slope: (negative_slope, 0.0),
               family="relu"),
    Activation("prelu", lambda x, ns, a: _leaky(x, ns, a), lambda x, ns, a: _d_leaky(x, ns, a),
               params=(_P("a", Fraction(1, 4), "learned slope for x < 0 (its value at initialization)",
                          _nonnegative),),
               doc="leaky ReLU with a learned slope; at initialization the same map", code=4,
               closed=frozenset({"mean", "second", "deriv2"}), kinks=lambda a: (0,),
               kernel_params=lambda a: (a, 0.0), family="relu"),
    Activation("rrelu", lambda x, ns, lower, upper: _leaky(x, ns, (lower + upper) / 2),
               lambda x, ns, lower, upper: _d_leaky(x, ns, (lower + upper) / 2),
               params=(_P("lower", Fraction(1, 8), "lower bound of the random slope", _nonnegative),
                       _P("upper", Fraction(1, 3), "upper bound of the random slope", _nonnegative)),
               doc="randomized leaky ReLU: slope ~ U(lower, upper) in training; the mean slope at test time "
                   "(the map used here)", code=4, closed=frozenset({"mean", "second", "deriv2"}),
               kinks=lambda lower, upper: (0,), kernel_params=lambda lower, upper: ((lower + upper) / 2, 0.0),
               family="relu"),
    Activation("elu", lambda x, ns, alpha: _elu(x, ns, alpha), lambda x, ns, alpha: _d_elu(x, ns, alpha),
               params=(_P("alpha", 1, "saturation value -alpha for x -> -inf", _positive),),
               doc="x for x > 0, alpha (e^x - 1) otherwise", code=5,
               closed=frozenset({"mean", "second", "deriv2"}), kinks=lambda alpha: (0,),
               kernel_params=lambda alpha: (alpha, 0.0)),
    Activation("selu", lambda x, ns: selu_lambda(ns) * _elu(x, ns, selu_alpha(ns)),
               lambda x, ns: selu_lambda(ns) * _d_elu(x, ns, selu_alpha(ns)),
               doc="lambda * elu_alpha(x) with the self-normalizing constants", code=6,
               closed=frozenset({"mean", "second", "deriv2"}), kinks=lambda: (0,),
               kernel_params=lambda: (selu_alpha(MATH), selu_lambda(MATH))),
    Activation("celu", lambda x, ns, alpha: ns.where(x > 0, x, alpha * ns.expm1(x / alpha)),
               lambda x, ns, alpha: ns.where(x > 0, 1 + 0 * x, ns.exp(x / alpha)),
               params=(_P("alpha", 1, "scale; continuously differentiable for every alpha", _positive),),
               doc="max(0, x) + min(0, alpha (e^(x/alpha) - 1))", code=7,
               closed=frozenset({"mean", "second", "deriv2"}), kinks=lambda alpha: (0,),
               kernel_params=lambda alpha: (alpha, 0.0)),
    Activation("gelu", lambda x, ns: x * _phi_cdf(x, ns),
               lambda x, ns: _phi_cdf(x, ns) + x * _phi_pdf(x, ns),
               doc="x Phi(x), the exact (erf) form", code=8, closed=frozenset({"mean", "second"})),
    Activation("gelu_tanh", lambda x, ns: _gelu_tanh(x, ns), lambda x, ns: _d_gelu_tanh(x, ns),
               doc="x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))", code=9),
    Activation("silu", lambda x, ns: _swish(x, ns, 1), lambda x, ns: _d_swish(x, ns, 1),
               doc="x sigmoid(x) (swish with beta = 1)", code=10, kernel_params=lambda: (1.0, 0.0)),
    Activation("swish", lambda x, ns, beta: _swish(x, ns, beta), lambda x, ns, beta: _d_swish(x, ns, beta),
               params=(_P("beta", 1, "x sigmoid(beta x)", _positive),),
               doc="x sigmoid(beta x)", code=10, kernel_params=lambda beta: (beta, 0.0)),
    Activation("softplus", lambda x, ns, beta: _softplus_core(beta * x, ns) / beta,
               lambda x, ns, beta: _sigmoid(beta * x, ns),
               params=(_P("beta", 1, "log(1 + e^(beta x)) / beta", _positive),),
               doc="log(1 + e^(beta x)) / beta", code=11, kernel_params=lambda beta: (beta, 0.0)),
    Activation("softsign", lambda x, ns: x / (1 + ns.abs(x)), lambda x, ns: 1 / (1 + ns.abs(x)) ** 2,
               doc="x / (1 + |x|)", code=12, closed=frozenset({"mean"}), kinks=lambda: (0,)),
    Activation("mish", lambda x, ns: _mish(x, ns), lambda x, ns: _d_mish(x, ns),
               doc="x tanh(softplus(x))", code=13),
    Activation("hardtanh", lambda x, ns, min_val, max_val: _hardtanh(x, ns, min_val, max_val),
               lambda x, ns, min_val, max_val: _d_hardtanh(x, ns, min_val, max_val),
               params=(_P("min_val", -1, "lower clip"), _P("max_val", 1, "upper clip")),
               doc="clip(x, min_val, max_val)", code=14, closed=frozenset({"mean", "second", "deriv2"}),
               kinks=lambda min_val, max_val: (min_val, max_val),
               kernel_params=lambda min_val, max_val: (min_val, max_val)),
    Activation("hardsigmoid", lambda x, ns: _hardsigmoid(x, ns), lambda x, ns: _d_hardsigmoid(x, ns),
               doc="clip(x/6 + 1/2, 0, 1) (PyTorch's definition)", code=15,
               closed=frozenset({"mean", "second", "deriv2"}), kinks=lambda: (-3, 3)),
    Activation("abs", lambda x, ns: ns.abs(x), lambda x, ns: ns.where(x > 0, 1 + 0 * x, -1 + 0 * x),
               doc="|x|", code=16, closed=frozenset({"mean", "second", "deriv2"}), kinks=lambda: (0,),
               family="relu"),
    Activation("maxout", _maxout, _d_maxout,
               params=(_P("k", 2, "number of independent pre-activations per unit", _maxout_k,
                          integer=True),),
               doc="max of k independent pre-activations; the weight matrix has k rows per unit", code=17,
               closed=frozenset({"mean", "second", "deriv2"}), kernel_params=lambda k: (k, 0.0),
               arity=lambda k: int(k), sympy_form=_sympy_maxout),
]

REGISTRY: dict[str, Activation] = {a.name: a for a in _ENTRIES}
_ALIASES: dict[str, str] = {al: a.name for a in _ENTRIES for al in a.aliases}
_ALIASES["swish1"] = "silu"


def names() -> list[str]:
    """The registered names, in registry order."""
    return list(REGISTRY)


def lookup(name: str) -> Activation:
    """The registry entry called ``name`` (case, ``-``/``_`` and aliases forgiven)."""
    from varprop.names import key_of
    return REGISTRY[key_of(name, REGISTRY, "activation", _ALIASES)]


def get(name, **params) -> Bound:
    """The registry entry ``name`` bound to ``params`` (defaults for the rest).

    ``name`` may also be a :class:`Bound` (returned unchanged when no params are given).
    """
    if isinstance(name, Bound):
        if params:
            return name.act.bind(**{**name.params, **params})
        return name
    return lookup(name).bind(**params)


def parse_params(items) -> dict[str, str]:
    """``["alpha=1.5", "beta=2"]`` -> ``{"alpha": "1.5", "beta": "2"}`` (values checked by ``bind``)."""
    out = {}
    for item in items or ():
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"malformed parameter {item!r}: write name=value, e.g. negative_slope=0.2")
        key, value = item.split("=", 1)
        key, value = key.strip(), value.strip()
        if not key.isidentifier() or not value:
            raise ValueError(f"malformed parameter {item!r}: write name=value, e.g. negative_slope=0.2")
        if key in out:
            raise ValueError(f"parameter {key!r} given twice")
        out[key] = value
    return out

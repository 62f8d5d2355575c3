"""Exact Gaussian moments of any registered activation.

For z ~ N(0, 1), q > 0 and an activation phi, three expectations drive every initialization rule:

* ``mean``   E[phi(sqrt(q) z)]
* ``second`` E[phi(sqrt(q) z)^2]          (the forward length map; Poole et al. 2016)
* ``deriv2`` E[phi'(sqrt(q) z)^2]         (the backward gradient factor chi; Schoenholz et al. 2017)

Each is computed in closed form by SymPy where one exists, and otherwise by adaptive tanh-sinh
quadrature (mpmath) split at the activation's kinks, to the requested number of significant digits.
A :class:`Moment` says which route gave it and how many digits are certified.

The closed-form route, in order: (1) maxout, through the density k phi(x) Phi(x)^(k-1) of the max of k
iid normals (and E[d max / d z_1]^2 = 1/k by symmetry); (2) a mean whose activation satisfies
phi(x) + phi(-x) = c has mean c/2 by symmetry; (3) the piecewise route: phi is split into its SymPy
pieces, each piece expanded and integrated against the Gaussian over its interval; (4) a closed form
derived by hand (GELU's second moment, by Stein's identity twice, see ``_GELU_SECOND``), which
``verify_closed_form`` holds against quadrature to 40 digits before it is used. SymPy is imported only
on the closed-form route; the quadrature route needs mpmath alone, so :mod:`varprop.nn.init` can use it.

>>> from varprop.derive.moments import moment
>>> m = moment("relu", "second", q=1, digits=20)
>>> m.method, str(m.value_str())
('closed form', '0.5')
>>> moment("tanh", "second", digits=15).value_str()
'0.394294490397841'
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from fractions import Fraction

from varprop.activations import Bound, decimal_string, get, to_fraction

__all__ = ["KINDS", "Moment", "MomentCache", "moment", "moments", "closed_form", "quadrature", "check_q",
           "check_digits", "MAX_DIGITS"]

KINDS = ("mean", "second", "deriv2")
MAX_DIGITS = 60
_KIND_TEXT = {
    "mean": "E[phi(sqrt(q) z)]",
    "second": "E[phi(sqrt(q) z)^2]",
    "deriv2": "E[phi'(sqrt(q) z)^2]",
}


def check_q(q) -> Fraction:
    """q as an exact positive Fraction, or a ValueError naming the problem."""
    qf = to_fraction(q, "q")
    if qf <= 0:
        raise ValueError(f"q must be > 0 (the pre-activation second moment), got {q}")
    return qf


def check_digits(digits) -> int:
    if isinstance(digits, bool) or not isinstance(digits, int):
        raise TypeError(f"digits must be an integer, got {type(digits).__name__}")
    if not 1 <= digits <= MAX_DIGITS:
        raise ValueError(f"digits must be between 1 and {MAX_DIGITS}, got {digits}")
    return digits


@dataclass(frozen=True)
class Moment:
    """One Gaussian moment: its value (an mpmath number), how it was obtained, and its certified digits.

    ``closed_form`` is the SymPy expression in the positive symbol ``q`` when the moment closes
    (None otherwise); ``digits`` is the number of significant digits certified (for a value that is 0 to
    the working precision, ``digits`` decimals of absolute accuracy).
    """
    activation: str
    kind: str
    q: Fraction
    value: object           # mpmath.mpf
    digits: int
    method: str             # "closed form" | "quadrature"
    closed_form: object = None
    note: str = ""

    def __float__(self) -> float:
        return float(self.value)

    def value_str(self, digits: int | None = None) -> str:
        """The value as a decimal string with ``digits`` significant digits (default: certified)."""
        return decimal_string(self.value, self.digits if digits is None else digits)

    def latex(self) -> str | None:
        if self.closed_form is None:
            return None
        import sympy as sp
        return sp.latex(self.closed_form)

    @property
    def description(self) -> str:
        return _KIND_TEXT[self.kind]


# --------------------------------------------------------------------------------------------------
# closed forms (SymPy, imported lazily)
# --------------------------------------------------------------------------------------------------

def _symbols():
    import sympy as sp
    return sp.Symbol("x", real=True), sp.Symbol("z", real=True), sp.Symbol("q", positive=True)


def _gaussian_pdf(z):
    import sympy as sp
    return sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)


def _pieces(h, x):
    """(expression, Interval) pairs of a function of x, the Piecewise semantics (first true wins) kept."""
    import sympy as sp
    h = sp.piecewise_fold(h)
    if not isinstance(h, sp.Piecewise):
        return [(h, sp.Interval(-sp.oo, sp.oo))]
    out, covered = [], sp.EmptySet
    for expr, cond in h.args:
        s = sp.Interval(-sp.oo, sp.oo) if cond is sp.true else cond.as_set()
        s = sp.Complement(s, covered).simplify() if covered is not sp.EmptySet else s
        covered = sp.Union(covered, s)
        if s is sp.EmptySet:
            continue
        for iv in (s.args if isinstance(s, sp.Union) else (s,)):
            if not isinstance(iv, sp.Interval):
                raise NotImplementedError(f"piece on {iv} is not an interval")
            out.append((expr, iv))
    return out


def _integrate_gaussian(h, x):
    """E[h(sqrt(q) z)], z ~ N(0, 1), for h a (piecewise) function of x: term by term over its pieces."""
    import sympy as sp
    _, z, q = _symbols()
    pdf = _gaussian_pdf(z)
    total = sp.Integer(0)
    for expr, iv in _pieces(h, x):
        g = sp.expand(expr.subs(x, sp.sqrt(q) * z))
        lo, hi = iv.inf / sp.sqrt(q), iv.sup / sp.sqrt(q)
        for term in sp.Add.make_args(g):
            c, dep = term.as_independent(z)
            r = sp.integrate(dep * pdf, (z, lo, hi))
            if r.has(sp.Integral):
                return None
            total += c * r
    return sp.simplify(total)


def _gelu_second():
    """E[(x Phi(x))^2], x ~ N(0, q), derived by hand and checked by ``verify_closed_form``.

    With s = sqrt(q) and f(z) = Phi(s z)^2: E[z^2 f] = E[f] + E[f''] (Stein's identity twice);
    E[Phi(s z)^2] = 1/4 + asin(q/(1+q)) / (2 pi) (an orthant probability with correlation q/(1+q));
    E[f''] = q / (pi (1+q) sqrt(1+2q)). Hence q (1/4 + asin(q/(1+q))/(2 pi) + q/(pi (1+q) sqrt(1+2q))).
    """
    import sympy as sp
    q = _symbols()[2]
    return q * (sp.Rational(1, 4) + sp.asin(q / (1 + q)) / (2 * sp.pi)
                + q / (sp.pi * (1 + q) * sp.sqrt(1 + 2 * q)))


_HAND_DERIVED = {("gelu", "second"): _gelu_second}


def _maxout_closed(k: int, kind: str):
    import sympy as sp
    x, _, q = _symbols()
    if kind == "deriv2":
        return sp.Rational(1, k)      # d max / d z_1 is 1 exactly when z_1 is the max: probability 1/k
    if k != 2:
        return None
    cdf = (1 + sp.erf(x / sp.sqrt(2))) / 2
    density = k * _gaussian_pdf(x) * cdf ** (k - 1)
    power = 1 if kind == "mean" else 2
    r = sp.integrate(sp.expand(x ** power * density), (x, -sp.oo, sp.oo))
    if r.has(sp.Integral):
        return None
    return sp.simplify(r * sp.sqrt(q) ** power)


def _key(bound: Bound):
    return bound.name, tuple(sorted(bound.params.items()))


@functools.lru_cache(maxsize=None)
def _closed_form_cached(key, kind):
    name, params = key
    bound = get(name, **dict(params))
    act = bound.act
    if kind not in act.closed:
        return None
    if name == "maxout":
        return _maxout_closed(int(bound.params["k"]), kind)
    if (name, kind) in _HAND_DERIVED:
        return _HAND_DERIVED[(name, kind)]()
    import sympy as sp
    x = _symbols()[0]
    f = bound.sympy(x)
    if kind == "mean":
        c = sp.simplify(f + f.subs(x, -x))
        if not c.free_symbols:
            return c / 2
        h = f
    elif kind == "second":
        h = f ** 2
    else:
        h = bound.sympy_derivative(x) ** 2
    try:
        return _integrate_gaussian(h, x)
    except NotImplementedError:
        return None


def closed_form(act, kind: str, **params):
    """The SymPy closed form of a moment as an expression in the positive symbol ``q``, or None."""
    _check_kind(kind)
    return _closed_form_cached(_key(get(act, **params)), kind)


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError(f"unknown moment {kind!r}; known: {', '.join(KINDS)}")


# --------------------------------------------------------------------------------------------------
# quadrature (mpmath only)
# --------------------------------------------------------------------------------------------------

def quadrature(act, kind: str, q=1, digits: int = 15, **params):
    """(value, certified significant digits) of a moment by tanh-sinh quadrature split at the kinks.

    mp.quad stops on an absolute error target, so the integrand is divided by a scale that makes it O(1):
    phi(s t)/s for s = sqrt(q) < 1 (the lecture's small-signal regime, where phi(s t) ~ s t), then, if the
    first pass still lands far from 1, by that first estimate. For s > 1 the activation's own scale,
    |x| <~ 8, sits at |t| <~ 8/s, so those points split the interval too. Certified digits are relative.
    """
    import mpmath as mp
    _check_kind(kind)
    bound = get(act, **params)
    qf = check_q(q)
    check_digits(digits)
    with mp.workdps(digits + 12):
        s = mp.sqrt(mp.mpf(qf.numerator) / qf.denominator)
        norm = 1 / mp.sqrt(2 * mp.pi)
        power = 1 if kind == "mean" else 2
        if bound.name == "maxout":
            k = int(bound.params["k"])
            if kind == "deriv2":
                return mp.mpf(1) / k, digits

            # positively homogeneous: E[max(s z)^p] = s^p E[max(z)^p], integrated at s = 1
            def base(t):
                return t ** power * k * norm * mp.exp(-t * t / 2) * mp.ncdf(t) ** (k - 1)
            value, err = _quad_relative(base, [-mp.inf, 0, mp.inf], mp.mpf(1))
            return +(value * s ** power), _certified_digits(value, err, digits)
        fn = bound.mpmath_derivative if kind == "deriv2" else bound.mpmath
        scale = s ** power if kind != "deriv2" and s < 1 else mp.mpf(1)

        def integrand(t):
            return fn(s * t) ** power * norm * mp.exp(-t * t / 2)
        cuts = {mp.mpf(0)} | {mp.mpf(c.numerator) / c.denominator / s for c in map(Fraction, bound.kinks())}
        if s > 1:
            cuts |= {sign * c / s for c in (1, 8) for sign in (1, -1)}
        pts = [-mp.inf, *sorted(cuts), mp.inf]
        value, err = _quad_relative(integrand, pts, scale)
        return +value, _certified_digits(value, err, digits)


def _quad_relative(f, pts, scale):
    """(integral of f, error) with f divided by ``scale`` (and, if needed, by a first estimate) inside mp.quad."""
    import mpmath as mp
    value, err = mp.quad(lambda t: f(t) / scale, pts, error=True, maxdegree=12)
    # the first estimate is trusted for its magnitude only when it has a couple of digits
    if value != 0 and abs(value) > 100 * err and not mp.mpf(2) ** -20 < abs(value) < mp.mpf(2) ** 20:
        rescale = scale * mp.ldexp(1, int(mp.floor(mp.log(abs(value), 2))))
        value, err = mp.quad(lambda t: f(t) / rescale, pts, error=True, maxdegree=12)
        return value * rescale, err * rescale
    return value * scale, err * scale


def _certified_digits(value, err, digits):
    import mpmath as mp
    if err == 0:
        return digits
    scale = abs(value) if value != 0 else mp.mpf(1)
    rel = err / scale
    if rel == 0:
        return digits
    d = int(mp.floor(-mp.log10(rel))) - 1
    return max(0, min(digits, d))


# --------------------------------------------------------------------------------------------------
# the public entry point
# --------------------------------------------------------------------------------------------------

def moment(act, kind: str, q=1, digits: int = 15, closed: bool = True, cache: bool = False,
           **params) -> Moment:
    """The Gaussian moment ``kind`` of activation ``act`` at ``q`` to ``digits`` significant digits.

    ``closed=False`` skips SymPy and uses quadrature (what the light initializer path does).
    ``cache=True`` reads and writes the value through the on-disk cache (see :class:`MomentCache`); a
    moment read from it carries its method but not its SymPy expression (``closed_form`` is None, and
    :func:`closed_form` gives the expression when it is wanted).
    """
    _check_kind(kind)
    bound = get(act, **params)
    qf = check_q(q)
    check_digits(digits)
    if cache:
        store = MomentCache.default()
        key = store.key(bound, kind, qf, digits, closed)
        hit = store.get(key, bound.label(), kind, qf, digits)
        if hit is not None:
            return hit
        m = moment(bound, kind, qf, digits, closed)
        store.put(key, m)
        return m
    expr = _closed_form_cached(_key(bound), kind) if closed else None
    if expr is not None:
        v = _evaluate_closed(expr, qf, digits)
        if v is not None:
            note = ""
            if (bound.name, kind) in _HAND_DERIVED:
                note = "closed form derived by hand (Stein's identity) and checked against quadrature"
            return Moment(bound.label(), kind, qf, v, digits, "closed form", expr, note)
    value, certified = quadrature(bound, kind, qf, digits)
    note = "" if certified >= digits else f"quadrature certified only {certified} digits"
    return Moment(bound.label(), kind, qf, value, certified, "quadrature", None, note)


def _evaluate_closed(expr, qf: Fraction, digits: int):
    """The closed form at q as an mpf to ``digits`` significant digits, or None where evaluation is unreliable.

    SymPy's evalf is asked for the digits twice, at two working precisions; a value that is not finite, not
    real, or moves between them (cancellation, as in exp(q/2) erfc(sqrt(q/2)) at q = 1e300) is refused so
    that the caller falls back to quadrature. No value is rounded to 0: a tiny moment (q/2 at q = 1e-30) is
    as exact as any other.
    """
    import mpmath as mp
    import sympy as sp
    qs = _symbols()[2]
    try:
        at_q = expr.subs(qs, sp.Rational(qf.numerator, qf.denominator))
        if at_q.is_zero:
            return mp.mpf(0)
        lo = sp.N(at_q, digits + 8)
        hi = sp.N(at_q, 2 * digits + 20)
    except (ArithmeticError, ValueError):   # mpmath overflows on erfc of a huge argument
        return None
    if not (lo.is_real and hi.is_real and lo.is_finite and hi.is_finite and lo.is_Number and hi.is_Number):
        return None
    with mp.workdps(2 * digits + 20):
        a, b = mp.mpf(str(lo)), mp.mpf(str(hi))
        if not (mp.isfinite(a) and mp.isfinite(b)):
            return None
        if b == 0:
            return None if a != 0 else mp.mpf(0)
        if abs(a - b) > abs(b) * mp.mpf(10) ** (-(digits + 2)):
            return None
    with mp.workdps(digits + 8):
        return +b


class MomentCache:
    """Computed moments kept on disk between runs, so a second ``varprop gain all`` needs no SymPy.

    One JSON file (no pickle) per fingerprint of the code and libraries that compute the values (this
    module, the activation registry, SymPy's and mpmath's versions), so a change to any of them starts a
    fresh file. Values are stored exactly, as the integers (mantissa, binary exponent) of the mpmath number,
    so a cached moment prints the same digits as a computed one. The folder is ``$VARPROP_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/varprop``, else ``~/.cache/varprop``; a folder that cannot be written only means
    nothing is kept.
    """

    _instances: dict = {}

    def __init__(self, folder: str):
        self.folder = folder
        self.path = os.path.join(folder, f"moments-{_fingerprint()}.json")
        self._data = None

    @classmethod
    def default(cls) -> "MomentCache":
        folder = os.environ.get("VARPROP_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "varprop")
        if folder not in cls._instances:
            cls._instances[folder] = cls(folder)
        return cls._instances[folder]

    @staticmethod
    def key(bound: Bound, kind: str, q: Fraction, digits: int, closed: bool) -> str:
        params = ",".join(f"{k}={to_fraction(v, k)}" for k, v in sorted(bound.params.items()))
        return f"{bound.name}({params})|{kind}|q={q}|digits={digits}|closed={int(closed)}"

    def _load(self) -> dict:
        if self._data is None:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    data = json.load(fh)
                self._data = data if isinstance(data, dict) else {}
            except (OSError, ValueError):
                self._data = {}
        return self._data

    def get(self, key: str, label: str, kind: str, q: Fraction, digits: int) -> Moment | None:
        import mpmath as mp
        entry = self._load().get(key)
        try:
            man, exp = (int(v) for v in entry["value"])
            with mp.workprec(max(man.bit_length(), 53)):
                value = mp.mpf((man, exp))
            return Moment(label, kind, q, value, int(entry["digits"]), str(entry["method"]), None,
                          str(entry.get("note", "")))
        except (TypeError, KeyError, ValueError):
            return None

    def put(self, key: str, m: Moment) -> None:
        import mpmath as mp
        from varprop.io import atomic_write_text
        data = self._load()
        value = m.value
        if not isinstance(value, mp.mpf):
            with mp.workdps(m.digits + 20):
                value = mp.mpf(value)
        sign, man, exp, _ = value._mpf_    # read as it is: mp.mpf(value) would round it to 53 bits
        # the binary value exactly, as value = man * 2**exp: read back it prints the same digits
        data[key] = {"value": [-man if sign else man, exp], "digits": m.digits, "method": m.method,
                     "note": m.note}
        try:
            atomic_write_text(self.path, json.dumps(data, sort_keys=True, indent=0))
        except OSError:
            pass


@functools.lru_cache(maxsize=1)
def _fingerprint() -> str:
    import importlib.metadata
    from varprop import activations
    h = hashlib.sha256()
    for path in (__file__, activations.__file__):
        with open(path, "rb") as fh:
            h.update(fh.read())
    for dist in ("sympy", "mpmath"):
        try:
            h.update(importlib.metadata.version(dist).encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(b"-")
    return h.hexdigest()[:16]


def moments(act, q=1, digits: int = 15, closed: bool = True, **params) -> dict[str, Moment]:
    """All three moments, keyed by kind."""
    return {k: moment(act, k, q, digits, closed, **params) for k in KINDS}


def verify_closed_form(act, kind: str, qs=(Fraction(1, 4), 1, 3), digits: int = 40, **params) -> float:
    """The largest relative gap between a closed form and quadrature over ``qs`` (a check, not a proof)."""
    import mpmath as mp
    worst = 0.0
    for q in qs:
        a = moment(act, kind, q, digits, True, **params)
        b = moment(act, kind, q, digits, False, **params)
        # relative where the value is non-zero; a closed form of exactly 0 is held to absolute accuracy
        gap = abs(a.value - b.value) / (abs(a.value) if a.value != 0 else mp.mpf(1))
        worst = max(worst, float(gap))
    return worst

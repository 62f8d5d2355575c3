"""Audit any initialization: does a weight distribution preserve the signal forward, backward, both?

For a layer h = W x with iid zero-mean weights of variance Var(w), inputs x = phi(h_prev) with
h_prev ~ N(0, q), and an upstream gradient of unit variance (LeCun et al. 1998; Glorot & Bengio 2010;
He et al. 2015), the two ratios that must equal 1 are

    forward   r_f = fan_in  Var(w) E[phi(sqrt(q) z)^2] / q     (pre-activation second moment kept)
    backward  r_b = fan_out Var(w) E[phi'(sqrt(q) z)^2]        (gradient variance kept)

with z ~ N(0, 1). Both are simplified SymPy expressions in the positive symbols fan_in and fan_out;
a direction is *preserved* when its ratio is 1 for every fan_in and fan_out. The verdict is one of

* ``both``, ``forward`` or ``backward``: the directions preserved for all fans;
* ``fan_in = fan_out``: neither holds for all fans, but both hold on the diagonal (Glorot's compromise
  2/(fan_in + fan_out) with a linear or, at q = 0, tanh unit);
* ``neither``, with a concrete counterexample (fans and ratios);
* ``symmetry``: the weights are constant (zero variance), so every unit of a layer computes the same
  output and receives the same gradient: units never differ, whatever the ratios.

SymPy's work is bounded: when the variance is a rational function of the fans of degree above
:data:`~varprop.expr.MAX_SYMBOLIC_DEGREE` (numerator plus denominator,
:meth:`~varprop.expr.Distribution.symbolic_degree`), simplifying it could take minutes, so no symbolic
proof is attempted. The verdict is then decided numerically: a direction counts as preserved when its
float ratio is 1 to within ``NUMERIC_TOLERANCE`` at every fan pair of :data:`NUMERIC_FANS`, and
"fan_in = fan_out" when that holds at the square pairs only; a note says so, and ``symbolic`` is False.

The moments come from :mod:`varprop.derive.moments` (closed forms where they exist, otherwise the certified
quadrature value; a numeric ratio counts as 1 when it is 1 to the certified precision). ``q = 0`` is
the small-signal limit q -> 0+ (phi linearized at 0, the regime of Glorot's derivation): with the
one-sided slopes d+ = phi'(0+) and d- = phi'(0-),

    E[phi'(sqrt(q) z)^2]     -> (d+^2 + d-^2) / 2
    E[phi(sqrt(q) z)^2] / q  -> (d+^2 + d-^2) / 2                        when phi(0) = 0,
    Var[phi(sqrt(q) z)] / q  -> (d+^2 + d-^2) / 2 - (d+ - d-)^2 / (2 pi)  when phi(0) != 0

(z^2 puts half its mass on each side of 0; a nonzero phi(0) is a constant that linearization leaves out,
so its fluctuation is what propagates). Maxout is positively homogeneous: its q = 1 moments hold for all q.

>>> r = check("normal(0, sqrt(2/fan_in))", "relu")
>>> r.verdict, str(r.forward_ratio), str(r.backward_ratio), r.condition
('forward', '1', 'fan_out/fan_in', 'fan_in = fan_out')
>>> check("uniform(-sqrt(6/(fan_in+fan_out)), sqrt(6/(fan_in+fan_out)))", "tanh", q=0).verdict
'fan_in = fan_out'
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple

from varprop.activations import RRELU_NOTE, Bound, decimal_string, fmt, get, to_fraction
from varprop.expr import MAX_SYMBOLIC_DEGREE, SAMPLE_FANS, Distribution, _tame, parse_distribution, simplify, symbols

from .moments import _key, check_digits, check_q, moment

__all__ = ["check", "CheckResult", "Direction", "SmallSignal", "VERDICTS", "small_signal_moments",
           "COUNTEREXAMPLE_FANS", "NUMERIC_FANS", "NUMERIC_TOLERANCE"]

VERDICTS = {
    "both": "preserved forward and backward",
    "forward": "preserved forward only",
    "backward": "preserved backward only",
    "fan_in = fan_out": "preserved (forward and backward) only when fan_in = fan_out",
    "neither": "preserved in neither direction",
    "symmetry": "constant weights: every unit of a layer computes the same output and receives the same "
                "gradient, so units never differ (symmetry is never broken)",
}

# fans tried, in order, for a counterexample: unequal first, so a diagonal-only rule fails visibly
COUNTEREXAMPLE_FANS = ((256, 64), (64, 256), (1000, 10), (10, 1000), (300, 700), (3, 5), (100, 100), (1, 1))
# fans of the numeric decision (no symbolic proof): unequal pairs and square ones, small and large
NUMERIC_FANS = tuple(dict.fromkeys(COUNTEREXAMPLE_FANS + SAMPLE_FANS + ((7, 7), (512, 512), (65536, 65536))))
NUMERIC_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Direction:
    """One direction's ratio and what it means.

    ``preserved`` is True only when the ratio is 1 for every fan_in and fan_out; ``precision`` says how
    that is known ("exact": proved by SymPy; "N digits": the numeric ratio is 1 to the certified N
    digits; None when not preserved); ``condition`` is the relation between the fans under which the ratio
    is 1 when it is not 1 everywhere (e.g. "fan_in = fan_out"), or None.
    """
    name: str
    ratio: object                # SymPy expression in fan_in, fan_out
    moment: object               # the activation factor (SymPy number)
    preserved: bool
    precision: str | None
    condition: str | None


@dataclass(frozen=True)
class CheckResult:
    """The audit of one initialization for one activation at one q (see the module docstring)."""
    init: str
    distribution: Distribution
    activation: Bound
    q: Fraction
    digits: int
    variance: object             # SymPy expression in fan_in, fan_out
    mean: object
    forward: Direction
    backward: Direction
    verdict: str
    condition: str | None
    counterexample: dict | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    mean_factor: object = 0      # E[phi]^2/q, the factor of a nonzero weight mean's term (0 when E[w] = 0)
    symbolic: bool = True        # False: too complex to prove; the verdict is the numeric one at NUMERIC_FANS

    @property
    def forward_ratio(self):
        return self.forward.ratio

    @property
    def backward_ratio(self):
        return self.backward.ratio

    @property
    def verdict_text(self) -> str:
        return VERDICTS[self.verdict]

    def ratios_at(self, fan_in, fan_out) -> tuple[float, float]:
        """(forward, backward) ratios at these fans as floats, from the distribution's float variance."""
        return _float_ratios(self.distribution, self.forward.moment, self.backward.moment, fan_in, fan_out,
                             self.mean_factor)

    def to_dict(self) -> dict:
        """The ``--json`` form: every expression as a string, the verdict and its evidence."""
        return {
            "init": self.init,
            "distribution": self.distribution.expression(),
            "activation": self.activation.label(),
            "q": fmt(self.q),
            "variance": _str(self.variance),
            "mean": _str(self.mean),
            "forward_ratio": _str(self.forward.ratio),
            "backward_ratio": _str(self.backward.ratio),
            "forward_preserved": self.forward.preserved,
            "backward_preserved": self.backward.preserved,
            "forward_precision": self.forward.precision,
            "backward_precision": self.backward.precision,
            "forward_condition": self.forward.condition,
            "backward_condition": self.backward.condition,
            "verdict": self.verdict,
            "verdict_text": self.verdict_text,
            "condition": self.condition,
            "counterexample": self.counterexample,
            "notes": list(self.notes),
            "symbolic": self.symbolic,
        }

    def _mean_term(self) -> str:
        return " + fan_in (fan_in-1) E[w]^2 E[phi]^2/q" if self.mean != 0 else ""

    def lines(self) -> list[str]:
        """The human-readable report, one fact per line."""
        qtext = "0 (small-signal limit q -> 0+)" if self.q == 0 else fmt(self.q)
        out = [
            f"init             {self.init}",
            f"activation       {self.activation.label()}",
            f"q                {qtext}",
            f"Var(w)           {_str(self.variance)}",
            f"forward ratio    fan_in E[w^2] E[phi^2]/q{self._mean_term()} = {_str(self.forward.ratio)}" + _tail(self.forward),
            f"backward ratio   fan_out E[w^2] E[phi'^2] = {_str(self.backward.ratio)}" + _tail(self.backward),
            f"verdict          {self.verdict_text}",
        ]
        if self.counterexample:
            c = self.counterexample
            out.append(f"counterexample   fan_in={c['fan_in']}, fan_out={c['fan_out']}: forward ratio "
                       f"{c['forward_ratio']}, backward ratio {c['backward_ratio']}")
        out += [f"note             {n}" for n in self.notes]
        return out


def _float_ratios(dist: Distribution, forward_factor, backward_factor, fan_in, fan_out,
                  mean_factor=0) -> tuple[float, float]:
    mean = dist.mean(fan_in, fan_out)
    second = dist.variance(fan_in, fan_out) + mean * mean
    forward = float(fan_in) * second * float(forward_factor)
    if mean != 0:
        forward += float(fan_in) * (float(fan_in) - 1) * mean * mean * float(mean_factor)
    return forward, float(fan_out) * second * float(backward_factor)


def _tail(d: Direction) -> str:
    if d.preserved:
        return f"  (preserved, {d.precision})"
    return f"  (= 1 when {d.condition})" if d.condition else ""


def _str(expr) -> str:
    """An expression as text: exact when short, otherwise its numbers to 15 digits (integers stay integers)."""
    import sympy as sp
    if isinstance(expr, sp.Float):
        return _nstr(expr)
    if expr is sp.oo:
        return "infinity"
    if not isinstance(expr, sp.Basic):
        return str(expr)
    s = str(expr)
    big = any(max(abs(r.p), r.q) > 10 ** _SHORT_DIGITS for r in expr.atoms(sp.Rational))
    if len(s) <= _SHORT and not big and not expr.has(sp.Float):
        return s
    num = sp.N(expr, 15)
    num = num.xreplace({f: sp.Integer(int(f)) for f in num.atoms(sp.Float) if f == int(f)})
    return sp.sstr(num, full_prec=False)


_SHORT = 80          # characters of an exact form worth showing
_SHORT_DIGITS = 12   # digits of a rational worth showing exactly


def _nstr(x, digits: int = 15) -> str:
    import sympy as sp
    v = sp.N(x, digits + 5)
    if v.is_infinite:
        return "inf" if v.is_extended_positive else "-inf" if v.is_extended_negative else "nan"
    return decimal_string(str(v), digits)


# --------------------------------------------------------------------------------------------------
# the activation factors
# --------------------------------------------------------------------------------------------------

def _parse_q(q) -> Fraction:
    """q as an exact Fraction: 0 (the small-signal limit) or a valid positive q."""
    qf = to_fraction(q, "q")
    if qf < 0:
        raise ValueError(f"q must be >= 0 (the pre-activation second moment; 0 is the small-signal limit), "
                         f"got {q}")
    return qf if qf == 0 else check_q(qf)


class SmallSignal(NamedTuple):
    """The activation factors as q -> 0+; ``digits`` is None when they are exact."""
    forward: object              # lim E[phi^2]/q, or lim Var[phi]/q when phi(0) != 0 (SymPy)
    backward: object             # lim E[phi'^2] (SymPy)
    centred: bool                # phi(0) == 0
    digits: int | None


def small_signal_moments(act, **params) -> SmallSignal:
    """The q -> 0+ limits of the forward and backward factors of ``act`` (see the module docstring).

    >>> small_signal_moments("relu")
    SmallSignal(forward=1/2, backward=1/2, centred=True, digits=None)
    """
    b = get(act, **params)
    return _small_signal(_key(b))


@functools.lru_cache(maxsize=None)
def _small_signal(key) -> SmallSignal:
    import sympy as sp
    name, params = key
    b = get(name, **dict(params))
    if b.name == "maxout":
        # positively homogeneous: E[max^2]/q and E[max'^2] do not depend on q
        (m2, d_m2), (d2, d_d2) = (_moment_factor(key, kind, Fraction(1), 30) for kind in ("second", "deriv2"))
        digits = None if d_m2 is None and d_d2 is None else min(d for d in (d_m2, d_d2) if d is not None)
        return SmallSignal(m2, d2, True, digits)
    d_plus, d_minus, phi0 = _slopes(key)
    deriv2 = sp.simplify((d_plus ** 2 + d_minus ** 2) / 2)
    if phi0 == 0:
        return SmallSignal(deriv2, deriv2, True, None)
    return SmallSignal(sp.simplify(deriv2 - (d_plus - d_minus) ** 2 / (2 * sp.pi)), deriv2, False, None)


@functools.lru_cache(maxsize=None)
def _slopes(key):
    """(phi'(0+), phi'(0-), phi(0)) as SymPy numbers."""
    import sympy as sp
    b = get(key[0], **dict(key[1]))
    x = sp.Symbol("x", real=True)
    eps = sp.Symbol("eps", positive=True)
    dphi = b.sympy_derivative(x)
    # substitute +-eps first so that a Piecewise picks its one-sided branch (limit() of a Piecewise at a
    # breakpoint is not reliable), then let eps -> 0+
    d_plus = sp.limit(sp.piecewise_fold(dphi.subs(x, eps)), eps, 0, "+")
    d_minus = sp.limit(sp.piecewise_fold(dphi.subs(x, -eps)), eps, 0, "+")
    return d_plus, d_minus, sp.simplify(b.sympy(x).subs(x, 0))


def _small_signal_mean2(key) -> tuple:
    """(lim E[phi]^2/q as q -> 0+, certified digits or None): (d+ - d-)^2/(2 pi) for a centred phi."""
    import sympy as sp
    if key[0] == "maxout":
        return _moment_factor(key, "mean", Fraction(1), 30)
    d_plus, d_minus, phi0 = _slopes(key)
    if phi0 != 0:
        return sp.oo, None
    return sp.simplify((d_plus - d_minus) ** 2 / (2 * sp.pi)), None


@functools.lru_cache(maxsize=None)
def _moment_factor(key, kind: str, q: Fraction, digits: int) -> tuple:
    """(factor, certified digits or None when exact) at q > 0, exact when closed: E[phi^2]/q ("second"),
    E[phi'^2] ("deriv2") or E[phi]^2/q ("mean")."""
    import sympy as sp
    m = moment(get(key[0], **dict(key[1])), kind, q, digits)
    qv = sp.Rational(q.numerator, q.denominator)
    if m.closed_form is not None:
        value = m.closed_form.subs(sp.Symbol("q", positive=True), qv)
    else:
        value = sp.Float(m.value_str(m.digits), max(m.digits, 1)) if m.digits >= 1 else sp.Float(m.value_str(15), 15)
    if kind == "second":
        value = value / qv
    elif kind == "mean":
        value = value ** 2 / qv
    if m.closed_form is not None:
        return sp.simplify(value), None
    return value, m.digits


# --------------------------------------------------------------------------------------------------
# deciding a ratio
# --------------------------------------------------------------------------------------------------

def _is_one(expr, certified: int | None, digits: int) -> str | None:
    """'exact' when SymPy proves expr == 1, 'N digits' when it is 1 to N certified digits, else None.

    N is the moments' certified digits, or ``digits`` when they are exact; a ratio built from an exact
    moment and a decimal the user typed (a gain to 17 digits, say) is 1 to N digits but not exactly.
    """
    import sympy as sp
    if expr.free_symbols:
        return None
    if not expr.is_finite:
        return None
    if certified is None and not expr.has(sp.Float):
        if simplify(expr - 1) == 0:
            return "exact"
        if expr.is_Rational:
            return None         # exact moments and a rational ratio: decided exactly, no rounding
    n = digits if certified is None else min(certified, digits)
    if n < 2:
        return None
    # 1 to n significant digits: within half a unit of the n-th digit
    gap = abs(sp.N(expr - 1, n + 10))
    return f"{n} digits" if gap <= sp.Rational(1, 2) * sp.Float(10) ** (1 - n) else None


def _decide(name, ratio, factor, certified, digits) -> Direction:
    import sympy as sp
    fi, fo = symbols()
    if not ratio.free_symbols:
        precision = _is_one(ratio, certified, digits)
        return Direction(name, ratio, factor, precision is not None, precision, None)
    condition = None
    if _is_one(simplify(ratio.subs(fo, fi)), certified, digits) is not None \
            and _is_one(simplify(ratio.subs(fo, 2 * fi)), certified, digits) is None:
        condition = "fan_in = fan_out"
    elif certified is None and not ratio.has(sp.Float):
        condition = _solve_condition(ratio)
    return Direction(name, ratio, factor, False, None, condition)


def _solve_condition(ratio) -> str | None:
    """The curve ratio = 1 as 'fan_out = ...' (or 'fan_in = ...'), for a rational ratio; else None."""
    import sympy as sp
    fi, fo = symbols()
    if not ratio.is_rational_function(fi, fo) or not _tame(ratio):
        return None
    num = sp.numer(sp.together(ratio - 1))
    for s in (fo, fi):
        if not num.has(s):
            continue
        if sp.degree(num, s) > 2:
            return None
        sols = [r for r in sp.solve(num, s) if r.is_positive is not False and not r.has(sp.I)]
        if sols:
            return " or ".join(f"{s} = {_str(simplify(r))}" for r in sols)
    return None


def _counterexample(result_ratios, failing) -> dict | None:
    """The first fans in COUNTEREXAMPLE_FANS at which every failing direction's ratio is visibly not 1."""
    if not failing:
        return None
    best = None
    for fan_in, fan_out in COUNTEREXAMPLE_FANS:
        try:
            r = result_ratios(fan_in, fan_out)
        except ValueError:
            continue
        off = [abs(r[d] - 1) > 1e-9 for d in failing]
        entry = {"fan_in": fan_in, "fan_out": fan_out, "forward_ratio": _nstr(r["forward"]),
                 "backward_ratio": _nstr(r["backward"])}
        if all(off):
            return entry
        if any(off) and best is None:
            best = entry
    return best


# --------------------------------------------------------------------------------------------------
# the audit
# --------------------------------------------------------------------------------------------------

def check(init, activation, q=1, params=None, digits: int = 15) -> CheckResult:
    """Audit the initialization ``init`` (text or :class:`~varprop.expr.Distribution`) for ``activation``.

    ``q`` is the pre-activation second moment (0: the small-signal limit); ``params`` the activation's
    parameters (dict of str or numbers); ``digits`` the precision of numeric moments.
    """
    import sympy as sp
    dist = init if isinstance(init, Distribution) else parse_distribution(init)
    b = get(activation, **(params or {}))
    qf = _parse_q(q)
    check_digits(digits)
    fi, fo = symbols()
    symbolic = dist.symbolic_degree() <= MAX_SYMBOLIC_DEGREE
    variance = dist.sympy_variance(simplified=symbolic)
    mean = dist.sympy_mean(simplified=symbolic)
    notes = []
    key = _key(b)
    if qf == 0:
        small = _small_signal(key)
        bwd_factor, bwd_cert = small.backward, small.digits
        fwd_factor, fwd_cert = small.forward, small.digits
        if not small.centred:
            # the constant phi(0) adds fan_in Var(w) phi(0)^2 to every pre-activation's variance, which
            # q -> 0 does not shrink: E[phi^2]/q diverges
            fwd_factor = sp.oo
            notes.append("phi(0) != 0: E[phi^2]/q -> infinity as q -> 0+ (each pre-activation gains "
                         "fan_in Var(w) phi(0)^2 from the constant), so the forward signal is not preserved")
        mean_factor, mean_cert = _small_signal_mean2(key) if mean != 0 else (sp.Integer(0), None)
    else:
        fwd_factor, fwd_cert = _moment_factor(key, "second", qf, digits)
        bwd_factor, bwd_cert = _moment_factor(key, "deriv2", qf, digits)
        mean_factor, mean_cert = _moment_factor(key, "mean", qf, digits) if mean != 0 else (sp.Integer(0), None)
    if b.name == "rrelu":
        notes.append(RRELU_NOTE)
    if b.arity > 1:
        notes.append(f"maxout: the weight matrix has {b.arity} rows per unit; fan_in is the input width of one row "
                     f"and fan_out counts all {b.arity} rows of each unit ({b.arity} x the units), as in "
                     "mean-field and activation-stats")
    if not symbolic:
        return _numeric_check(dist, b, qf, digits, variance, mean, notes, (fwd_factor, bwd_factor, mean_factor))
    second_w = simplify(variance + mean ** 2)
    if mean != 0:
        notes.append(f"the weights have mean {_str(mean)}, not 0: the forward ratio is "
                     "fan_in E[w^2] E[phi^2]/q + fan_in (fan_in - 1) E[w]^2 E[phi]^2/q and the backward one "
                     "fan_out E[w^2] E[phi'^2], with E[w^2] = Var(w) + E[w]^2")
        if mean_cert is not None:
            fwd_cert = mean_cert if fwd_cert is None else min(fwd_cert, mean_cert)

    forward_ratio = simplify(fi * second_w * fwd_factor + fi * (fi - 1) * mean ** 2 * mean_factor)
    backward_ratio = simplify(fo * second_w * bwd_factor)
    if variance == 0:
        fwd = Direction("forward", forward_ratio, fwd_factor, False, None, None)
        bwd = Direction("backward", backward_ratio, bwd_factor, False, None, None)
        return CheckResult(dist.text, dist, b, qf, digits, variance, mean, fwd, bwd, "symmetry", None, None,
                           tuple(notes), mean_factor)
    fwd = _decide("forward", forward_ratio, fwd_factor, fwd_cert, digits)
    bwd = _decide("backward", backward_ratio, bwd_factor, bwd_cert, digits)

    condition = None
    if fwd.preserved and bwd.preserved:
        verdict = "both"
    else:
        open_conditions = {d.condition for d in (fwd, bwd) if not d.preserved}
        if open_conditions == {"fan_in = fan_out"}:
            condition = "fan_in = fan_out"
        verdict = ("forward" if fwd.preserved else "backward" if bwd.preserved
                   else "fan_in = fan_out" if condition else "neither")

    def ratios(fan_in, fan_out):
        f, bk = _float_ratios(dist, fwd_factor, bwd_factor, fan_in, fan_out, mean_factor)
        return {"forward": f, "backward": bk}
    failing = [d.name for d in (fwd, bwd) if not d.preserved]
    counter = _counterexample(ratios, failing)
    return CheckResult(dist.text, dist, b, qf, digits, variance, mean, fwd, bwd, verdict, condition, counter,
                       tuple(notes), mean_factor)


def _numeric_check(dist, b, qf, digits, variance, mean, notes, factors) -> CheckResult:
    """The verdict from float ratios at :data:`NUMERIC_FANS`, for expressions too complex to simplify."""
    fi, fo = symbols()
    fwd_factor, bwd_factor, mean_factor = factors
    notes.append(f"symbolic proof not attempted: the variance is a rational function of the fans of degree up to "
                 f"{dist.symbolic_degree():g} (more than {MAX_SYMBOLIC_DEGREE}), which SymPy could take minutes "
                 f"to simplify; the verdict is numeric, from the ratios at {len(NUMERIC_FANS)} fan pairs "
                 f"(1 to within {NUMERIC_TOLERANCE:g})")
    second_w = variance + mean ** 2
    forward_ratio = fi * second_w * fwd_factor + (fi * (fi - 1) * mean ** 2 * mean_factor if mean != 0 else 0)
    backward_ratio = fo * second_w * bwd_factor

    def ratios(fan_in, fan_out):
        f, bk = _float_ratios(dist, fwd_factor, bwd_factor, fan_in, fan_out, mean_factor)
        return {"forward": f, "backward": bk}

    table = {}
    for fans in NUMERIC_FANS:
        try:
            table[fans] = ratios(*fans)
        except ValueError:      # the distribution is not defined at these fans
            continue
    if all(dist.variance(*fans) == 0 for fans in table):
        fwd = Direction("forward", forward_ratio, fwd_factor, False, None, None)
        bwd = Direction("backward", backward_ratio, bwd_factor, False, None, None)
        return CheckResult(dist.text, dist, b, qf, digits, variance, mean, fwd, bwd, "symmetry", None, None,
                           tuple(notes), mean_factor, symbolic=False)
    precision = f"numeric at {len(table)} fan pairs"

    def direction(name, ratio, factor):
        ones = {fans: abs(r[name] - 1) <= NUMERIC_TOLERANCE for fans, r in table.items()}
        if all(ones.values()):
            return Direction(name, ratio, factor, True, precision, None)
        square = [ok for (a, c), ok in ones.items() if a == c]
        condition = "fan_in = fan_out" if square and all(square) else None
        return Direction(name, ratio, factor, False, None, condition)

    fwd = direction("forward", forward_ratio, fwd_factor)
    bwd = direction("backward", backward_ratio, bwd_factor)
    condition = None
    if fwd.preserved and bwd.preserved:
        verdict = "both"
    else:
        if {d.condition for d in (fwd, bwd) if not d.preserved} == {"fan_in = fan_out"}:
            condition = "fan_in = fan_out"
        verdict = ("forward" if fwd.preserved else "backward" if bwd.preserved
                   else "fan_in = fan_out" if condition else "neither")
    counter = _counterexample(ratios, [d.name for d in (fwd, bwd) if not d.preserved])
    return CheckResult(dist.text, dist, b, qf, digits, variance, mean, fwd, bwd, verdict, condition, counter,
                       tuple(notes), mean_factor, symbolic=False)

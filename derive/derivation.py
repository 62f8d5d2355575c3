"""A derivation: stated assumptions, machine-checked steps, named results and published comparisons.

A :class:`Derivation` is built step by step. Each equation step records ``lhs = rhs`` as SymPy objects and
checks it exactly at once (``lhs == rhs`` structurally, ``simplify(lhs - rhs) == 0``, ``expand``, or
``Expr.equals``, which proves constant identities through minimal polynomials); numeric spot checks at
deterministic rational points are made on top of the exact check, never instead of it: a step whose exact
check fails is ``verified=False`` whatever the numbers say, and a step whose numbers contradict it is
``verified=False`` too. Booleans (``rhs = sympy.true``), sets and matrices are checked the same way.

Every assumption is declared with :meth:`Derivation.assume` and named by the steps that use it; naming an
undeclared key raises ``ValueError`` at once, and an assumption that no step uses makes the derivation
unverified (``d.problems()`` says which). When an integral does not close, :meth:`Derivation.numeric`
records its certified value instead (and re-evaluates a SymPy expression independently when it can).

>>> import sympy as sp
>>> from varprop.derive.derivation import Derivation
>>> n, v, s = sp.symbols("n v s", positive=True)
>>> d = Derivation("toy", "A toy", "n iid terms add their variances.")
>>> d.assume("iid", "the terms are independent and identically distributed")
>>> d.step("sum of variances", sp.Sum(v * s, (sp.Symbol("i"), 1, n)), n * v * s, uses=("iid",)).verified
True
>>> d.result("variance", n * v * s)
>>> d.verified
True
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from fractions import Fraction

__all__ = ["Derivation", "Step", "Comparison", "decimal_string", "spot_points"]

_SPOT_POINTS = 3
_SPOT_DPS = 40
_SPOT_TOL = 1e-25


@dataclass
class Step:
    """One recorded transition (kind "equation" or "numeric") and the prose written before it."""
    kind: str
    title: str
    latex: str
    because: str
    uses: tuple
    verified: bool
    method: str
    spot_checks: int = 0
    prose: list = field(default_factory=list)
    value: object = None          # numeric steps: the certified value
    digits: int | None = None     # numeric steps: certified significant digits

    def to_dict(self, digits: int) -> dict:
        out = {"kind": self.kind, "title": self.title, "latex": self.latex, "because": self.because,
               "uses": list(self.uses), "verified": self.verified, "method": self.method,
               "spot_checks": self.spot_checks, "prose": list(self.prose)}
        if self.kind == "numeric":
            d = digits if self.digits is None else min(digits, self.digits)
            out["value"] = decimal_string(self.value, d)
            out["digits"] = d
        return out


@dataclass
class Comparison:
    """A derived value beside a published one, with the relative difference (published - derived)/derived."""
    name: str
    derived: object
    published: object
    source: str

    def relative_difference(self) -> float | None:
        import mpmath as mp
        with mp.workdps(30):
            d, p = _to_mpf(self.derived), _to_mpf(self.published)
            if d is None or p is None or d == 0:
                return None
            return float((p - d) / d)

    def to_dict(self, digits: int) -> dict:
        rel = self.relative_difference()
        return {"name": self.name, "derived": decimal_string(self.derived, digits),
                "published": decimal_string(self.published, digits), "source": self.source,
                "relative_difference": None if rel is None else f"{rel:.6g}"}


class Derivation:
    """A named derivation. See the module docstring for the rules every step follows."""

    def __init__(self, name: str, title: str, summary: str):
        for label, v in (("name", name), ("title", title), ("summary", summary)):
            if not isinstance(v, str) or not v:
                raise TypeError(f"Derivation {label} must be a non-empty string")
        self.name, self.title, self.summary = name, title, summary
        self.assumptions: dict[str, str] = {}
        self.steps: list[Step] = []
        self.results: dict[str, tuple] = {}
        self.comparisons: list[Comparison] = []
        self.epilogue: list[str] = []
        self._pending: list[str] = []

    # -- recording ---------------------------------------------------------------------------------------
    def assume(self, key: str, text: str) -> None:
        """Declare an assumption; steps name it in ``uses``."""
        if not isinstance(key, str) or not key or not isinstance(text, str) or not text:
            raise TypeError("an assumption needs a non-empty key and text")
        if key in self.assumptions:
            raise ValueError(f"assumption {key!r} is declared twice in derivation {self.name!r}")
        self.assumptions[key] = text

    def text(self, markdown: str) -> None:
        """Prose, rendered before the next step (or after the last one)."""
        if not isinstance(markdown, str):
            raise TypeError("text must be a string")
        self._pending.append(markdown)
        self.epilogue = list(self._pending)

    def step(self, title: str, lhs, rhs, because: str = "", uses=(), label: str | None = None,
             at=None) -> Step:
        """Record ``lhs = rhs`` and check it exactly, then numerically at rational points.

        ``label`` (LaTeX) is shown before ``lhs`` (``label = lhs = rhs``); ``at`` is an optional list of
        substitution dicts to use as spot-check points (for symbols with a restricted domain).
        """
        import sympy as sp
        uses = self._check_uses(uses)
        lhs, rhs = _sympify(lhs, "lhs"), _sympify(rhs, "rhs")
        ok, method = exact_check(lhs, rhs)
        spots = 0
        if ok:
            spots, bad = spot_check(lhs, rhs, at)
            if bad is not None:
                ok, method = False, f"{method}; contradicted by a spot check at {bad}"
        ll, rl = _latex(lhs), _latex(rhs)
        latex = ll if ll == rl else f"{ll} = {rl}"
        if isinstance(rhs, sp.logic.boolalg.BooleanAtom) and rhs == sp.true:
            latex = ll
        if label:
            latex = f"{label} = {latex}"
        return self._add(Step("equation", title, latex, because, uses, ok, method, spots))

    def numeric(self, title: str, expr_or_label, value, digits: int, because: str = "", uses=(),
                check: bool = True, reference=None) -> Step:
        """Record a quantity with no closed form and its certified numeric value (``digits`` digits).

        A SymPy ``expr_or_label`` is evaluated again by ``evalf`` when ``check`` is true and must agree to
        the certified digits; a string label is shown as given (the caller certifies the value).
        ``reference=(value, rtol, source)`` holds the value against an independent evaluation as well.
        """
        import mpmath as mp
        uses = self._check_uses(uses)
        if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
            raise ValueError(f"digits must be a positive integer, got {digits!r}")
        v = _to_mpf(value)
        if v is None:
            raise TypeError(f"numeric step {title!r}: value must be a real number, got {value!r}")
        if isinstance(expr_or_label, str):
            latex, ok, method = expr_or_label, bool(mp.isfinite(v)), "certified numeric value"
        else:
            expr = _sympify(expr_or_label, "expr")
            latex = _latex(expr)
            ok, method = bool(mp.isfinite(v)), "certified numeric value"
            if check:
                ok, method = _numeric_check(expr, v, digits)
        if reference is not None:
            ref, rtol, source = reference
            r = _to_mpf(ref)
            agree = r is not None and abs(v - r) <= rtol * max(abs(r), mp.mpf(10) ** -30)
            ok = ok and agree
            method += (f"; agrees with {source} to {rtol:g}" if agree
                       else f"; disagrees with {source} beyond {rtol:g}")
        latex = f"{latex} \\approx {decimal_string(v, digits)}"
        return self._add(Step("numeric", title, latex, because, uses, ok, method, 0, value=v, digits=digits))

    def result(self, name: str, value, latex: str | None = None) -> None:
        """A named result: a SymPy expression or a number (mpmath, float, int, Fraction)."""
        import sympy as sp
        if not isinstance(name, str) or not name or name == "latex":
            raise ValueError(f"result name must be a non-empty string other than 'latex', got {name!r}")
        if isinstance(value, str):
            raise TypeError(f"result {name!r}: a value, not a string")
        if latex is None and isinstance(value, sp.Basic):
            latex = _latex(value)
        self.results[name] = (value, latex)     # a plain number gets its LaTeX at the digits rendered

    def compare(self, name: str, derived, published, source: str) -> Comparison:
        c = Comparison(name, derived, published, source)
        self.comparisons.append(c)
        return c

    # -- state --------------------------------------------------------------------------------------------
    def used_assumptions(self) -> set:
        return {k for s in self.steps for k in s.uses}

    def problems(self) -> list[str]:
        """Why the derivation is not verified (empty when it is)."""
        out = [f"step {i + 1} ({s.title}) is not verified: {s.method}"
               for i, s in enumerate(self.steps) if not s.verified]
        unused = [k for k in self.assumptions if k not in self.used_assumptions()]
        out += [f"assumption {k!r} is declared but no step uses it" for k in unused]
        if not self.steps:
            out.append("the derivation has no steps")
        return out

    @property
    def verified(self) -> bool:
        return not self.problems()

    def to_dict(self, digits: int = 15) -> dict:
        """The JSON form: name, title, summary, assumptions, steps, result, comparisons, verified."""
        if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 100:
            raise ValueError(f"digits must be an integer from 1 to 100, got {digits!r}")
        used = {}
        for i, s in enumerate(self.steps):
            for k in s.uses:
                used.setdefault(k, []).append(i + 1)
        result = {"latex": {k: decimal_string(v, digits) if lx is None else lx
                            for k, (v, lx) in self.results.items()}}
        for k, (v, _) in self.results.items():
            result[k] = decimal_string(v, digits)
        return {
            "name": self.name, "title": self.title, "summary": self.summary,
            "assumptions": [{"key": k, "text": t, "used_in": used.get(k, [])} for k, t in self.assumptions.items()],
            "steps": [s.to_dict(digits) for s in self.steps],
            "epilogue": list(self.epilogue),
            "result": result,
            "comparisons": [c.to_dict(digits) for c in self.comparisons],
            "problems": self.problems(),
            "verified": self.verified,
            "digits": digits,
        }

    # -- internals ----------------------------------------------------------------------------------------
    def _check_uses(self, uses) -> tuple:
        if isinstance(uses, str):
            uses = (uses,)
        uses = tuple(uses)
        for k in uses:
            if k not in self.assumptions:
                known = ", ".join(self.assumptions) or "none"
                raise ValueError(f"derivation {self.name!r}: assumption {k!r} is not declared (declared: {known})")
        return uses

    def _add(self, step: Step) -> Step:
        step.prose, self._pending, self.epilogue = self._pending, [], []
        self.steps.append(step)
        return step


def _latex(expr) -> str:
    """LaTeX of a SymPy object, with fan_in and fan_out written as fan subscripts."""
    import sympy as sp
    names = {s: "\\mathrm{fan}_{\\mathrm{" + s.name[4:] + "}}" for s in getattr(expr, "free_symbols", ())
             if isinstance(s, sp.Symbol) and s.name in ("fan_in", "fan_out")}
    return sp.latex(expr, symbol_names=names) if names else sp.latex(expr)


# -- exact and numeric checks --------------------------------------------------------------------------------
def _sympify(x, what):
    import sympy as sp
    if isinstance(x, str):
        raise TypeError(f"{what} must be a SymPy object or a number, not a string")
    if isinstance(x, Fraction):
        return sp.Rational(x.numerator, x.denominator)
    if isinstance(x, sp.MatrixBase):
        return sp.ImmutableMatrix(x)
    return sp.sympify(x, strict=True) if not isinstance(x, sp.Basic) else x


def exact_check(lhs, rhs) -> tuple[bool, str]:
    """(True, method) when lhs = rhs is proven exactly; (False, reason) otherwise."""
    import sympy as sp
    from sympy.logic.boolalg import Boolean
    if lhs == rhs:
        return True, "identical"
    # a Symbol is both an Expr and a Boolean: only non-expressions are truth values
    lb = isinstance(lhs, Boolean) and not isinstance(lhs, sp.Expr)
    rb = isinstance(rhs, Boolean) and not isinstance(rhs, sp.Expr)
    if lb or rb:
        if not (lb and rb):
            return False, "a boolean compared with a non-boolean"
        e = sp.simplify(sp.Equivalent(lhs, rhs))
        return (True, "simplify(Equivalent)") if e == sp.true else (False, f"not proven: {e}")
    if isinstance(lhs, sp.Set) or isinstance(rhs, sp.Set):
        e = sp.simplify(sp.Eq(lhs, rhs)) if isinstance(lhs, sp.Set) and isinstance(rhs, sp.Set) else sp.false
        return (True, "set equality") if e == sp.true else (False, "sets not proven equal")
    if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
        if not (isinstance(lhs, sp.MatrixBase) and isinstance(rhs, sp.MatrixBase)) or lhs.shape != rhs.shape:
            return False, "matrix shapes differ"
        bad = [i for i, e in enumerate(lhs - rhs) if not exact_check(e, sp.S.Zero)[0]]
        return (True, "entrywise simplify") if not bad else (False, f"entries {bad} not proven zero")
    diff = lhs - rhs
    if diff == 0:
        return True, "identical after subtraction"
    if sp.expand(diff) == 0:
        return True, "expand(lhs - rhs) = 0"
    s = sp.simplify(diff)
    if s == 0:
        return True, "simplify(lhs - rhs) = 0"
    if sp.simplify(sp.expand(sp.expand_func(s))) == 0:
        return True, "simplify(expand_func(lhs - rhs)) = 0"
    eq = sp.simplify(lhs).equals(sp.simplify(rhs))
    if eq is True:
        return True, "Expr.equals"
    return False, "not proven: simplify(lhs - rhs) = " + sp.sstr(s)


def spot_points(symbols, count: int = _SPOT_POINTS) -> list[dict]:
    """Deterministic rational points respecting each symbol's assumptions (integer, positive, ...)."""
    import sympy as sp
    syms = sorted(symbols, key=lambda s: s.name)
    out = []
    for k in range(count):
        rng = random.Random(7919 + k)
        pt = {}
        for s in syms:
            if s.is_integer:
                v = sp.Integer(rng.randint(2, 5) if s.is_nonnegative else rng.randint(-4, 5))
                if s.is_negative:
                    v = -v
            else:
                v = sp.Rational(rng.randint(1, 40), rng.randint(2, 13))
                if s.is_negative or (not s.is_nonnegative and rng.random() < 0.5):
                    v = -v
            pt[s] = v
        out.append(pt)
    return out


def _fill_indexed(expr):
    """Give every remaining Indexed a rational value that depends only on its name, so both sides of an
    equation (and every point) see the same x[1]."""
    import sympy as sp

    def value(a):
        rng = random.Random(zlib.crc32(sp.sstr(a).encode()))
        return sp.Rational(rng.randint(-30, 30), rng.randint(1, 11))
    return expr.xreplace({a: value(a) for a in expr.atoms(sp.Indexed)})


def _point_symbols(*exprs) -> set:
    """The plain symbols to give values: not Indexed objects, nor the labels of IndexedBases."""
    import sympy as sp
    free = set().union(*(e.free_symbols for e in exprs))
    labels = {a.base.label for e in exprs for a in e.atoms(sp.Indexed)}
    return {s for s in free if type(s) is sp.Symbol and s not in labels}


def _evaluate(expr, pt):
    import sympy as sp
    from sympy.core.function import AppliedUndef
    e = _fill_indexed(expr.subs(pt).doit())
    e = _fill_indexed(e.doit())
    if e.free_symbols or e.atoms(AppliedUndef):
        return None
    v = sp.N(e, _SPOT_DPS)
    if not v.is_number or v.has(sp.zoo, sp.nan, sp.oo, -sp.oo) or v.is_finite is False:
        return None
    return complex(v)


def spot_check(lhs, rhs, at=None) -> tuple[int, object]:
    """(points where both sides evaluated and agreed, first disagreeing point or None).

    Each side is evaluated on its own at deterministic rational points; points where a side does not reduce
    to a number (an undefined function, a pole) are skipped and not counted.
    """
    import sympy as sp
    if not isinstance(lhs, sp.Expr) or not isinstance(rhs, sp.Expr):
        return 0, None
    free = _point_symbols(lhs, rhs)
    # a constant identity needs one evaluation, not several
    points = list(at) if at is not None else (spot_points(free) if free else [{}])
    passed = 0
    for pt in points:
        try:
            a, b = _evaluate(lhs, pt), _evaluate(rhs, pt)
        except (TypeError, ValueError, ZeroDivisionError, NotImplementedError, AttributeError):
            continue
        if a is None or b is None:
            continue
        if abs(a - b) > _SPOT_TOL * max(1.0, abs(a)):
            return passed, {str(k): str(v) for k, v in pt.items()}
        passed += 1
    return passed, None


def _numeric_check(expr, v, digits) -> tuple[bool, str]:
    import mpmath as mp
    import sympy as sp
    try:
        e = sp.N(expr, digits + 10)
    except (TypeError, ValueError, NotImplementedError):
        return bool(mp.isfinite(v)), "certified numeric value (no independent evalf)"
    if not e.is_number or not e.is_finite:
        return bool(mp.isfinite(v)), "certified numeric value (no independent evalf)"
    with mp.workdps(digits + 10):
        ev = mp.mpf(sp.re(e).evalf(digits + 10))
        err = abs(ev - v) / max(abs(ev), mp.mpf(10) ** -(digits + 5))
        tol = mp.mpf(10) ** (1 - digits)
        if err <= tol:
            return True, f"certified numeric value, agrees with evalf to {digits} digits"
        return False, f"value disagrees with evalf: relative difference {mp.nstr(err, 3)}"


def _to_mpf(value):
    import mpmath as mp
    import sympy as sp
    if isinstance(value, bool):
        return None
    if isinstance(value, Fraction):
        return mp.mpf(value.numerator) / value.denominator
    if isinstance(value, (int, float)):
        return mp.mpf(value)
    if isinstance(value, mp.mpf):
        return value
    if isinstance(value, sp.Basic):
        if value.is_number:
            e = sp.N(value, mp.mp.dps + 10)
            if e.is_real is not False and e.is_finite:
                return mp.mpf(sp.re(e).evalf(mp.mp.dps + 10))
        return None
    try:
        return mp.mpf(float(value))
    except (TypeError, ValueError):
        return None


def decimal_string(value, digits: int) -> str:
    """A number as a decimal string to ``digits`` significant digits (integers and exact rationals with a
    short decimal expansion come out exactly); a non-numeric SymPy expression as its SymPy string."""
    import mpmath as mp
    import sympy as sp
    if isinstance(value, sp.Basic) and not value.is_number:
        return sp.sstr(value, order="lex")
    if isinstance(value, sp.Integer) or (isinstance(value, int) and not isinstance(value, bool)):
        return str(int(value))
    with mp.workdps(max(digits, 15) + 10):
        v = _to_mpf(value)
        if v is None:
            return sp.sstr(value)
        if mp.isinf(v) or mp.isnan(v):
            return str(v)
        from varprop.activations import decimal_string as spell
        return spell(v, digits)


def within_range(expr, max_rounds: int = 6):
    """``expr`` with every index-range ``Piecewise`` resolved to its in-range branch, then evaluated.

    Summing a ``KroneckerDelta`` or differentiating an ``Indexed`` leaves conditions such as ``a <= n``
    (an index within its width). A derivation that declares its indices in range may drop them; any other
    condition is left alone.

    >>> import sympy as sp
    >>> n = sp.Symbol("n", positive=True, integer=True)
    >>> i, k = sp.symbols("i k", positive=True, integer=True)
    >>> within_range(sp.Sum(sp.KroneckerDelta(i, k), (i, 1, n)))
    1
    """
    import sympy as sp

    def _is_range(cond):
        return (isinstance(cond, (sp.Le, sp.Ge, sp.Lt, sp.Gt)) and all(
            s.is_integer and s.is_positive for s in cond.free_symbols))

    def _first(*args):
        e, c = args[0]
        return e if _is_range(c) or c == sp.true else sp.Piecewise(*args)

    for _ in range(max_rounds):
        new = expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: _first(*e.args)).doit()
        if new == expr:
            break
        expr = new
    return expr

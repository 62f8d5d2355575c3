"""Weight distributions written in ``fan_in`` and ``fan_out``, parsed without evaluating anything.

A distribution is one call: ``normal(mean, std)``, ``uniform(low, high)``,
``truncated_normal(std, low=-2, high=2)`` (N(0, std^2) cut to [low*std, high*std], the bounds in units of
std as in JAX and TensorFlow) or ``constant(value)``. Its arguments are arithmetic (``+ - * / **``,
unary minus) over numbers, ``sqrt``, ``pi``, ``e`` and the names ``fan_in`` and ``fan_out``; arguments may
be given by keyword (``truncated_normal(std=sqrt(2/fan_in), low=-3, high=3)``).

The text is parsed with :mod:`ast` and every node is checked against a whitelist; nothing is evaluated
by Python and the raw string never reaches SymPy. Numbers are kept exact (``0.01`` is 1/100). Anything
else is refused with one line naming the offending part, e.g.
``not allowed in an initialization: attribute access 'os.system'``. The input is limited to
:data:`MAX_LENGTH` characters, exponents to :data:`MAX_EXPONENT` in absolute value (and must not contain
fan_in or fan_out), and every constant sub-expression must be a finite float, so no input can make
the parser or SymPy build a huge number.

Moments (exact; Var U(low, high) = (high - low)^2/12; for the truncated normal with a = low, b = high,
Z = Phi(b) - Phi(a): mean = std (phi(a) - phi(b))/Z and
Var = std^2 [1 + (a phi(a) - b phi(b))/Z - ((phi(a) - phi(b))/Z)^2], Johnson, Kotz & Balakrishnan,
*Continuous Univariate Distributions* vol. 1, sec. 10.1).

>>> d = parse_distribution("normal(0, sqrt(2/fan_in))")
>>> d.kind, round(d.variance(fan_in=200, fan_out=100), 12)
('normal', 0.01)
>>> parse_distribution("uniform(-sqrt(6/(fan_in+fan_out)), sqrt(6/(fan_in+fan_out)))").sympy_variance()
2/(fan_in + fan_out)
>>> round(parse_distribution("truncated_normal(1)").variance(1, 1), 6)
0.773741
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from fractions import Fraction

from varprop import truncnorm

__all__ = ["Distribution", "parse_distribution", "parse_finite", "symbols", "simplify", "KINDS", "SIGNATURES",
           "MAX_LENGTH", "MAX_EXPONENT", "MAX_DEGREE", "MAX_DEPTH", "MAX_SYMBOLIC_DEGREE",
           "FAN_NAMES"]

MAX_LENGTH = 500
MAX_EXPONENT = 64
MAX_DEGREE = 32
MAX_DEPTH = 64
# SymPy's simplify of a rational function in the fans grows steeply with its degree (numerator plus
# denominator): a variance of degree 8 takes about a second, 12 about five, 32 minutes. Above this bound
# callers decide numerically instead of proving (see Distribution.symbolic_degree).
MAX_SYMBOLIC_DEGREE = 8
FAN_NAMES = ("fan_in", "fan_out")
_CONSTANT_NAMES = {"pi": math.pi, "e": math.e}

# parameter names and defaults of each distribution, in positional order
SIGNATURES: dict[str, tuple[tuple[str, Fraction | None], ...]] = {
    "normal": (("mean", Fraction(0)), ("std", None)),
    "uniform": (("low", None), ("high", None)),
    "truncated_normal": (("std", None), ("low", Fraction(-2)), ("high", Fraction(2))),
    "constant": (("value", None),),
}
KINDS = tuple(SIGNATURES)

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}

# how a refused node is named in the one-line error
_REFUSED = {
    ast.Attribute: "attribute access", ast.Subscript: "subscript", ast.Lambda: "lambda",
    ast.ListComp: "comprehension", ast.SetComp: "comprehension", ast.DictComp: "comprehension",
    ast.GeneratorExp: "comprehension", ast.JoinedStr: "f-string", ast.FormattedValue: "f-string",
    ast.Compare: "comparison", ast.BoolOp: "boolean operator", ast.IfExp: "conditional expression",
    ast.List: "list", ast.Tuple: "tuple", ast.Set: "set", ast.Dict: "dict", ast.Starred: "starred argument",
    ast.NamedExpr: "assignment expression", ast.Await: "await", ast.Yield: "yield",
    ast.YieldFrom: "yield", ast.Slice: "slice",
}


def symbols():
    """The SymPy symbols ``fan_in`` and ``fan_out`` (positive), as every expression here uses them."""
    import sympy as sp
    return sp.Symbol("fan_in", positive=True), sp.Symbol("fan_out", positive=True)


def simplify(expr):
    """SymPy's ``simplify`` where it is safe: the part that depends on the fans always (a rational function
    of degree at most :data:`MAX_DEGREE`), a constant factor only when it is *tame*.

    A constant such as exp(-450)/erfc(15 sqrt(2)) (a far-tail truncation) sends ``simplify`` into a
    polynomial gcd of degree ~900 in exp(1/2) for minutes; such a factor is left as SymPy writes it, and
    callers compare it with numbers instead.
    """
    import sympy as sp
    if not isinstance(expr, sp.Basic) or expr.is_Number:
        return expr
    fans = symbols()
    if expr.is_Mul:
        const, dep = expr.as_independent(*fans, as_Add=False)
    elif expr.free_symbols:
        const, dep = sp.Integer(1), expr
    else:
        const, dep = expr, sp.Integer(1)
    return (sp.simplify(const) if _tame(const) else const) * (sp.simplify(dep) if _tame(dep) else dep)


_TAME_ARGUMENT = 40
_TAME_OPS = 200


def _tame(expr) -> bool:
    """Few operations, and no exp/erf/erfc of a number larger than 40 in absolute value."""
    import sympy as sp
    if sp.count_ops(expr) > _TAME_OPS:
        return False
    for f in expr.atoms(sp.exp, sp.erf, sp.erfc):
        arg = f.args[0]
        if arg.is_number and abs(complex(arg.evalf(5))) > _TAME_ARGUMENT:
            return False
    return True


def _refuse(what: str, node: ast.AST | None = None, source: str | None = None, hint: str = ""):
    part = ""
    if node is not None:
        seg = ast.get_source_segment(source, node) if source is not None else None
        seg = seg if seg is not None else ast.unparse(node)
        seg = " ".join(seg.split())
        part = f" '{seg[:60]}...'" if len(seg) > 60 else f" '{seg}'"
    raise ValueError(f"not allowed in an initialization: {what}{part}" + (f" ({hint})" if hint else ""))


# --------------------------------------------------------------------------------------------------
# the expression tree: tuples, built only from whitelisted nodes
#   ("num", Fraction) | ("name", str) | ("bin", op, left, right) | ("neg", x) | ("sqrt", x)
# --------------------------------------------------------------------------------------------------

def _number(node: ast.Constant, source: str):
    v = node.value
    if type(v) is int:
        return ("num", Fraction(v))
    if type(v) is float:
        seg = ast.get_source_segment(source, node) or repr(v)
        if not math.isfinite(v):
            _refuse("a non-finite number", node, source, "it overflows to infinity; floats reach about 1.8e308")
        if v == 0.0 and _nonzero_digits(seg):
            _refuse("a number that underflows to 0", node, source, "floats reach down to about 5e-324")
        # repr is the shortest decimal that round-trips: the number the user wrote, exactly
        return ("num", Fraction(repr(v)))
    kind = {str: "string literal", bytes: "bytes literal", bool: "boolean", complex: "complex number"}
    _refuse(kind.get(type(v), "constant"), node, source)


def _nonzero_digits(literal: str) -> bool:
    """Whether a float literal's mantissa (before any exponent) has a nonzero digit: '1e-400' does, '0.0e5' not."""
    mantissa = literal.lower().replace("_", "").split("e")[0]
    return any(c in "123456789" for c in mantissa)


def _arith(node: ast.AST, source: str):
    """(tree, float value or None when it depends on the fans) of an arithmetic node."""
    if isinstance(node, ast.Constant):
        tree = _number(node, source)
        return tree, _const(tree, node, source)
    if isinstance(node, ast.Name):
        if node.id in FAN_NAMES:
            return ("name", node.id), None
        if node.id in _CONSTANT_NAMES:
            return ("name", node.id), _CONSTANT_NAMES[node.id]
        _refuse("unknown name", node, source, "known: fan_in, fan_out, pi, e")
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            inner, value = _arith(node.operand, source)
            if isinstance(node.op, ast.UAdd):
                return inner, value
            tree = ("neg", inner)
            return tree, None if value is None else -value
        _refuse("operator " + type(node.op).__name__, node, source)
    if isinstance(node, ast.BinOp):
        op = _BINOPS.get(type(node.op))
        if op is None:
            _refuse("operator " + type(node.op).__name__, node, source)
        left, lv = _arith(node.left, source)
        right, rv = _arith(node.right, source)
        if op == "**":
            if rv is None:
                _refuse("an exponent that depends on fan_in or fan_out", node.right, source)
            if abs(rv) > MAX_EXPONENT:
                _refuse(f"an exponent larger than {MAX_EXPONENT} in absolute value", node.right, source)
        tree = ("bin", op, left, right)
        return tree, None if lv is None or rv is None else _const(tree, node, source)
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name == "sqrt":
            if node.keywords or len(node.args) != 1:
                raise ValueError(f"sqrt takes exactly one argument: {ast.get_source_segment(source, node)!r}")
            inner, value = _arith(node.args[0], source)
            tree = ("sqrt", inner)
            return tree, None if value is None else _const(tree, node, source)
        if name in SIGNATURES:
            _refuse("a distribution inside an expression", node, source)
        if name is None:
            # name what is being called: os.system(...) is refused as the attribute access it is
            _refuse(_REFUSED.get(type(node.func), "a call of anything but sqrt"), node.func, source)
        _refuse("unknown function", node.func, source, "known: sqrt")
    _refuse(_REFUSED.get(type(node), type(node).__name__), node, source)


def _const(tree, node, source) -> float:
    """The float value of a constant sub-tree; refuses overflow, division by zero and the like."""
    try:
        return _evaluate(tree, _CONSTANT_NAMES)
    except ValueError as exc:
        seg = ast.get_source_segment(source, node) or ast.unparse(node)
        raise ValueError(f"cannot evaluate {seg!r}: {exc}") from None


def _evaluate(tree, env) -> float:
    tag = tree[0]
    try:
        if tag == "num":
            return float(tree[1])
        if tag == "name":
            return float(env[tree[1]])
        if tag == "neg":
            return -_evaluate(tree[1], env)
        if tag == "sqrt":
            x = _evaluate(tree[1], env)
            if x < 0:
                raise ValueError(f"square root of a negative number ({x:g})")
            return math.sqrt(x)
        op, a, b = tree[1], _evaluate(tree[2], env), _evaluate(tree[3], env)
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            if b == 0:
                raise ValueError("division by zero")
            r = a / b
        else:
            if a == 0 and b < 0:
                raise ValueError("zero to a negative power")
            if a < 0 and b != int(b):
                raise ValueError(f"a negative number to a fractional power (({a:g})**{b:g})")
            r = math.pow(a, b)
    except OverflowError:
        raise ValueError("number too large") from None
    if not math.isfinite(r):
        raise ValueError("number too large")
    if r == 0 and a != 0 and (op in "*/" and (op == "/" or b != 0) or op == "**"):
        raise ValueError("number too small (it underflows to 0)")
    return r


def _to_sympy(tree, syms):
    import sympy as sp
    tag = tree[0]
    if tag == "num":
        return sp.Rational(tree[1].numerator, tree[1].denominator)
    if tag == "name":
        return syms[tree[1]]
    if tag == "neg":
        return -_to_sympy(tree[1], syms)
    if tag == "sqrt":
        return sp.sqrt(_to_sympy(tree[1], syms))
    op, a, b = tree[1], _to_sympy(tree[2], syms), _to_sympy(tree[3], syms)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
            "**": lambda: a ** b}[op]()


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "**": 4, "atom": 5}


def _render(tree) -> tuple[str, int]:
    """(canonical text, precedence) of a tree, with only the parentheses the tree needs."""
    tag = tree[0]
    if tag == "num":
        f = tree[1]
        if f.denominator != 1:
            s, p = f"{abs(f.numerator)}/{f.denominator}", _PREC["/"]
        else:
            s, p = str(abs(f.numerator)), _PREC["atom"]
        return (f"-{_paren(s, p, 4)}", _PREC["neg"]) if f < 0 else (s, p)
    if tag == "name":
        return tree[1], _PREC["atom"]
    if tag == "sqrt":
        return f"sqrt({_render(tree[1])[0]})", _PREC["atom"]
    if tag == "neg":
        s, p = _render(tree[1])
        return f"-{_paren(s, p, 4)}", _PREC["neg"]
    op = tree[1]
    prec = _PREC[op]
    (ls, lp), (rs, rp) = _render(tree[2]), _render(tree[3])
    # ** groups to the right, the others to the left: the other side needs parentheses at equal precedence
    left = _paren(ls, lp, prec + 1 if op == "**" else prec)
    right = _paren(rs, rp, prec if op == "**" else prec + 1)
    return (f"{left}**{right}" if op == "**" else f"{left} {op} {right}" if prec == 1
            else f"{left}{op}{right}"), prec


def _paren(s: str, p: int, need: int) -> str:
    return s if p >= need else f"({s})"


# --------------------------------------------------------------------------------------------------
# the distribution
# --------------------------------------------------------------------------------------------------

def _check_fans(fan_in, fan_out) -> dict[str, float]:
    env = dict(_CONSTANT_NAMES)
    for name, v in (("fan_in", fan_in), ("fan_out", fan_out)):
        if isinstance(v, bool) or not isinstance(v, (int, float, Fraction)):
            raise TypeError(f"{name} must be a positive number, got {type(v).__name__}")
        if not (math.isfinite(float(v)) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v}")
        env[name] = float(v)
    return env


def _truncated_unit(a: float, b: float) -> tuple[float, float]:
    """(mean, variance) of N(0, 1) truncated to [a, b] (the closed forms of :mod:`varprop.truncnorm`)."""
    a, b = truncnorm.check_bounds(a, b)
    return truncnorm.mean(a, b), truncnorm.variance(a, b)


@dataclass(frozen=True)
class Distribution:
    """A weight distribution whose parameters are expressions in fan_in and fan_out.

    ``kind`` is one of :data:`KINDS`; ``text`` the input as written; ``trees`` the parsed parameter
    expressions (internal; see :meth:`expression` for a canonical text).
    """
    kind: str
    text: str
    trees: tuple

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in SIGNATURES[self.kind])

    def expression(self) -> str:
        """A canonical text of the distribution (parameters by keyword, numbers as parsed)."""
        args = ", ".join(f"{n}={_render(t)[0]}" for n, t in zip(self.names, self.trees))
        return f"{self.kind}({args})"

    def uses(self) -> set[str]:
        """The fan names the distribution depends on."""
        return set().union(*(_fans_in(t) for t in self.trees))

    # ---- numeric (no SymPy) -------------------------------------------------------------------
    def params(self, fan_in, fan_out) -> dict[str, float]:
        """The parameters at these fans, validated (std >= 0, low <= high; low < high when truncating)."""
        env = _check_fans(fan_in, fan_out)
        try:
            p = {n: _evaluate(t, env) for n, t in zip(self.names, self.trees)}
        except ValueError as exc:
            raise ValueError(f"{self.text!r} at fan_in={fan_in}, fan_out={fan_out}: {exc}") from None
        if "std" in p and p["std"] < 0:
            raise ValueError(f"{self.text!r}: std is negative ({p['std']:g}) at fan_in={fan_in}, fan_out={fan_out}")
        if self.kind == "uniform" and p["low"] > p["high"]:
            raise ValueError(f"{self.text!r}: low > high ({p['low']:g} > {p['high']:g}) at fan_in={fan_in}, "
                             f"fan_out={fan_out}")
        if self.kind == "truncated_normal" and not p["low"] < p["high"]:
            raise ValueError(f"{self.text!r}: truncation needs low < high, got [{p['low']:g}, {p['high']:g}]")
        return p

    def mean(self, fan_in, fan_out) -> float:
        return self._finite("mean", self._mean, fan_in, fan_out)

    def variance(self, fan_in, fan_out) -> float:
        return self._finite("variance", self._variance, fan_in, fan_out)

    def _finite(self, what, fn, fan_in, fan_out) -> float:
        try:
            v = fn(self.params(fan_in, fan_out))
        except OverflowError:
            v = math.inf
        if not math.isfinite(v):
            raise ValueError(f"{self.text!r}: the {what} overflows float64 at fan_in={fan_in}, fan_out={fan_out}")
        return v

    def _mean(self, p) -> float:
        if self.kind == "normal":
            return p["mean"]
        if self.kind == "uniform":
            return (p["low"] + p["high"]) / 2
        if self.kind == "constant":
            return p["value"]
        return p["std"] * _truncated_unit(p["low"], p["high"])[0]

    def _variance(self, p) -> float:
        if self.kind == "normal":
            return p["std"] ** 2
        if self.kind == "uniform":
            return (p["high"] - p["low"]) ** 2 / 12
        if self.kind == "constant":
            return 0.0
        return p["std"] ** 2 * _truncated_unit(p["low"], p["high"])[1]

    def symbolic_degree(self) -> float:
        """An upper bound on the degree (numerator plus denominator, over a common denominator) of the
        variance as a rational function of the fans: what SymPy's simplification will have to work through.

        >>> parse_distribution("normal(0, sqrt(2/fan_in))").symbolic_degree()
        1.0
        >>> parse_distribution("normal(0, 1/(fan_in+1) + 1/(fan_in+2))").symbolic_degree()
        6
        """
        fan_trees = [t for t in self.trees if _fans_in(t)]
        if not fan_trees:
            return 0
        combined = fan_trees[0]
        for t in fan_trees[1:]:
            combined = ("bin", "+", combined, t)
        num, den = _rational_degree(combined)
        return 2 * (num + den)

    # ---- symbolic -----------------------------------------------------------------------------
    def sympy_params(self) -> dict:
        """The parameters as SymPy expressions in the positive symbols fan_in, fan_out."""
        import sympy as sp
        fi, fo = symbols()
        syms = {"fan_in": fi, "fan_out": fo, "pi": sp.pi, "e": sp.E}
        return {n: _to_sympy(t, syms) for n, t in zip(self.names, self.trees)}

    def sympy_mean(self, simplified: bool = True):
        """The mean as a SymPy expression; ``simplified=False`` skips the simplification (for expressions
        above :data:`MAX_SYMBOLIC_DEGREE`)."""
        p = self.sympy_params()
        s = simplify if simplified else (lambda x: x)
        if self.kind == "normal":
            return s(p["mean"])
        if self.kind == "uniform":
            return s((p["low"] + p["high"]) / 2)
        if self.kind == "constant":
            return s(p["value"])
        return s(p["std"] * _sympy_truncated_unit(p["low"], p["high"])[0])

    def sympy_variance(self, simplified: bool = True):
        """The variance as a SymPy expression (``simplified`` as in :meth:`sympy_mean`)."""
        import sympy as sp
        p = self.sympy_params()
        s = simplify if simplified else (lambda x: x)
        if self.kind == "normal":
            return s(p["std"] ** 2)
        if self.kind == "uniform":
            return s((p["high"] - p["low"]) ** 2 / 12)
        if self.kind == "constant":
            return sp.Integer(0)
        return s(p["std"] ** 2 * _sympy_truncated_unit(p["low"], p["high"])[1])


def _sympy_truncated_unit(a, b):
    """(mean, variance) of N(0, 1) truncated to [a, b] in SymPy, the mass in its tail-accurate form."""
    import sympy as sp

    def pdf(x):
        return sp.exp(-x ** 2 / 2) / sp.sqrt(2 * sp.pi)
    r = sp.sqrt(2)
    if a.is_nonnegative:
        z = (sp.erfc(a / r) - sp.erfc(b / r)) / 2
    elif b.is_nonpositive:
        z = (sp.erfc(-b / r) - sp.erfc(-a / r)) / 2
    else:
        z = (sp.erf(b / r) - sp.erf(a / r)) / 2
    m = (pdf(a) - pdf(b)) / z
    return m, 1 + (a * pdf(a) - b * pdf(b)) / z - m ** 2


# --------------------------------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------------------------------

def parse_distribution(text) -> Distribution:
    """Parse ``text`` (see the module docstring) into a :class:`Distribution`; ValueError on anything else."""
    if not isinstance(text, str):
        raise TypeError(f"an initialization must be a string, got {type(text).__name__}")
    src = text.strip()
    if not src:
        raise ValueError("empty initialization; write e.g. normal(0, sqrt(2/fan_in))")
    if len(src) > MAX_LENGTH:
        raise ValueError(f"initialization too long ({len(src)} characters; at most {MAX_LENGTH})")
    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        msg = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
        raise ValueError(f"not a valid initialization expression: {msg} in {src!r}") from None
    depth = _depth(tree.body)
    if depth > MAX_DEPTH:
        # every walk over the tree (and SymPy's over the expression) recurses: keep it shallow
        raise ValueError(f"initialization nested too deeply (depth {depth}; at most {MAX_DEPTH})")
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.func.id not in SIGNATURES:
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id != "sqrt":
            import difflib
            close = difflib.get_close_matches(call.func.id, KINDS, n=2)
            hint = (f"did you mean {' or '.join(close)}? " if close else "") + f"known: {', '.join(KINDS)}"
            _refuse("unknown distribution", call.func, src, hint + "; an initializer name such as he_normal is "
                    "written alone, its options given separately")
        if isinstance(call, (ast.Call, ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp)):
            # an arithmetic expression alone is not a distribution, but check it first so that a hostile
            # part is named as such
            _arith(call, src)
            raise ValueError(f"an initialization must be one of {', '.join(k + '(...)' for k in KINDS)}; "
                             f"got {src!r}")
        _refuse(_REFUSED.get(type(call), type(call).__name__), call, src)
    kind = call.func.id
    sig = SIGNATURES[kind]
    names = [n for n, _ in sig]
    given: dict[str, ast.AST] = {}
    if len(call.args) > len(sig):
        raise ValueError(f"{kind} takes at most {len(sig)} arguments ({', '.join(names)}), got {len(call.args)}")
    for name, arg in zip(names, call.args):
        if isinstance(arg, ast.Starred):
            _refuse("starred argument", arg, src)
        given[name] = arg
    for kw in call.keywords:
        if kw.arg is None:
            _refuse("keyword unpacking", kw.value, src)
        if kw.arg not in names:
            raise ValueError(f"{kind} has no parameter {kw.arg!r} (its parameters: {', '.join(names)})")
        if kw.arg in given:
            raise ValueError(f"{kind}: parameter {kw.arg!r} given twice")
        given[kw.arg] = kw.value
    trees = []
    for name, default in sig:
        if name in given:
            t, value = _arith(given[name], src)
        elif default is not None:
            t, value = ("num", default), float(default)
        else:
            raise ValueError(f"{kind} needs {name!r} (its parameters: {', '.join(names)})")
        if name == "std" and value is not None and value < 0:
            raise ValueError(f"{kind}: std must be >= 0, got {value:g}")
        trees.append(t)
    d = Distribution(kind, src, tuple(trees))
    _check_constant_bounds(d)
    return d


def _depth(node: ast.AST) -> int:
    """The nesting depth of an ast, without recursion."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in ast.iter_child_nodes(n))
    return deepest


# fans at which a fan-dependent distribution is validated when parsed
SAMPLE_FANS = ((1, 1), (2, 3), (3, 2), (10, 1000), (1000, 10), (4096, 4096))


def _check_constant_bounds(d: Distribution):
    """Refuse what is wrong whatever the fans: bad constant parameters, empty truncations, huge degrees."""
    for name, tree in zip(d.names, d.trees):
        deg = _degree(tree)
        if deg > MAX_DEGREE:
            raise ValueError(f"{d.kind}: {name} has degree {deg:g} in fan_in and fan_out; at most {MAX_DEGREE}")
    if not d.uses():
        d.variance(1, 1)
        return
    # a parameter in the fans must be valid wherever a layer could have them: finite, std >= 0,
    # low <= high (low < high when truncating); a handful of fans, square and not, small and large
    for fan_in, fan_out in SAMPLE_FANS:
        d.mean(fan_in, fan_out)
        d.variance(fan_in, fan_out)
    if d.kind == "truncated_normal":
        lo, hi = (None if _fans_in(t) else _evaluate(t, _CONSTANT_NAMES) for t in d.trees[1:])
        if lo is not None and hi is not None:
            if not lo < hi:
                raise ValueError(f"{d.text!r}: truncation needs low < high, got [{lo:g}, {hi:g}]")
            _truncated_unit(lo, hi)


def _fans_in(tree) -> set[str]:
    if tree[0] == "name":
        return {tree[1]} & set(FAN_NAMES)
    return set().union(*(_fans_in(c) for c in tree[1:] if isinstance(c, tuple)))


def _degree(tree) -> float:
    """An upper bound on the total degree of a tree in fan_in and fan_out (1/fan_in counts as degree 1)."""
    tag = tree[0]
    if tag == "num":
        return 0
    if tag == "name":
        return 1 if tree[1] in FAN_NAMES else 0
    if tag == "neg":
        return _degree(tree[1])
    if tag == "sqrt":
        return _degree(tree[1]) / 2
    op, a, b = tree[1], _degree(tree[2]), _degree(tree[3])
    if op == "**":
        return a * abs(_evaluate(tree[3], _CONSTANT_NAMES))
    return max(a, b) if op in "+-" else a + b


def _rational_degree(tree) -> tuple[float, float]:
    """Upper bounds (numerator, denominator) on the degrees of a tree written as one fraction of polynomials
    in fan_in and fan_out: a/b + c/d = (ad + bc)/(bd); a square root halves both."""
    tag = tree[0]
    if tag == "num":
        return 0, 0
    if tag == "name":
        return (1, 0) if tree[1] in FAN_NAMES else (0, 0)
    if tag == "neg":
        return _rational_degree(tree[1])
    if tag == "sqrt":
        n, d = _rational_degree(tree[1])
        return n / 2, d / 2
    op = tree[1]
    na, da = _rational_degree(tree[2])
    if op == "**":
        k = _evaluate(tree[3], _CONSTANT_NAMES)
        return (k * na, k * da) if k >= 0 else (-k * da, -k * na)
    nb, db = _rational_degree(tree[3])
    if op == "*":
        return na + nb, da + db
    if op == "/":
        return na + db, da + nb
    return max(na + db, nb + da), da + db


def parse_finite(text, what: str) -> float:
    """The finite number a user wrote (an option's value, a grid's range end), or ValueError naming ``what``.

    Only ``float()``'s own syntax is read: nothing is evaluated.

    >>> parse_finite("1e-3", "--lr")
    0.001
    >>> parse_finite("inf", "--lr")
    Traceback (most recent call last):
    ...
    ValueError: --lr must be finite, got 'inf'
    """
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {text!r}")
    return value

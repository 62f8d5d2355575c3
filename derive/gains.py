"""Exact variance-preserving gains of any registered activation, and PyTorch's table beside them.

Forward gain (He et al. 2015; Poole et al. 2016). With Var(w) = g^2 / fan_in, a layer maps a
pre-activation second moment q to fan_in Var(w) E[phi(sqrt(q) z)^2] = g^2 E[phi(sqrt(q) z)^2]; it keeps q when

    g_f(q) = sqrt(q / E[phi(sqrt(q) z)^2]).

Backward gain. With Var(w) = g^2 / fan_out, the gradient with respect to a layer's pre-activations keeps
its variance when g^2 E[phi'(sqrt(q) z)^2] = 1 (Glorot & Bengio 2010; the chi_1 = 1 condition of
Schoenholz et al. 2017):

    g_b(q) = 1 / sqrt(E[phi'(sqrt(q) z)^2]).

For ReLU both are sqrt(2); for a linear layer both are 1; for SELU at q = 1 the forward gain is 1.

>>> from varprop.derive.gains import gains
>>> g = gains("relu")
>>> g.forward_str(), g.closed_forward_latex()
('1.41421356237310', '\\\\sqrt{2}')
>>> round(forward_gain_value("tanh"), 6)
1.592534
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

from varprop.activations import Bound, decimal_string, get

from .moments import Moment, _closed_form_cached, _key, check_digits, check_q, moment

__all__ = ["Gains", "gains", "torch_gain", "TorchGain", "forward_gain_value", "backward_gain_value",
           "gain_table",
           "forward_scale_value", "backward_scale_value"]


@dataclass(frozen=True)
class TorchGain:
    """PyTorch's ``torch.nn.init.calculate_gain`` value (its public table) and how it is written there."""
    value: float
    expression: str


def torch_gain(act, **params) -> TorchGain | None:
    """PyTorch's calculate_gain for this activation, or None where PyTorch raises (gelu, silu, elu, ...).

    The table (torch/nn/init.py): linear, conv*, sigmoid -> 1; tanh -> 5/3; relu -> sqrt(2);
    leaky_relu -> sqrt(2 / (1 + negative_slope^2)); selu -> 3/4.
    """
    b = get(act, **params)
    if b.name in ("linear", "sigmoid"):
        return TorchGain(1.0, "1")
    if b.name == "tanh":
        return TorchGain(5.0 / 3.0, "5/3")
    if b.name == "relu":
        return TorchGain(math.sqrt(2.0), "sqrt(2)")
    if b.name == "leaky_relu":
        a = float(b.params["negative_slope"])
        return TorchGain(math.sqrt(2.0 / (1.0 + a * a)), "sqrt(2/(1+negative_slope^2))")
    if b.name == "selu":
        return TorchGain(0.75, "3/4")
    return None


@dataclass(frozen=True)
class Gains:
    """Forward and backward gains at ``q`` with the moments they come from."""
    activation: Bound
    q: Fraction
    digits: int
    mean: Moment
    second: Moment
    deriv2: Moment
    forward: object        # mpmath.mpf
    backward: object
    certified: int         # significant digits certified for both gains

    def forward_str(self, digits: int | None = None) -> str:
        """The forward gain to ``digits`` significant digits, never more than are certified."""
        return self._str(self.forward, digits)

    def backward_str(self, digits: int | None = None) -> str:
        return self._str(self.backward, digits)

    def _str(self, value, digits):
        n = min(self.digits if digits is None else digits, self.certified)
        if n < 1:
            return "not certified"
        return decimal_string(value, n)

    def closed_forward(self):
        """sqrt(q / E[phi^2]) at this q as a simplified SymPy expression, or None."""
        return _closed_gain(self._expression(self.second), self.q, forward=True)

    def closed_backward(self):
        return _closed_gain(self._expression(self.deriv2), self.q, forward=False)

    def _expression(self, m: Moment):
        # a moment read from the disk cache carries its method, not its expression: derive it when asked
        if m.closed_form is None and m.method == "closed form":
            return _closed_form_cached(_key(self.activation), m.kind)
        return m.closed_form

    def closed_forward_latex(self) -> str | None:
        return _latex(self.closed_forward())

    def closed_backward_latex(self) -> str | None:
        return _latex(self.closed_backward())

    @property
    def torch(self) -> TorchGain | None:
        return torch_gain(self.activation)

    def torch_relative_difference(self) -> float | None:
        """(torch - exact forward) / exact forward, or None where PyTorch has no value."""
        t = self.torch
        if t is None:
            return None
        f = float(self.forward)
        return (t.value - f) / f


def _latex(expr):
    if expr is None:
        return None
    import sympy as sp
    return sp.latex(expr)


def _closed_gain(moment_expr, q: Fraction, forward: bool):
    if moment_expr is None:
        return None
    import sympy as sp
    qs = sp.Symbol("q", positive=True)
    qv = sp.Rational(q.numerator, q.denominator)
    m = moment_expr.subs(qs, qv)
    if m.is_zero:
        return None
    g = sp.sqrt(qv / m) if forward else 1 / sp.sqrt(m)
    # simplify only: nsimplify would round an exact value to a nearby simple one (elu with alpha = 1e-6)
    return sp.simplify(g)


def gains(act, q=1, digits: int = 15, closed: bool = True, cache: bool = False, **params) -> Gains:
    """Exact forward and backward gains of ``act`` at ``q`` to ``digits`` significant digits.

    ``cache=True`` takes the moments through the on-disk cache (:class:`varprop.derive.moments.MomentCache`).
    """
    import mpmath as mp
    b = get(act, **params)
    qf = check_q(q)
    check_digits(digits)
    ms = {k: moment(b, k, qf, digits, closed, cache) for k in ("mean", "second", "deriv2")}
    with mp.workdps(digits + 8):
        qv = mp.mpf(qf.numerator) / qf.denominator
        fwd = mp.sqrt(qv / ms["second"].value) if ms["second"].value != 0 else mp.inf
        bwd = 1 / mp.sqrt(ms["deriv2"].value) if ms["deriv2"].value != 0 else mp.inf
    # sqrt halves a relative error, so the gains are at least as certified as their moments
    certified = min(ms["second"].digits, ms["deriv2"].digits)
    return Gains(b, qf, digits, ms["mean"], ms["second"], ms["deriv2"], fwd, bwd, certified)


@functools.lru_cache(maxsize=None)
def _gain_values(key, q: Fraction) -> tuple[float, float, float, float]:
    import mpmath as mp
    name, params = key
    g = gains(name, q, digits=20, closed=False, **dict(params))
    with mp.workdps(28):
        qv = mp.mpf(q.numerator) / q.denominator
        fwd_scale = qv / g.second.value
        bwd_scale = 1 / g.deriv2.value
    return float(g.forward), float(g.backward), float(fwd_scale), float(bwd_scale)


def forward_gain_value(act, q=1, **params) -> float:
    """g_f(q) as a float by quadrature alone (no SymPy): the light path :mod:`varprop.nn.init` uses."""
    return _gain_values(_key(get(act, **params)), check_q(q))[0]


def backward_gain_value(act, q=1, **params) -> float:
    """g_b(q) as a float by quadrature alone (no SymPy)."""
    return _gain_values(_key(get(act, **params)), check_q(q))[1]


def forward_scale_value(act, q=1, **params) -> float:
    """g_f(q)^2 = q / E[phi(sqrt(q) z)^2] as a float, rounded once (2.0 exactly for ReLU)."""
    return _gain_values(_key(get(act, **params)), check_q(q))[2]


def backward_scale_value(act, q=1, **params) -> float:
    """g_b(q)^2 = 1 / E[phi'(sqrt(q) z)^2] as a float, rounded once."""
    return _gain_values(_key(get(act, **params)), check_q(q))[3]


def gain_table(q=1, digits: int = 15, cache: bool = True, progress=None) -> list[Gains]:
    """The gains of every registered activation at its default parameters.

    The moments go through the on-disk cache by default: the first table pays for SymPy's integrations
    (several seconds), later ones in any process read the values back. ``progress`` is an optional
    callable given each activation's name as its row is done.
    """
    from varprop.activations import names
    rows = []
    for n in names():
        rows.append(gains(n, q, digits, cache=cache))
        if progress is not None:
            progress(n)
    return rows

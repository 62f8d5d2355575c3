"""Constant initialization never breaks symmetry: identical units stay identical at every SGD step.

Take x -> h1 = W x -> phi -> h2 = U phi(h1) -> phi -> y = v . phi(h2) -> loss(y) with hidden widths n and p
(any n, p) and no per-unit noise. Hypothesis H: every row of W is the same vector r, every entry of U is c_U, every entry of v is
c_v. Under H all units of a hidden layer compute the same value, and SymPy's gradients (for symbolic widths,
through IndexedBase sums) do not depend on the unit's index: dLoss/dW_ab depends on b only, dLoss/dU_ab and
dLoss/dv_a on neither index. One SGD step subtracts the same amount from every row, so H holds again; any
constant initialization satisfies H, so by induction the units never differ (the lectures' two units are
n = 2). With c_U = c_v = 0 the gradients reaching W and U are exactly zero. Per-unit noise (dropout's
masks) breaks H: the units then see different inputs and drift apart, which the NumPy check shows.

>>> from varprop.derive.derivations.symmetry import build
>>> build().verified
True
"""
from __future__ import annotations

import functools

__all__ = ["build", "unit_spread"]


def _sum_rows(A, B):
    """(A @ B) with every entry summed in the same order, so identical rows give bit-identical results."""
    return (A[:, :, None] * B[None, :, :]).sum(axis=1)


def unit_spread(init: str = "constant", steps: int = 25, widths=(4, 5, 5, 1), seed: int = 0,
                value: float = 0.3, lr: float = 0.1, dropout: float = 0.0, history: bool = False):
    """Train a NumPy tanh network with SGD (mean squared error) and return the largest difference, over
    all steps, between hidden units of one layer: in their activations and in their weight-gradient rows.

    ``init="constant"`` fills every weight with ``value`` (0.0 by the theorem); ``init="normal"`` draws
    N(0, 1/fan_in) weights (symmetry broken: > 0). ``dropout = r`` drops each hidden unit's output with
    probability r (inverted, a mask per unit and example): per-unit noise breaks the symmetry of a constant
    initialization. ``history=True`` returns the spread after each step instead of the largest.
    """
    import numpy as np
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((widths[0], 8))
    T = rng.standard_normal((widths[-1], 8))
    if init == "constant":
        Ws = [np.full((o, i), value) for i, o in zip(widths[:-1], widths[1:])]
    elif init == "normal":
        Ws = [rng.standard_normal((o, i)) / np.sqrt(i) for i, o in zip(widths[:-1], widths[1:])]
    else:
        raise ValueError(f"init must be 'constant' or 'normal', got {init!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    keep = 1 - dropout
    spread, trace = 0.0, []
    for _ in range(steps):
        acts, masks, tanhs = [X], [], []
        for k, W in enumerate(Ws):
            h = _sum_rows(W, acts[-1])
            if k == len(Ws) - 1:
                acts.append(h)
            else:
                mask = (rng.random(h.shape) < keep) / keep if dropout else np.ones_like(h)
                masks.append(mask)
                tanhs.append(np.tanh(h))
                acts.append(tanhs[-1] * mask)
        g = (acts[-1] - T) / X.shape[1]
        grads = []
        for k in range(len(Ws) - 1, -1, -1):
            grads.append(_sum_rows(g, acts[k].T))
            if k:
                g = _sum_rows(Ws[k].T, g) * (1 - tanhs[k - 1] ** 2) * masks[k - 1]
        grads.reverse()
        step_spread = 0.0
        for k in range(1, len(Ws)):          # hidden layers: their units and incoming weight rows
            step_spread = max(step_spread, float(np.ptp(acts[k], axis=0).max()),
                              float(np.ptp(grads[k - 1], axis=0).max()))
        spread = max(spread, step_spread)
        trace.append(step_spread)
        Ws = [W - lr * G for W, G in zip(Ws, grads)]
    return trace if history else spread


def build(digits: int = 15):
    import sympy as sp

    from ..derivation import Derivation, within_range

    n, p, m = sp.symbols("n p m", positive=True, integer=True)
    i, j, k, a, b, a2, b2 = sp.symbols("i j k a b a' b'", positive=True, integer=True)
    W, U, v, x, r = (sp.IndexedBase(s) for s in ("W", "U", "v", "x", "r"))
    cu, cv, eta = sp.symbols("c_U c_v eta", real=True)
    phi, ell = sp.Function("phi"), sp.Function("ell")

    d = Derivation("symmetry", "Constant initialization never breaks symmetry",
                   "With every weight of a layer equal, all hidden units compute the same output and receive "
                   "the same gradient, so SGD keeps them equal forever: proven for hidden widths $n$ and $p$ of "
                   "any size, and checked on a NumPy network.")
    d.assume("network", "$h^1_i = \\sum_{j=1}^m W_{ij} x_j$, $h^2_k = \\sum_{i=1}^n U_{ki}\\phi(h^1_i)$, "
             "$y = \\sum_{k=1}^p v_k \\phi(h^2_k)$, loss $\\ell(y)$; the same $\\phi$ on every hidden unit")
    d.assume("indices", "indices are within their layer's width, $1 \\le a \\le n$ and so on")
    d.assume("hypothesis", "H: $W_{ij} = r_j$ (identical rows), $U_{ki} = c_U$, $v_k = c_v$; any constant "
             "initialization is a case of H")
    d.assume("sgd", "every weight moves by $-\\eta$ times its own gradient (plain SGD, any learning rate)")
    d.assume("no_noise", "no per-unit noise: the forward and backward passes apply the same deterministic "
             "function to every unit (dropout, which draws a mask per unit, breaks the symmetry: shown below)")

    def h1(idx):
        return sp.Sum(W[idx, j] * x[j], (j, 1, m))

    def h2(idx):
        return sp.Sum(U[idx, i] * phi(h1(i)), (i, 1, n))

    y = sp.Sum(v[k] * phi(h2(k)), (k, 1, p))

    def H(e):
        e = e.replace(lambda t: isinstance(t, sp.Indexed) and t.base == W, lambda t: r[t.indices[1]])
        e = e.replace(lambda t: isinstance(t, sp.Indexed) and t.base == U, lambda t: cu)
        return e.replace(lambda t: isinstance(t, sp.Indexed) and t.base == v, lambda t: cv)

    d.text("Forward pass under H: a unit's pre-activation does not depend on which unit it is.")
    d.step("first hidden layer: unit a against unit a'", H(h1(a)) - H(h1(a2)), 0, label="h^1_a - h^1_{a'}",
           uses=("network", "hypothesis", "no_noise"))
    d.step("second hidden layer: unit a against unit a'", within_range(H(h2(a)) - H(h2(a2))), 0,
           label="h^2_a - h^2_{a'}")
    s = sp.Sum(r[j] * x[j], (j, 1, m))
    d.step("so the output is p c_v phi(n c_U phi(s))", within_range(H(y)), p * cv * phi(n * cu * phi(s)),
           label="y", uses=("indices",))

    d.text("Backward pass: SymPy differentiates the loss with respect to one weight of each layer, for "
           "symbolic widths; under H the result does not depend on the unit's index.")
    grads = {}
    for name, var, sub in (("W", W[a, b], {a: a2}), ("U", U[a, b], {a: a2, b: b2}), ("v", v[a], {a: a2})):
        g = _derivatives_as_functions(within_range(H(within_range(sp.diff(ell(y), var)))))
        grads[name] = g
        label = {"W": "\\frac{\\partial \\ell}{\\partial W_{ab}}", "U": "\\frac{\\partial \\ell}{\\partial U_{ab}}",
                 "v": "\\frac{\\partial \\ell}{\\partial v_a}"}[name]
        moved = ", ".join(f"{sp.latex(o)} \\to {sp.latex(t)}" for o, t in sub.items())
        d.step(f"the gradient of {name} does not depend on the unit", g.subs(sub), g,
               label=f"{label}\\big|_{{{moved}}}", uses=("network", "hypothesis", "indices"))
    d.text("One SGD step keeps H: every row of $W$ loses the same vector, every entry of $U$ and $v$ the "
           "same number.")
    newW = r[b] - eta * grads["W"]
    d.step("new W rows are identical", newW.subs(a, a2) - newW, 0, label="W'_{ab} - W'_{a'b}", uses=("sgd",))
    newU = cu - eta * grads["U"]
    d.step("new U entries are identical", newU.subs({a: a2, b: b2}) - newU, 0, label="U'_{ab} - U'_{a'b'}",
           uses=("sgd",))
    newv = cv - eta * grads["v"]
    d.step("new v entries are identical", newv.subs(a, a2) - newv, 0, label="v'_a - v'_{a'}", uses=("sgd",))
    d.text("H holds at initialization and is preserved by every step, so by induction it holds at every "
           "step: the $n$ units of the first layer (and the $p$ of the second) are copies of one unit.")

    d.text("Zero initialization is worse: with $c_U = c_v = 0$ the gradients reaching $W$ and $U$ vanish.")
    d.step("zeros: no gradient reaches W", grads["W"].subs(cv, 0), 0,
           label="\\frac{\\partial \\ell}{\\partial W_{ab}}\\big|_{c_v = 0}")
    d.step("zeros: no gradient reaches U", grads["U"].subs(cv, 0), 0,
           label="\\frac{\\partial \\ell}{\\partial U_{ab}}\\big|_{c_v = 0}")

    const = unit_spread("constant")
    rand = unit_spread("normal")
    d.step("numeric check: tanh network 4-5-5-1, constant 0.3, 25 SGD steps: largest difference between "
           "units of a layer (activations and gradient rows)", sp.Float(const), 0, label="\\max |\\Delta|")
    d.step("numeric contrast: the same network from N(0, 1/fan_in) weights",
           sp.Gt(sp.Float(rand), 0, evaluate=False), sp.true)

    dropped = unit_spread("constant", dropout=0.5)
    d.text("Per-unit noise breaks the symmetry: with dropout each unit's output is multiplied by its own "
           "random mask, so units of one layer see different inputs and receive different gradients.")
    d.step("numeric contrast: the same constant network trained with dropout 0.5 on its hidden units",
           sp.Gt(sp.Float(dropped), 0, evaluate=False), sp.true, label="\\max |\\Delta|_{\\text{dropout}} > 0")

    d.result("constant_init_spread", sp.Float(const))
    d.result("dropout_spread", dropped)
    d.result("random_init_spread", rand)
    d.result("gradient_W", grads["W"], latex="\\ell'(y)\\, c_v c_U p\\, \\phi'(h^2)\\phi'(h^1)\\, x_b")
    return d


def _derivatives_as_functions(expr):
    """Subs(Derivative(f(xi), xi), xi, A) -> f'(A): SymPy orders a product of Subs factors by hash when their
    sort keys tie, so the rendered gradient depended on PYTHONHASHSEED; plain functions order by their
    arguments."""
    import sympy as sp

    def as_function(e):
        (var,), (point,) = e.variables, e.point
        inner = e.expr
        if isinstance(inner, sp.Derivative) and inner.variables == (var,) and inner.expr.args == (var,):
            return _prime(inner.expr.func.__name__)(point)
        return e
    return expr.replace(lambda e: isinstance(e, sp.Subs), as_function)


@functools.lru_cache(maxsize=None)
def _prime(name: str):
    """The undefined function f' (one class per name, so that equal expressions compare equal), printed as
    \\phi' or \\ell' in LaTeX."""
    import sympy as sp

    def latex(self, printer):
        return f"{printer._print(sp.Symbol(name))}'\\left({printer._print(self.args[0])}\\right)"
    return type(f"{name}'", (sp.Function,), {"_latex": latex})

"""Variance through a linear layer: Var(y_i) = n Var(w) Var(x), and (n Var(w))^L after L layers.

For y_i = sum_{j=1}^n w_ij x_j with the w_ij iid, the x_j iid, and w independent of x
(Glorot & Bengio 2010; He et al. 2015, eq. 7):

    Var(y_i) = n (Var(w) Var(x) + Var(w) E[x]^2 + E[w]^2 Var(x))
             = n Var(w) E[x^2]        when E[w] = 0 (inputs of any mean, e.g. after a ReLU)
             = n Var(w) Var(x)        when also E[x] = 0.

Through L such layers Var(y_L) = (n Var(w))^L Var(x), which vanishes or explodes geometrically unless
n Var(w) = 1. The expectation of a polynomial in independent variables is computed by
:func:`expectation`, which factorizes each monomial over independent groups; it is the independent route
the derivation checks its general-n sums against.

>>> from varprop.derive.derivations.linear_variance import build
>>> d = build()
>>> d.verified, d.to_dict()["result"]["variance_zero_mean"]
(True, 'n*v_w*v_x')
"""
from __future__ import annotations

__all__ = ["build", "expectation", "symbols"]


def symbols():
    """The moment symbols: width n, E[w], Var(w), E[x], Var(x), depth L."""
    import sympy as sp
    n = sp.Symbol("n", positive=True, integer=True)
    mw, mx = sp.symbols("mu_w mu_x", real=True)
    vw, vx = sp.symbols("v_w v_x", positive=True)
    L = sp.Symbol("L", positive=True, integer=True)
    return n, mw, vw, mx, vx, L


def expectation(expr, groups: dict):
    """E[expr] for a polynomial in independent random variables.

    ``groups`` maps each random symbol to (mean, variance) of its distribution; distinct symbols are
    independent, so E[prod_v v^k_v] = prod_v E[v^k_v]. Only the first two moments are known, so a power
    above 2 raises ValueError.
    """
    import sympy as sp
    rv = list(groups)
    poly = sp.Poly(sp.expand(expr), *rv)
    total = sp.S.Zero
    for powers, coeff in poly.terms():
        term = coeff
        for v, k in zip(rv, powers):
            mean, var = groups[v]
            if k == 1:
                term *= mean
            elif k == 2:
                term *= var + mean ** 2
            elif k > 2:
                raise ValueError(f"E[{v}^{k}] needs a moment beyond the second")
        total += term
    return sp.expand(total)


def build(digits: int = 15):
    import sympy as sp

    from ..derivation import Derivation, within_range

    n, mw, vw, mx, vx, L = symbols()
    j, k = sp.symbols("j k", positive=True, integer=True)
    d = Derivation("linear-variance", "Variance through a linear layer",
                   "For $y_i = \\sum_{j=1}^n w_{ij} x_j$: $\\operatorname{Var}(y_i) = n\\operatorname{Var}(w)"
                   "\\operatorname{Var}(x)$ under named assumptions, the form for inputs of non-zero mean, and "
                   "$(n\\operatorname{Var}(w))^L$ after $L$ layers, hence $n\\operatorname{Var}(w) = 1$.")
    d.assume("iid_w", "the weights $w_{ij}$ are iid with mean $\\mu_w$ and variance $v_w$")
    d.assume("iid_x", "the inputs $x_j$ are iid with mean $\\mu_x$ and variance $v_x$")
    d.assume("independent", "the weights are independent of the inputs")
    d.assume("zero_mean_w", "the weights have zero mean, $\\mu_w = 0$")
    d.assume("zero_mean_x", "the inputs have zero mean, $\\mu_x = 0$")
    d.assume("same_layers", "every layer has width $n$ and the same weight distribution, and the output of "
             "one layer is the input of the next with the assumptions above holding again")

    Ew2, Ex2 = vw + mw ** 2, vx + mx ** 2
    d.text("Write $E[w^2] = v_w + \\mu_w^2$ and $E[x^2] = v_x + \\mu_x^2$. One term $w_{ij} x_j$ first.")
    d.step("mean of one term", mw * mx, mw * mx, label="E[w_{ij} x_j] = E[w_{ij}]E[x_j]",
           because="the expectation of a product of independent variables factorizes", uses=("independent",))
    one_var = sp.expand(Ew2 * Ex2 - (mw * mx) ** 2)
    d.step("variance of one term", Ew2 * Ex2 - (mw * mx) ** 2, vw * vx + vw * mx ** 2 + mw ** 2 * vx,
           label="\\operatorname{Var}(w_{ij} x_j) = E[w^2]E[x^2] - E[w]^2E[x]^2",
           because="$E[w^2x^2] = E[w^2]E[x^2]$ by independence", uses=("independent",))

    d.text("Now the sum over $j$. Its second moment is a double sum: the $n$ diagonal terms $j = k$ give "
           "$E[w^2]E[x^2]$; for $j \\ne k$ the four variables $w_{ij}, x_j, w_{ik}, x_k$ are independent and "
           "the term factorizes into $(\\mu_w\\mu_x)^2$.")
    delta = sp.KroneckerDelta(j, k)
    double = sp.Sum(Ew2 * Ex2 * delta + (mw * mx) ** 2 * (1 - delta), (j, 1, n), (k, 1, n))
    Ey2 = n * Ew2 * Ex2 + n * (n - 1) * (mw * mx) ** 2
    d.step("second moment of the sum", within_range(double), Ey2, label="E[y_i^2]",
           because="the double sum over $j, k$ with the diagonal picked out by $\\delta_{jk}$",
           uses=("iid_w", "iid_x", "independent"))
    d.step("mean of the sum", sp.Sum(mw * mx, (j, 1, n)).doit(), n * mw * mx, label="E[y_i]",
           because="linearity, each term has the same mean", uses=("iid_w", "iid_x"))
    general = n * (vw * vx + vw * mx ** 2 + mw ** 2 * vx)
    d.step("variance of the sum", Ey2 - (n * mw * mx) ** 2, general, label="\\operatorname{Var}(y_i)",
           because="the $n(n-1)$ cross terms cancel against $E[y_i]^2$: the terms are uncorrelated")
    d.step("the general form is n times one term's variance", general, n * one_var)

    w1, w2, w3, x1, x2, x3 = sp.symbols("w_1 w_2 w_3 x_1 x_2 x_3")
    groups = {w: (mw, vw) for w in (w1, w2, w3)} | {x: (mx, vx) for x in (x1, x2, x3)}
    y3 = w1 * x1 + w2 * x2 + w3 * x3
    direct = expectation(y3 ** 2, groups) - expectation(y3, groups) ** 2
    d.step("independent route: n = 3 by direct expansion", direct, general.subs(n, 3),
           label="\\operatorname{Var}(w_1x_1 + w_2x_2 + w_3x_3)",
           because="every monomial of the expanded square factorized over six independent variables",
           uses=("iid_w", "iid_x", "independent"))

    nonzero = general.subs(mw, 0)
    d.step("zero-mean weights", nonzero, n * vw * Ex2,
           because="with $\\mu_w = 0$ the input enters through its second moment $E[x^2]$, whatever its mean "
           "(e.g. ReLU outputs, which are positive)", uses=("zero_mean_w",))
    zero = nonzero.subs(mx, 0)
    d.step("zero-mean inputs too", zero, n * vw * vx, label="\\operatorname{Var}(y_i)",
           uses=("zero_mean_x",))

    V = sp.Function("V")
    l = sp.Symbol("l", integer=True, nonnegative=True)
    sol = sp.rsolve(V(l + 1) - n * vw * V(l), V(l), {V(0): vx})
    d.text("Stack $L$ layers: $V_{l+1} = n v_w V_l$ with $V_0 = v_x$, a linear recurrence.")
    d.step("L layers", sol.subs(l, L), (n * vw) ** L * vx, label="V_L",
           because="the solution of the recurrence found by rsolve", uses=("same_layers",))
    c = sp.Symbol("c", positive=True)
    d.step("below 1 the variance vanishes", sp.limit(sp.Rational(9, 10) ** L * vx, L, sp.oo), 0,
           label="\\lim_{L\\to\\infty} (9/10)^L v_x")
    d.step("above 1 it explodes", sp.limit(sp.Rational(11, 10) ** L * vx, L, sp.oo), sp.oo,
           label="\\lim_{L\\to\\infty} (11/10)^L v_x")
    import mpmath as mp
    with mp.workdps(digits + 5):
        d.numeric("at 50 layers a 10% error is a factor of about 117",
                  sp.Pow(sp.Rational(11, 10), 50, evaluate=False),
                  mp.mpf(11) ** 50 / mp.mpf(10) ** 50, digits)
    d.step("a per-layer factor c > 0 keeps depth L only through log c", sp.expand_log(sp.log(c ** L)),
           L * sp.log(c), label="\\log c^L")
    d.step("the only positive per-layer factor that keeps every depth",
           sp.solveset(sp.log(c), c, sp.Interval.open(0, sp.oo)), sp.FiniteSet(1),
           label="\\{c > 0 : c^L = 1\\}",
           because="$L \\log c = 0$ with $L \\ge 1$ forces $\\log c = 0$: $n v_w = 1$")
    var_w = sp.solve(sp.Eq(n * vw, 1), vw)[0]
    d.step("the condition", var_w, 1 / n, label="\\operatorname{Var}(w)")

    d.result("variance_general", general, latex="n\\left(v_w v_x + v_w \\mu_x^2 + \\mu_w^2 v_x\\right)")
    d.result("variance_zero_mean_weights", nonzero)
    d.result("variance_zero_mean", zero)
    d.result("variance_after_L_layers", (n * vw) ** L * vx)
    d.result("condition_var_w", var_w)
    return d

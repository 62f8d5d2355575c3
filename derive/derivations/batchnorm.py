"""Batch normalization: its backward pass derived by SymPy, its scale invariance, training vs test statistics.

Over a batch of m values of one unit (Ioffe & Szegedy 2015):

    mu = (1/m) sum_i x_i,   var = (1/m) sum_i (x_i - mu)^2,   xhat_i = (x_i - mu) / sqrt(var + eps),
    y_i = gamma xhat_i + beta.

Differentiating the forward graph (with upstream gradients dy_i = dL/dy_i at the forward pass, for any
differentiable loss: the chain rule is exact, no linearity of the loss is needed) gives

    dL/dx_i   = gamma / (m sqrt(var + eps)) (m dy_i - sum_j dy_j - xhat_i sum_j dy_j xhat_j)
    dL/dgamma = sum_i dy_i xhat_i,      dL/dbeta = sum_i dy_i,

proven here for a symbolic batch size (SymPy sums over an IndexedBase) and, independently, for
m = 2..6 with explicit symbols. With eps -> 0, BN(a W x) = BN(W x) for a > 0, so the gradient with respect to
the scaled weights is 1/a times the original: larger weights learn more slowly. At test time the batch
statistics are replaced by running averages: after T updates with momentum rho the running mean is
(1 - rho)^T mu_0 + (1 - (1 - rho)^T) mu in expectation, and the running variance uses the unbiased
batch variance, because E[var_batch] = (m - 1)/m sigma^2.

At initialization batch norm makes gradients explode with depth (Yang et al. 2019): in the wide, large-batch
limit, y = BN(W x), x' = phi(y) multiplies the gradient's second moment per layer by
E[phi'(z)^2] / Var(phi(z)), z ~ N(0, 1), whatever the weights' scale (BN divides by the batch std of W x,
which carries it). For ReLU that is (1/2) / ((pi - 1)/(2 pi)) = pi/(pi - 1) = 1.4669 per layer.

:func:`forward` and :func:`backward` are NumPy implementations of exactly these formulas (float64), which
the tests hold against central differences and PyTorch's autograd.

>>> import numpy as np
>>> from varprop.derive.derivations.batchnorm import forward, backward
>>> x = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 4.0]])
>>> y, cache = forward(x, np.ones(2), np.zeros(2), eps=0.0)
>>> np.allclose(y.mean(0), 0) and np.allclose(y.var(0), 1)
True
>>> dx, dgamma, dbeta = backward(np.ones_like(x), cache)
>>> np.allclose(dx, 0)          # a loss that is the sum of the outputs does not depend on x
True
"""
from __future__ import annotations

import numpy as np

__all__ = ["build", "forward", "backward", "explicit_gradient"]

EXPLICIT_SIZES = (2, 3, 4, 5, 6)


def forward(x, gamma, beta, eps=1e-5):
    """y = gamma (x - mu) / sqrt(var + eps) + beta per column of x (batch, features); returns (y, cache)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x must be (batch >= 2, features), got shape {x.shape}")
    mu = x.mean(0)
    var = x.var(0)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * inv
    return gamma * xhat + beta, (xhat, inv, np.asarray(gamma, dtype=np.float64))


def backward(dy, cache):
    """(dx, dgamma, dbeta) by the derived formula dx = gamma/(m s) (m dy - sum dy - xhat sum(dy xhat))."""
    xhat, inv, gamma = cache
    dy = np.asarray(dy, dtype=np.float64)
    m = dy.shape[0]
    sum_dy = dy.sum(0)
    sum_dy_xhat = (dy * xhat).sum(0)
    dx = gamma * inv / m * (m * dy - sum_dy - xhat * sum_dy_xhat)
    return dx, sum_dy_xhat, sum_dy


def _graph(m: int):
    """Symbols and the forward graph of one unit over an explicit batch of m."""
    import sympy as sp
    xs = sp.symbols(f"x_1:{m + 1}", real=True)
    dys = sp.symbols(f"dy_1:{m + 1}", real=True)
    g, beta = sp.symbols("gamma beta", real=True)
    eps = sp.Symbol("epsilon", positive=True)
    mu = sum(xs) / m
    var = sum((xi - mu) ** 2 for xi in xs) / m
    s = sp.sqrt(var + eps)
    xhat = [(xi - mu) / s for xi in xs]
    loss = sum(dyi * (g * xh + beta) for dyi, xh in zip(dys, xhat))
    return xs, dys, g, beta, eps, mu, var, s, xhat, loss


def explicit_gradient(m: int, k: int = 0):
    """(SymPy's dL/dx_k of the forward graph, the closed formula), both with sqrt(var + eps) written as a
    positive symbol s (eps = s^2 - var, a change of variables) so that the identity is rational."""
    import sympy as sp
    xs, dys, g, beta, eps, mu, var, s, xhat, loss = _graph(m)
    grad = sp.diff(loss, xs[k])
    formula = g / (m * s) * (m * dys[k] - sum(dys) - xhat[k] * sum(dy * xh for dy, xh in zip(dys, xhat)))
    S = sp.Symbol("s", positive=True)
    sub = {eps: S ** 2 - var}
    return grad.subs(sub), formula.subs(sub)


def _delta_sums(expr):
    """Collapse each sum over a Kronecker delta (what differentiating an IndexedBase sum leaves) and keep the
    in-range branch of the result; unlike a global ``doit`` this leaves the other sums alone, which is fast."""
    import sympy as sp
    from sympy.concrete.delta import deltasummation

    def collapse(e):
        (v, lo, hi), = e.limits
        return sum((deltasummation(t, (v, lo, hi)) if t.has(sp.KroneckerDelta) else sp.Sum(t, (v, lo, hi))
                    for t in sp.Add.make_args(sp.expand(e.function))), sp.S.Zero)

    def in_range(c):
        return c == sp.true or (isinstance(c, (sp.And, sp.Le, sp.Ge, sp.Lt, sp.Gt))
                                and all(s.is_integer and s.is_positive for s in c.free_symbols))

    expr = expr.replace(lambda e: isinstance(e, sp.Sum) and e.function.has(sp.KroneckerDelta), collapse)
    return expr.replace(lambda e: isinstance(e, sp.Piecewise) and in_range(e.args[0][1]), lambda e: e.args[0][0])


def build(digits: int = 15):
    import sympy as sp

    from ..derivation import Derivation
    from .linear_variance import expectation

    d = Derivation("batchnorm", "Batch normalization: backward pass, scale invariance, test-time statistics",
                   "SymPy differentiates the forward graph of batch normalization and reduces it to "
                   "$\\partial L/\\partial x_i = \\frac{\\gamma}{m\\sqrt{\\sigma^2+\\epsilon}}(m\\,dy_i - \\sum_j dy_j"
                   " - \\hat x_i \\sum_j dy_j \\hat x_j)$; normalization makes the layer invariant to the scale of "
                   "its weights and divides their gradient by that scale; test time uses running averages.")
    d.assume("batch", "one unit over a batch of $m \\ge 2$ values, normalized with the batch mean and the biased "
                      "batch variance, $\\epsilon > 0$")
    d.assume("upstream", "$dy_i = \\partial L/\\partial y_i$ evaluated at the forward pass, for any "
                         "differentiable loss $L(y_1, \\dots, y_m)$: by the chain rule $\\partial L/\\partial x_k = "
                         "\\sum_i dy_i\\,\\partial y_i/\\partial x_k$ exactly (shown below for $m = 3$), so "
                         "differentiating $\\sum_i dy_i y_i$ with the $dy_i$ held fixed gives the same gradient")
    d.assume("eps0", "$\\epsilon \\to 0$ (or negligible against the batch variance)")
    d.assume("iid", "at test time, the batch values are iid with mean $\\mu$ and variance $\\sigma^2$")

    m = sp.Symbol("m", positive=True, integer=True)
    i, j, k = sp.symbols("i j k", positive=True, integer=True)
    x, dy = sp.IndexedBase("x", real=True), sp.IndexedBase("dy", real=True)
    g, beta = sp.symbols("gamma beta", real=True)
    eps = sp.Symbol("epsilon", positive=True)
    mu = sp.Sum(x[j], (j, 1, m)) / m
    var = sp.Sum(x[j] ** 2, (j, 1, m)) / m - mu ** 2
    s = sp.sqrt(var + eps)

    def xh(idx):
        return (x[idx] - mu) / s

    d.text("**General batch size.** Write $\\mu = \\frac1m\\sum_j x_j$, $\\sigma^2 = \\frac1m\\sum_j x_j^2 - \\mu^2$, "
           "$\\hat x_i = (x_i - \\mu)/\\sqrt{\\sigma^2 + \\epsilon}$ and $L = \\sum_i dy_i(\\gamma\\hat x_i + \\beta)$; "
           "SymPy differentiates the sums term by term ($\\partial x_j/\\partial x_k = \\delta_{jk}$), for an index "
           "$k$ within $1..m$.")
    d.step("the mean's derivative", _delta_sums(sp.diff(mu, x[k])), 1 / m, label="\\partial\\mu/\\partial x_k",
           uses=("batch",))
    d.step("the variance's derivative", _delta_sums(sp.diff(var, x[k])), 2 * (x[k] - mu) / m,
           label="\\partial\\sigma^2/\\partial x_k", uses=("batch",))
    # spot checks at small batches (the default points reach m = 5, where the nested sums get slow)
    spots = [{m: 2, k: 1, g: sp.Rational(3, 2), eps: sp.Rational(1, 3)},
             {m: 3, k: 2, g: sp.Rational(-5, 7), eps: 2}, {m: 4, k: 4, g: sp.Rational(7, 3), eps: sp.Rational(1, 9)}]
    loss = sp.Sum(dy[i] * (g * xh(i) + beta), (i, 1, m))
    # beta's term sum_i dy_i beta does not depend on x: differentiate the gamma term alone
    dx_general = _delta_sums(sp.diff(g * sp.Sum(dy[i] * xh(i), (i, 1, m)), x[k]))
    formula = g / (m * s) * (m * dy[k] - sp.Sum(dy[i], (i, 1, m)) - xh(k) * sp.Sum(dy[i] * xh(i), (i, 1, m)))
    d.step("dL/dx_k for any m", dx_general, formula, label="\\partial L/\\partial x_k",
           because="the chain rule through $\\mu$ and $\\sigma^2$; the two sums collect the terms of every "
           "$\\hat x_i$ that depends on $x_k$", uses=("batch", "upstream"), at=spots)
    d.step("dL/dgamma", sp.diff(loss, g), sp.Sum(dy[i] * xh(i), (i, 1, m)), label="\\partial L/\\partial\\gamma",
           uses=("upstream",), at=spots)
    d.step("dL/dbeta", sp.diff(loss, beta), sp.Sum(dy[i], (i, 1, m)), label="\\partial L/\\partial\\beta",
           uses=("upstream",))

    d.text("**Any loss.** For $m = 3$ and a general differentiable $L(y_1, y_2, y_3)$, SymPy's derivative of "
           "$L(y(x))$ is the formula with $dy_i = \\partial L/\\partial y_i$: the chain rule, with no assumption on "
           "the loss.")
    xs3, dys3, g3, beta3, eps3, mu3, var3, s3, xhat3, _ = _graph(3)
    Lf = sp.Function("L")
    ys3 = [g3 * xh + beta3 for xh in xhat3]
    full = sp.diff(Lf(*ys3), xs3[0])
    partials = [sp.Subs(sp.Derivative(Lf(*sp.symbols("t_1:4")), ti), sp.symbols("t_1:4"), ys3).doit()
                for ti in sp.symbols("t_1:4")]
    formula3 = g3 / (3 * s3) * (3 * partials[0] - sum(partials) - xhat3[0] * sum(pt * xh for pt, xh in zip(partials, xhat3)))
    S3 = sp.Symbol("s", positive=True)
    sub3 = {eps3: S3 ** 2 - var3}
    d.step("m = 3, a general loss L(y): the chain rule gives the formula", full.subs(sub3), formula3.subs(sub3),
           label="\\partial L(y(x))/\\partial x_1\\big|_{m=3}", uses=("batch", "upstream"), at=[])

    d.text("**Explicit batches, an independent route.** For $m = 2, \\dots, 6$ with symbols $x_1..x_m$, SymPy "
           "differentiates the expanded graph; writing $\\sqrt{\\sigma^2 + \\epsilon}$ as a positive symbol $s$ "
           "(that is, $\\epsilon = s^2 - \\sigma^2$) makes both sides rational, so the comparison is exact.")
    for size in EXPLICIT_SIZES:
        grad, closed = explicit_gradient(size, 0)
        d.step(f"m = {size}: dL/dx_1", grad, closed, label=f"\\partial L/\\partial x_1\\big|_{{m={size}}}",
               uses=("batch", "upstream"))

    d.text("**Invariance to the scale of the preceding weights.** Let $h_i = w_1 u_{i1} + w_2 u_{i2}$ for a "
           "batch of three inputs $u_i$; with $\\epsilon = 0$ normalization cancels any factor $a > 0$:")
    a = sp.Symbol("a", positive=True)
    w1, w2 = sp.symbols("w_1 w_2", real=True)
    us = sp.symbols("u_11 u_12 u_21 u_22 u_31 u_32", real=True)

    def normalized(wa, wb):
        hs = [wa * us[2 * r] + wb * us[2 * r + 1] for r in range(3)]
        mh = sum(hs) / 3
        vh = sum((hh - mh) ** 2 for hh in hs) / 3
        return [(hh - mh) / sp.sqrt(vh) for hh in hs]

    base = normalized(w1, w2)
    scaled = normalized(a * w1, a * w2)
    d.step("BN(a W x) = BN(W x)", scaled[0], base[0], label="\\hat h_1(a w)", uses=("eps0",),
           because="$\\mu$ scales by $a$ and $\\sqrt{\\sigma^2}$ by $|a| = a$")
    d.text("So the loss, as a function of the weights, is homogeneous of degree 0: for $w_2 > 0$ it is a "
           "function of the ratio alone, $L(w) = G(w_1/w_2)$ for some differentiable $G$. Differentiating:")
    G = sp.Function("G")
    v1, v2 = sp.symbols("v_1 v_2", positive=True)
    Lw = G(w1 / w2)
    grad_scaled = sp.diff(Lw, w1).subs({w1: a * v1, w2: a * v2}, simultaneous=True)
    grad_base = sp.diff(Lw, w1).subs({w1: v1, w2: v2}, simultaneous=True)
    d.step("the weight gradient scales by 1/a", grad_scaled, grad_base / a,
           label="\\partial L/\\partial w_1\\big|_{a v}", uses=("eps0", "upstream"),
           because="$L(a w) = L(w)$, so $a\\,\\nabla L(a w) = \\nabla L(w)$: scaling the weights by $a$ "
           "divides their gradient by $a$ (and the effective learning rate by $a^2$)", at=[])
    d.step("Euler: the gradient is orthogonal to the weights", w1 * sp.diff(Lw, w1) + w2 * sp.diff(Lw, w2), 0,
           label="w \\cdot \\nabla_w L", uses=("eps0",),
           because="degree-0 homogeneity; so gradient steps never shrink $\\|w\\|$", at=[])

    d.text("**Training vs test statistics.** Training normalizes with the batch's own $\\mu_B, \\sigma_B^2$; "
           "test time uses running averages, updated as $r \\leftarrow (1-\\rho) r + \\rho\\,\\mu_B$ (PyTorch's "
           "momentum $\\rho$). After $T$ updates from $r_0$, in expectation:")
    rho = sp.Symbol("rho", positive=True)
    T = sp.Symbol("T", positive=True, integer=True)
    t = sp.Symbol("t", nonnegative=True, integer=True)
    mu0, mut = sp.symbols("r_0 mu", real=True)
    d.step("running mean after T updates", (1 - rho) ** T * mu0 + sp.Sum(rho * (1 - rho) ** t, (t, 0, T - 1)).doit() * mut,
           (1 - rho) ** T * mu0 + (1 - (1 - rho) ** T) * mut, label="E[r_T]", uses=("iid",),
           because="a geometric series: the weights $\\rho(1-\\rho)^t$ sum to $1 - (1-\\rho)^T$")
    x3 = sp.symbols("x_1:4", real=True)
    mean_x = sp.Symbol("mu", real=True)
    sig2 = sp.Symbol("sigma^2", positive=True)
    xbar = sum(x3) / 3
    biased = sum((xv - xbar) ** 2 for xv in x3) / 3
    e_biased = expectation(biased, {xv: (mean_x, sig2) for xv in x3})
    d.step("the biased batch variance underestimates (m = 3)", e_biased, sp.Rational(2, 3) * sig2,
           label="E[\\sigma_B^2]\\big|_{m=3} = \\frac{m-1}{m}\\sigma^2", uses=("iid",),
           because="so the running variance averages the unbiased $\\frac{m}{m-1}\\sigma_B^2$")
    d.step("the unbiased batch variance (m = 3)", e_biased * sp.Rational(3, 2), sig2, uses=("iid",),
           label="E\\left[\\tfrac{m}{m-1}\\sigma_B^2\\right]")
    d.text("At test time the layer is the fixed affine map $y = \\gamma (x - r_\\mu)/\\sqrt{r_{\\sigma^2} + \\epsilon} "
           "+ \\beta$: deterministic per example, so a batch of one gives the same output as a large batch.")

    _explosion(d, digits)

    d.result("dx", formula)
    d.result("dgamma", sp.Sum(dy[i] * xh(i), (i, 1, m)))
    d.result("dbeta", sp.Sum(dy[i], (i, 1, m)))
    d.result("weight_gradient_scale", 1 / a)
    return d


def _explosion(d, digits: int) -> None:
    """Batch norm's gradient explosion at initialization (Yang et al. 2019): the per-layer growth
    E[phi'(z)^2] / Var(phi(z)), pi/(pi - 1) for ReLU."""
    import mpmath as mp
    import sympy as sp

    from .. import maps
    d.assume("bn_wide", "the wide and large-batch limit of $y = \\mathrm{BN}(W x)$, $x' = \\phi(y)$ "
             "(Yang et al. 2019): each unit's normalized pre-activation is $N(0, 1)$ over the batch; the batch "
             "std of $h_i = \\sum_j W_{ij} x_j$ is $\\sqrt{\\sigma_w^2 \\operatorname{Var}\\phi}$, the batch mean "
             "removed; the backward projection removes 2 of the batch's $B$ directions (negligible as "
             "$B \\to \\infty$); backward, the weights are treated as independent of the gradient")
    z = sp.Symbol("z", real=True)
    pdf = sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)
    sw = sp.Symbol("sigma_w^2", positive=True)
    e1 = sp.integrate(z * pdf, (z, 0, sp.oo))
    e2 = sp.integrate(z ** 2 * pdf, (z, 0, sp.oo))
    dd = sp.integrate(pdf, (z, 0, sp.oo))
    d.text("**Gradient explosion at initialization** (Yang et al. 2019). Backward through one layer, the "
           "gradient is multiplied by $\\phi'(y)$, divided by the batch std of $h$ (BN's backward), and "
           "multiplied by $W^T$, which scales its second moment by $\\sigma_w^2$; the std carries "
           "$\\sigma_w$ too, so the weights' scale cancels:")
    v, D = sp.symbols("V D", positive=True)
    d.step("the weights' scale cancels", sw * D / (sw * v), D / v,
           label="\\frac{\\sigma_w^2 E[\\phi'(z)^2]}{\\sigma_w^2 \\operatorname{Var}\\phi(z)}", uses=("bn_wide",),
           because="$D = E[\\phi'(z)^2]$, $V = \\operatorname{Var}\\phi(z)$: the per-layer factor on the gradient's "
           "second moment")
    d.step("ReLU: the variance of relu(z)", e2 - e1 ** 2, (sp.pi - 1) / (2 * sp.pi),
           label="E[\\mathrm{relu}(z)^2] - E[\\mathrm{relu}(z)]^2", uses=("bn_wide",),
           because="$E[\\mathrm{relu}(z)] = 1/\\sqrt{2\\pi}$, $E[\\mathrm{relu}(z)^2] = 1/2$")
    d.step("ReLU: E[relu'(z)^2]", dd, sp.Rational(1, 2), label="E[\\mathrm{relu}'(z)^2]", uses=("bn_wide",))
    rate = sp.simplify(dd / (e2 - e1 ** 2))
    d.step("so each layer multiplies the gradient's second moment by pi/(pi - 1)", rate, sp.pi / (sp.pi - 1),
           label="\\lambda_{\\mathrm{relu}}")
    with mp.workdps(digits + 10):
        val = mp.pi / (mp.pi - 1)
    d.numeric("its value", sp.pi / (sp.pi - 1), val, digits, uses=("bn_wide",),
              because="above 1: the gradient grows geometrically from the output back to the input, whatever "
              "the initialization's scale",
              reference=(maps.batchnorm_gradient_rate("relu"), 1e-12, "the float Gaussian quadrature of derive.maps"))
    d.result("relu_gradient_growth", sp.pi / (sp.pi - 1))

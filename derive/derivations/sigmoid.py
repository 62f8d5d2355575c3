"""The sigmoid: sigma' <= 1/4, so gradients shrink by 4^L; positive outputs give one-signed updates per example.

sigma(x) = 1/(1 + e^(-x)) has sigma' = sigma (1 - sigma) and 1/4 - sigma(1 - sigma) = (sigma - 1/2)^2 >= 0,
so sigma' <= 1/4 with equality only at x = 0 (the only zero of sigma''). Through L layers
h_l = W_l sigma(h_{l-1}) the chain rule gives dh_L/dh_0 = prod_l W_l diag(sigma'(h_{l-1})), so

    ||dLoss/dh_0|| <= (1/4)^L prod_l ||W_l|| ||dLoss/dh_L||.

At initialization ||W_l|| is not 1: a Gaussian n x n layer with Var(w) = sigma_w^2/n has operator norm near
2 sigma_w (Bai & Yin 1988), so the bound is about (sigma_w/2)^L, (1/2)^L for Xavier's sigma_w = 1.

The outputs are positive, so for a neuron h_i = sum_j w_ij x_j fed by sigmoids, one example's gradient
dLoss/dw_ij = delta_i x_j has the sign of delta_i for every j: all weights of a neuron move in the same
direction (LeCun et al. 1998, Efficient BackProp, Section 4.3). That holds per example: a minibatch sums
delta_i^(b) x_j^(b) over examples whose delta_i differ in sign, and its rows mix signs.

>>> from varprop.derive.derivations.sigmoid import build
>>> d = build()
>>> d.verified, d.to_dict()["result"]["max_derivative"]
(True, '0.25')
"""
from __future__ import annotations

__all__ = ["build", "mixed_sign_rows", "gaussian_operator_norm"]


def mixed_sign_rows(seed: int = 0, widths=(6, 5, 4, 3), batch: int = 1) -> int:
    """The number of neurons (after the first layer) whose weight-gradient row has both signs, in a NumPy
    sigmoid network on ``batch`` random inputs (the gradient summed over them): 0 for one example by the
    theorem; a minibatch mixes signs."""
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, widths[0]))
    Ws = [rng.standard_normal((o, i)) / np.sqrt(i) for i, o in zip(widths[:-1], widths[1:])]
    acts = [x]
    for W in Ws:
        acts.append(1 / (1 + np.exp(-(acts[-1] @ W.T))))
    g = rng.standard_normal((batch, widths[-1]))          # an arbitrary upstream gradient dLoss/dx_L per example
    mixed = 0
    for k in range(len(Ws) - 1, -1, -1):
        delta = g * acts[k + 1] * (1 - acts[k + 1])       # dLoss/dh_k
        grad_W = delta.T @ acts[k]
        if k > 0:                                          # inputs of layer k > 0 are sigmoid outputs
            signs = np.sign(grad_W)
            mixed += int(np.sum(np.any(signs != signs[:, :1], axis=1)))
        g = delta @ Ws[k]
    return mixed


def gaussian_operator_norm(n: int = 512, sigma_w: float = 1.0, seed: int = 0) -> float:
    """The largest singular value of an n x n matrix of iid N(0, sigma_w^2/n) entries (near 2 sigma_w)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    return float(np.linalg.norm(rng.standard_normal((n, n)) * (sigma_w / np.sqrt(n)), 2))


def build(digits: int = 15):
    import mpmath as mp
    import sympy as sp

    from ..derivation import Derivation

    x = sp.Symbol("x", real=True)
    u = sp.Symbol("sigma", positive=True)
    sig = 1 / (1 + sp.exp(-x))
    d = Derivation("sigmoid", "The sigmoid's vanishing gradient and one-signed weight updates per example",
                   "$\\sigma' \\le 1/4$ with the maximum at 0, so a gradient through $L$ sigmoid layers is bounded "
                   "by $(1/4)^L \\prod_l \\|W_l\\|$, about $(\\sigma_w/2)^L$ at a Gaussian initialization; and since "
                   "$\\sigma > 0$ every weight of a neuron receives a gradient of one sign from each example (a "
                   "minibatch mixes them).")
    d.assume("sigmoid", "$\\sigma(x) = 1/(1 + e^{-x})$ on every layer")
    d.assume("layers", "layer $l$ computes $h_l = W_l \\sigma(h_{l-1})$")
    d.assume("fed_by_sigmoid", "the neuron's inputs $x_j$ are sigmoid outputs of the previous layer")
    d.assume("per_example", "the gradient of one example's loss (not a minibatch's sum)")

    s1 = sp.diff(sig, x)
    d.step("the derivative", s1, sig * (1 - sig), label="\\sigma'(x)", uses=("sigmoid",))
    s2 = sp.diff(sig, x, 2)
    d.step("the second derivative", s2, sig * (1 - sig) * (1 - 2 * sig), label="\\sigma''(x)")
    d.step("its only real zero", sp.solveset(s2, x, sp.S.Reals), sp.FiniteSet(0),
           label="\\{x : \\sigma''(x) = 0\\}")
    d.step("the value there", s1.subs(x, 0), sp.Rational(1, 4), label="\\sigma'(0)")
    d.step("a square below 1/4", sp.Rational(1, 4) - u * (1 - u), (u - sp.Rational(1, 2)) ** 2,
           label="\\tfrac14 - \\sigma(1 - \\sigma)")
    d.step("which is non-negative, zero only at sigma = 1/2 (x = 0)",
           sp.Ge((u - sp.Rational(1, 2)) ** 2, 0, evaluate=False), sp.true)
    d.step("and sigma' vanishes in both tails", sp.limit(s1, x, sp.oo) + sp.limit(s1, x, -sp.oo), 0,
           label="\\lim_{x\\to\\infty}\\sigma' + \\lim_{x\\to-\\infty}\\sigma'")

    d.text("Through layers: for scalar layers $h_l = w_l\\sigma(h_{l-1})$ the chain rule, written out for "
           "three layers, is the product of $w_l \\sigma'(h_{l-1})$; with matrices it is "
           "$\\prod_l W_l \\operatorname{diag}(\\sigma'(h_{l-1}))$, whose norm is at most "
           "$\\prod_l \\|W_l\\| \\max\\sigma' = (1/4)^L\\prod_l\\|W_l\\|$.")
    h0 = sp.Symbol("h_0", real=True)
    w = sp.symbols("w_1:4", real=True)
    h1 = w[0] * sig.subs(x, h0)
    h2 = w[1] * sig.subs(x, h1)
    h3 = w[2] * sig.subs(x, h2)
    chain = (w[0] * s1.subs(x, h0)) * (w[1] * s1.subs(x, h1)) * (w[2] * s1.subs(x, h2))
    d.step("the chain rule through three layers", sp.diff(h3, h0), chain, label="\\frac{dh_3}{dh_0}",
           uses=("layers",))
    L = sp.Symbol("L", positive=True, integer=True)
    l = sp.Symbol("l", positive=True, integer=True)
    a = sp.Symbol("a", positive=True)
    d.step("the bound through L layers of weight norm a", sp.Product(a / 4, (l, 1, L)).doit(),
           (a / 4) ** L, label="\\prod_{l=1}^{L} \\tfrac14 \\|W_l\\|")
    d.text("At initialization the layers do not have unit norm: an $n \\times n$ layer of iid $N(0, \\sigma_w^2/n)$ "
           "weights has operator norm $\\|W\\| \\to 2\\sigma_w$ as $n \\to \\infty$ (Bai & Yin 1988, the edge of "
           "the quarter-circle law of its singular values), so the bound is about $(\\sigma_w/2)^L$.")
    d.assume("gaussian_init", "the layers are $n \\times n$ with iid $N(0, \\sigma_w^2/n)$ weights (Xavier for "
             "square layers: $\\sigma_w = 1$)")
    sgw = sp.Symbol("sigma_w", positive=True)
    d.step("the bound at initialization", ((a / 4) ** L).subs(a, 2 * sgw), (sgw / 2) ** L,
           label="(\\|W\\|/4)^L\\big|_{\\|W\\| = 2\\sigma_w}", uses=("gaussian_init",))
    norm = gaussian_operator_norm(512, 1.0, 0)
    d.step("numeric check: a 512 x 512 layer with Var(w) = 1/512 has operator norm within 3% of 2",
           sp.Lt(abs(sp.Float(norm, 15) - 2), sp.Rational(6, 100), evaluate=False), sp.true,
           label=f"|\\,\\|W\\| - 2| = {abs(norm - 2):.4f}", uses=("gaussian_init",))
    with mp.workdps(digits + 5):
        d.numeric("ten Xavier layers: the bound (1/2)^10", sp.Pow(sp.Rational(1, 2), 10, evaluate=False),
                  mp.mpf(1) / 2 ** 10, digits)

    d.text("Positive outputs: for $h_i = \\sum_j w_{ij} x_j$ the gradient of the loss with respect to "
           "$w_{ij}$ is $\\delta_i x_j$ with $\\delta_i = \\partial\\ell/\\partial h_i$.")
    d.step("sigmoid outputs are positive", sp.Gt(sig, 0, evaluate=False), sp.true, uses=("sigmoid",))
    xs = sp.symbols("x_1:4", positive=True)
    ws = sp.symbols("w_i1:4", real=True)
    ell = sp.Function("ell")
    h = sum(wj * xj for wj, xj in zip(ws, xs))
    delta = sp.Symbol("delta_i", real=True)
    grads = sp.Matrix([sp.diff(ell(h), wj) for wj in ws])
    dl = sp.Subs(sp.Derivative(ell(sp.Symbol("t")), sp.Symbol("t")), sp.Symbol("t"), h).doit()
    d.step("the weight gradient of one neuron (three inputs)", grads, sp.Matrix([dl * xj for xj in xs]),
           label="\\left(\\frac{\\partial \\ell}{\\partial w_{ij}}\\right)_j")
    d.step("its sign is the sign of delta_i for every j",
           sp.Matrix([sp.sign(delta * xj) for xj in xs]), sp.Matrix([sp.sign(delta)] * 3),
           label="\\operatorname{sign}(\\delta_i x_j)", uses=("fed_by_sigmoid", "per_example"))
    d.step("numeric check: neurons with mixed-sign gradient rows in a NumPy sigmoid network, one example",
           sp.Integer(mixed_sign_rows()), 0, label="\\#\\text{mixed rows}", uses=("per_example",))
    d.text("Per example only: a minibatch's gradient $\\sum_b \\delta_i^{(b)} x_j^{(b)}$ adds rows of different "
           "signs (the $\\delta_i^{(b)}$ of different examples differ in sign), so its rows mix signs.")
    mixed = mixed_sign_rows(0, widths=(8, 16, 16, 4), batch=16)
    d.step("numeric contrast: a sigmoid network 8-16-16-4 (20 rows fed by sigmoids), a minibatch of 16", sp.Gt(sp.Integer(mixed), 0, evaluate=False),
           sp.true, label=f"\\#\\text{{mixed rows}} = {mixed} > 0")

    d.result("max_derivative", sp.Rational(1, 4))
    d.result("argmax", sp.Integer(0))
    d.result("gradient_bound", (a / 4) ** L, latex="(1/4)^L \\prod_l \\|W_l\\|")
    d.result("ten_xavier_layer_bound", sp.Rational(1, 2 ** 10))
    d.result("minibatch_mixed_rows", sp.Integer(mixed))
    return d

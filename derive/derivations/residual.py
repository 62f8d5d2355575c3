"""Residual blocks: variances add; the growth per block depends on how the branch is built; Fixup's scale.

For x_{l+1} = x_l + F(x_l) with a branch uncorrelated with its input (E[x F(x)] = E[x] E[F(x)], true at
initialization when the branch ends in zero-mean weights drawn independently of everything else):

    Var(x + F(x)) = Var(x) + Var(F(x)),    so    V_L = (1 + r)^L V_0    when Var(F(x)) = r Var(x).

The ratio r is set by the branch's construction (a dense layer of Var(w) = c/fan_in multiplies the second
moment by c; a ReLU of a symmetric input halves it):

    x + W2 relu(W1 x),        W1 He, W2 LeCun          r = 2 (1/2) 1 = 1     ->  2^L
    x + W2 relu(W1 relu(x)),  both He (pre-activation) r = (1/2) 2 (1/2) 2 = 1  ->  2^L
    x + W2 relu(W1 x),        both He                  r = 2 (1/2) 2 = 2     ->  3^L
    last layer of the branch zero                      r = 0                 ->  1

So "a He-initialized branch keeps its input's variance" holds only for the first two constructions.

Fixup (Zhang, Dauphin & Ma 2019, Section 3) does not come from the forward variance: with a zero last layer
the forward variance is V_0 whatever the scale s of the other layers. It is their argument about the first
SGD step: for a positively homogeneous branch F = a_1 ... a_m G(x), a step of size eta changes F, to first
order, by -eta l'(F) G^2 sum_j prod_{k != j} a_k^2; with a_m = 0 and a_1 = ... = a_{m-1} = s only the last
term survives, s^(2m-2). Asking each of the L branches to change the output by Theta(eta/L), so that the
network changes by Theta(eta) whatever its depth, gives L s^(2m-2) = 1, s = L^(-1/(2m-2)).

>>> from varprop.derive.derivations.residual import build
>>> d = build()
>>> d.verified, d.to_dict()["result"]["fixup_scale"]
(True, 'L**(-1/(2*(m - 1)))')
"""
from __future__ import annotations

__all__ = ["build", "BRANCHES", "branch_ratio"]

# each branch as its layers in order: ("dense", c) for Var(w) = c/fan_in, ("relu",) for a ReLU
BRANCHES = {
    "he_lecun": (("dense", 2), ("relu",), ("dense", 1)),
    "preact_he": (("relu",), ("dense", 2), ("relu",), ("dense", 2)),
    "he_he": (("dense", 2), ("relu",), ("dense", 2)),
}


def branch_ratio(layers):
    """Var(F(x)) / Var(x) of a branch given as in :data:`BRANCHES` (a SymPy Rational)."""
    import sympy as sp
    r = sp.Integer(1)
    for layer in layers:
        r *= sp.Integer(layer[1]) if layer[0] == "dense" else sp.Rational(1, 2)
    return r


def build(digits: int = 15):
    import mpmath as mp
    import sympy as sp

    from ..derivation import Derivation

    vx, vF, s, eta, g, lp, c, m2 = sp.symbols("v_x v_F s eta g ell' c m_2", positive=True)
    mx, mF, ExF = sp.symbols("mu_x mu_F E_{xF}", real=True)
    L = sp.Symbol("L", positive=True, integer=True)
    m = sp.Symbol("m", integer=True, positive=True)
    l = sp.Symbol("l", integer=True, nonnegative=True)
    z = sp.Symbol("z", real=True)
    V = sp.Function("V")
    d = Derivation("residual", "Residual blocks: variances add; the branch sets the growth; Fixup's scaling",
                   "$\\operatorname{Var}(x + F(x)) = \\operatorname{Var}(x) + \\operatorname{Var}(F(x))$ for a "
                   "branch uncorrelated with its input, so the growth per block is $1 + r$ with "
                   "$r = \\operatorname{Var}(F)/\\operatorname{Var}(x)$: $2^L$ for a He-then-LeCun or a "
                   "pre-activation He branch, $3^L$ for He then He, 1 with a zero last layer. Fixup's "
                   "$L^{-1/(2m-2)}$ is Zhang, Dauphin & Ma's condition on the first SGD step, not a forward "
                   "variance condition.")
    d.assume("uncorrelated", "the branch output is uncorrelated with the block input, "
             "$E[xF(x)] = E[x]E[F(x)]$: at initialization the branch ends in zero-mean weights drawn "
             "independently, so $E[F(x) \\mid x] = 0$")
    d.assume("layer", "a dense layer with zero-mean iid weights of $\\operatorname{Var}(w) = c/\\mathrm{fan_{in}}$, "
             "independent of its input, maps the second moment $E[x^2]$ to $c\\,E[x^2]$ (linear-variance)")
    d.assume("symmetric", "every ReLU's input is symmetric about 0 (a zero-mean weight layer's output, or the "
             "residual stream, a sum of such terms and a symmetric input), so the stream's variance is its "
             "second moment")
    d.assume("branches", "the branches: $x + W_2\\,\\mathrm{relu}(W_1 x)$ with $W_1$ He ($c = 2$) and $W_2$ LeCun "
             "($c = 1$); the pre-activation $x + W_2\\,\\mathrm{relu}(W_1\\,\\mathrm{relu}(x))$ with both He; "
             "$x + W_2\\,\\mathrm{relu}(W_1 x)$ with both He")
    d.assume("zero_last", "the last layer of every branch is initialized to zero, so $F(x) = 0$")
    d.assume("homogeneous", "Fixup's branch is positively homogeneous in each layer's scalar multiplier: "
             "$F = a_1 \\cdots a_m G(x)$ (ReLU layers, no biases), with $a_m = 0$ and "
             "$a_1 = \\dots = a_{m-1} = s$ at initialization")
    d.assume("sgd_update", "Zhang, Dauphin & Ma 2019 (Section 3): one SGD step of size $\\eta$ on the loss "
             "$\\ell(F)$, to first order in $\\eta$, should change each of the $L$ branches' outputs by "
             "$\\Theta(\\eta/L)$, so that the network's output changes by $\\Theta(\\eta)$ whatever its depth")

    second = (vx + mx ** 2) + 2 * ExF + (vF + mF ** 2)
    d.step("variance of the sum", second - (mx + mF) ** 2, vx + vF + 2 * (ExF - mx * mF),
           label="E[(x+F)^2] - (E[x] + E[F])^2",
           because="expand the square; $E_{xF} = E[xF(x)]$")
    d.step("the covariance vanishes", (vx + vF + 2 * (ExF - mx * mF)).subs(ExF, mx * mF), vx + vF,
           label="\\operatorname{Var}(x + F(x))", uses=("uncorrelated",))

    pdf = sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)
    half = sp.integrate(z ** 2 * pdf, (z, 0, sp.oo)) / sp.integrate(z ** 2 * pdf, (z, -sp.oo, sp.oo))
    d.step("a ReLU halves the second moment of a symmetric input", half, sp.Rational(1, 2),
           label="E[\\mathrm{relu}(h)^2] / E[h^2]",
           because="for a Gaussian $h$ by integration; for any symmetric $h$ the negative half is zeroed",
           uses=("symmetric",))
    d.step("a dense layer multiplies it by c", sp.Sum(c / sp.Symbol("n", positive=True) * m2,
                                                      (sp.Symbol("j", integer=True, positive=True), 1,
                                                       sp.Symbol("n", positive=True))).doit(), c * m2,
           label="\\sum_{j=1}^{n} \\frac{c}{n} E[x_j^2]", uses=("layer",),
           because="$m_2 = E[x_j^2]$ for every input; the cross terms vanish for zero-mean independent weights")

    d.text("A stack of $L$ blocks with $\\operatorname{Var}(F(x_l)) = r V_l$ follows $V_{l+1} = (1 + r) V_l$. "
           "The ratio $r$ is the product of the branch's factors, in order:")
    ratios = {}
    names = {"he_lecun": "W1 He, W2 LeCun", "preact_he": "pre-activation, both He", "he_he": "W1 He, W2 He"}
    expected = {"he_lecun": 1, "preact_he": 1, "he_he": 2}
    for key, layers in BRANCHES.items():
        factors = [sp.Integer(x[1]) if x[0] == "dense" else half for x in layers]
        r = sp.Mul(*factors, evaluate=False)
        ratios[key] = sp.simplify(r)
        d.step(f"{names[key]}: the branch's variance ratio", r, expected[key],
               label=f"r_{{\\mathrm{{{key.replace('_', '-')}}}}}", uses=("branches", "layer", "symmetric"))
        sol = sp.rsolve(V(l + 1) - (1 + ratios[key]) * V(l), V(l), {V(0): vx})
        d.step(f"{names[key]}: the variance after L blocks", sol.subs(l, L), (1 + expected[key]) ** L * vx,
               label="V_L", because="$V_{l+1} = (1 + r) V_l$, solved by rsolve", uses=("uncorrelated",))
    with mp.workdps(digits + 5):
        d.numeric("after 50 blocks, He then LeCun", sp.Pow(2, 50, evaluate=False), mp.mpf(2) ** 50, digits)
        d.numeric("after 50 blocks, He then He", sp.Pow(3, 50, evaluate=False), mp.mpf(3) ** 50, digits)
    zero = sp.rsolve(V(l + 1) - V(l), V(l), {V(0): vx})
    d.step("zero-initialized last layers keep it", zero.subs(l, L), vx, label="V_L",
           uses=("zero_last",))
    d.step("whatever the scale s of the branch's other layers", sp.diff(zero.subs(l, L), s), 0,
           label="\\partial V_L / \\partial s",
           because="$F = 0$ at initialization, so the forward variance cannot fix $s$: Fixup's scale needs "
           "another argument", uses=("zero_last",))

    d.text("**Fixup's scale from the first SGD step** (Zhang, Dauphin & Ma 2019, Section 3, in its scalar form). "
           "For $F = a_1 \\cdots a_m g$ with $g = G(x)$ fixed, SGD moves each multiplier by "
           "$\\Delta a_j = -\\eta\\,\\ell'(F)\\,\\partial F/\\partial a_j$; to first order the branch changes by "
           "$\\Delta F = \\sum_j (\\partial F/\\partial a_j) \\Delta a_j = -\\eta\\,\\ell' \\sum_j "
           "(\\partial F / \\partial a_j)^2$. For $m = 2, 3, 4$ SymPy expands it at the Fixup initialization:")
    for mm in (2, 3, 4):
        a = sp.symbols(f"a_1:{mm + 1}", real=True)
        F = sp.Mul(*a) * g
        dF = sum(sp.diff(F, aj) * (-eta * lp * sp.diff(F, aj)) for aj in a)
        init = {aj: s for aj in a[:-1]}
        init[a[-1]] = 0
        d.step(f"m = {mm}: the first step's change of the branch", dF.subs(init), -eta * lp * g ** 2 * s ** (2 * mm - 2),
               label=f"\\Delta F\\big|_{{m={mm}}}", uses=("homogeneous",),
               because="every term but $j = m$ contains $a_m^2 = 0$")
    d.step("so a branch of m layers changes by eta l' g^2 s^(2m-2), and L branches by L times that",
           L * (-eta * lp * g ** 2 * s ** (2 * m - 2)) / L, -eta * lp * g ** 2 * s ** (2 * m - 2),
           label="\\frac{1}{L}\\sum_{i=1}^{L} \\Delta F_i")
    scale = sp.solve(sp.Eq(L * s ** (2 * m - 2), 1), s)[0]
    d.step("Theta(eta/L) per branch: L s^(2m-2) = 1", scale, L ** (-1 / (2 * m - 2)), label="s",
           because="the network's first-step change $L\\,\\eta\\,\\ell' g^2 s^{2m-2}$ is then $\\eta\\,\\ell' g^2$, "
           "independent of the depth", uses=("sgd_update",))
    d.step("each branch then changes by 1/L of the whole", sp.simplify(scale ** (2 * m - 2)), 1 / L,
           label="s^{2m-2}")
    d.step("without the scale (s = 1) the first step grows with depth", sp.limit(L * 1 ** (2 * m - 2), L, sp.oo),
           sp.oo, label="\\lim_{L\\to\\infty} L \\cdot 1^{2m-2}")
    with mp.workdps(digits + 5):
        d.numeric("Fixup scale for 54 blocks of 2 layers (ResNet-110)", scale.subs({L: 54, m: 2}),
                  mp.mpf(54) ** -0.5, digits)
    d.compare("Fixup exponent for m = 2", (-1 / (2 * m - 2)).subs(m, 2), -0.5,
              "Zhang, Dauphin & Ma 2019, Fixup, Section 3: scale by L^(-1/(2m-2))")

    d.result("variance_of_sum", vx + vF)
    d.result("he_lecun_blocks", 2 ** L * vx)
    d.result("preact_he_blocks", 2 ** L * vx)
    d.result("he_he_blocks", 3 ** L * vx)
    d.result("zero_init_blocks", vx)
    d.result("fixup_first_step_change", -eta * lp * g ** 2 * s ** (2 * m - 2))
    d.result("fixup_scale", scale, latex="L^{-1/(2m-2)}")
    return d

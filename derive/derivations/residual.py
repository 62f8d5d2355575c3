"""Residual blocks: variances add, He-initialized branches double it per block, Fixup's L^(-1/(2m-2)).

For x_{l+1} = x_l + F(x_l) with a branch uncorrelated with its input (E[x F(x)] = E[x] E[F(x)], true at
initialization when the branch ends in zero-mean weights drawn independently of everything else):

    Var(x + F(x)) = Var(x) + Var(F(x)).

A He-initialized branch keeps the variance of its input, Var(F(x)) = Var(x), so each block doubles it:
Var(x_L) = 2^L Var(x_0). Zero-initializing the branch's last layer gives F = 0 and Var(x_L) = Var(x_0).
Fixup (Zhang, Dauphin & Ma 2019) scales the m - 1 earlier layers of each m-layer branch by s; for a
positively homogeneous activation the branch variance then carries s^(2m-2), the growth over L blocks is
(1 + s^(2m-2))^L, and requiring L s^(2m-2) = 1 keeps it below e: s = L^(-1/(2m-2)).

>>> from varprop.derive.derivations.residual import build
>>> d = build()
>>> d.verified, d.to_dict()["result"]["fixup_scale"]
(True, 'L**(-1/(2*(m - 1)))')
"""
from __future__ import annotations

__all__ = ["build"]


def build(digits: int = 15):
    import mpmath as mp
    import sympy as sp

    from ..derivation import Derivation

    vx, vF, s, u = sp.symbols("v_x v_F s u", positive=True)
    mx, mF, ExF = sp.symbols("mu_x mu_F E_{xF}", real=True)
    L = sp.Symbol("L", positive=True, integer=True)
    m = sp.Symbol("m", integer=True, positive=True)
    l = sp.Symbol("l", integer=True, nonnegative=True)
    V = sp.Function("V")
    d = Derivation("residual", "Residual blocks: variances add; Fixup's scaling",
                   "$\\operatorname{Var}(x + F(x)) = \\operatorname{Var}(x) + \\operatorname{Var}(F(x))$ for a "
                   "branch uncorrelated with its input; He-initialized branches double the variance per block, "
                   "a zero-initialized last layer keeps it, and Fixup's $L^{-1/(2m-2)}$ keeps $L$ blocks of "
                   "$m$ layers bounded.")
    d.assume("uncorrelated", "the branch output is uncorrelated with the block input, "
             "$E[xF(x)] = E[x]E[F(x)]$: at initialization the branch ends in zero-mean weights drawn "
             "independently, so $E[F(x) \\mid x] = 0$")
    d.assume("he_branch", "each branch is He-initialized, so it keeps the variance of its input: "
             "$\\operatorname{Var}(F(x)) = \\operatorname{Var}(x)$")
    d.assume("zero_last", "the last layer of every branch is initialized to zero, so $F(x) = 0$")
    d.assume("homogeneous", "the activation is positively homogeneous (ReLU): scaling a layer's weights by "
             "$s > 0$ scales its output by $s$, so the branch variance by $s^2$ per scaled layer")
    d.assume("fixup", "Fixup: the first $m - 1$ layers of each $m$-layer branch are scaled by $s$ and the "
             "total growth $\\prod (1 + s^{2m-2})$ over $L$ blocks must stay $O(1)$")

    second = (vx + mx ** 2) + 2 * ExF + (vF + mF ** 2)
    d.step("variance of the sum", second - (mx + mF) ** 2, vx + vF + 2 * (ExF - mx * mF),
           label="E[(x+F)^2] - (E[x] + E[F])^2",
           because="expand the square; $E_{xF} = E[xF(x)]$")
    d.step("the covariance vanishes", (vx + vF + 2 * (ExF - mx * mF)).subs(ExF, mx * mF), vx + vF,
           label="\\operatorname{Var}(x + F(x))", uses=("uncorrelated",))

    d.text("A stack of $L$ residual blocks: $V_{l+1} = V_l + \\operatorname{Var}(F(x_l))$.")
    he = sp.rsolve(V(l + 1) - 2 * V(l), V(l), {V(0): vx})
    d.step("He-initialized branches double the variance per block", he.subs(l, L), 2 ** L * vx, label="V_L",
           because="$\\operatorname{Var}(F(x_l)) = V_l$, a linear recurrence solved by rsolve", uses=("he_branch",))
    with mp.workdps(digits + 5):
        d.numeric("after 50 blocks", sp.Pow(2, 50, evaluate=False), mp.mpf(2) ** 50, digits)
    zero = sp.rsolve(V(l + 1) - V(l), V(l), {V(0): vx})
    d.step("zero-initialized last layers keep it", zero.subs(l, L), vx, label="V_L",
           uses=("zero_last",))

    d.text("Fixup: scale the first $m - 1$ layers of each branch by $s$. By homogeneity the branch "
           "variance is $s^{2(m-1)} V_l$, so each block multiplies the variance by $1 + s^{2m-2}$.")
    fix = sp.rsolve(V(l + 1) - (1 + s ** (2 * m - 2)) * V(l), V(l), {V(0): vx})
    d.step("growth over L blocks", fix.subs(l, L), (1 + s ** (2 * m - 2)) ** L * vx, label="V_L",
           uses=("homogeneous",))
    scale = sp.solve(sp.Eq(L * s ** (2 * m - 2), 1), s)[0]
    d.step("the total increase L s^(2m-2) held at 1", scale, L ** (-1 / (2 * m - 2)), label="s",
           because="$\\prod_l (1 + u_l) \\le \\exp(\\sum_l u_l)$ stays $O(1)$ exactly when $L s^{2m-2} = O(1)$",
           uses=("fixup",))
    per_block = sp.simplify((scale ** (2 * m - 2)))
    d.step("each block then adds 1/L of the variance", per_block, 1 / L, label="s^{2m-2}")
    d.step("and L blocks stay below e", sp.limit((1 + 1 / L) ** L, L, sp.oo), sp.E,
           label="\\lim_{L\\to\\infty} (1 + 1/L)^L")
    d.step("the bound behind it", sp.expand_log(sp.log((1 + u / L) ** L), force=True), L * sp.log(1 + u / L),
           label="\\log (1 + u/L)^L")
    d.step("log(1+t) <= t for t >= 0, as the difference starts at 0 and decreases",
           sp.diff(sp.log(1 + u) - u, u), -u / (1 + u), label="\\frac{d}{du}(\\log(1+u) - u)")
    d.step("without Fixup (s = 1) the variance explodes", sp.limit(2 ** L, L, sp.oo), sp.oo,
           label="\\lim_{L\\to\\infty} 2^L")
    with mp.workdps(digits + 5):
        d.numeric("Fixup scale for 54 blocks of 2 layers (ResNet-110)", scale.subs({L: 54, m: 2}),
                  mp.mpf(54) ** -0.5, digits)
    d.compare("Fixup exponent for m = 2", (-1 / (2 * m - 2)).subs(m, 2), -0.5,
              "Zhang, Dauphin & Ma 2019, Fixup, Section 3: scale by L^(-1/(2m-2))")

    d.result("variance_of_sum", vx + vF)
    d.result("he_blocks", 2 ** L * vx)
    d.result("zero_init_blocks", vx)
    d.result("fixup_scale", scale, latex="L^{-1/(2m-2)}")
    d.result("fixup_growth_limit", sp.E)
    return d

"""The correlation map: ReLU's arc-cosine kernel, its critical line sigma_w^2 = 2, and no c = 1 under dropout.

Two inputs whose pre-activations at a layer are jointly Gaussian with variances q and correlation c give, at
the next layer, c' = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q' (Poole et al. 2016). Its slope at c = 1 is
chi_1 = sigma_w^2 E[phi'(u)^2], so chi_1 = 1 is the order-to-chaos line (Schoenholz et al. 2017). For ReLU the
expectation has a closed form, the arc-cosine kernel of degree 1 (Cho & Saul 2009):

    E[relu(u1) relu(u2)] = q / (2 pi) (sqrt(1 - c^2) + (pi - arccos c) c).

With inverted dropout of keep probability p the length gets E[phi^2] / p but the cross term of two independent
masks does not, so c = 1 maps below 1: the fixed point at 1 is gone for every sigma_w^2 and there is no critical
initialization for correlations (Schoenholz et al. 2017, section 5).

>>> from varprop.derive.derivations.correlation_map import build
>>> build().verified
True
"""
from __future__ import annotations

__all__ = ["build"]


def build(digits: int = 15):
    import mpmath as mp
    import sympy as sp

    from .. import mean_field as mf
    from ..derivation import Derivation

    d = Derivation("correlation-map", "The correlation map: ReLU's closed form, the critical line, dropout",
                   "For ReLU the correlation map is the arc-cosine kernel, whose slope at $c = 1$ is "
                   "$\\sigma_w^2/2 = \\chi_1$: the order-to-chaos line is $\\sigma_w^2 = 2$ for every "
                   "$\\sigma_b^2$, where $q^*$ is infinite. Under dropout $c = 1$ is no longer a fixed point.")
    d.assume("gaussian", "the two inputs' pre-activations are jointly Gaussian with variances $q$ and correlation "
             "$c$ (the wide limit: weights iid with variance $\\sigma_w^2/n$, biases iid $N(0, \\sigma_b^2)$)")
    d.assume("relu", "$\\phi(u) = \\max(u, 0)$")
    d.assume("dropout", "inverted dropout with keep probability $p \\in (0, 1)$ on the layer's input, an "
             "independent mask for each input")

    c = sp.Symbol("c", real=True)
    q, sw, sb, p, m = sp.symbols("q sigma_w^2 sigma_b^2 p m", positive=True)
    K = q / (2 * sp.pi) * (sp.sqrt(1 - c ** 2) + (sp.pi - sp.acos(c)) * c)
    d.text("The kernel $E[\\mathrm{relu}(u_1)\\mathrm{relu}(u_2)]$ (Cho & Saul 2009), checked against "
           "quadrature at several correlations below.")
    d.step("at c = 1 it is the length map's E[relu(u)^2] = q/2", K.subs(c, 1), q / 2, label="K(1)",
           uses=("gaussian", "relu"))
    dK = sp.simplify(sp.diff(K, c))
    d.step("its derivative in c", dK, q * (sp.pi - sp.acos(c)) / (2 * sp.pi), label="K'(c)")
    d.step("at c = 1", sp.limit(dK, c, 1, "-"), q / 2, label="K'(1)")
    qstar = sp.Symbol("q^*", positive=True)
    slope = sw * dK.subs({c: 1, q: qstar}) / qstar
    d.step("so the correlation map's slope at c = 1 is chi_1 = sigma_w^2 / 2, whatever sigma_b^2", slope, sw / 2,
           label="\\partial c'/\\partial c|_{c=1}")
    qs = sp.solve(sp.Eq(qstar, sw * qstar / 2 + sb), qstar)
    d.step("the fixed point of the length map q = sigma_w^2 q / 2 + sigma_b^2", qs[0], 2 * sb / (2 - sw),
           label="q^*")
    d.step("which grows without bound as sigma_w^2 -> 2 from below (sigma_b^2 > 0)",
           sp.limit(2 * sb / (2 - sw), sw, 2, "-"), sp.oo, label="\\lim_{\\sigma_w^2 \\to 2^-} q^*")
    for cv in (sp.Rational(-1, 2), sp.Rational(0), sp.Rational(3, 10), sp.Rational(9, 10)):
        closed = K.subs({c: cv, q: 1})
        quad = mf.correlation_map("relu", float(cv), 2.0, 0.0, q=1.0) / 2.0   # (2 E[..] + 0) / q*, q* = 1
        d.numeric(f"the kernel against quadrature at c = {cv}", closed, mp.mpf(str(sp.N(closed, 30))), digits,
                  uses=("relu",), reference=(quad, 1e-5, "mean_field's product-rule quadrature"))

    d.text("Dropout: with $m = E[\\phi(u)^2]$ the length becomes $\\sigma_w^2 m/p + \\sigma_b^2$, while the cross "
           "term of two independent masks keeps $\\sigma_w^2 E[\\phi(u_1)\\phi(u_2)] + \\sigma_b^2$, which is "
           "$\\sigma_w^2 m + \\sigma_b^2$ at $c = 1$.")
    c1 = (sw * m + sb) / (sw * m / p + sb)
    gap = sp.simplify(1 - c1)
    d.step("so identical inputs come out decorrelated by", gap, sw * m * (1 - p) / (sw * m + p * sb),
           label="1 - c'(1)", uses=("dropout",))
    relu_c1 = float(c1.subs({sw: 2, sb: 0, m: sp.Rational(1, 2), p: sp.Rational(1, 2)}))
    d.numeric("ReLU, sigma_w^2 = 2, no bias, p = 1/2: c'(1)", "c'(1)", mp.mpf(relu_c1), digits,
              reference=(0.5, 1e-15, "p itself: (2 m) / (2 m / p)"))
    t = sp.Symbol("t", positive=True)                   # p = 1/(1 + t): every keep probability in (0, 1)
    d.step("for every keep probability p = 1/(1 + t) in (0, 1) the gap is positive",
           sp.simplify(gap.subs(p, 1 / (1 + t))).is_positive, sp.true)
    from .. import maps
    d.text("So under dropout xi_c stays finite for every sigma_w^2: the largest depth scale reachable (tanh, "
           "sigma_b^2 = 0.05), over sigma_w^2 in [0.5, 4], by bounded search (`varprop.derive.maps`):")
    for keep in (0.99, 0.9):
        xi, at = maps.dropout_max_depth_scale("tanh", 0.05, keep)
        d.numeric(f"keep {keep}: the largest xi_c, at sigma_w^2 = {at:.4g}", f"\\max \\xi_c\\,|_{{p = {keep}}}",
                  mp.mpf(xi), 6, uses=("dropout", "gaussian"))
        d.result(f"tanh_max_xi_c_keep_{keep}", mp.mpf(xi))
    d.result("relu_critical_sigma_w2", sp.Integer(2))
    d.result("relu_kernel_slope_at_1", sp.Rational(1, 2))
    return d

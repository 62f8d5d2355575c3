"""Mean field at initialization: the length map, its fixed point q*, chi_1, the order-to-chaos line, depth scales.

In a wide network with W_ij ~ (0, sigma_w^2 / n) and b_i ~ N(0, sigma_b^2) the pre-activations are Gaussian
with second moment q, mapped layer to layer by (Poole et al. 2016; Schoenholz et al. 2017)

    q' = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2,       chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2],

q* the fixed point. chi_1 = 1 is the order-to-chaos line; near it signals propagate over
xi_q = -1/log(sigma_w^2 E[phi'^2 + phi phi'']) and xi_c = -1/log(chi_1) layers. Stein's lemma shows the
xi_q rate is the slope dq'/dq at q*. The forward results (length map, q*, xi_q, chi_1 as the correlation
map's slope at c = 1) need only iid weights and the wide limit; reading chi_1 as the growth of a gradient
also needs the weights to be independent of the back-propagated gradients (Schoenholz et al. 2017). The numbers come from :mod:`varprop.derive.mean_field` (fast float
quadrature) polished by mpmath root finding on :func:`varprop.derive.moments.moment`, which also checks them.

>>> from varprop.derive.derivations.mean_field import build
>>> d = build(activation="relu", sigma_b2=0, sigma_w2=1)
>>> d.verified, d.to_dict(6)["result"]["critical_sigma_w2"]
(True, '2')
"""
from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["build", "polished_fixed_point", "polished_critical"]

_FLOAT_DIGITS = 10        # what the float path certifies on its own


def _mpf(v):
    import mpmath as mp
    return mp.mpf(v.numerator) / v.denominator if isinstance(v, Fraction) else mp.mpf(v)


def _moment(b, kind, q, digits):
    """An mpmath moment at q (an mpf, > 0), through derive.moments' quadrature."""
    import mpmath as mp

    from ..moments import moment
    return moment(b, kind, q=mp.nstr(q, digits + 8), digits=digits, closed=False).value


def polished_fixed_point(b, sw, sb, q0: float, digits: int):
    """q* to ``digits`` digits by the secant method on sw E[phi^2](q) + sb - q from the float root q0."""
    import mpmath as mp
    with mp.workdps(digits + 8):
        swm, sbm = _mpf(sw), _mpf(sb)
        q = mp.findroot(lambda q: swm * _moment(b, "second", q, digits + 4) + sbm - q,
                        (mp.mpf(q0), mp.mpf(q0) * (1 + mp.mpf(10) ** -8)), tol=mp.mpf(10) ** (-2 * digits - 4))
        return +q


def polished_critical(b, sb, q0: float, digits: int):
    """(sigma_w^2, q*) on the critical line: q = E[phi^2](q) / (k E[phi'^2](q)) + sb, sigma_w^2 = 1/(k E[phi'^2])."""
    import mpmath as mp
    k = b.arity
    with mp.workdps(digits + 8):
        sbm = _mpf(sb)

        def f(q):
            return _moment(b, "second", q, digits + 4) / (k * _moment(b, "deriv2", q, digits + 4)) + sbm - q
        q = mp.findroot(f, (mp.mpf(q0), mp.mpf(q0) * (1 + mp.mpf(10) ** -8)), tol=mp.mpf(10) ** (-2 * digits - 4))
        return 1 / (k * _moment(b, "deriv2", q, digits + 4)), +q


def _float_value(v):
    """A value from the float path, rounded to the digits that path certifies (inf and nan kept)."""
    from ..derivation import decimal_string
    v = float(v)
    return v if not math.isfinite(v) else Fraction(decimal_string(v, _FLOAT_DIGITS))


def _rounded(v, digits):
    """v as an exact Rational rounded to ``digits`` significant digits (agreement to that many digits)."""
    import sympy as sp

    from ..derivation import decimal_string
    return sp.Rational(decimal_string(v, digits))


def build(activation: str = "tanh", params=None, sigma_b2=0, sigma_w2=None, digits: int = 15):
    import mpmath as mp
    import sympy as sp

    from varprop.activations import get, to_fraction

    from .. import mean_field as mf
    from ..derivation import Derivation
    from ..moments import check_digits, closed_form

    check_digits(digits)
    b = get(activation, **(params or {}))
    sb = to_fraction(sigma_b2, "sigma_b2")
    if sb < 0:
        raise ValueError(f"sigma_b2 must be >= 0, got {sigma_b2}")
    sw_given = None if sigma_w2 is None else to_fraction(sigma_w2, "sigma_w2")
    if sw_given is not None and sw_given <= 0:
        raise ValueError(f"sigma_w2 must be > 0, got {sigma_w2}")
    k = b.arity
    label = b.label()

    d = Derivation("mean-field", f"Mean field of {label}: length map, chi_1 and the order-to-chaos line",
                   "The pre-activation second moment follows the length map $q' = \\sigma_w^2 E[\\phi(\\sqrt{q}z)^2] "
                   "+ \\sigma_b^2$ to its fixed point $q^*$; $\\chi_1 = \\sigma_w^2 E[\\phi'(\\sqrt{q^*}z)^2]$ "
                   "separates order ($\\chi_1 < 1$) from chaos, and the depth scales $\\xi_q$, $\\xi_c$ say over "
                   "how many layers signals survive (Poole et al. 2016; Schoenholz et al. 2017).")
    d.assume("iid", "weights $W_{ij}$ iid with mean 0 and variance $\\sigma_w^2/n$, biases iid $N(0, \\sigma_b^2)$, "
                    "both independent of the layer's input")
    d.assume("wide", "the width $n \\to \\infty$: each pre-activation is Gaussian by the central limit theorem")
    d.assume("growth", "$\\phi$ and $\\phi'$ grow slower than $e^{z^2/4}$, so Gaussian integration by parts has "
                       "no boundary terms")
    d.assume("grad_indep", "backward only: the weights are treated as independent of the forward pass "
                           "(Schoenholz et al. 2017), so a gradient's second moment is multiplied by "
                           "$\\chi_1 = \\sigma_w^2 E[\\phi'^2]$ per layer. The forward results (the length map, "
                           "$q^*$, $\\xi_q$, and $\\chi_1$ as the slope of the correlation map at $c = 1$) do not "
                           "need it; the steps that read $\\chi_1$ as a gradient's growth do")

    n = sp.Symbol("n", positive=True, integer=True)
    j = sp.Symbol("j", positive=True, integer=True)
    sw, sbs, m2, q = sp.symbols("sigma_w^2 sigma_b^2 m_2 q", positive=True)
    z = sp.Symbol("z", real=True)
    h = sp.Symbol("h", real=True)
    phi = sp.Function("phi")
    pdf = sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)

    d.step("pre-activation second moment", sp.Sum(sw / n * m2, (j, 1, n)).doit() + sbs, sw * m2 + sbs,
           label="E[h_i^2] = \\sum_{j=1}^n E[W_{ij}^2]E[x_j^2] + \\sigma_b^2",
           because="the cross terms vanish for zero-mean independent weights; $m_2 = E[x_j^2]$", uses=("iid",))
    gauss = sp.Integral(phi(h) ** 2 * sp.exp(-h ** 2 / (2 * q)) / sp.sqrt(2 * sp.pi * q), (h, -sp.oo, sp.oo))
    d.step("Gaussian pre-activations: the length map's integral", gauss.transform(h, (sp.sqrt(q) * z, z)),
           sp.Integral(phi(sp.sqrt(q) * z) ** 2 * pdf, (z, -sp.oo, sp.oo)), label="E[\\phi(h)^2]",
           because="$h \\sim N(0, q)$, substituted $h = \\sqrt{q} z$", uses=("wide",),
           at=[])      # phi is undefined: there are no values to spot-check, only the exact substitution

    d.text("**The slope of the length map** is the $\\xi_q$ rate. Differentiate under the integral, then "
           "integrate by parts with $z\\varphi(z) = -\\varphi'(z)$ (Stein's lemma):")
    d.step("derivative in q", sp.diff(phi(sp.sqrt(q) * z) ** 2, q),
           z * phi(sp.sqrt(q) * z) * sp.Subs(sp.Derivative(phi(h), h), h, sp.sqrt(q) * z) / sp.sqrt(q),
           label="\\partial_q \\phi(\\sqrt{q}z)^2")
    d.step("Stein's lemma: the density's derivative", -sp.diff(pdf, z), z * pdf, label="-\\varphi'(z)")
    inner = phi(sp.sqrt(q) * z) * sp.diff(phi(sp.sqrt(q) * z), z) / sp.sqrt(q)
    d1 = sp.diff(phi(sp.sqrt(q) * z), z) / sp.sqrt(q)
    d2 = sp.diff(phi(sp.sqrt(q) * z), z, 2) / q
    d.step("integration by parts", sp.diff(inner, z) / sp.sqrt(q), d1 ** 2 + phi(sp.sqrt(q) * z) * d2,
           label="\\frac{d}{dz}\\left[\\phi(\\sqrt{q}z)\\phi'(\\sqrt{q}z)\\right] / \\sqrt{q}", uses=("growth",),
           because="so $\\partial_q E[\\phi(\\sqrt{q}z)^2] = E[\\phi'(\\sqrt{q}z)^2 + \\phi\\phi''(\\sqrt{q}z)]$: "
           "the rate inside $\\xi_q$ is $dq'/dq$ at $q^*$")

    # the activation's own closed forms, where its moments close
    cf2, cfd = closed_form(b, "second"), closed_form(b, "deriv2")
    qs = sp.Symbol("q", positive=True)
    exact_critical = None
    if cfd is not None and qs not in cfd.free_symbols:
        crit = sp.solve(sp.Eq(sw * k * cfd, 1), sw)[0]
        d.step(f"chi_1 of {label} does not depend on q", (sw * k * cfd).subs(sw, crit), 1,
               label=f"\\chi_1 = \\sigma_w^2 \\cdot {sp.latex(k * cfd)} \\text{{ at }} \\sigma_w^2 = {sp.latex(crit)}",
               because="$E[\\phi'(\\sqrt{q}z)^2]$ is a constant for a positively homogeneous activation, so the "
               "critical line is flat in $\\sigma_b^2$", uses=("grad_indep",))
        exact_critical = crit
    if cf2 is not None and sp.simplify(cf2 / qs).free_symbols == set():
        kappa = sp.simplify(cf2 / qs)
        qstar = sbs / (1 - sw * kappa)
        d.step(f"fixed point of {label}'s linear length map", sw * cf2.subs(qs, qstar) + sbs, qstar,
               label="q^* = \\sigma_w^2 E[\\phi(\\sqrt{q^*}z)^2] + \\sigma_b^2",
               because=f"$E[\\phi(\\sqrt{{q}}z)^2] = {sp.latex(kappa)}\\,q$; a finite positive $q^*$ needs "
               f"$\\sigma_w^2 {sp.latex(kappa)} < 1$", uses=("wide",))
    sbf = float(sb)
    crit_f = mf.critical_sigma_w2(b, sbf)
    qc_f = mf.fixed_point(b, crit_f, sbf)
    degenerate = (exact_critical is None and sb == 0 and qc_f < 1e-6
                  and sp.simplify(b.sympy(h).subs(h, 0)) == 0)
    if degenerate:
        dphi = b.sympy_derivative(h)
        t = sp.Symbol("t", positive=True)
        left, right = (sp.limit(dphi.subs(h, -t), t, 0) ** 2, sp.limit(dphi.subs(h, t), t, 0) ** 2)
        half = sp.Integral(pdf, (z, -sp.oo, 0)).doit()
        d0 = sp.nsimplify(sp.simplify(left * half + right * (1 - half)))
        d.step("small-signal limit of E[phi'^2]", left * half + right * sp.Integral(pdf, (z, 0, sp.oo)).doit(), d0,
               label="\\lim_{q \\to 0^+} E[\\phi'(\\sqrt{q}z)^2] = \\phi'(0^-)^2 P(z < 0) + \\phi'(0^+)^2 P(z > 0)",
               because="with $\\sigma_b^2 = 0$ and $\\phi(0) = 0$ the ordered phase has $q^* = 0$, where "
               "$\\chi_1 = \\sigma_w^2 \\lim_{q\\to 0} E[\\phi'^2]$ (dominated convergence); the line ends where "
               "this reaches 1", uses=("growth",))
        exact_critical = sp.simplify(1 / (k * d0))

    # numbers: float root finding, then mpmath polish and an independent check
    cdig = digits
    if exact_critical is not None:
        crit_v = exact_critical
        d.text(f"The order-to-chaos point at $\\sigma_b^2 = {sp.latex(sp.Rational(sb.numerator, sb.denominator))}$ "
               f"is exact: $\\sigma_w^2 = {sp.latex(exact_critical)}$ (the float root finder gives "
               f"{crit_f:.12g}).")
        d.step("float root finder agrees with the exact critical point", _rounded(crit_f, 9),
               _rounded(exact_critical, 9), label="\\sigma_{w,c}^2 \\text{ (9 digits)}", uses=("grad_indep",))
    else:
        try:
            crit_v, qc = polished_critical(b, sb, qc_f, digits)
            if abs(crit_v - crit_f) > 1e-8 * crit_f:
                raise ValueError("the polish left the float root's branch")
        except (ValueError, ZeroDivisionError):
            crit_v, qc, cdig = mp.mpf(crit_f), mp.mpf(qc_f), _FLOAT_DIGITS
        d.numeric("critical sigma_w^2 (chi_1 = 1)", "\\sigma_{w,c}^2", crit_v, cdig, uses=("grad_indep",),
                  because=f"the root of $q = E[\\phi^2](q)/E[\\phi'^2](q) + \\sigma_b^2$, $q_c = "
                  f"{mp.nstr(qc, 10)}$; the float root finder gives {crit_f:.12g}")
        d.step("float root finder agrees to its own precision", _rounded(crit_f, 9), _rounded(crit_v, 9),
               label="\\sigma_{w,c}^2 \\text{ (9 digits)}", uses=("grad_indep",))
    d.result("critical_sigma_w2", crit_v)
    if b.name == "tanh" and sb == 0:
        d.compare("critical_sigma_w2", crit_v, 1, "Poole et al. 2016, Fig. 4 (tanh, sigma_b^2 = 0)")
    if b.name == "relu":
        d.compare("critical_sigma_w2", crit_v, 2, "He et al. 2015 (Var(w) = 2/fan_in)")

    # the point sigma_w^2 the user asked for (the critical one by default)
    swv = sw_given if sw_given is not None else None
    swf = float(swv) if swv is not None else float(crit_v)
    sw_num = _mpf(swv) if swv is not None else (mp.mpf(sp.N(crit_v, digits + 10)) if isinstance(crit_v, sp.Basic)
                                                else crit_v)
    q_f = mf.fixed_point(b, swf, sbf)
    d.result("sigma_w2", sw_num)
    d.result("sigma_b2", sp.Rational(sb.numerator, sb.denominator))
    if math.isinf(q_f):
        d.text(f"At $\\sigma_w^2 = {mp.nstr(sw_num, 10)}$ the length map has no finite fixed point: $q$ grows "
               "without bound with depth.")
        d.result("q_star", mp.inf)
        xi_q, xi_c = mf.depth_scales(b, swf, sbf)
        d.result("chi_1", _float_value(mf.chi1(b, swf, sbf)))
        d.result("xi_q", _float_value(xi_q))
        d.result("xi_c", _float_value(xi_c))
        return d
    if q_f == 0.0 or (degenerate and swf <= float(crit_v)):
        qv, qdig = mp.mpf(0), digits
        d.text("The fixed point is $q^* = 0$ (ordered phase, $\\sigma_b^2 = 0$); $\\chi_1$ is its $q \\to 0$ limit.")
    else:
        try:
            if q_f < 1e-8:
                raise ValueError("too close to q = 0 for the secant polish")
            qv, qdig = polished_fixed_point(b, swv if swv is not None else sw_num, sb, q_f, digits), digits
            if abs(qv - q_f) > 1e-8 * q_f:
                raise ValueError("the polish left the float root's branch")
        except (ValueError, ZeroDivisionError):
            qv, qdig = mp.mpf(q_f), _FLOAT_DIGITS
        d.numeric("fixed point q*", "q^*", qv, qdig, uses=("wide", "iid"),
                  because="the root of the length map reached from $q = 1$ (Brent's method on the float map, then "
                  "the secant method on the mpmath moments)")
        with mp.workdps(qdig + 8):
            lhs = sw_num * _moment(b, "second", qv, qdig + 2) + _mpf(sb)
        d.step("q* is a fixed point (independent quadrature)", _rounded(lhs, qdig - 2), _rounded(qv, qdig - 2),
               label="\\sigma_w^2 E[\\phi(\\sqrt{q^*}z)^2] + \\sigma_b^2 = q^*",
               because=f"the left side by tanh-sinh quadrature, both rounded to {qdig - 2} digits", uses=("wide",))
    with mp.workdps(digits + 8):
        qq = qv if qv > 0 else mp.mpf(10) ** -40
        chi = sw_num * k * _moment(b, "deriv2", qq, digits + 2)
        if b.name == "maxout":
            rate = sw_num * _moment(b, "second", qq, digits + 2) / qq
        else:
            rate = mp.mpf(swf * mf.gaussian_moments(b, float(qv), limit=True).slope)
    chi_f = mf.chi1(b, swf, sbf)
    d.numeric("chi_1 at q*", "\\chi_1", chi, digits, uses=("grad_indep",),
              because=f"$\\sigma_w^2 E[\\phi'(\\sqrt{{q^*}}z)^2]$ by quadrature (float path: {chi_f:.12g})")
    xi_q, xi_c = mf._depth(float(rate)), mf._depth(float(chi))
    chaotic = chi > 1 + mp.mpf(10) ** -9 and b.name != "maxout" and qv > 0
    if chaotic:
        c_star, chic = mf.chi_c(b, swf, sbf)
        xi_c = mf._depth(chic)
        d.result("c_star", _float_value(c_star))
        d.result("chi_c", _float_value(chic))
    else:   # ordered or critical: the stable fixed point is c = 1 itself, where chi_c is chi_1
        d.result("c_star", 1)
        d.result("chi_c", chi)
    d.result("q_star", qv)
    d.result("chi_1", chi)
    d.result("length_map_slope", _float_value(rate))
    d.result("xi_q", _float_value(xi_q))
    d.result("xi_c", _float_value(xi_c))
    phase = "critical" if abs(chi - 1) < mp.mpf(10) ** -9 else ("ordered" if chi < 1 else "chaotic")
    d.text(f"At $\\sigma_w^2 = {mp.nstr(sw_num, 10)}$: $\\chi_1 = {mp.nstr(chi, 10)}$, the {phase} phase; "
           f"$\\xi_q = {xi_q:.6g}$, $\\xi_c = {xi_c:.6g}$ layers"
           + (f". In the chaotic phase $\\xi_c = -1/\\log\\chi_c$ with $\\chi_c = \\sigma_w^2 E[\\phi'(u_1)\\phi'(u_2)]$ "
              f"taken at the correlation map's stable fixed point $c^* = {c_star:.6g}$ (float quadrature, about "
              f"10 digits for smooth $\\phi$), not at $c = 1$ where it would be $\\chi_1 > 1$." if chaotic else "."))
    return d

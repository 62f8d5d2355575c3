"""The exact gains of every registered activation at q = 1, held against PyTorch's calculate_gain table.

With Var(w) = g^2/fan_in a layer maps the pre-activation second moment q to g^2 E[phi(sqrt(q) z)^2], so the
gain that keeps q is g_f(q) = sqrt(q / E[phi(sqrt(q) z)^2]); the backward gain g_b(q) = 1/sqrt(E[phi'(sqrt(q) z)^2])
keeps the gradient variance with Var(w) = g^2/fan_out (He et al. 2015; Schoenholz et al. 2017). A gain is exact
at the q it is computed at, here q = 1, not absolutely: except for positively homogeneous activations both
depend on q, and g_b is the chi_1 = 1 condition only at the fixed point q* of the length map.

For tanh: with the q = 1 gain 1.5925 the length map's fixed point is q* = 1, where chi_1 = 1.178 (the chaotic
phase); PyTorch's 5/3 has its own fixed point q* = 1.178, where chi_1 = 1.210; g_f(q) > g_b(q) for every
q > 0 (they differ at second order near 0), so no gain keeps both passes; with sigma_b = 0 the critical
choice is sigma_w^2 = 1, where q* -> 0. PyTorch's 5/3 is therefore not wrong but tuned for another q.

PyTorch's SELU gain 3/4 is deliberate: its documentation says it trades the self-normalizing property for
more stable gradient flow and advises nonlinearity='linear' for self-normalizing networks. At q = 1 it
multiplies the variance per layer by 9/16, so a deep SELU network with it leaves the fixed point (0, 1).

Where SymPy integrates E[phi^2] the gain is a closed form; otherwise it is a certified numeric value
(:mod:`varprop.derive.moments`), held here against an independent SciPy quadrature.

>>> from varprop.derive.derivations.gains import build
>>> d = build(activation="selu")
>>> d.verified, d.to_dict(6)["result"]["torch_variance_ratio_selu"]
(True, '0.5625')
"""
from __future__ import annotations

__all__ = ["build", "scipy_moment"]


def scipy_moment(bound, kind: str) -> float:
    """E[phi(z)^2] ("second") or E[phi'(z)^2] ("deriv2") by SciPy's QUADPACK, split at the kinks: a
    float64 route independent of the mpmath quadrature and of SymPy."""
    import numpy as np
    from scipy import integrate

    f = bound.numpy if kind == "second" else bound.numpy_derivative

    def integrand(t):
        y = f(np.array([t], dtype=np.float64))[0]
        return y * y * np.exp(-t * t / 2) / np.sqrt(2 * np.pi)

    cuts = sorted({float(k) for k in bound.kinks()} | {-12.0, 0.0, 12.0})
    total = integrate.quad(integrand, -np.inf, cuts[0], epsabs=1e-15, epsrel=1e-13, limit=200)[0]
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        total += integrate.quad(integrand, lo, hi, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
    total += integrate.quad(integrand, cuts[-1], np.inf, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
    return total


def _activations(activation, params):
    from varprop.activations import get, names
    if activation is None:
        if params:
            raise ValueError("--param needs --activation")
        return [get(n) for n in names()]
    return [get(activation, **(params or {}))]


def build(digits: int = 15, activation: str | None = None, params: dict | None = None):
    import mpmath as mp
    import sympy as sp

    from ..derivation import Derivation
    from ..gains import torch_gain
    from ..moments import moment

    acts = _activations(activation, params)
    d = Derivation("gains", "Gains of every activation at q = 1, exact there, against PyTorch's table",
                   "$g_f = 1/\\sqrt{E[\\phi(z)^2]}$ and $g_b = 1/\\sqrt{E[\\phi'(z)^2]}$ at $q = 1$ for each "
                   "registered activation, in closed form where SymPy integrates and as certified numbers "
                   "elsewhere; PyTorch's calculate_gain beside them.")
    d.assume("gaussian", "pre-activations are standard normal, $h = z \\sim N(0, 1)$ ($q = 1$)")
    d.assume("fan_rule", "a layer scales the second moment by $\\text{fan\\_in}\\operatorname{Var}(w)"
             "E[\\phi(h)^2]$ forward and the gradient variance by $\\text{fan\\_out}\\operatorname{Var}(w)"
             "E[\\phi'(h)^2]$ backward (fan-rules)")
    g_, m = sp.symbols("g m", positive=True)
    d.step("forward gain from the fixed point", sp.solve(sp.Eq(g_ ** 2 * m, 1), g_)[0], 1 / sp.sqrt(m),
           label="g_f", because="$g^2 m = 1$ with $m = E[\\phi(z)^2]$", uses=("fan_rule",))
    qsym = sp.Symbol("q", positive=True)
    tol = 1e-9  # QUADPACK in float64 with epsrel 1e-13, summed over a few intervals
    for b in acts:
        # the two moments the gains need (the mean's closed form would cost as much and is not used here)
        moms = {k: moment(b, k, 1, digits) for k in ("second", "deriv2")}
        certified = min(m.digits for m in moms.values())
        gain = {}
        lab = b.label().replace("_", "\\_")
        for kind, which in (("second", "forward"), ("deriv2", "backward")):
            mom = moms[kind]
            if mom.value == 0:
                continue
            with mp.workdps(digits + 10):
                value = gain[which] = 1 / mp.sqrt(mom.value)
            # maxout's moments are of the max over k pieces, which the per-piece kernels do not compute
            ref = None if b.arity > 1 else (1 / scipy_moment(b, kind) ** 0.5, tol, "SciPy quadrature")
            title = f"{b.label()}: {which} gain"
            sym = "g_f" if which == "forward" else "g_b"
            label_tex = f"{sym}(\\text{{{lab}}})"
            if mom.closed_form is not None:
                # the closed form is held against two routes that do not use it: mpmath quadrature (the
                # value checked to the certified digits) and SciPy's QUADPACK (the reference)
                expr = sp.simplify(1 / sp.sqrt(mom.closed_form.subs(qsym, 1)))
                quad = moment(b, kind, 1, digits, closed=False)
                with mp.workdps(digits + 10):
                    quad_gain = 1 / mp.sqrt(quad.value)
                d.numeric(title + " in closed form, against quadrature", expr, quad_gain,
                          min(certified, quad.digits), check=True, reference=ref, uses=("gaussian",))
            else:
                what = "E[\\phi(z)^2]" if kind == "second" else "E[\\phi'(z)^2]"
                d.numeric(title + " (no closed form: certified quadrature)",
                          f"{label_tex} = 1/\\sqrt{{{what}}}", value, certified, uses=("gaussian",),
                          reference=ref)
            d.result(f"{which}_{b.name}", value)
        t = torch_gain(b)
        if t is None:
            continue
        d.compare(f"gain of {b.label()}", gain["forward"], t.value, f"PyTorch calculate_gain: {t.expression}")
        # the variance a layer keeps at q = 1 with PyTorch's gain: (torch / exact)^2
        with mp.workdps(digits + 10):
            ratio = (mp.mpf(t.value) / gain["forward"]) ** 2
        if b.name == "selu":
            closed = moms["second"].closed_form.subs(qsym, 1)
            d.step("SELU with PyTorch's 3/4: the variance per layer", sp.Rational(9, 16) * closed,
                   sp.Rational(9, 16), label="(3/4)^2 E[\\mathrm{selu}(z)^2]",
                   because="$E[\\mathrm{selu}(z)^2] = 1$ exactly: SELU's own fixed point", uses=("fan_rule",))
            d.text("PyTorch's 3/4 is deliberate: torch.nn.init.calculate_gain's documentation says it gives up "
                   "the self-normalizing property for more stable gradient flow, and advises "
                   "`nonlinearity='linear'` (gain 1) for self-normalizing networks. It is not a wrong value for "
                   "SELU's fixed point but a different goal.")
        elif b.name == "tanh":
            d.numeric("tanh with PyTorch's 5/3: the variance per layer at q = 1",
                      "(5/3)^2 E[\\tanh(z)^2]", mp.mpf(25) / 9 * moms["second"].value, moms["second"].digits,
                      uses=("fan_rule",), reference=(25 / 9 * scipy_moment(b, "second"), tol, "SciPy quadrature"))
        d.result(f"torch_variance_ratio_{b.name}", ratio)
    if any(b.name == "tanh" and not b.params for b in acts):
        _tanh_q_dependence(d, digits)
    return d


def _tanh_q_dependence(d, digits: int) -> None:
    """tanh's gains are exact at their q: the fixed points and chi_1 of the q = 1 gain and of PyTorch's 5/3,
    the two gains' difference near q = 0, the critical point at sigma_b = 0."""
    import mpmath as mp
    import sympy as sp

    from varprop.activations import get

    from .. import mean_field as mf
    from ..moments import moment
    from .mean_field import polished_fixed_point

    b = get("tanh")
    d.assume("length_map", "the wide-network length map $q' = \\sigma_w^2 E[\\phi(\\sqrt{q}z)^2]$ "
             "($\\sigma_b = 0$) and $\\chi_1 = \\sigma_w^2 E[\\phi'(\\sqrt{q^*}z)^2]$ at its fixed point "
             "(mean-field)")
    d.text("**A gain is exact at its q.** The forward gain keeps $q = 1$; at that $\\sigma_w^2 = g_f(1)^2$ the "
           "length map's fixed point is $q^* = 1$, but the backward pass is not kept: $\\chi_1 = g_f(1)^2 "
           "E[\\tanh'(z)^2] = E[\\tanh'(z)^2]/E[\\tanh(z)^2]$, the chaotic phase.")
    work = digits + 8
    with mp.workdps(work):
        m2 = moment(b, "second", 1, digits + 4, closed=False).value
        d2 = moment(b, "deriv2", 1, digits + 4, closed=False).value
        chi_exact = d2 / m2
    gf2 = float(1 / m2)
    d.numeric("chi_1 at the q = 1 gain (q* = 1)", "\\chi_1\\big|_{\\sigma_w = g_f(1)}", chi_exact, digits,
              uses=("length_map",), reference=(mf.chi1(b, gf2, 0.0), 1e-9, "the float mean field at its own q*"))
    d.result("tanh_chi1_at_exact_gain", chi_exact)
    sw_t = sp.Rational(25, 9)
    q_t = polished_fixed_point(b, sw_t, 0, mf.fixed_point(b, 25 / 9, 0.0), digits)
    d.text("PyTorch's $5/3$ keeps a different $q$: its length map $q' = (5/3)^2 E[\\tanh(\\sqrt{q}z)^2]$ has "
           "its own fixed point, where $\\chi_1$ is larger still.")
    d.numeric("fixed point of PyTorch's 5/3", "q^*\\big|_{\\sigma_w = 5/3}", q_t, digits, uses=("length_map",),
              because="the secant method on the mpmath moments from the float root",
              reference=(mf.fixed_point(b, 25 / 9, 0.0, q0=3.0), 1e-9, "Brent's method on the float map, from q = 3"))
    with mp.workdps(work):
        chi_t = mp.mpf(25) / 9 * moment(b, "deriv2", mp.nstr(q_t, work), digits + 4, closed=False).value
    d.numeric("chi_1 of PyTorch's 5/3 at its q*", "\\chi_1\\big|_{\\sigma_w = 5/3}", chi_t, digits,
              uses=("length_map",), reference=(mf.chi1(b, 25 / 9, 0.0), 1e-9, "the float mean field"))
    d.result("tanh_torch_q_star", q_t)
    d.result("tanh_torch_chi1", chi_t)

    d.text("**No gain keeps both passes.** That needs $g_f(q) = g_b(q)$, i.e. $E[\\tanh(\\sqrt{q}z)^2]/q = "
           "E[\\tanh'(\\sqrt{q}z)^2]$. Expanding in $q$ with $E[z^{2k}] = (2k-1)!!$:")
    x, q = sp.Symbol("x", real=True), sp.Symbol("q", positive=True)
    order = 8

    def gauss_series(f):
        poly = sp.series(f, x, 0, order).removeO()
        return sp.expand(sum(c * sp.factorial2(2 * k - 1) * q ** k if k else c
                             for (k2,), c in sp.Poly(poly, x).terms() for k in [k2 // 2] if k2 % 2 == 0))
    fwd = sp.expand(gauss_series(sp.tanh(x) ** 2) / q)
    bwd = gauss_series((1 - sp.tanh(x) ** 2) ** 2)
    d.step("forward moment near q = 0", sp.series(fwd, q, 0, 3).removeO(), 1 - 2 * q + sp.Rational(17, 3) * q ** 2,
           label="E[\\tanh(\\sqrt{q}z)^2]/q", uses=("gaussian",),
           because="$\\tanh^2 x = x^2 - \\tfrac23 x^4 + \\tfrac{17}{45}x^6 + O(x^8)$")
    d.step("backward moment near q = 0", sp.series(bwd, q, 0, 3).removeO(), 1 - 2 * q + 7 * q ** 2,
           label="E[\\tanh'(\\sqrt{q}z)^2]", uses=("gaussian",))
    d.step("they differ at second order", sp.series(bwd - fwd, q, 0, 3).removeO(), sp.Rational(4, 3) * q ** 2,
           label="E[\\tanh'^2] - E[\\tanh^2]/q",
           because="so $g_b(q) < g_f(q)$ for small $q > 0$; on a grid of $q$ up to 100 the float quadrature "
           "finds no crossing (tests/test_derive_A_derivations.py)")
    d.text("**The critical point at $\\sigma_b = 0$.** Both moments tend to 1 as $q \\to 0$, so in the small-signal "
           "limit $\\chi_1 = \\sigma_w^2$: the order-to-chaos point is $\\sigma_w^2 = 1$, and since "
           "$\\tanh^2 x < x^2$ the length map with $\\sigma_w^2 \\le 1$ shrinks every $q > 0$, so there "
           "$q^* \\to 0$. The backward gain $g_b(q)$ is the $\\chi_1 = 1$ condition only at $q = q^*$.")
    d.step("the small-signal limit of chi_1 / sigma_w^2", sp.limit(bwd, q, 0), 1,
           label="\\lim_{q \\to 0} E[\\tanh'(\\sqrt{q}z)^2]", uses=("length_map",))
    d.step("tanh^2 x < x^2: the length map shrinks q when sigma_w^2 <= 1",
           sp.series(x ** 2 - sp.tanh(x) ** 2, x, 0, 8).removeO(), sp.Rational(2, 3) * x ** 4 - sp.Rational(17, 45) * x ** 6,
           label="x^2 - \\tanh^2 x", because="positive near 0, and $|\\tanh x| < |x|$ for all $x \\ne 0$ "
           "(the mean value theorem with $\\tanh' < 1$ off 0)")
    d.result("tanh_critical_sigma_w2_at_sigma_b_0", sp.Integer(1))

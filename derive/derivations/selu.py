"""SELU's self-normalizing fixed point: alpha and lambda in closed form (erfc), and alpha-dropout's a and b.

SELU is f(x) = lambda x for x > 0 and lambda alpha (e^x - 1) otherwise. Klambauer et al. (2017, eq. 14)
choose alpha and lambda so that a standard normal input comes out with mean 0 and variance 1:

    E[f(z)] = 0    gives  alpha_01  = -sqrt(2/pi) / (erfc(1/sqrt 2) e^(1/2) - 1)       = 1.6732632423543772848...
    E[f(z)^2] = 1  gives  lambda_01 = 1.0507009873554804934...

Alpha-dropout sets a dropped unit to the saturation value alpha' = -lambda alpha and applies y = a x' + b;
keeping mean 0 and variance 1 for a keep probability q gives a = (q + alpha'^2 q (1 - q))^(-1/2) and
b = -a (1 - q) alpha' (Klambauer et al. 2017, section "New Dropout Technique").

The fixed point attracts (Klambauer et al. 2017, Theorem 1): with normalized weights (omega = 0, tau = 1)
the Jacobian of the (mean, variance) map at (0, 1) is [[0, 0.0888], [0, 0.7826]], of spectral norm 0.7877 < 1.
Gradients are another matter: chi_1 = E[f'(z)^2] = 1.0716 > 1 there, so a gradient's second moment grows by
1.0716 per layer (x32 over 50 layers, x5.6 in std).

>>> from varprop.derive.derivations.selu import build
>>> d = build(digits=32)
>>> d.verified, d.to_dict(32)["result"]["alpha"]
(True, '1.6732632423543772848170429916717')
"""
from __future__ import annotations

__all__ = ["build", "selu_pieces", "alpha_dropout_affine", "moment_map", "PUBLISHED_ALPHA", "PUBLISHED_LAMBDA"]

# Klambauer et al. 2017, eq. 14 and the reference implementation's constants
PUBLISHED_ALPHA = "1.6732632423543772848170429916717"
PUBLISHED_LAMBDA = "1.0507009873554804934193349852946"
_MIN_DIGITS = 30


def _gauss(z):
    import sympy as sp
    return sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)


def selu_pieces():
    """The four Gaussian integrals SELU's moments are made of, as (integrand, lower, upper, closed form)."""
    import sympy as sp
    z = sp.Symbol("z", real=True)
    pdf = _gauss(z)
    e, c1, c2 = sp.E, sp.erfc(1 / sp.sqrt(2)), sp.erfc(sp.sqrt(2))
    return z, [
        ("positive part, first moment", z * pdf, 0, sp.oo, 1 / sp.sqrt(2 * sp.pi)),
        ("positive part, second moment", z ** 2 * pdf, 0, sp.oo, sp.Rational(1, 2)),
        ("negative part, e^z", sp.exp(z) * pdf, -sp.oo, 0, sp.sqrt(e) * c1 / 2),
        ("negative part, e^(2z)", sp.exp(2 * z) * pdf, -sp.oo, 0, e ** 2 * c2 / 2),
    ]


def alpha_dropout_affine(q, alpha_prime):
    """(a, b) of alpha-dropout for keep probability q and dropped value alpha' (SymPy or numbers)."""
    import sympy as sp
    a = 1 / sp.sqrt(q + alpha_prime ** 2 * q * (1 - q))
    return a, -a * (1 - q) * alpha_prime


def build(digits: int = 30, keep_prob="0.95"):
    import mpmath as mp
    import sympy as sp

    from varprop.activations import selu_alpha, selu_lambda, sympy_namespace, to_fraction

    from ..derivation import Derivation
    from ..moments import check_digits

    check_digits(digits)
    qf = to_fraction(keep_prob, "keep_prob")
    if not 0 < qf < 1:
        raise ValueError(f"keep_prob must be in (0, 1), got {keep_prob}")

    d = Derivation("selu", "SELU's self-normalizing fixed point and alpha-dropout",
                   "For $z \\sim N(0, 1)$, SELU's output has mean 0 and variance 1 exactly when $\\alpha$ and "
                   "$\\lambda$ take the closed forms of Klambauer et al. (2017, eq. 14); alpha-dropout's affine "
                   "correction $a, b$ keeps that fixed point for any keep probability $q$.")
    d.assume("gaussian", "the pre-activation is standard normal, $z \\sim N(0, 1)$ (the fixed point's input)")
    d.assume("fixed_point", "the output is required to have mean 0 and variance 1, the input's own moments")
    d.assume("positive", "$\\lambda > 0$ and $\\alpha > 0$ (SELU is increasing and saturates at "
                         "$-\\lambda\\alpha$)")
    d.assume("dropout", "alpha-dropout keeps each unit with probability $q$, independently of $x$, and sets a "
                        "dropped unit to $\\alpha' = -\\lambda\\alpha$ before the affine map $a x + b$")

    al, lam = sp.symbols("alpha lambda", positive=True)
    z, pieces = selu_pieces()
    d.text("SELU is $f(z) = \\lambda z$ for $z > 0$ and $\\lambda\\alpha(e^z - 1)$ otherwise. Against the "
           "standard normal density $\\varphi$ its moments split into four Gaussian integrals, each closing in "
           "$\\operatorname{erfc}$:")
    closed = []
    for title, integrand, lo, hi, value in pieces:
        d.step(title, sp.integrate(integrand, (z, lo, hi)), value,
               label=sp.latex(sp.Integral(integrand, (z, lo, hi))), uses=("gaussian",),
               because="SymPy's integral of the Gaussian moment, completed square for the exponentials")
        closed.append(value)
    p1, p2, ex, ex2 = closed
    half = sp.Rational(1, 2)

    mean = lam * (p1 + al * (ex - half))
    second = lam ** 2 * (p2 + al ** 2 * (ex2 - 2 * ex + half))
    d.step("mean of SELU", lam * (p1 + al * (ex - sp.Integral(_gauss(z), (z, -sp.oo, 0)).doit())), mean,
           label="E[f(z)]", because="$\\int_{-\\infty}^0 \\varphi = 1/2$", uses=("gaussian",))
    d.step("second moment of SELU", lam ** 2 * (p2 + al ** 2 * (ex2 - 2 * ex + half)), sp.expand(second),
           label="E[f(z)^2]", because="$(e^z - 1)^2 = e^{2z} - 2e^z + 1$", uses=("gaussian",))

    sol = sp.solve(sp.Eq(mean / lam, 0), al)
    if len(sol) != 1:
        raise RuntimeError(f"expected one solution for alpha, got {sol}")
    alpha_cf = sol[0]
    ns = sympy_namespace()
    d.step("mean 0 solved for alpha", alpha_cf, selu_alpha(ns), label="\\alpha_{01}",
           because="$E[f(z)] = 0$ is linear in $\\alpha$ once $\\lambda \\ne 0$ is divided out; the right-hand "
           "side is the registry's closed form (Klambauer et al. 2017, eq. 14)", uses=("fixed_point", "positive"))
    d.text("With $\\alpha = \\alpha_{01}$ the mean is 0, so the variance is the second moment, "
           "$\\lambda^2 S(\\alpha_{01})$; variance 1 gives $\\lambda^2 = 1/S(\\alpha_{01})$. To compare it with the "
           "closed form, write $c = \\operatorname{erfc}(1/\\sqrt{2})$, $c_2 = \\operatorname{erfc}(\\sqrt{2})$ and "
           "$s = e^{1/2}$: both sides are then rational in $c, c_2, s, \\pi$ and the identity holds for every "
           "value of these symbols, a fortiori for the constants.")
    c, c2, s = sp.symbols("c c_2 s", positive=True)
    general = {sp.erfc(1 / sp.sqrt(2)): c, sp.erfc(sp.sqrt(2)): c2, sp.exp(sp.Rational(1, 2)): s, sp.E: s ** 2}

    def gen(expr):
        return sp.sympify(expr).xreplace(general).subs(sp.E, s ** 2)

    lam2 = 1 / sp.expand(second / lam ** 2).subs(al, alpha_cf)
    d.step("variance 1 solved for lambda^2", gen(lam2), gen(selu_lambda(ns) ** 2), label="\\lambda_{01}^2",
           because="the registry's closed form squared (Klambauer et al. 2017, eq. 14), checked as a rational "
           "identity in $c, c_2, s, \\pi$", uses=("fixed_point",))
    lambda_cf = selu_lambda(ns)
    d.text("Both $\\lambda_{01}$ and the closed form are positive, so the square roots agree.")
    d.step("the closed form is positive", sp.N(lambda_cf, 30) > 0, sp.true, label="\\lambda_{01} > 0",
           uses=("positive",))

    work = max(digits, _MIN_DIGITS) + 10
    with mp.workdps(work):
        mpns = _mp_namespace()
        alpha_v, lambda_v = selu_alpha(mpns), selu_lambda(mpns)
        a_check = mp.mpf(sp.N(alpha_cf, work)), mp.mpf(sp.N(lambda_cf, work))
        published = mp.mpf(PUBLISHED_ALPHA), mp.mpf(PUBLISHED_LAMBDA)
    d.numeric("alpha to the requested digits", alpha_cf, a_check[0], max(digits, _MIN_DIGITS),
              because="evalf of the closed form", uses=("fixed_point",))
    d.numeric("lambda to the requested digits", lambda_cf, a_check[1], max(digits, _MIN_DIGITS),
              because="evalf of the closed form", uses=("fixed_point",))
    d.result("alpha", alpha_v, latex=sp.latex(alpha_cf))
    d.result("lambda", lambda_v, latex=sp.latex(lambda_cf))
    d.compare("alpha", alpha_v, published[0], "Klambauer et al. 2017, eq. 14 (32 significant digits)")
    d.compare("lambda", lambda_v, published[1], "Klambauer et al. 2017, eq. 14 (32 significant digits)")

    # alpha-dropout
    q = sp.Symbol("q", positive=True)
    ap, a, b = sp.symbols("alpha' a b", real=True)
    d.text("**Alpha-dropout.** With a mask $m \\sim \\mathrm{Bernoulli}(q)$ independent of $x$, "
           "$E[x] = 0$ and $E[x^2] = 1$, the dropped-out value is $x' = m x + (1 - m)\\alpha'$; since "
           "$m^2 = m$ and $m(1 - m) = 0$, its moments follow from $E[m] = q$:")
    mean_x = q * 0 + (1 - q) * ap
    second_x = q * 1 + (1 - q) * ap ** 2
    d.step("mean after dropping", mean_x, ap * (1 - q), label="E[x']", uses=("dropout", "fixed_point"),
           because="$E[m x] = E[m]E[x] = 0$")
    d.step("variance after dropping", second_x - mean_x ** 2, q + ap ** 2 * q * (1 - q),
           label="\\operatorname{Var}(x')", uses=("dropout", "fixed_point"),
           because="$E[x'^2] = q E[x^2] + (1 - q)\\alpha'^2$")
    a2 = sp.Symbol("A", positive=True)
    a2_sol = sp.solve(sp.Eq(a2 * (second_x - mean_x ** 2), 1), a2)[0]
    a_pub, b_pub = alpha_dropout_affine(q, ap)
    d.step("a^2 from variance 1", a2_sol, sp.simplify(a_pub ** 2), label="a^2", uses=("fixed_point",),
           because="$a^2\\operatorname{Var}(x') = 1$; with $a > 0$ this is Klambauer et al.'s "
           "$a = (q + \\alpha'^2 q(1-q))^{-1/2}$")
    b_sol = sp.solve(sp.Eq(a * mean_x + b, 0), b)[0]
    d.step("b from mean 0", b_sol, -a * (1 - q) * ap, label="b", uses=("fixed_point",),
           because="$a E[x'] + b = 0$")
    qv = sp.Rational(qf.numerator, qf.denominator)
    with mp.workdps(work):
        apv = -lambda_v * alpha_v
        qm = mp.mpf(qf.numerator) / qf.denominator
        a_v = 1 / mp.sqrt(qm + apv ** 2 * qm * (1 - qm))
        b_v = -a_v * (1 - qm) * apv
    d.text(f"At $q = {sp.latex(qv)}$ with $\\alpha' = -\\lambda_{{01}}\\alpha_{{01}}$:")
    a_expr, b_expr = alpha_dropout_affine(qv, -lambda_cf * alpha_cf)
    d.numeric("a at the keep probability", a_expr, a_v, max(digits, _MIN_DIGITS), uses=("dropout",))
    d.numeric("b at the keep probability", b_expr, b_v, max(digits, _MIN_DIGITS), uses=("dropout",))
    d.result("alpha_prime", apv)
    d.result("keep_prob", qv)
    d.result("a", a_v, latex=sp.latex(a_pub))
    d.result("b", b_v, latex=sp.latex(b_pub))
    _attraction(d, alpha_cf, lambda_cf, digits)
    return d


def moment_map(nu, alpha, lam):
    """(E[f(z)], E[f(z)^2]) for z ~ N(0, nu) (SymPy, closed form in erfc): the (mean, second moment) a SELU
    layer outputs when its pre-activation has variance nu (Klambauer et al.'s map at omega = 0, tau = 1)."""
    import sympy as sp
    s = sp.sqrt(nu)
    half = sp.Rational(1, 2)

    def neg_exp(k):      # E[e^{k s t}; t < 0] for t ~ N(0, 1)
        return sp.exp(k ** 2 * nu / 2) * sp.erfc(k * s / sp.sqrt(2)) / 2
    mean = lam * (s / sp.sqrt(2 * sp.pi) + alpha * (neg_exp(1) - half))
    second = lam ** 2 * (nu / 2 + alpha ** 2 * (neg_exp(2) - 2 * neg_exp(1) + half))
    return mean, second


def _attraction(d, alpha_cf, lambda_cf, digits: int) -> None:
    """The fixed point (0, 1) attracts: the Jacobian of the (mean, variance) map, its spectral norm; and
    chi_1 > 1 there, so gradients still grow with depth."""
    import mpmath as mp
    import sympy as sp

    d.assume("normalized_weights", "Klambauer et al.'s setting for the map: a unit's incoming weights have "
             "$\\omega = \\sum_j w_j = 0$ and $\\tau = \\sum_j w_j^2 = 1$, so for inputs of mean $\\mu$ and "
             "variance $\\nu$ the pre-activation is $N(\\mu\\omega, \\nu\\tau) = N(0, \\nu)$ (central limit)")
    d.assume("grad_indep", "backward, the weights are treated as independent of the forward pass, so a "
             "gradient's second moment is multiplied by $\\chi_1 = \\sigma_w^2 E[f'(h)^2]$ per layer "
             "(Schoenholz et al. 2017)")
    nu, t = sp.Symbol("nu", positive=True), sp.Symbol("t", real=True)
    al, lam = sp.symbols("alpha lambda", positive=True)
    mean, second = moment_map(nu, al, lam)
    pdf = sp.exp(-t ** 2 / 2) / sp.sqrt(2 * sp.pi)
    d.text("**The fixed point attracts** (Klambauer et al. 2017, Theorem 1). A layer maps its inputs' "
           "$(\\mu, \\nu)$ to $(\\tilde\\mu, \\tilde\\nu) = (E[f(h)], \\operatorname{Var} f(h))$ with "
           "$h \\sim N(\\mu\\omega, \\nu\\tau)$. At $\\omega = 0$, $\\tau = 1$ the output depends on $\\nu$ "
           "only; its moments close in erfc:")
    d.step("E[e^(sqrt(nu) t); t < 0]", sp.integrate(sp.exp(sp.sqrt(nu) * t) * pdf, (t, -sp.oo, 0)),
           sp.exp(nu / 2) * sp.erfc(sp.sqrt(nu) / sp.sqrt(2)) / 2, label="\\int_{-\\infty}^0 e^{\\sqrt{\\nu} t}\\varphi(t)dt",
           uses=("normalized_weights",))
    mu, omega = sp.Symbol("mu", real=True), sp.Symbol("omega", real=True)
    at = {nu: 1, al: alpha_cf, lam: lambda_cf}
    d.step("the mean column vanishes at omega = 0", sp.diff(sp.Matrix([mu * omega, mu * omega]), mu).subs(omega, 0),
           sp.zeros(2, 1), label="\\partial(\\mu\\omega)/\\partial\\mu\\big|_{\\omega=0} \\cdot (1, 1)^T",
           because="the pre-activation $N(\\mu\\omega, \\nu\\tau)$ depends on $\\mu$ only through "
           "$\\mu\\omega$, so $\\partial\\tilde\\mu/\\partial\\mu = \\partial\\tilde\\nu/\\partial\\mu = 0$",
           uses=("normalized_weights",))
    J12 = sp.diff(mean, nu)
    J22 = sp.diff(second, nu) - 2 * mean * sp.diff(mean, nu)
    d.step("the output mean is 0 at the fixed point, so J_22 is the second moment's slope", mean.subs(at), 0,
           label="\\tilde\\mu(\\nu = 1)", uses=("fixed_point",),
           because="$\\partial\\tilde\\nu/\\partial\\nu = \\partial E[f^2]/\\partial\\nu - 2\\tilde\\mu\\,"
           "\\partial\\tilde\\mu/\\partial\\nu$")
    work = max(digits, 20) + 10
    with mp.workdps(work):
        j12 = mp.mpf(sp.N(J12.subs(at), work))
        j22 = mp.mpf(sp.N(J22.subs(at), work))
        norm = mp.sqrt(j12 ** 2 + j22 ** 2)

        # an independent route: mpmath differentiates quadratures of the moments, no closed form
        def num_moments(v):
            a, lm = mp.mpf(sp.N(alpha_cf, work)), mp.mpf(sp.N(lambda_cf, work))

            def f(x):
                return lm * x if x > 0 else lm * a * (mp.exp(x) - 1)
            g = (lambda x, k: f(mp.sqrt(v) * x) ** k * mp.npdf(x))
            m1 = mp.quad(lambda x: g(x, 1), [-mp.inf, 0, mp.inf])
            m2 = mp.quad(lambda x: g(x, 2), [-mp.inf, 0, mp.inf])
            return m1, m2 - m1 ** 2
        with mp.workdps(30):
            ref12 = mp.diff(lambda v: num_moments(v)[0], 1)
            ref22 = mp.diff(lambda v: num_moments(v)[1], 1)
    d.numeric("J_12 = d mean / d nu at (0, 1)", "J_{12}", j12, digits, uses=("normalized_weights",),
              reference=(ref12, 1e-12, "mpmath's derivative of quadratures"))
    d.numeric("J_22 = d variance / d nu at (0, 1)", "J_{22}", j22, digits, uses=("normalized_weights",),
              reference=(ref22, 1e-12, "mpmath's derivative of quadratures"))
    a_, b_ = sp.symbols("a b", real=True)
    M = sp.Matrix([[0, a_], [0, b_]])
    d.step("the singular values of [[0, a], [0, b]]", sp.FiniteSet(*[sp.sqrt(e) for e in (M.T * M).eigenvals()]),
           sp.FiniteSet(0, sp.sqrt(a_ ** 2 + b_ ** 2)), label="\\sigma(J)",
           because="$J^T J = \\begin{pmatrix}0 & 0\\\\ 0 & a^2 + b^2\\end{pmatrix}$")
    d.numeric("the spectral norm of the Jacobian", "\\|J(0, 1)\\|_2 = \\sqrt{J_{12}^2 + J_{22}^2}", norm, digits,
              uses=("normalized_weights",), reference=(mp.sqrt(ref12 ** 2 + ref22 ** 2), 1e-12, "the quadrature route"),
              because="below 1: the map is a contraction near $(0, 1)$, which attracts (Klambauer et al. report "
              "0.7877)")
    d.compare("spectral norm of J(0, 1)", norm, mp.mpf("0.7877"), "Klambauer et al. 2017, Section 3 (4 digits)")
    d.text("With random zero-mean weights of variance $1/n$ (LeCun) the pre-activation of every unit is "
           "$N(0, q)$ with $q = \\mu^2 + \\nu$ the inputs' second moment, and the second moment follows "
           "$q' = E[f(\\sqrt{q}z)^2]$, whose slope at $q = 1$ is the same $\\partial E[f^2]/\\partial\\nu = "
           "J_{22}$: off the fixed point the distance to it shrinks by about that factor per layer.")
    d.text("**But gradients grow.** At the fixed point $\\chi_1 = E[f'(z)^2] = \\lambda^2(P(z > 0) + \\alpha^2 "
           "E[e^{2z}; z < 0])$, which is above 1:")
    chi = lam ** 2 * (sp.Rational(1, 2) + al ** 2 * sp.exp(2) * sp.erfc(sp.sqrt(2)) / 2)
    d.step("chi_1 at the fixed point", lam ** 2 * (sp.integrate(pdf, (t, 0, sp.oo))
                                                  + al ** 2 * sp.integrate(sp.exp(2 * t) * pdf, (t, -sp.oo, 0))),
           chi, label="\\chi_1 = E[f'(z)^2]", uses=("grad_indep",))
    with mp.workdps(work):
        chi_v = mp.mpf(sp.N(chi.subs({al: alpha_cf, lam: lambda_cf}), work))
    d.numeric("chi_1 of SELU at (0, 1)", chi.subs({al: alpha_cf, lam: lambda_cf}), chi_v, digits, uses=("grad_indep",),
              because="above 1: a gradient's second moment grows by this factor per layer, by "
              f"{mp.nstr(chi_v ** 50, 4)} over 50 layers (its std by {mp.nstr(mp.sqrt(chi_v ** 50), 3)})")
    d.result("jacobian_12", j12)
    d.result("jacobian_22", j22)
    d.result("jacobian_norm", norm)
    d.result("chi_1", chi_v)


def _mp_namespace():
    from varprop.activations import mpmath_namespace
    return mpmath_namespace()

"""SELU's self-normalizing fixed point: alpha and lambda in closed form (erfc), and alpha-dropout's a and b.

SELU is f(x) = lambda x for x > 0 and lambda alpha (e^x - 1) otherwise. Klambauer et al. (2017, eq. 14)
choose alpha and lambda so that a standard normal input comes out with mean 0 and variance 1:

    E[f(z)] = 0    gives  alpha_01  = -sqrt(2/pi) / (erfc(1/sqrt 2) e^(1/2) - 1)       = 1.6732632423543772848...
    E[f(z)^2] = 1  gives  lambda_01 = 1.0507009873554804934...

Alpha-dropout sets a dropped unit to the saturation value alpha' = -lambda alpha and applies y = a x' + b;
keeping mean 0 and variance 1 for a keep probability q gives a = (q + alpha'^2 q (1 - q))^(-1/2) and
b = -a (1 - q) alpha' (Klambauer et al. 2017, section "New Dropout Technique").

>>> from varprop.derive.derivations.selu import build
>>> d = build(digits=32)
>>> d.verified, d.to_dict(32)["result"]["alpha"]
(True, '1.6732632423543772848170429916717')
"""
from __future__ import annotations

__all__ = ["build", "selu_pieces", "alpha_dropout_affine", "PUBLISHED_ALPHA", "PUBLISHED_LAMBDA"]

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
    return d


def _mp_namespace():
    from varprop.activations import mpmath_namespace
    return mpmath_namespace()

"""The fan rules: LeCun, Glorot (forward, backward, compromise), He (forward, backward), leaky/PReLU.

From the linear-variance result, a layer of fan_in inputs maps a pre-activation second moment q to
fan_in Var(w) E[phi(sqrt(q) z)^2], and the backward pass multiplies a gradient's variance by
fan_out Var(w) E[phi'(sqrt(q) z)^2] (Glorot & Bengio 2010; He et al. 2015) when the weights are treated as
independent of the back-propagated gradients (the backward pass reuses the forward weights; the
independence is an approximation, accurate for wide layers). For positively homogeneous
activations E[phi(sqrt(q) z)^2] = q S and E[phi'^2] = D with, derived by SymPy integration:

    linear (the small-signal regime of tanh):  S = D = 1          -> Var(w) = 1/fan_in (LeCun), 1/fan_out
    ReLU:                                      S = D = 1/2        -> Var(w) = 2/fan_in (He), 2/fan_out
    leaky ReLU / PReLU with slope a:           S = D = (1+a^2)/2  -> Var(w) = 2/((1+a^2) fan_in)

Glorot's compromise 2/(fan_in + fan_out) is the harmonic mean of the forward and backward conditions.
A normal draw uses std sqrt(v); a uniform U(-b, b) has variance b^2/3, so b = sqrt(3 v); a normal
truncated to [-2, 2] std has std 0.8796 std, so its std parameter is sqrt(v)/0.8796...

>>> from varprop.derive.derivations.fan_rules import build
>>> d = build()
>>> d.verified, d.to_dict()["result"]["glorot_uniform_bound"]
(True, 'sqrt(6)/sqrt(fan_in + fan_out)')
"""
from __future__ import annotations

__all__ = ["build", "truncated_std_expr"]

# the literal JAX uses for the std of N(0, 1) truncated to [-2, 2] (jax.nn.initializers.variance_scaling)
JAX_TRUNCATED_STD = 0.87962566103423978


def _gauss(z):
    import sympy as sp
    return sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)


def _cdf(x):
    import sympy as sp
    return (1 + sp.erf(x / sp.sqrt(2))) / 2


def truncated_std_expr():
    """sqrt(1 - 4 phi(2) / (Phi(2) - Phi(-2))), the std of N(0, 1) truncated to [-2, 2], as SymPy."""
    import sympy as sp
    return sp.sqrt(1 - 4 * _gauss(sp.Integer(2)) / (_cdf(sp.Integer(2)) - _cdf(sp.Integer(-2))))


def build(digits: int = 15):
    import mpmath as mp
    import sympy as sp

    from ..derivation import Derivation

    fi, fo = sp.symbols("fan_in fan_out", positive=True)
    v, q, b = sp.symbols("v q b", positive=True)
    a = sp.Symbol("a", nonnegative=True)
    z = sp.Symbol("z", real=True)
    phi = _gauss(z)
    d = Derivation("fan-rules", "The fan rules: LeCun, Glorot, He, leaky ReLU",
                   "Each rule solves $\\text{fan} \\cdot \\operatorname{Var}(w) \\cdot S = 1$ for the activation's "
                   "Gaussian moment $S$; the normal std, the uniform bound and the truncated-normal correction "
                   "follow.")
    d.assume("layer", "each layer is linear-variance's setting: zero-mean iid weights independent of "
             "their inputs, so a pre-activation has variance $\\text{fan\\_in} \\cdot v \\cdot E[\\phi(h)^2]$")
    d.assume("grad_indep", "backward, the weights are treated as independent of the back-propagated gradient "
             "(and of $\\phi'(h)$): the gradient $\\delta = W^T(\\phi'(h) \\odot g)$ reuses the forward $W$, so "
             "its variance $\\text{fan\\_out} \\cdot v \\cdot E[\\phi'(h)^2]$ times the upstream one is exact only "
             "under this independence (Glorot & Bengio 2010; accurate for wide layers, Schoenholz et al. 2017)")
    d.assume("gaussian", "pre-activations are Gaussian, $h = \\sqrt{q} z$ with $z \\sim N(0, 1)$")
    d.assume("small_signal", "LeCun and Glorot: the activation is linear near 0 with slope 1 (tanh with "
             "small inputs), so $\\phi(h) \\approx h$ and $\\phi'(h) \\approx 1$")
    d.assume("relu", "He: $\\phi(h) = \\max(0, h)$")
    d.assume("leaky", "leaky ReLU / PReLU: $\\phi(h) = h$ for $h \\ge 0$ and $a h$ below, slope $a \\ge 0$")

    # Gaussian moments by integration
    S_lin = sp.integrate((sp.sqrt(q) * z) ** 2 * phi, (z, -sp.oo, sp.oo)) / q
    d.step("linear: forward moment", S_lin, 1, label="E[(\\sqrt{q} z)^2]/q", uses=("gaussian", "small_signal"))
    S_relu = sp.integrate((sp.sqrt(q) * z) ** 2 * phi, (z, 0, sp.oo)) / q
    d.step("ReLU: forward moment", S_relu, sp.Rational(1, 2), label="E[\\mathrm{relu}(\\sqrt{q} z)^2]/q",
           because="the negative half contributes nothing; by symmetry the positive half is half of $q$",
           uses=("gaussian", "relu"))
    D_relu = sp.integrate(phi, (z, 0, sp.oo))
    d.step("ReLU: backward moment", D_relu, sp.Rational(1, 2), label="E[\\mathrm{relu}'(\\sqrt{q} z)^2]",
           because="$\\phi' = 1$ on the positive half, 0 below", uses=("gaussian", "relu"))
    S_leaky = (sp.integrate((sp.sqrt(q) * z) ** 2 * phi, (z, 0, sp.oo))
               + sp.integrate((a * sp.sqrt(q) * z) ** 2 * phi, (z, -sp.oo, 0))) / q
    d.step("leaky ReLU: forward moment", S_leaky, (1 + a ** 2) / 2, label="E[\\phi_a(\\sqrt{q} z)^2]/q",
           uses=("gaussian", "leaky"))
    D_leaky = sp.integrate(phi, (z, 0, sp.oo)) + sp.integrate(a ** 2 * phi, (z, -sp.oo, 0))
    d.step("leaky ReLU: backward moment", D_leaky, (1 + a ** 2) / 2, label="E[\\phi_a'(\\sqrt{q} z)^2]",
           uses=("gaussian", "leaky"))
    d.step("leaky ReLU at a = 0 is ReLU", S_leaky.subs(a, 0), S_relu, label="S_{a=0}")

    def solve(fan, S):
        return sp.solve(sp.Eq(fan * v * S, 1), v)[0]

    lecun = solve(fi, S_lin)
    d.step("LeCun (forward, small signal)", lecun, 1 / fi, label="v", uses=("layer",))
    glorot_b = solve(fo, 1)
    d.step("Glorot backward (small signal)", glorot_b, 1 / fo, label="v", uses=("grad_indep",))
    both = sp.solve([fi * v - 1, fo * v - 1], [v, fo], dict=True)
    d.step("both at once only when fan_in = fan_out", sp.FiniteSet(*[(s[v], s[fo]) for s in both]),
           sp.FiniteSet((1 / fi, fi)), label="\\{(v, \\text{fan\\_out})\\}",
           because="the two conditions are solved together")
    glorot = solve((fi + fo) / 2, 1)
    d.step("Glorot compromise: the average fan", glorot, 2 / (fi + fo), label="v")
    d.step("which is the harmonic mean of the two conditions", 2 / (1 / lecun + 1 / glorot_b), glorot,
           label="\\frac{2}{1/v_{\\mathrm{fwd}} + 1/v_{\\mathrm{bwd}}}")
    he = solve(fi, S_relu)
    d.step("He forward", he, 2 / fi, label="v", uses=("layer",))
    he_b = solve(fo, D_relu)
    d.step("He backward", he_b, 2 / fo, label="v", uses=("grad_indep",))
    leaky = solve(fi, S_leaky)
    d.step("leaky ReLU / PReLU forward", leaky, 2 / ((1 + a ** 2) * fi), label="v", uses=("layer",))

    # from a variance to a distribution's parameter
    x = sp.Symbol("x", real=True)
    var_u = sp.integrate(x ** 2 / (2 * b), (x, -b, b))
    d.step("variance of U(-b, b)", var_u, b ** 2 / 3, label="\\operatorname{Var}\\,U(-b, b)",
           because="the density is $1/(2b)$ and the mean is 0")
    bound = sp.solve(sp.Eq(var_u, v), b)[0]
    d.step("uniform bound for a variance v", bound, sp.sqrt(3 * v), label="b")
    bounds = {name: bound.subs(v, val) for name, val in
              (("lecun", lecun), ("glorot", glorot), ("he", he), ("leaky", leaky))}
    d.step("Glorot uniform", bounds["glorot"], sp.sqrt(6 / (fi + fo)), label="b")
    d.step("He uniform", bounds["he"], sp.sqrt(6 / fi), label="b")

    # the truncated normal
    mass = sp.integrate(phi, (z, -2, 2))
    second = sp.integrate(z ** 2 * phi, (z, -2, 2))
    tvar = 1 - 4 * _gauss(sp.Integer(2)) / (_cdf(sp.Integer(2)) - _cdf(sp.Integer(-2)))
    d.text("A normal truncated to $[-2\\sigma, 2\\sigma]$ has a smaller variance than $\\sigma^2$: the "
           "integral by parts $\\int_{-2}^{2} z^2\\varphi = (\\Phi(2) - \\Phi(-2)) - 4\\varphi(2)$ gives the "
           "factor.")
    d.step("variance of N(0, 1) truncated to [-2, 2]", second / mass, tvar,
           label="\\frac{\\int_{-2}^{2} z^2 \\varphi(z)\\,dz}{\\int_{-2}^{2} \\varphi(z)\\,dz}",
           because="SymPy integrates both; the closed form is $1 - 4\\varphi(2)/(\\Phi(2) - \\Phi(-2))$",
           uses=("gaussian",))
    tstd = sp.sqrt(tvar)
    with mp.workdps(digits + 10):
        tval = mp.sqrt(1 - 4 * mp.npdf(2) / (mp.ncdf(2) - mp.ncdf(-2)))
        d.numeric("its std", tstd, tval, digits)
    d.step("std parameter of a truncated normal for a variance v", sp.sqrt(v) / tstd,
           sp.sqrt(v) * sp.sqrt(tvar) / tvar, label="\\sigma")
    d.compare("std of N(0,1) truncated to [-2, 2]", tval, JAX_TRUNCATED_STD,
              "JAX jax.nn.initializers.variance_scaling, the literal .87962566103423978")
    from varprop import truncnorm
    d.compare("std of N(0,1) truncated to [-2, 2] (float closed form)", tval, truncnorm.std(-2.0, 2.0),
              "varprop.truncnorm.std(-2, 2)")

    d.result("lecun_var", lecun)
    d.result("glorot_forward_var", lecun)
    d.result("glorot_backward_var", glorot_b)
    d.result("glorot_var", glorot)
    d.result("he_forward_var", he)
    d.result("he_backward_var", he_b)
    d.result("leaky_var", leaky)
    for name, val in (("lecun", lecun), ("glorot", glorot), ("he", he), ("leaky", leaky)):
        d.result(f"{name}_normal_std", sp.sqrt(val))
        d.result(f"{name}_uniform_bound", bounds[name])
    d.result("truncated_std", tstd, latex=sp.latex(tstd))
    d.result("truncated_std_value", tval)
    return d

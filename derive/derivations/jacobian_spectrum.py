"""The spectrum of the input-output Jacobian: why orthogonal weights, and only they, give dynamical isometry.

In the wide limit the factors D_l^2 (D_l = diag phi'(h_l)) and W_l W_l^T of J J^T are asymptotically free
(Pennington, Schoenholz & Ganguli 2017), and free multiplicative convolution multiplies S-transforms. Writing
the S-transform of a law with mean m_1 and second moment m_2 to first order, S(z) = (1/m_1)(1 - s z + O(z^2)),
its coefficient s is the normalized variance m_2/m_1^2 - 1; a product of free factors therefore multiplies the
means and adds the normalized variances. Per layer D^2 contributes mu_2/mu_1^2 - 1 (mu_k = E[phi'(h)^(2k)] at
q*) and W W^T contributes 1 (Gaussian: the Marchenko-Pastur law of ratio 1) or 0 (orthogonal), so

    var(spectrum of J J^T) / mean^2 = L (mu_2/mu_1^2 - 1 - s_1),   s_1 = -1 Gaussian, 0 orthogonal,

and the mean is chi_1^L. The numbers below are held against SciPy quadrature and :mod:`varprop.derive.jacobian`.

>>> from varprop.derive.derivations.jacobian_spectrum import build
>>> build().verified
True
"""
from __future__ import annotations

__all__ = ["build"]


def build(digits: int = 15):
    import math

    import mpmath as mp
    import sympy as sp
    from scipy import integrate

    from .. import jacobian as jt
    from ..derivation import Derivation

    d = Derivation("jacobian-spectrum", "The Jacobian's spectrum at initialization: dynamical isometry",
                   "Free multiplicative convolution adds normalized variances: the squared singular values of "
                   "$J = \\prod_l D_l W_l$ have mean $\\chi_1^L$ and normalized variance "
                   "$L(\\mu_2/\\mu_1^2 - 1 - s_1)$, so only orthogonal weights ($s_1 = 0$) with "
                   "$\\mu_2 \\to \\mu_1^2$ (tanh as $q^* \\to 0$) keep every singular value near 1; ReLU never does.")
    d.assume("free", "in the wide limit the $D_l^2$ and $W_l W_l^T$ are asymptotically free, and every layer's "
             "pre-activations are at the fixed point $q^*$ (the input's length is $q^*$)")
    d.assume("weights", "$W_l$ is $n \\times n$ with iid $N(0, \\sigma_w^2/n)$ entries (Gaussian) or $\\sigma_w$ "
             "times a Haar orthogonal matrix (orthogonal)")

    z, w = sp.symbols("z w")
    m1, m2, a, b = sp.symbols("m_1 m_2 a b", positive=True)
    a1, a2 = sp.symbols("a_1 a_2")
    psi = m1 * z + m2 * z ** 2                                     # the moment series, to second order
    ex = sp.expand(psi.subs(z, a1 * w + a2 * w ** 2))
    sol = sp.solve([ex.coeff(w, 1) - 1, ex.coeff(w, 2)], [a1, a2], dict=True)[0]   # psi(chi(w)) = w + O(w^3)
    chi = sol[a1] * w + sol[a2] * w ** 2                           # the inverse series of psi
    S = sp.series(chi * (1 + w) / w, w, 0, 2).removeO()
    d.step("the S-transform to first order", sp.expand(S), sp.expand((1 / m1) * (1 - (m2 / m1 ** 2 - 1) * w)),
           label="S(w) + O(w^2)", uses=("free",))
    SA, SB = (1 - a * w) / m1, (1 - b * w)
    prod = sp.expand(sp.series(SA * SB, w, 0, 2).removeO())
    d.step("a free product multiplies S-transforms: the normalized variances add", prod,
           sp.expand((1 - (a + b) * w) / m1), label="S_A S_B + O(w^2)")
    L = sp.Symbol("L", positive=True, integer=True)
    d.step("the Fuss-Catalan law (L Gaussian layers, linear) has second moment L + 1, normalized variance L",
           sp.binomial(2 * (L + 1), 2) / (2 * L + 1) - 1, L, label="m_2 - 1", uses=("weights",),
           at=[{L: k} for k in (1, 2, 5, 9)])
    d.text("ReLU: $\\phi'^2$ is 0 or 1, each with probability 1/2, so $\\mu_1 = \\mu_2 = 1/2$.")
    d.step("ReLU's D^2 has normalized variance 1", sp.Rational(1, 2) / sp.Rational(1, 2) ** 2 - 1, 1,
           label="\\mu_2/\\mu_1^2 - 1")
    d.text("So ReLU's normalized variance is $2L$ with Gaussian and $L$ with orthogonal weights: no isometric "
           "regime. For tanh at the critical point, $q^*$ falls with $\\sigma_b^2$ and $\\mu_2/\\mu_1^2 \\to 1$:")
    for sb in (0.05, 1e-3, 1e-5):
        sw, q = jt.critical_point("tanh", sb)
        mu1, mu2 = jt.derivative_moments("tanh", q)
        s = math.sqrt(q)
        dens = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)       # noqa: E731
        r1 = integrate.quad(lambda t: (1 / math.cosh(s * t)) ** 4 * dens(t), -12, 12, epsabs=1e-14, limit=200)[0]
        r2 = integrate.quad(lambda t: (1 / math.cosh(s * t)) ** 8 * dens(t), -12, 12, epsabs=1e-14, limit=200)[0]
        d.numeric(f"tanh, sigma_b^2 = {sb:g} (q* = {q:.4g}): mu_2/mu_1^2 - 1 per layer, orthogonal weights",
                  f"\\mu_2/\\mu_1^2 - 1 \\,|_{{\\sigma_b^2 = {sb:g}}}", mp.mpf(mu2 / mu1 ** 2 - 1), 10,
                  reference=(r2 / r1 ** 2 - 1, 1e-8, "SciPy quadrature of sech^4 and sech^8"))
        d.result(f"tanh_orthogonal_spread_{sb:g}", mp.mpf(mu2 / mu1 ** 2 - 1))
    d.result("relu_gaussian_spread_per_layer", sp.Integer(2))
    d.result("relu_orthogonal_spread_per_layer", sp.Integer(1))
    return d

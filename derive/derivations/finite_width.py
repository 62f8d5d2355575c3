"""Finite width: log ||x_l||^2 is a random walk; the random-walk gain that makes its drift zero.

The per-layer factor R = ||phi(W x)||^2 / ||x||^2 is v times a chi-square (linear: n_out degrees of freedom;
ReLU: K ~ Binomial(n_out, 1/2) of them), so E[log R] and Var[log R] follow from the log-moments of the Gamma
law, psi(a) and psi_1(a), derived here by SymPy; the ReLU numbers are summed over the binomial law twice, with
mpmath and with SciPy (:mod:`varprop.derive.finite_width`), and the simulator holds them against networks
in the tests. The wide limit hides all of it: He's 2/n keeps E[R] = 1, yet E[log R] < 0, so the typical
network's signal shrinks and the spread across networks grows like 5 sum_l 1/n_l (Hanin & Nica 2019).

>>> from varprop.derive.derivations.finite_width import build
>>> d = build()
>>> d.verified, d.to_dict(6)["result"]["relu_gain_16"]
(True, '1.54461')
"""
from __future__ import annotations

__all__ = ["build"]

_WIDTHS = (16, 64, 256, 1024)


def _mp_active(n: int):
    """(E psi(K/2), E psi_1(K/2) + Var psi(K/2)) for K ~ Binomial(n, 1/2), K >= 1, in mpmath."""
    import mpmath as mp
    w = [mp.binomial(n, k) for k in range(1, n + 1)]
    tot = mp.fsum(w)
    d = [mp.digamma(mp.mpf(k) / 2) for k in range(1, n + 1)]
    m = mp.fsum(wi * di for wi, di in zip(w, d)) / tot
    var = mp.fsum(wi * (mp.psi(1, mp.mpf(k) / 2) + (di - m) ** 2)
                  for k, wi, di in zip(range(1, n + 1), w, d)) / tot
    return m, var


def build(digits: int = 15):
    import mpmath as mp
    import sympy as sp

    from .. import finite_width as fw
    from ..derivation import Derivation

    d = Derivation("finite-width", "Finite width: the signal's squared norm is a random walk",
                   "At width $n$ a layer multiplies $\\|x\\|^2$ by $R = v\\chi^2$, independent of everything before, "
                   "so $\\log\\|x_L\\|^2$ is a random walk with drift $E[\\log R]$ and step variance $\\approx 5/n$ "
                   "for ReLU; He's $v = 2/n$ makes $E[R] = 1$ but $E[\\log R] < 0$, and the random-walk variance "
                   "makes the drift exactly zero.")
    d.assume("weights", "the weights of a layer are iid $N(0, v)$, independent of the layer's input $x$")
    d.assume("homogeneous", "$\\phi$ is linear or ReLU, so $\\phi(s g) = s\\,\\phi(g)$ for $s > 0$")
    d.assume("active", "for ReLU, $K$ units of $n$ are active, $K \\sim \\mathrm{Binomial}(n, 1/2)$, $K \\ge 1$ "
             "(no unit is active with probability $2^{-n}$: the signal is then lost for good)")

    a = sp.Symbol("a", positive=True)
    x = sp.Symbol("x", positive=True)
    n = sp.Symbol("n", positive=True)
    v = sp.Symbol("v", positive=True)
    dens = x ** (a - 1) * sp.exp(-x) / sp.gamma(a)
    d.text("Given $x$, $h_i = \\sum_j w_{ij}x_j \\sim N(0, v\\|x\\|^2)$ independently over $i$, so "
           "$h_i = \\sqrt{v}\\,\\|x\\| g_i$ with $g_i$ iid standard normal and "
           "$R = \\|\\phi(h)\\|^2/\\|x\\|^2 = v\\sum_i \\phi(g_i)^2$, whatever $x$ was: the factors of different "
           "layers are independent. For a linear layer the sum is $\\chi^2_n = 2G$, $G \\sim \\Gamma(n/2, 1)$; "
           "for ReLU it is $\\chi^2_K$ given the $K$ active units.")
    m1 = sp.simplify(sp.integrate(sp.log(x) * dens, (x, 0, sp.oo)))
    d.step("the mean log of a Gamma(a, 1) variable", m1, sp.polygamma(0, a), label="E[\\log G]",
           uses=("weights", "homogeneous"))
    m2 = sp.simplify(sp.integrate(sp.log(x) ** 2 * dens, (x, 0, sp.oo)))
    d.step("its variance", sp.expand(m2 - m1 ** 2), sp.polygamma(1, a), label="\\operatorname{Var}[\\log G]")
    e_lin = sp.log(v) + sp.log(2) + sp.polygamma(0, n / 2)
    d.step("so for a linear layer, with chi-square = 2 Gamma(n/2)", sp.log(v) + sp.log(2) + m1.subs(a, n / 2),
           e_lin, label="E[\\log R]")
    v_rw = sp.solve(sp.Eq(e_lin, 0), v)
    d.step("the random-walk variance of a linear layer (zero drift)", v_rw[0] if len(v_rw) == 1 else v_rw,
           sp.exp(-sp.polygamma(0, n / 2)) / 2, label="v_{rw}")
    psi_series = sp.series(sp.polygamma(0, x), x, sp.oo, 3).removeO()
    log_g = sp.expand(sp.log(n) / 2 + sp.expand_log(sp.log(sp.exp(-psi_series.subs(x, n / 2)) / 2), force=True) / 2)
    d.step("whose gain g = sqrt(n v) grows like exp(1/(2n)) (Sussillo & Abbott 2014)", sp.expand(log_g),
           1 / (2 * n) + 1 / (6 * n ** 2), label="\\log g + O(n^{-3})")

    d.text("For ReLU, conditioning on $K$: $E[\\log R] = \\log v + \\log 2 + E[\\psi(K/2)]$ and, by the law of total "
           "variance, $\\operatorname{Var}[\\log R] = E[\\psi_1(K/2)] + \\operatorname{Var}(\\psi(K/2))$, about "
           "$4/n + 1/n = 5/n$ for large $n$ ($\\psi_1(K/2) \\approx 2/K$, $\\psi'$ of $K/2$ is $\\approx 2/n$ "
           "and $\\operatorname{Var} K = n/4$). Summed over the binomial law, in mpmath, and again in SciPy:")
    for w in _WIDTHS:
        m, var = _mp_active(w)
        gain = mp.sqrt(w * mp.exp(-m) / 2)
        d.numeric(f"the exact ReLU random-walk gain at width {w}", f"g_{{rw}}({w})", gain, digits,
                  uses=("active",), reference=(fw.random_walk_gain("relu", w), 1e-12, "the SciPy sum"))
        d.numeric(f"n Var[log R] at width {w} (5 in the wide limit)", f"{w}\\,\\operatorname{{Var}}[\\log R]",
                  w * var, digits, reference=(w * fw.log_ratio_var("relu", w), 1e-12, "the SciPy sum"))
        he = mp.log(2 * mp.mpf(2) / w) + m
        d.numeric(f"He's drift at width {w}: E[log R] < 0", f"E[\\log R]_{{He}}({w})", he, digits,
                  reference=(fw.log_ratio_mean("relu", 2 / w, w), 1e-12, "the SciPy sum"))
        d.result(f"relu_gain_{w}", gain)
        d.compare(f"ReLU random-walk gain at width {w}", float(gain), fw.sussillo_abbott_gain("relu", w),
                  "Sussillo & Abbott 2014, fitted sqrt(2) exp(1.2/(max(n,6)-2.4))")
    d.text("The exact gains agree with Sussillo & Abbott's fitted formula to 4 significant digits at these widths; "
           "the spread of $\\log\\|x_L\\|^2$ across networks is $\\sum_l \\operatorname{Var}[\\log R_l]$, so "
           "a deep narrow net has networks that differ by orders of magnitude (Hanin & Nica 2019) even at He.")
    return d

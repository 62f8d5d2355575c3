"""Dropout: the expectation kept per unit, the second moment times 1/p, Var(w) = 2p/fan_in, and no c = 1 fixed point.

With a keep mask m ~ Bernoulli(p) independent of x (Srivastava et al. 2014):

    vanilla   train m x, test p x:       E[m x] = p E[x] = E[p x]
    inverted  train m x / p, test x:     E[m x / p] = E[x],   E[(m x / p)^2] = E[x^2] / p

The test-time rescaling keeps each unit's expectation over its own mask; for a nonlinear network it is not
the ensemble mean over masks (E[phi(m x / p)] != phi(x) in general, by Jensen). Inverted dropout inflates the
second moment a ReLU layer passes on by 1/p, so the variance-preserving condition becomes n Var(w) / (2p) = 1,
Var(w) = 2p / fan_in (Hendrycks & Gimpel 2016; Pretorius et al. 2018). DropConnect masks the weights instead
(Wan et al. 2013): E_M[sum_j M_ij W_ij x_j] = p (W x)_i, with mask variance p (1 - p) sum_j W_ij^2 x_j^2.

Correlations (Schoenholz et al. 2017, Section 6): two inputs draw independent masks, so the dropout factor
1/p enters the length q*, not the cross term, and at c = 1 the correlation map gives
c' = (sigma_w^2 E[phi^2] + sigma_b^2) / (sigma_w^2 E[phi^2] / p + sigma_b^2) < 1. c = 1 is no longer a fixed
point: the map's fixed point c* is below 1 (0.2172 for ReLU at Var(w) = 2p/fan_in, p = 1/2), so there is no
critical initialization for correlations under dropout.

>>> from varprop.derive.derivations.dropout import build
>>> d = build()
>>> d.verified, d.to_dict()["result"]["critical_weight_variance"]
(True, '2*p/n')
"""
from __future__ import annotations

__all__ = ["build", "simulated_correlation"]


def simulated_correlation(keep: float = 0.5, depth: int = 12, width: int = 512, trials: int = 20, seed: int = 0):
    """(mean, standard error) over ``trials`` NumPy ReLU networks of the correlation between the
    pre-activations of two copies of one input, layer by layer, under inverted dropout on every hidden
    layer's output (independent masks per copy), Var(w) = 2 keep / fan_in. Layer 1 sees no dropout (c = 1)."""
    import numpy as np
    cs = np.zeros((trials, depth))
    for t in range(trials):
        rng = np.random.default_rng([seed, t])
        x = rng.standard_normal(width)
        a = b = x
        for layer in range(depth):
            W = rng.standard_normal((width, width)) * np.sqrt(2 * keep / width)
            ha, hb = W @ a, W @ b
            cs[t, layer] = ha @ hb / np.sqrt((ha @ ha) * (hb @ hb))
            ma, mb = rng.random(width) < keep, rng.random(width) < keep
            a, b = np.maximum(ha, 0) * ma / keep, np.maximum(hb, 0) * mb / keep
    return cs.mean(axis=0), cs.std(axis=0, ddof=1) / np.sqrt(trials)


def build(digits: int = 15):
    import sympy as sp

    from ..derivation import Derivation
    from .linear_variance import expectation

    p = sp.Symbol("p", positive=True)          # keep probability, 0 < p <= 1
    mu = sp.Symbol("mu", real=True)
    s2, q, v = sp.symbols("s_2 q v", positive=True)
    n = sp.Symbol("n", positive=True, integer=True)
    m, x = sp.symbols("m x", real=True)

    d = Derivation("dropout", "Dropout: expectation kept, second moment times 1/p, Var(w) = 2p/fan_in",
                   "Vanilla dropout (scale by $p$ at test time) and inverted dropout (scale by $1/p$ in training) "
                   "both keep the expectation; the second moment grows by $1/p$, so a ReLU network under inverted "
                   "dropout with keep probability $p$ preserves the variance with $\\operatorname{Var}(w) = "
                   "2p/\\mathrm{fan_{in}}$; DropConnect's expectation is $p W x$.")
    d.assume("mask", "the keep mask $m \\sim \\mathrm{Bernoulli}(p)$ is independent of $x$ (and of the other "
                     "units' masks), so $E[m] = E[m^2] = p$")
    d.assume("moments", "$x$ has mean $\\mu$ and second moment $s_2 = E[x^2]$")
    d.assume("relu", "the layer's pre-activation $h$ is symmetric about 0 with $E[h^2] = q$, so "
                     "$E[\\mathrm{relu}(h)^2] = q/2$ (He et al. 2015)")
    d.assume("weights", "the next layer's weights are iid with mean 0 and variance $v$, independent of its "
                        "$n$ inputs")

    groups = {m: (p, p * (1 - p)), x: (mu, s2 - mu ** 2)}
    d.step("the mask's second moment", expectation(m ** 2, {m: groups[m]}), p, label="E[m^2]",
           because="$m^2 = m$ for a 0/1 variable; here from its mean $p$ and variance $p(1-p)$", uses=("mask",))

    d.text("**Vanilla dropout** multiplies by $m$ in training and by $p$ at test time.")
    train_mean = expectation(m * x, groups)
    d.step("vanilla: training mean", train_mean, p * mu, label="E[m x]", uses=("mask", "moments"),
           because="independence factorizes $E[m x] = E[m]E[x]$")
    d.step("vanilla: the test-time output has the same mean", train_mean, expectation(p * x, groups),
           label="E[m x] = E[p x]", uses=("moments",))
    vanilla2 = expectation((m * x) ** 2, groups)
    d.step("vanilla: second moments differ by 1/p", vanilla2 / expectation((p * x) ** 2, groups), 1 / p,
           label="E[(m x)^2] / E[(p x)^2]", uses=("mask", "moments"))

    d.text("**Inverted dropout** multiplies by $m/p$ in training and leaves the test-time network alone.")
    inv = m * x / p
    d.step("inverted: the mean is kept", expectation(inv, groups), mu, label="E[m x / p]", uses=("mask", "moments"))
    inv2 = expectation(inv ** 2, groups)
    d.step("inverted: the second moment grows by 1/p", inv2, s2 / p, label="E[(m x / p)^2]",
           uses=("mask", "moments"))
    d.step("inverted: the variance it adds", inv2 - expectation(inv, groups) ** 2 - (s2 - mu ** 2),
           s2 * (1 - p) / p, label="\\operatorname{Var}(m x / p) - \\operatorname{Var}(x)", uses=("moments",))

    d.text("**Critical initialization of a ReLU network under inverted dropout.** The next pre-activation sums "
           "$n$ terms $w_j \\tilde x_j$ with $\\tilde x_j = m_j\\,\\mathrm{relu}(h_j)/p$:")
    r2 = sp.Symbol("r_2", positive=True)
    groups_r = {m: (p, p * (1 - p)), x: (sp.Symbol("r_1", positive=True), r2 - sp.Symbol("r_1", positive=True) ** 2)}
    dropped2 = expectation((m * x / p) ** 2, groups_r).subs(r2, q / 2)
    q_next = n * v * dropped2
    d.step("the length map under dropout", q_next, n * v * q / (2 * p), label="q' = n v E[\\tilde x^2]",
           uses=("weights", "relu", "mask"), because="$E[\\mathrm{relu}(h)^2] = q/2$, then the factor $1/p$")
    crit = sp.solve(sp.Eq(q_next, q), v)
    if len(crit) != 1:
        raise RuntimeError(f"expected one critical variance, got {crit}")
    d.step("q' = q solved for Var(w)", crit[0], 2 * p / n, label="\\operatorname{Var}(w)",
           because="the He condition $2/\\mathrm{fan_{in}}$ scaled by the keep probability", uses=("relu",))
    d.step("no dropout recovers He", (2 * p / n).subs(p, 1), 2 / n, label="\\operatorname{Var}(w)\\big|_{p=1}")

    d.text("**DropConnect** masks each weight with its own $M_{ij} \\sim \\mathrm{Bernoulli}(p)$; for fixed $W$ "
           "and $x$ the expectation over the masks is linear:")
    j = sp.Symbol("j", positive=True, integer=True)
    W, X = sp.IndexedBase("W"), sp.IndexedBase("x")
    i = sp.Symbol("i", positive=True, integer=True)
    d.step("DropConnect: the mean over masks", sp.Sum(p * W[i, j] * X[j], (j, 1, n)),
           p * sp.Sum(W[i, j] * X[j], (j, 1, n)), label="E_M\\left[\\sum_j M_{ij} W_{ij} x_j\\right]",
           because="$E[M_{ij}] = p$ term by term", uses=("mask",))
    ms = sp.symbols("M_1:4", real=True)
    ws = sp.symbols("W_1:4", real=True)
    xs = sp.symbols("x_1:4", real=True)
    y3 = sum(M * w * xx for M, w, xx in zip(ms, ws, xs))
    gm = {M: (p, p * (1 - p)) for M in ms}
    mean3 = expectation(y3, gm)
    d.step("DropConnect: n = 3 expanded, mean", mean3, p * sum(w * xx for w, xx in zip(ws, xs)),
           label="E_M[y]\\big|_{n=3}", uses=("mask",))
    d.step("DropConnect: n = 3 expanded, variance over masks", expectation(y3 ** 2, gm) - mean3 ** 2,
           p * (1 - p) * sum((w * xx) ** 2 for w, xx in zip(ws, xs)), label="\\operatorname{Var}_M(y)\\big|_{n=3}",
           because="the masks are independent, so only the diagonal terms survive", uses=("mask",))
    d.text("Inverted DropConnect divides by $p$ and keeps $W x$ in expectation, with mask variance "
           "$\\frac{1-p}{p}\\sum_j W_{ij}^2 x_j^2$.")

    d.text("**Per unit, not per network.** The rescaling keeps each unit's expectation over its own mask. A "
           "nonlinear network applied at test time is not the mean over masks of the training networks: for "
           "$\\phi(t) = t^2$ already,")
    xx = sp.Symbol("x_0", real=True)
    d.step("Jensen's gap for phi(t) = t^2", expectation((m * xx / p) ** 2, {m: groups[m]}) - xx ** 2,
           xx ** 2 * (1 - p) / p, label="E_m[\\phi(m x/p)] - \\phi(E_m[m x/p])", uses=("mask",),
           because="non-zero for $p < 1$: the deterministic test-time network is an approximation of the "
           "ensemble, exact only for a linear one")

    d.text("**No critical initialization for correlations** (Schoenholz et al. 2017, Section 6). Two inputs "
           "$a, b$ get independent masks, so $E[m_a m_b] = p^2$ and the factor $1/p$ enters the length "
           "$q^* = \\sigma_w^2 E[\\phi(u)^2]/p + \\sigma_b^2$ but not the cross term $q_{ab} = \\sigma_w^2 "
           "E[\\phi(u_a)\\phi(u_b)] + \\sigma_b^2$. At $c = 1$ the two pre-activations coincide, "
           "$E[\\phi(u_a)\\phi(u_b)] = E[\\phi(u)^2] = e$:")
    e_, sw2, sb2 = sp.symbols("e sigma_w^2 sigma_b^2", positive=True)
    ma, mb = sp.symbols("m_a m_b", real=True)
    cross = expectation(ma * mb / p ** 2, {ma: groups[m], mb: groups[m]})
    d.step("independent masks: the cross term keeps no 1/p", cross, 1, label="E[m_a m_b]/p^2", uses=("mask",))
    c1 = (sw2 * e_ + sb2) / (sw2 * e_ / p + sb2)
    d.step("the gap of the correlation map at c = 1", sp.simplify(1 - c1),
           sw2 * e_ * (1 - p) / (sw2 * e_ + p * sb2), label="1 - c'(1)", uses=("mask",),
           because="positive for every $p < 1$: $c = 1$ maps strictly inside, so it is not a fixed point")
    cc = sp.Symbol("c", real=True)
    d.text("For ReLU at $\\operatorname{Var}(w) = 2p/\\mathrm{fan_{in}}$ ($\\sigma_w^2 = 2p$, $\\sigma_b = 0$, any "
           "$q^*$) the arc-cosine kernel $E[\\mathrm{relu}(u_a)\\mathrm{relu}(u_b)] = \\frac{q}{2\\pi}"
           "(\\sqrt{1 - c^2} + (\\pi - \\arccos c)\\,c)$ (Cho & Saul 2009) gives the map in closed form:")
    relu_map = p / sp.pi * (sp.sqrt(1 - cc ** 2) + (sp.pi - sp.acos(cc)) * cc)
    d.step("the ReLU correlation map under dropout at c = 1", relu_map.subs(cc, 1), p, label="c'(1)",
           uses=("relu", "weights"))
    import mpmath as mp

    from .. import maps
    with mp.workdps(digits + 10):
        half = mp.mpf(1) / 2
        cstar = mp.findroot(lambda c: half / mp.pi * (mp.sqrt(1 - c ** 2) + (mp.pi - mp.acos(c)) * c) - c,
                            mp.mpf("0.2"))
    d.numeric("its fixed point at p = 1/2", "c^*\\big|_{p = 1/2}", cstar, digits, uses=("relu", "weights"),
              because="the root of $c = c'(c)$ by mpmath from the closed form; below 1, and the map is a "
              "contraction towards it from $c = 1$",
              reference=(maps.dropout_c_star("relu", 1.0, 0.0, 0.5), 1e-5,
                         "the float correlation map by Gaussian quadrature (about 1e-5 for a kinked activation), iterated from c = 1"))
    d.result("relu_c_star_half", cstar)
    d.result("correlation_gap_at_1", sw2 * e_ * (1 - p) / (sw2 * e_ + p * sb2))

    d.result("vanilla_train_mean", p * mu)
    d.result("inverted_mean", mu)
    d.result("second_moment_factor", 1 / p)
    d.result("critical_weight_variance", 2 * p / n)
    d.result("dropconnect_mean", p * sp.Sum(W[i, j] * X[j], (j, 1, n)))
    return d

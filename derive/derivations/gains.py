"""The exact gains of every registered activation, held against PyTorch's calculate_gain table.

With Var(w) = g^2/fan_in a layer maps the pre-activation second moment q = 1 to g^2 E[phi(z)^2], so the
variance-preserving forward gain is g_f = 1/sqrt(E[phi(z)^2]); the backward gain g_b = 1/sqrt(E[phi'(z)^2])
keeps the gradient variance with Var(w) = g^2/fan_out (He et al. 2015; Schoenholz et al. 2017). Where
SymPy integrates E[phi^2] the gain is a closed form; otherwise it is a certified numeric value
(:mod:`varprop.derive.moments`), held here against an independent SciPy quadrature.

PyTorch's table (torch.nn.init.calculate_gain) is exact for linear, ReLU and leaky ReLU but not for
tanh (5/3 against the exact 1.5925: each layer multiplies q = 1 by (5/3)^2 E[tanh(z)^2] = 1.095) nor for
SELU (3/4 against the exact 1: each layer multiplies the variance by 9/16).

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
    d = Derivation("gains", "Exact gains of every activation against PyTorch's table",
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
        elif b.name == "tanh":
            d.numeric("tanh with PyTorch's 5/3: the variance per layer at q = 1",
                      "(5/3)^2 E[\\tanh(z)^2]", mp.mpf(25) / 9 * moms["second"].value, moms["second"].digits,
                      uses=("fan_rule",), reference=(25 / 9 * scipy_moment(b, "second"), tol, "SciPy quadrature"))
        d.result(f"torch_variance_ratio_{b.name}", ratio)
    return d

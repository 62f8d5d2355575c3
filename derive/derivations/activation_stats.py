"""Predicted per-layer activation and gradient statistics of an MLP at initialization (the simulator's theory).

For widths n_0, ..., n_L, weights of per-entry variance v_l and zero mean, biases N(0, sigma_b^2), inputs with
E[x_0] = 0 and E[x_0^2] = 1 and an upstream gradient g_L ~ N(0, 1), the wide-network recursions are

    forward   q_l = n_{l-1} v_l E[x_{l-1}^2] + sigma_b^2,     x_l = phi(h_l), h_l ~ N(0, q_l)
    backward  E[g_{l-1}^2] = n_l v_l E[phi'(h_l)^2] E[g_l^2]   (k n_l rows for maxout)

(Poole et al. 2016; Schoenholz et al. 2017). The numbers come from :func:`varprop.derive.mean_field.predict`
and are checked layer by layer against mpmath quadrature of the same recursion. The weight variance is a
number, one number per layer, a distribution written in fan_in and fan_out (``normal(0, sqrt(2/fan_in))``) or
an initializer object (``varprop.nn.init.get("he_normal")``: the command line resolves names, as nothing in
derive/ imports nn/); without one, the activation's own variance-preserving gain g_f^2 / fan_in is used.
At most ``MAX_LAYERS`` (1000) weight layers: every layer is checked by quadrature, so the work grows with depth.

>>> from varprop.derive.derivations.activation_stats import build
>>> d = build(widths="100x4", activation="relu", init="normal(0, sqrt(2/fan_in))")
>>> d.verified, d.to_dict(6)["result"]["act_std_3"]
(True, '0.825645')
"""
from __future__ import annotations

import re
from fractions import Fraction

from ..mean_field import parse_widths

__all__ = ["build", "parse_widths", "weight_variances"]

MAX_LAYERS = 1000      # weight layers: each one costs an mpmath quadrature check (about a minute at the ceiling)
_CHECK_DIGITS = 9
_FLOAT_DIGITS = 12
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DISTRIBUTION = re.compile(r"\s*(normal|uniform|truncated_normal|constant)\s*\(")


def _number(init):
    if isinstance(init, bool):
        return None
    if isinstance(init, (int, float, Fraction)):
        return float(init)
    if isinstance(init, str):
        from varprop.activations import to_fraction
        try:
            return float(to_fraction(init, "init"))
        except ValueError:
            return None
    return None


def weight_variances(init, widths, bound) -> tuple[list[float], str]:
    """(per-layer weight variance v_l, a description), layer l having fan_in n_{l-1} and k n_l rows.

    ``init`` is None (the activation's variance-preserving gain: g_f^2 / fan_in), a variance (number,
    numeric string, or an expression in fan_in and fan_out such as "2/fan_in"), a sequence of one variance per layer, a distribution written in fan_in and fan_out
    (:func:`varprop.expr.parse_distribution`), or an initializer object: anything with ``variance(shape)``
    and ``mean(shape)`` for a (rows, fan_in) shape, such as ``varprop.nn.init.get("he_normal")``. Names of
    initializers are resolved by the caller (the ``varprop derive`` command does), since derive/ sits
    below nn/init.

    >>> from varprop.activations import get
    >>> [round(v, 12) for v in weight_variances("normal(0, sqrt(2/fan_in))", [4, 8, 2], get("relu"))[0]]
    [0.5, 0.25]
    """
    from ..gains import forward_scale_value
    k = bound.arity
    shapes = [(k * widths[i + 1], widths[i]) for i in range(len(widths) - 1)]
    if init is None:
        scale = forward_scale_value(bound)
        return [scale / fan_in for _, fan_in in shapes], f"the variance-preserving {scale:.6g}/fan_in of {bound.label()}"
    v = _number(init)
    if v is not None:
        return [_variance(v, init)] * len(shapes), f"Var(w) = {init}"
    if isinstance(init, (list, tuple)):
        if len(init) != len(shapes):
            raise ValueError(f"init gives {len(init)} weight variances for {len(shapes)} layers")
        out = []
        for x in init:
            vx = _number(x)
            if vx is None:
                raise TypeError(f"a per-layer weight variance must be a number, got {x!r}")
            out.append(_variance(vx, x))
        return out, "per-layer Var(w) = " + ", ".join(f"{x:.6g}" for x in out)
    if callable(getattr(init, "variance", None)) and callable(getattr(init, "mean", None)):
        # an initializer object: its exact per-entry variance for each layer's (rows, fan_in) shape
        out = []
        for shape in shapes:
            if abs(init.mean(shape)) > 0:
                raise ValueError(f"{getattr(init, 'name', init)} has nonzero-mean weights; the prediction assumes "
                                 "E[w] = 0")
            out.append(float(init.variance(shape)))
        return out, f"the initializer {getattr(init, 'name', type(init).__name__)}"
    if not isinstance(init, str):
        raise TypeError(f"init must be a number, a distribution or an initializer, got {type(init).__name__}")
    if _NAME.fullmatch(init.strip()):
        raise ValueError(f"init {init.strip()!r} names an initializer: pass the initializer itself "
                         f"(varprop.nn.init.get({init.strip()!r})), a variance or a distribution in fan_in, fan_out")
    from varprop.expr import parse_distribution
    if not _DISTRIBUTION.match(init):
        # a variance written in fan_in and fan_out (2/fan_in): the zero-mean normal with that variance
        dist = parse_distribution(f"normal(0, sqrt({init}))")
    else:
        dist = parse_distribution(init)
    out = []
    for rows, fan_in in shapes:
        if dist.mean(fan_in, rows) != 0:
            raise ValueError(f"{init} has nonzero-mean weights; the prediction assumes E[w] = 0")
        out.append(float(dist.variance(fan_in, rows)))
    return out, f"w ~ {init}"


def _variance(v: float, given) -> float:
    if not v >= 0:
        raise ValueError(f"a weight variance must be >= 0, got {given}")
    return v


def _independent_forward(bound, widths, v, sb):
    """act_std per layer by the same recursion on derive.moments' mpmath quadrature (no residual or dropout)."""
    import mpmath as mp

    from ..moments import moment
    out = []
    second = mp.mpf(1)
    for i in range(len(widths) - 1):
        q = widths[i] * mp.mpf(v[i]) * second + mp.mpf(sb.numerator) / sb.denominator
        qs = mp.nstr(q, 20)
        m1 = moment(bound, "mean", q=qs, digits=_CHECK_DIGITS + 4, closed=False).value
        second = moment(bound, "second", q=qs, digits=_CHECK_DIGITS + 4, closed=False).value
        out.append(mp.sqrt(second - m1 ** 2))
    return out


def build(widths="256x6", activation: str = "relu", params=None, init=None, sigma_b2=0, digits: int = 15):
    import sympy as sp

    from varprop.activations import get, to_fraction

    from ..derivation import Derivation, decimal_string
    from ..mean_field import predict
    from ..moments import check_digits

    check_digits(digits)
    ws = list(parse_widths(widths, max_layers=MAX_LAYERS))
    b = get(activation, **(params or {}))
    sb = to_fraction(sigma_b2, "sigma_b2")
    if sb < 0:
        raise ValueError(f"sigma_b2 must be >= 0, got {sigma_b2}")
    v, how = weight_variances(init, ws, b)
    L = len(ws) - 1
    p = predict(ws, b, v, sigma_b2=float(sb))

    d = Derivation("activation-stats", f"Predicted layer statistics: {b.label()}, widths {'-'.join(map(str, ws))}",
                   "The per-layer mean and standard deviation of the activations and of the gradients of an MLP "
                   "at initialization, from the length map forward and the $\\chi$ recursion backward: the curve "
                   "`varprop simulate` is held against.")
    d.assume("iid", "weights iid with mean 0 and variance $v_l$ (layer $l$), biases iid $N(0, \\sigma_b^2)$, "
                    "independent of the layer's input")
    d.assume("wide", "wide layers: each pre-activation is Gaussian (central limit theorem)")
    d.assume("inputs", "inputs with $E[x_0] = 0$, $E[x_0^2] = 1$; upstream gradient $g_L \\sim N(0, 1)$ iid")
    d.assume("grad_indep", "backward, the weights are treated as independent of the forward pass")

    n, j, i = sp.symbols("n_{l-1} j i", positive=True, integer=True)
    nl = sp.Symbol("n_l", positive=True, integer=True)
    vl, sbs, m2, d2, g2 = sp.symbols("v_l sigma_b^2 m_2 d_2 G", positive=True)
    d.step("forward: pre-activation second moment", sp.Sum(vl * m2, (j, 1, n)).doit() + sbs, n * vl * m2 + sbs,
           label="q_l = \\sum_{j=1}^{n_{l-1}} E[W_{ij}^2]E[x_j^2] + \\sigma_b^2", uses=("iid", "inputs"),
           because="cross terms vanish for zero-mean independent weights; $m_2 = E[x_{l-1}^2]$, 1 for the input")
    d.step("backward: gradient second moment", sp.Sum(vl * d2 * g2, (i, 1, nl)).doit(), nl * vl * d2 * g2,
           label="E[g_{l-1,j}^2] = \\sum_{i=1}^{n_l} E[W_{ij}^2]E[\\phi'(h_i)^2]E[g_{l,i}^2]",
           uses=("iid", "grad_indep", "inputs"),
           because="$g_{l-1} = W_l^T(g_l \\odot \\phi'(h_l))$; $d_2 = E[\\phi'(h)^2]$ at $h \\sim N(0, q_l)$")
    d.text(f"Each $E[\\phi(h)]$, $E[\\phi(h)^2]$, $E[\\phi'(h)^2]$ is a Gaussian moment at $h \\sim N(0, q_l)$. "
           f"Weights: {how}.")

    rows = ["| layer | fan_in | $v_l$ | $q_l = E[h_l^2]$ | mean $x_l$ | std $x_l$ | std $g_l$ |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for li in range(L):
        rows.append(f"| {li + 1} | {ws[li]} | {v[li]:.6g} | {p.pre_q[li]:.6g} | {p.act_mean[li]:.6g} | "
                    f"{p.act_std[li]:.6g} | {p.grad_std[li]:.6g} |")
    d.text("\n".join(rows))

    indep = _independent_forward(b, ws, v, sb)
    gap = max(abs(float(a) - float(b_)) / max(abs(float(b_)), 1e-300) for a, b_ in zip(indep, p.act_std))
    tol = 10.0 ** -_CHECK_DIGITS
    d.step("independent quadrature reproduces every layer's std", sp.StrictLessThan(sp.Float(f"{gap:.3g}"), sp.Float(tol), evaluate=False), sp.true,
           label="\\max_l |\\Delta\\operatorname{std}(x_l)| / \\operatorname{std}(x_l)",
           uses=("wide",), because="the forward recursion again on tanh-sinh quadrature (derive.moments) instead "
           "of the float Gauss-Legendre path")

    def value(x):
        # the float path agrees with the quadrature check to ~1e-13; never print more than it earns
        return Fraction(decimal_string(float(x), _FLOAT_DIGITS))

    for li in range(L):
        lay = li + 1
        d.result(f"weight_var_{lay}", value(v[li]))
        d.result(f"pre_q_{lay}", value(p.pre_q[li]))
        d.result(f"act_mean_{lay}", value(p.act_mean[li]))
        d.result(f"act_std_{lay}", value(p.act_std[li]))
        d.result(f"grad_std_{lay}", value(p.grad_std[li]))
    d.result("act_std_ratio_last_first", value(p.act_std[-1] / p.act_std[0]))
    return d

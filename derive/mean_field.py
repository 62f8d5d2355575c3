"""Mean-field theory of deep networks at initialization: the length map, chi_1, depth scales, predictions.

Network convention (shared with :mod:`varprop.simulate`): inputs x_0 of width n_0; for l = 1..L,
h_l = W_l x_{l-1} + b_l and x_l = phi(h_l), W_l of shape (n_l, n_{l-1}) with iid entries of variance v_l
(k n_l rows for maxout with k pieces), b_l iid N(0, sigma_b^2). In the wide limit h_l is Gaussian and

    length map       q' = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2          (Poole et al. 2016)
    fixed point      q* = sigma_w^2 E[phi(sqrt(q*) z)^2] + sigma_b^2
    chi_1            sigma_w^2 E[phi'(sqrt(q*) z)^2]                          (Schoenholz et al. 2017)
    depth scales     xi_q = -1 / log(sigma_w^2 E[phi'^2 + phi phi''])  and  xi_c = -1 / log(chi_1)

with sigma_w^2 = n v and z ~ N(0, 1). Gaussian integration by parts (Stein's lemma) turns the xi_q
integrand into d/dq E[phi(sqrt(q) z)^2] = E[z phi(sqrt(q) z) phi'(sqrt(q) z)] / sqrt(q), so xi_q needs only
phi and phi' (kinks included): it is -1/log of the slope of the length map at its fixed point.

Everything here is float arithmetic: Gaussian expectations by composite Gauss-Legendre quadrature on
[-12, 12], split at the activation's kinks and at the scales where phi(sqrt(q) t) bends, so one
expectation costs tens of microseconds and agrees with :func:`varprop.derive.moments.moment` (mpmath)
to about 1e-13. SymPy is never imported.

>>> from varprop.derive.mean_field import length_map, critical_sigma_w2, predict
>>> length_map("relu", 1.0, sigma_w2=2.0, sigma_b2=0.0)
1.0
>>> round(critical_sigma_w2("tanh", 0.0), 9), round(critical_sigma_w2("relu", 0.05), 9)
(1.0, 2.0)
>>> p = predict([100] * 4, "relu", weight_var=2 / 100)
>>> [round(float(s), 6) for s in p.pre_q]
[2.0, 2.0, 2.0]
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from varprop.activations import Bound, get

__all__ = ["parse_widths", "gaussian_moments", "length_map", "length_map_slope", "fixed_point", "chi1", "critical_sigma_w2",
           "correlation_map", "chi_c", "depth_scales", "saturated_fraction", "Prediction", "predict", "GaussianMoments"]

_T = 12.0                 # |t| beyond which the standard normal density is below 1e-31
_GL_ORDER = 32
_Q_HUGE = 1e12            # q* = inf is evaluated here: the large-q limit of scale-dependent moments
_SQRT_2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class GaussianMoments:
    """E over h ~ N(0, q) of phi(h), phi(h)^2, phi'(h)^2 (per row of W: maxout's is 1/k) and the slope
    d/dq E[phi(h)^2] = E[phi'^2 + phi phi'']."""
    q: float
    mean: float
    second: float
    deriv2: float
    slope: float


def _bound(activation, params) -> Bound:
    if params is None:
        return get(activation)
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of activation parameters, got {type(params).__name__}")
    return get(activation, **params)


def _check_float(value, what, low=0.0, strict=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {value}")
    if v < low or (strict and v == low):
        raise ValueError(f"{what} must be {'>' if strict else '>='} {low:g}, got {value}")
    return v


@functools.lru_cache(maxsize=1)
def _legendre():
    return np.polynomial.legendre.leggauss(_GL_ORDER)


@functools.lru_cache(maxsize=4096)
def _nodes(scale: float, cuts: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Nodes t and weights w with sum(w f(t)) = E[f(z)], z ~ N(0, 1), for f smooth between ``cuts``.

    ``scale`` is 1/sqrt(q): phi(sqrt(q) t) bends where |t| ~ scale, so the panels are refined there.
    """
    pts = {0.0, -_T, _T}
    for j in range(-3, 4):
        pts.update((2.0 ** j, -(2.0 ** j)))
    for j in range(-5, 6):
        pts.update((scale * 2.0 ** j, -scale * 2.0 ** j))
    pts.update(cuts)
    edges = np.array(sorted(p for p in pts if -_T <= p <= _T))
    x, w = _legendre()
    a, b = edges[:-1, None], edges[1:, None]
    t = ((b - a) / 2 * x + (a + b) / 2).ravel()
    wt = ((b - a) / 2 * w).ravel() * np.exp(-t * t / 2) / _SQRT_2PI
    return t, wt


def _evaluate(bound: Bound, q: float) -> GaussianMoments:
    if bound.name == "maxout":
        # x = max of k iid N(0, q): density k pdf(t) Phi(t)^(k-1) in units of sqrt(q)
        from scipy.special import ndtr
        k = bound.arity
        t, w = _nodes(1.0, ())
        dens = w * k * ndtr(t) ** (k - 1)
        m1, m2 = float(dens @ t), float(dens @ (t * t))
        return GaussianMoments(q, math.sqrt(q) * m1, q * m2, 1.0 / k, m2)
    if q == 0.0:
        # h is exactly 0 here (a zero-initialized branch); the slope is the q -> 0+ limit
        f0 = float(bound.numpy(np.float64(0.0)))
        d0 = float(bound.numpy_derivative(np.float64(0.0)))
        return GaussianMoments(0.0, f0, f0 * f0, d0 * d0, _small_signal(_key(bound)).slope)
    s = math.sqrt(q)
    cuts = tuple(float(c) / s for c in bound.kinks())
    t, w = _nodes(1.0 / s, cuts)
    h = s * t
    f = bound.numpy(h).astype(np.float64)
    d = bound.numpy_derivative(h).astype(np.float64)
    slope = float(w @ (t * f * d)) / s
    mean, second = float(w @ f), float(w @ (f * f))
    if abs(mean) <= 1e-14 * math.sqrt(second):
        mean = 0.0          # an odd phi: what is left is rounding, the nodes being symmetric
    return GaussianMoments(q, mean, second, float(w @ (d * d)), slope)


def _key(b: Bound):
    return b.name, tuple(sorted(b.params.items()))


@functools.lru_cache(maxsize=65536)
def _cached(key, q: float) -> GaussianMoments:
    name, params = key
    return _evaluate(get(name, **dict(params)), q)



def gaussian_moments(activation, q: float, params=None, limit: bool = False) -> GaussianMoments:
    """Mean, second moment, E[phi'^2] and length-map slope of phi(h), h ~ N(0, q), as floats.

    ``limit=True`` reads q = 0 as the limit q -> 0+ (a vanishing but nonzero signal, the mean-field
    reading); otherwise q = 0 means h = 0 exactly (e.g. a zero-initialized residual branch).

    >>> m = gaussian_moments("relu", 3.0)
    >>> round(m.second, 12), m.deriv2
    (1.5, 0.5)
    """
    b = activation if isinstance(activation, Bound) and params is None else _bound(activation, params)
    q = _check_float(q, "q")
    key = (b.name, tuple(sorted(b.params.items())))
    if q == 0.0 and limit and b.name != "maxout":
        return _small_signal(key)
    return _cached(key, q)


@functools.lru_cache(maxsize=1024)
def _small_signal(key) -> GaussianMoments:
    """The q -> 0+ limits from phi(0) and the one-sided slopes phi'(0-), phi'(0+): evaluating at a tiny q
    instead would lose phi(h) = e^h - 1 (ELU's negative side) to cancellation."""
    name, params = key
    b = get(name, **dict(params))
    f0 = float(b.numpy(np.float64(0.0)))
    d = b.numpy_derivative(np.array([-1e-300, 1e-300])).astype(np.float64)
    d0 = float(d[0] ** 2 + d[1] ** 2) / 2
    return GaussianMoments(0.0, f0, f0 * f0, d0, d0 if f0 == 0.0 else math.nan)


def length_map(activation, q, sigma_w2, sigma_b2=0.0, **params) -> float:
    """q' = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2 (Poole et al. 2016, eq. 3).

    >>> round(length_map("tanh", 1.0, 1.0), 12)
    0.394294490398
    """
    sw = _check_float(sigma_w2, "sigma_w2")
    sb = _check_float(sigma_b2, "sigma_b2")
    return sw * gaussian_moments(activation, q, params or None, limit=True).second + sb


def length_map_slope(activation, q, sigma_w2, **params) -> float:
    """dq'/dq = sigma_w^2 E[phi'(sqrt(q) z)^2 + phi(sqrt(q) z) phi''(sqrt(q) z)] (Stein's lemma form)."""
    sw = _check_float(sigma_w2, "sigma_w2")
    return sw * gaussian_moments(activation, q, params or None, limit=True).slope


def fixed_point(activation, sigma_w2, sigma_b2=0.0, q0=1.0, **params) -> float:
    """The fixed point q* the length-map iteration reaches from q0 (inf when q grows without bound).

    The map is monotone for the registered activations, so from q0 the iteration moves towards the
    nearest root of G(q) = q'(q) - q in the direction of sign G(q0): that root is bracketed by doubling
    (or halving) and polished with Brent's method. With sigma_b^2 = 0 and phi(0) = 0, q = 0 is a fixed
    point, returned when no positive root lies below q0 (the ordered phase).

    >>> fixed_point("relu", 1.0, 0.5)       # q* = sigma_b^2 / (1 - sigma_w^2 / 2)
    1.0
    """
    from scipy.optimize import brentq
    b = _bound(activation, params or None)
    sw = _check_float(sigma_w2, "sigma_w2")
    sb = _check_float(sigma_b2, "sigma_b2")
    q0 = _check_float(q0, "q0", strict=True)

    def g(q):
        return sw * gaussian_moments(b, q, limit=True).second + sb - q

    g0 = g(q0)
    if abs(g0) <= 1e-13 * q0 and sw * gaussian_moments(b, q0).slope <= 1 + 1e-9:
        return q0           # a stable (or marginal, e.g. relu at sigma_w^2 = 2) fixed point at q0 itself
    if g0 > 0:
        lo, hi = q0, 2 * q0
        while g(hi) > -1e-12 * hi:      # G must be clearly negative, not rounding noise of a huge q
            lo, hi = hi, 2 * hi
            if hi > 1e30:
                return math.inf
    else:
        lo, hi = q0 / 2, q0
        while g(lo) <= 1e-12 * lo:       # below that, G's sign is rounding noise of a vanishing q
            lo, hi = lo / 2, lo
            if lo < 1e-30:
                return 0.0
    return brentq(g, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=200)


def _at(q_star: float) -> float:
    return _Q_HUGE if math.isinf(q_star) else q_star


def chi1(activation, sigma_w2, sigma_b2=0.0, q=None, **params) -> float:
    """chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2] summed over maxout's k rows (Schoenholz et al. 2017, eq. 5).

    ``q`` defaults to the fixed point q*. chi_1 > 1 is the chaotic phase, < 1 the ordered one.

    >>> round(chi1("relu", 2.0, 0.3), 12)
    1.0
    """
    b = _bound(activation, params or None)
    sw = _check_float(sigma_w2, "sigma_w2")
    qs = fixed_point(b, sw, sigma_b2) if q is None else _check_float(q, "q")
    return sw * b.arity * gaussian_moments(b, _at(qs), limit=True).deriv2


def critical_sigma_w2(activation, sigma_b2=0.0, **params) -> float:
    """The sigma_w^2 where chi_1 = 1 at this sigma_b^2: the order-to-chaos line (Poole et al. 2016, Fig. 4).

    >>> round(critical_sigma_w2("linear", 0.2), 12)
    1.0
    """
    from scipy.optimize import brentq
    b = _bound(activation, params or None)
    sb = _check_float(sigma_b2, "sigma_b2")

    def f(sw):
        return chi1(b, sw, sb) - 1.0

    lo, hi = 1e-3, 1.0
    if f(lo) >= 0:
        raise ValueError(f"chi_1 >= 1 already at sigma_w2 = {lo:g} for {b.label()}: no order-to-chaos line")
    while f(hi) < 0:
        lo, hi = hi, 2 * hi
        if hi > 1e8:
            raise ValueError(f"chi_1 stays below 1 for {b.label()} at sigma_b2 = {sb:g}: no order-to-chaos line")
    root = brentq(f, lo, hi, xtol=1e-14, rtol=1e-13, maxiter=200)
    if sb == 0.0 and gaussian_moments(b, 0.0).mean == 0.0 and fixed_point(b, root, 0.0) < 1e-6:
        # phi(0) = 0 and no bias: the line ends where q* = 0 stops being stable, sigma_w^2 E[phi'(0+-)^2] = 1.
        # chi_1 is 1 to second order just beyond it, so the bracketed root is only good to ~1e-6 there.
        return 1.0 / (b.arity * gaussian_moments(b, 0.0, limit=True).deriv2)
    if abs(f(root)) > 1e-6:
        raise ValueError(f"chi_1 of {b.label()} jumps over 1 at sigma_w2 = {root:.10g} (sigma_b2 = {sb:g}): the "
                         "fixed point reached from q = 1 changes branch there, so there is no continuous "
                         "order-to-chaos transition")
    return root


def _pair(b: Bound, q: float, c: float, derivative: bool) -> float:
    """E[f(u1) f(u2)] for (u1, u2) ~ N(0, q [[1, c], [c, 1]]), f = phi or phi', by a product rule.

    u1 = sqrt(q) t1 and u2 = sqrt(q) (c t1 + sqrt(1 - c^2) t2); the panels follow the kinks in t1 only, so
    for a kinked activation the inner integral is accurate to about 1e-5 rather than 1e-13.
    """
    s = math.sqrt(q)
    r = math.sqrt(max(1.0 - c * c, 0.0))
    cuts = tuple(float(k) / s for k in b.kinks())
    t1, w1 = _nodes(1.0 / s, cuts)
    fn = b.numpy_derivative if derivative else b.numpy
    f1 = fn(s * t1).astype(np.float64)
    if r == 0.0:
        return float(w1 @ (f1 * fn(s * c * t1).astype(np.float64)))
    t2, w2 = _nodes(1.0 / (s * r), ())
    f2 = fn(s * (c * t1[:, None] + r * t2[None, :])).astype(np.float64)
    return float(w1 @ (f1 * (f2 @ w2)))


def correlation_map(activation, c, sigma_w2, sigma_b2=0.0, q=None, **params) -> float:
    """c' = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q* for inputs of correlation c at the length q*
    (Poole et al. 2016, eq. 5).

    >>> round(correlation_map("tanh", 1.0, 1.5, 0.05), 12)
    1.0
    """
    b = _bound(activation, params or None)
    if b.name == "maxout":
        raise ValueError("the correlation map of maxout (a max over k pre-activations) is not implemented")
    sw, sb = _check_float(sigma_w2, "sigma_w2"), _check_float(sigma_b2, "sigma_b2")
    c = _check_float(c, "c", low=-1.0)
    if c > 1:
        raise ValueError(f"a correlation must be in [-1, 1], got {c}")
    qs = fixed_point(b, sw, sb) if q is None else _check_float(q, "q", strict=True)
    if not 0 < qs < math.inf:
        raise ValueError(f"the correlation map needs a finite positive q*, got {qs}")
    return (sw * _pair(b, qs, c, False) + sb) / qs


def chi_c(activation, sigma_w2, sigma_b2=0.0, **params) -> tuple[float, float]:
    """(c*, chi_c): the stable fixed point of the correlation map and sigma_w^2 E[phi'(u1) phi'(u2)] there
    (Schoenholz et al. 2017, eq. 9). In the ordered phase c* = 1 and chi_c = chi_1."""
    from scipy.optimize import brentq
    b = _bound(activation, params or None)
    sw, sb = _check_float(sigma_w2, "sigma_w2"), _check_float(sigma_b2, "sigma_b2")
    qs = fixed_point(b, sw, sb)
    c1 = chi1(b, sw, sb)
    if c1 <= 1.0 or not 0 < qs < math.inf:
        return 1.0, c1
    k = b.arity

    def g(c):
        return correlation_map(b, c, sw, sb, q=qs) - c

    hi = 1.0 - 1e-6
    if g(hi) >= 0:             # chi_1 barely above 1: c* is within 1e-6 of 1
        return 1.0, c1
    g0 = g(0.0)
    if abs(g0) <= 1e-12:       # an odd phi without bias maps c = 0 to itself: the chaotic phase's c* = 0
        c_star = 0.0
    else:
        c_star = brentq(g, 0.0 if g0 > 0 else -1.0, hi, xtol=1e-14)
    return c_star, sw * k * _pair(b, qs, c_star, True)


def depth_scales(activation, sigma_w2, sigma_b2=0.0, **params) -> tuple[float, float]:
    """(xi_q, xi_c): xi_q = -1/log(dq'/dq at q*), xi_c = -1/log(chi_c) (Schoenholz et al. 2017, eqs. 7, 9).

    In the ordered phase chi_c = chi_1 (c* = 1); in the chaotic phase chi_c is taken at the correlation
    map's stable fixed point c* < 1 (:func:`chi_c`). Both diverge (inf) where their argument is 1.

    >>> [round(x, 4) for x in depth_scales("tanh", 1.5, 0.05)]
    [1.6828, 15.791]
    """
    b = _bound(activation, params or None)
    sw = _check_float(sigma_w2, "sigma_w2")
    qs = fixed_point(b, sw, sigma_b2)
    m = gaussian_moments(b, _at(qs), limit=True)
    rate_c = sw * b.arity * m.deriv2
    if rate_c > 1.0 + 1e-12 and b.name != "maxout" and 0 < qs < math.inf:
        rate_c = chi_c(b, sw, sigma_b2)[1]
    return _depth(sw * m.slope), _depth(rate_c)


def _depth(rate: float) -> float:
    if rate <= 0.0:
        return 0.0
    if abs(rate - 1.0) <= 1e-12:
        return math.inf
    if rate > 1.0:
        return math.nan
    return -1.0 / math.log(rate)


# --------------------------------------------------------------------------------------------------
# per-layer predictions for a finite stack (the simulator's theory curve)
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    """Per-layer predictions; index l-1 holds layer l = 1..L.

    ``pre_q`` E[h_l^2]; ``act_mean``, ``act_std`` of x_l (after dropout where it applies); ``grad_std`` of
    g_l = dLoss/dx_l; ``dead`` the fraction of (unit, input) pairs with phi'(h_l) = 0 (relu family, else
    nan); ``chi`` the backward factor E[g_{l-1}^2] / E[g_l^2] of layer l; ``saturated`` the fraction with
    |phi'(h_l)| < 0.01 (nan for maxout).
    """
    widths: tuple
    activation: str
    weight_var: np.ndarray
    pre_q: np.ndarray
    act_mean: np.ndarray
    act_std: np.ndarray
    grad_std: np.ndarray
    dead: np.ndarray
    chi: np.ndarray
    saturated: np.ndarray

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    def to_dict(self) -> dict:
        return {"widths": list(self.widths), "activation": self.activation,
                **{k: [float(v) for v in getattr(self, k)]
                   for k in ("weight_var", "pre_q", "act_mean", "act_std", "grad_std", "dead", "chi",
                            "saturated")}}


MAX_LAYERS = 10 ** 6   # weight layers parse_widths accepts unless told otherwise: the list stays a few MB


def parse_widths(widths, max_layers: int = MAX_LAYERS) -> tuple:
    """(n_0, ..., n_L) from a sequence of ints, "NxK" (K widths of N: K - 1 weight layers) or "a,b,c".

    More than ``max_layers`` weight layers are refused before any list is built (callers pass the ceiling
    of the work they do per layer).

    >>> parse_widths("64x3"), parse_widths("10,20,5"), parse_widths([3, 4])
    ((64, 64, 64), (10, 20, 5), (3, 4))
    """
    if isinstance(widths, str):
        text = widths.strip().lower()
        try:
            if "x" in text:
                n, k = text.split("x", 1)
                n, k = int(n), int(k)
                if k - 1 > max_layers:
                    raise OverflowError
                out = [n] * k
            else:
                out = [int(t) for t in text.split(",")]
        except OverflowError:
            raise ValueError(f"widths {widths!r}: {k - 1} weight layers exceed the ceiling of {max_layers}") from None
        except ValueError:
            raise ValueError(f"widths must be NxK or a comma list of integers, got {widths!r}") from None
    elif isinstance(widths, (list, tuple, np.ndarray)):
        out = []
        for n in widths:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
                raise TypeError(f"widths must be integers, got {n!r}")
            out.append(int(n))
    else:
        raise TypeError(f"widths must be a sequence of integers or a string like 256x6, got {type(widths).__name__}")
    if len(out) < 2 or any(n < 1 for n in out):
        raise ValueError(f"widths needs at least two positive widths (the input and one layer), got {widths!r}")
    if len(out) - 1 > max_layers:
        raise ValueError(f"widths: {len(out) - 1} weight layers exceed the ceiling of {max_layers}")
    return tuple(out)


def _dead_fraction(b: Bound, q: float) -> float:
    if b.act.family != "relu":
        return math.nan
    if q == 0.0:
        return float(b.numpy_derivative(np.float64(0.0)) == 0)
    d = b.numpy_derivative(np.array([-1.0, 1.0]))
    return 0.5 * float(d[0] == 0) + 0.5 * float(d[1] == 0)


def saturated_fraction(activation, q, threshold=0.01, params=None, batch=None) -> float:
    """P(|phi'(h)| < threshold) for h ~ N(0, q): the set where phi' is small, located on a grid in units of
    sqrt(q) (split at the kinks) and refined by Brent's method, then measured with the normal cdf.

    ``batch=B`` measures it under batch norm over a batch of B instead (``q`` is then ignored): h is a
    coordinate hhat of the normalized batch, sqrt(B-1) x with (1 + x)/2 ~ Beta((B-2)/2, (B-2)/2)
    (:mod:`varprop.derive.finite_batch`).

    >>> round(saturated_fraction("tanh", 1.0), 9)       # |tanh'| < 0.01 beyond |h| = atanh(sqrt(0.99))
    0.002760481
    >>> saturated_fraction("tanh", 1.0, batch=16) < saturated_fraction("tanh", 1.0)   # |hhat| <= sqrt(15)
    True
    """
    from scipy.optimize import brentq
    from scipy.special import betainc, ndtr
    b = activation if isinstance(activation, Bound) and params is None else _bound(activation, params)
    q = _check_float(q, "q")
    thr = _check_float(threshold, "threshold", strict=True)
    if b.name == "maxout":
        return math.nan
    if batch is not None:
        from .finite_batch import check_batch, sphere_nodes
        batch = check_batch(batch)
        if batch <= 2:          # hhat is 0 or +-1
            t, w = sphere_nodes(batch)
            return float(w @ (np.abs(b.numpy_derivative(t).astype(np.float64)) < thr))
        s, r, a = 1.0, math.sqrt(batch - 1), (batch - 2) / 2

        def cdf(t):
            return float(betainc(a, a, min(max((1 + t / r) / 2, 0.0), 1.0))) if math.isfinite(t) else float(t > 0)
    else:
        if q == 0.0:
            return float(abs(float(b.numpy_derivative(np.float64(0.0)))) < thr)
        s = math.sqrt(q)
        cdf = ndtr
    grid = np.union1d(np.linspace(-_T, _T, 4801), [float(c) / s for c in b.kinks() if abs(float(c) / s) < _T])

    def below(t):
        return np.abs(b.numpy_derivative(np.asarray(s * t, dtype=np.float64)).astype(np.float64)) - thr

    vals = below(grid)
    ind = vals < 0
    edges = [-math.inf]
    for i in np.nonzero(ind[:-1] != ind[1:])[0]:
        a_, c = grid[i], grid[i + 1]
        edges.append(brentq(lambda t: float(below(t)), a_, c, xtol=1e-14) if vals[i] * vals[i + 1] < 0
                     else (c if ind[i] else a_))
    edges.append(math.inf)
    total, inside = 0.0, bool(ind[0])
    for lo, hi in zip(edges[:-1], edges[1:]):
        if inside:
            total += float(cdf(hi) - cdf(lo))
        inside = not inside
    return total


def predict(widths, activation, weight_var, sigma_b2=0.0, input_second_moment=1.0, keep_prob=1.0,
            batchnorm=False, residual=False, zero_branch=False, params=None, batch=None,
            bn_eps=1e-5) -> Prediction:
    """The wide-network mean-field prediction of every layer's statistics.

    Forward, with E[x_0] = 0 and E[x_0^2] = input_second_moment:
    q_l = n_{l-1} v_l E[x_{l-1}^2] + sigma_b^2; x_l = phi(h), h ~ N(0, q_l) (N(0, 1) under batchnorm,
    which removes the bias and divides by the batch std sqrt(n_{l-1} v_l Var(x_{l-1}))); a residual
    layer adds x_{l-1}, independent of its branch; inverted dropout on x_l (l < L) divides E[x_l^2] by p.
    Backward, with E[g_L^2] = 1: E[g_{l-1}^2] = E[g_l^2] / p_l (s_l + k n_l v_l E[phi'(h)^2] / sigma_B^2),
    where s_l = 1 for a residual layer (else 0), sigma_B^2 = 1 without batchnorm, and k n_l rows for maxout.

    ``batch=None`` takes batchnorm's infinite-batch limit. ``batch=B`` makes it exact in expectation at
    batch size B (and changes nothing without batchnorm): the normalized coordinate follows the law of
    :mod:`varprop.derive.finite_batch` instead of N(0, 1); the batch variance on the subspace orthogonal
    to (1, ..., 1) is lambda_l = n_{l-1} v_l (E[x_i^2] - E[x_i x_j]) (i != j, the cross-sample moment
    tracked layer by layer) and enters as E[1/(s^2 + eps)] with eps = ``bn_eps``; backward, batch norm's
    dh = (1/s) P (g * phi'(hhat)) projects onto the complement of span(1, hhat), so the gradient's
    cross-sample covariance (diagonal G, off-diagonal C: C = -G/(B-1) below a batch-norm layer) is
    tracked too (:func:`varprop.derive.finite_batch.projected_energy`). The weights of the backward
    pass are taken independent of the forward pass, as everywhere in this theory.

    >>> p = predict([50] * 4, "relu", weight_var=2 / 50, keep_prob=0.5)
    >>> [round(float(s), 6) for s in p.pre_q], [round(float(g), 6) for g in p.grad_std]
    ([2.0, 4.0, 8.0], [1.414214, 1.0, 1.0])
    >>> p = predict([256] * 3, "linear", weight_var=1 / 256, batchnorm=True, batch=16, bn_eps=0.0)
    >>> # E[1/s^2] = B/(lambda (B-3)) with lambda = 1 + 1/(B-1), and P keeps (B-2)/B of the energy
    >>> round(float(p.grad_std[0]) ** 2, 12), round(15 * 14 / (16 * 13), 12)
    (1.009615384615, 1.009615384615)
    """
    ws = parse_widths(widths)
    L = len(ws) - 1
    b = _bound(activation, params)
    if isinstance(weight_var, (list, tuple, np.ndarray)):
        if len(weight_var) != L:
            raise ValueError(f"weight_var has {len(weight_var)} entries for {L} layers")
        v = np.array([_check_float(x, "weight_var") for x in weight_var])
    else:
        v = np.full(L, _check_float(weight_var, "weight_var"))
    sb = _check_float(sigma_b2, "sigma_b2")
    s2 = _check_float(input_second_moment, "input_second_moment")
    p = _check_float(keep_prob, "keep_prob", strict=True)
    if p > 1:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
    if zero_branch and not residual:
        raise ValueError("zero_branch needs residual=True (it zero-initializes the residual branches)")
    if batch is not None:
        from .finite_batch import check_batch
        batch = check_batch(batch)
        eps = _check_float(bn_eps, "bn_eps")
        if batchnorm:
            return _predict_batch(ws, b, v, sb, s2, p, residual, zero_branch, batch, eps)
    k = b.arity

    pre_q, mean_, std_, dead, chi, sat = (np.empty(L) for _ in range(6))
    mean_prev, var_prev = 0.0, s2
    for i in range(L):
        n_in, n_out = ws[i], ws[i + 1]
        res = residual and i >= 1 and n_in == n_out
        v_l = 0.0 if (res and zero_branch) else float(v[i])
        second_prev = var_prev + mean_prev ** 2
        q = n_in * v_l * second_prev + sb
        pre_q[i] = q
        if batchnorm:
            batch_var = n_in * v_l * var_prev
            q_eff = 1.0 if batch_var > 0 else 0.0
        else:
            batch_var, q_eff = 1.0, q
        if not math.isfinite(q_eff):
            raise ValueError(f"the pre-activation second moment overflows at layer {i + 1} of {L} "
                             "(beyond floating point): the signal explodes; use a smaller weight variance")
        with np.errstate(over="ignore", invalid="ignore"):
            m = gaussian_moments(b, q_eff)
        if not (math.isfinite(m.second) and math.isfinite(m.deriv2)):
            raise ValueError(f"E[phi(h)^2] overflows at layer {i + 1} of {L} (q = {q_eff:.3g}): the signal "
                             "explodes; use a smaller weight variance")
        branch_var = max(m.second - m.mean ** 2, 0.0)
        mean_l, var_l = (mean_prev + m.mean, var_prev + branch_var) if res else (m.mean, branch_var)
        drop = p if i < L - 1 else 1.0
        second_l = (var_l + mean_l ** 2) / drop
        mean_[i], std_[i] = mean_l, math.sqrt(max(second_l - mean_l ** 2, 0.0))
        dead[i] = _dead_fraction(b, q_eff)
        sat[i] = saturated_fraction(b, q_eff)
        branch = k * n_out * v_l * m.deriv2 / batch_var if batch_var > 0 else 0.0
        chi[i] = ((1.0 if res else 0.0) + branch) / drop
        mean_prev, var_prev = mean_l, second_l - mean_l ** 2

    g2 = np.empty(L)
    g2[L - 1] = 1.0
    for i in range(L - 1, 0, -1):
        g2[i - 1] = g2[i] * chi[i]
    return Prediction(ws, b.label(), v, pre_q, mean_, std_, np.sqrt(g2), dead, chi, sat)


def _predict_batch(ws, b: Bound, v, sb, s2, p, residual, zero_branch, batch, eps) -> Prediction:
    """:func:`predict` under batch norm over a finite batch (see its docstring)."""
    from .finite_batch import inverse_variance, projected_energy, sphere_moments, sphere_nodes
    if b.arity != 1:
        raise ValueError("the finite-batch batch-norm prediction of maxout is not implemented; use batch=None")
    L = len(ws) - 1
    m = sphere_moments(b, batch)
    f0 = float(b.numpy(np.float64(0.0)))
    pre_q, mean_, std_, dead, chi, sat, lam, v_eff = (np.empty(L) for _ in range(8))
    mean_prev, sec_prev, cross_prev = 0.0, s2, 0.0      # inputs: independent samples, E[x_0] = 0
    for i in range(L):
        n_in = ws[i]
        res = residual and i >= 1 and n_in == ws[i + 1]
        v_eff[i] = 0.0 if (res and zero_branch) else float(v[i])
        pre_q[i] = n_in * v_eff[i] * sec_prev + sb
        lam[i] = n_in * v_eff[i] * max(sec_prev - cross_prev, 0.0)
        if lam[i] > 0 and batch > 1:
            f_mean, f_sec, f_cross = m.mean, m.second, m.cross
            t, w = sphere_nodes(batch)
            dead[i] = (float(w @ (b.numpy_derivative(t) == 0)) if batch == 2 else _dead_fraction(b, 1.0)) \
                if b.act.family == "relu" else math.nan
            sat[i] = saturated_fraction(b, 1.0, batch=batch)
        else:       # h is constant over the batch: hhat = 0
            f_mean, f_sec, f_cross = f0, f0 * f0, f0 * f0
            dead[i], sat[i] = _dead_fraction(b, 0.0), saturated_fraction(b, 0.0)
        if res:     # the branch is independent of the stream it is added to
            mean_l = mean_prev + f_mean
            sec_l = sec_prev + f_sec + 2 * mean_prev * f_mean
            cross_l = cross_prev + f_cross + 2 * mean_prev * f_mean
        else:
            mean_l, sec_l, cross_l = f_mean, f_sec, f_cross
        sec_l /= p if i < L - 1 else 1.0
        mean_[i], std_[i] = mean_l, math.sqrt(max(sec_l - mean_l ** 2, 0.0))
        mean_prev, sec_prev, cross_prev = mean_l, sec_l, cross_l

    g2 = np.empty(L)
    g2[L - 1] = 1.0
    diag_g, off_g = 1.0, 0.0            # E[g_i^2], E[g_i g_j] of g_l over the batch
    for i in range(L - 1, -1, -1):
        drop = p if i < L - 1 else 1.0
        diag, off = diag_g / drop, off_g  # the mask is independent across samples
        if batch == 2 and lam[i] > 0:
            branch = math.nan           # P = 0 as eps -> 0, while E[1/s^2] diverges: eps alone sets it
        elif lam[i] > 0 and batch > 2:
            branch = ws[i + 1] * v_eff[i] * inverse_variance(lam[i], batch, eps) * projected_energy(m, diag, off)
        else:
            branch = 0.0
        res = residual and i >= 1 and ws[i] == ws[i + 1]
        off_branch = -branch / (batch - 1) if batch > 1 else 0.0   # P 1 = 0: the batch sum of dh vanishes
        new_diag, new_off = (branch + diag, off_branch + off) if res else (branch, off_branch)
        chi[i] = new_diag / diag_g if diag_g > 0 else math.nan
        if i > 0:
            g2[i - 1] = new_diag
        diag_g, off_g = new_diag, new_off
    return Prediction(ws, b.label(), np.asarray(v, dtype=float), pre_q, mean_, std_, np.sqrt(g2), dead, chi, sat)

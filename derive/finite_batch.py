"""Batch norm over a finite batch: the exact law of the normalized pre-activation and the moments it gives.

For iid Gaussian h_1..h_B (any mean and variance), the normalized vector hhat = (h - mean) / std_pop
(population std, ddof 0) is sqrt(B) times a uniform unit vector of the (B-1)-dimensional subspace
orthogonal to (1, ..., 1). So one coordinate is hhat_1 = sqrt(B-1) x with density proportional to
(1 - x^2)^((B-4)/2) on [-1, 1] (B >= 3; B = 2 gives hhat_1 = +-1, B = 1 gives hhat_1 = 0), and a second
coordinate, given the first, is

    hhat_2 = -x / sqrt(B-1) + sqrt(1 - x^2) sqrt(B (B-2) / (B-1)) y,   y ~ (1 - y^2)^((B-5)/2)

(y = +-1 at B = 3), because the component of a uniform unit vector orthogonal to a fixed direction is
uniform on the lower sphere. E[hhat_1 hhat_2] = -1/(B-1); as B -> inf hhat_1 -> N(0, 1).

The batch variance s^2 = lambda chi^2_{B-1} / B is independent of the direction, so the backward factor
E[1 / (s^2 + eps)] = (B / (2 lambda)) e^c E_k(c), c = eps B / (2 lambda), k = (B - 1)/2 (E_k the
generalized exponential integral), which is B / (lambda (B - 3)) for eps -> 0 and B > 3 and is finite
only through eps at B <= 3.

The forward law ignores eps: it shrinks hhat by sqrt(s^2 / (s^2 + eps)), a relative change of about
eps B / (2 lambda (B - 3)), i.e. 5e-6 / lambda for eps = 1e-5 at B = 16: negligible unless the batch
variance lambda is itself of order eps (or B <= 3, where E[1/s^2] diverges as eps -> 0).

What a Monte Carlo sees: the predictions are exact in expectation (E[g^2], not its square root). For
B <= 5, E[1/s^4] is infinite (it needs (B-1)/2 > 2), so one trial's average of g^2 over its units is
heavy-tailed: a simulated per-trial std converges slowly and from below (at B = 4, widths 256, 400
trials, the first layer's gradient std measures 1.82 +- 0.03 against 1.89). At B = 3, E[1/s^2] is finite
only through eps (about (3/(2 lambda)) log(lambda/eps)) and the region s^2 ~ eps, where eps also bends
the projection, carries a share of order 1/log(lambda/eps): the prediction there is approximate.
At B = 2 the projection is zero as eps -> 0 while E[1/s^2] diverges: the gradient is set by eps alone
and :func:`varprop.derive.mean_field.predict` leaves it as nan.

Expectations against these densities use the substitution x = sin(theta), under which
(1 - x^2)^g dx = cos(theta)^(2g + 1) d theta is bounded for g >= -1/2, with composite Gauss-Legendre
panels split at the activation's kinks and refined at the width 1/sqrt(B) where the density lives.

>>> m = sphere_moments("linear", 16)
>>> round(m.mean, 12), round(m.second, 12), round(m.cross_deriv_h, 12)
(0.0, 1.0, -0.066666666667)
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from varprop.activations import Bound, get

__all__ = ["BN_EPS", "check_batch", "SphereMoments", "sphere_nodes", "sphere_expect", "sphere_pair_expect", "sphere_moments",
           "inverse_variance", "projected_energy"]

BN_EPS = 1e-5
_GL_ORDER = 32


@dataclass(frozen=True)
class SphereMoments:
    """Moments of a = phi(hhat), d = phi'(hhat) for the coordinates of a batch-normalized batch of B.

    ``mean`` E[phi], ``second`` E[phi^2], ``cross`` E[phi(hhat_1) phi(hhat_2)], ``deriv2`` E[phi'^2],
    ``deriv2_h2`` E[hhat^2 phi'^2], ``cross_deriv`` E[phi'(hhat_1) phi'(hhat_2)], ``cross_deriv_h``
    E[hhat_1 phi'(hhat_1) hhat_2 phi'(hhat_2)].
    """
    batch: int
    mean: float
    second: float
    cross: float
    deriv2: float
    deriv2_h2: float
    cross_deriv: float
    cross_deriv_h: float


@functools.lru_cache(maxsize=1)
def _legendre():
    return np.polynomial.legendre.leggauss(_GL_ORDER)


def _jacobi_nodes(g: float, cuts=()) -> tuple[np.ndarray, np.ndarray]:
    """Nodes x in (-1, 1) and weights summing to 1 for the density proportional to (1 - x^2)^g, g >= -1/2."""
    half = math.pi / 2
    width = min(half, 1.0 / math.sqrt(2 * g + 2))      # the std of theta where cos^(2g+1) lives
    pts = {0.0, -half, half}
    for j in range(-4, 5):
        pts.update((width * 2.0 ** j, -width * 2.0 ** j))
    for k in (6, 9, 12, 16, 24):
        pts.update((width * k, -width * k))
    pts.update(math.asin(c) for c in cuts if -1 < c < 1)
    edges = np.array(sorted(p for p in pts if -half <= p <= half))
    x, w = _legendre()
    a, b = edges[:-1, None], edges[1:, None]
    th = ((b - a) / 2 * x + (a + b) / 2).ravel()
    c = np.cos(th)
    wt = ((b - a) / 2 * w).ravel() * c ** (2 * g + 1)
    norm = math.exp(0.5 * math.log(math.pi) + math.lgamma(g + 1) - math.lgamma(g + 1.5))
    return np.sin(th), wt / norm


def check_batch(batch) -> int:
    """The batch size as an int >= 1 (TypeError / ValueError otherwise)."""
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)):
        raise TypeError(f"batch must be an integer, got {type(batch).__name__}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    return int(batch)


def sphere_nodes(batch: int, cuts=()) -> tuple[np.ndarray, np.ndarray]:
    """Nodes hhat and weights w with sum(w f(hhat)) = E[f(hhat_1)] for one coordinate of a batch of ``batch``
    normalized by batch norm (eps -> 0); ``cuts`` are points of hhat where f has a kink.

    >>> t, w = sphere_nodes(16)
    >>> round(float(w.sum()), 13), round(float(w @ t ** 2), 13), round(float(w @ t ** 4), 12)
    (1.0, 1.0, 2.647058823529)
    """
    b = check_batch(batch)
    if b == 1:
        return np.zeros(1), np.ones(1)
    if b == 2:
        return np.array([-1.0, 1.0]), np.array([0.5, 0.5])
    r = math.sqrt(b - 1)
    x, w = _jacobi_nodes((b - 4) / 2, tuple(float(c) / r for c in cuts))
    return r * x, w


def _bound(activation, params=None) -> Bound:
    if isinstance(activation, Bound) and params is None:
        return activation
    return get(activation, **(params or {}))


def sphere_expect(f, batch: int, cuts=()) -> float:
    """E[f(hhat_1)] for a vectorized f (see :func:`sphere_nodes`).

    >>> round(sphere_expect(lambda t: t ** 4, 5), 12)     # E[hhat^4] = 3 (B - 1) / (B + 1)
    2.0
    """
    t, w = sphere_nodes(batch, cuts)
    return float(w @ f(t))


def sphere_pair_expect(f, batch: int, cuts=()) -> float:
    """E[f(hhat_1, hhat_2)] over two coordinates of one normalized batch, f vectorized over arrays.

    >>> round(sphere_pair_expect(lambda a, b: a * b, 7), 12)       # -1/(B-1)
    -0.166666666667
    """
    b = check_batch(batch)
    if b == 1:
        return float(f(np.zeros(1), np.zeros(1))[0])
    if b == 2:
        return float(np.mean(f(np.array([-1.0, 1.0]), np.array([1.0, -1.0]))))
    r = math.sqrt(b - 1)
    x, wx = _jacobi_nodes((b - 4) / 2, tuple(float(c) / r for c in cuts))
    h1 = r * x
    a = -x / r
    s = np.sqrt(np.maximum(1 - x * x, 0.0)) * math.sqrt(b * (b - 2) / (b - 1))
    if b == 3:
        y, wy = np.array([-1.0, 1.0]), np.array([0.5, 0.5])
    elif not cuts:
        y, wy = _jacobi_nodes((b - 5) / 2)
    else:
        # f bends where hhat_2 = c: the cuts in y move with x, so each outer node gets its own panels
        total = 0.0
        for i in range(x.size):
            yc = tuple((c - a[i]) / s[i] for c in cuts) if s[i] > 0 else ()
            y, wy = _jacobi_nodes((b - 5) / 2, yc)
            total += wx[i] * float(wy @ f(np.full(y.size, h1[i]), a[i] + s[i] * y))
        return float(total)
    h2 = a[:, None] + s[:, None] * y[None, :]
    vals = f(np.broadcast_to(h1[:, None], h2.shape), h2)
    return float(wx @ (vals @ wy))


def _key(b: Bound):
    return b.name, tuple(sorted(b.params.items()))


@functools.lru_cache(maxsize=1024)
def _moments(key, batch: int) -> SphereMoments:
    name, params = key
    b = get(name, **dict(params))
    if b.arity != 1:
        raise ValueError("finite-batch batch-norm moments of maxout (a max over k normalized rows) are not "
                         "implemented")
    cuts = tuple(float(c) for c in b.kinks())

    def phi(t):
        return b.numpy(t).astype(np.float64)

    def dphi(t):
        return b.numpy_derivative(t).astype(np.float64)

    t, w = sphere_nodes(batch, cuts)
    f, d = phi(t), dphi(t)
    mean = float(w @ f)
    if abs(mean) <= 1e-14 * math.sqrt(max(float(w @ (f * f)), 1e-300)):
        mean = 0.0          # an odd phi: the nodes are symmetric, what is left is rounding
    return SphereMoments(
        batch, mean, float(w @ (f * f)), sphere_pair_expect(lambda u, v: phi(u) * phi(v), batch, cuts),
        float(w @ (d * d)), float(w @ (t * t * d * d)),
        sphere_pair_expect(lambda u, v: dphi(u) * dphi(v), batch, cuts),
        sphere_pair_expect(lambda u, v: u * dphi(u) * v * dphi(v), batch, cuts))


def sphere_moments(activation, batch: int, params=None) -> SphereMoments:
    """The :class:`SphereMoments` of phi at batch size ``batch`` (cached per activation and batch).

    >>> round(sphere_moments("tanh", 16).second ** 0.5, 5)       # 0.62793 in the infinite-batch limit
    0.63721
    """
    return _moments(_key(_bound(activation, params)), check_batch(batch))


def inverse_variance(lam: float, batch: int, eps: float = BN_EPS) -> float:
    """E[1 / (s^2 + eps)] for the population variance s^2 of B iid N(., lam): (B / (2 lam)) e^c E_k(c),
    c = eps B / (2 lam), k = (B - 1)/2; 1/eps at B = 1 (s^2 = 0).

    >>> round(inverse_variance(2.0, 16, eps=0.0) * 2.0 * 13 / 16, 12)
    1.0
    """
    b = check_batch(batch)
    if not lam >= 0 or not eps >= 0:
        raise ValueError(f"a variance and eps must be >= 0, got {lam} and {eps}")
    if b == 1 or lam == 0:
        return math.inf if eps == 0 else 1.0 / eps
    k = (b - 1) / 2
    if eps == 0:
        return b / (lam * (b - 3)) if b > 3 else math.inf
    c = eps * b / (2 * lam)
    import mpmath as mp
    return float(b / (2 * lam) * mp.exp(c) * mp.expint(k, c))


def projected_energy(m: SphereMoments, diag: float, off: float) -> float:
    """E[||P (g * phi'(hhat))||^2] / B for P = I - 1 1^T / B - hhat hhat^T / B (the batch-norm backward's
    projection, |hhat|^2 = B) and an upstream g independent of hhat with E[g_i^2] = diag, E[g_i g_j] = off.

    With Sigma = (diag - off) I + off 1 1^T and a = phi'(hhat):
    E tr(P diag(a^2)) = (B-1) E[a^2] - E[hhat^2 a^2] and
    E[a^T P a] = (B-1)(E[a^2] - E[a_1 a_2] - E[hhat_1 a_1 hhat_2 a_2]) - E[hhat^2 a^2].

    >>> round(projected_energy(sphere_moments("linear", 10), 1.0, 0.0), 12)      # (B-2)/B
    0.8
    """
    b = m.batch
    alpha, beta = diag - off, off
    tr = (b - 1) * m.deriv2 - m.deriv2_h2
    apa = (b - 1) * (m.deriv2 - m.cross_deriv - m.cross_deriv_h) - m.deriv2_h2
    return max(alpha * tr + beta * apa, 0.0) / b

"""Finite width: the squared norm of a ReLU or linear network's signal is a random walk in log space.

The length map q' = sigma_w^2 E[phi(sqrt(q) z)^2] is the wide limit. At finite width, a layer
h = W x with iid N(0, v) weights gives, for a fixed input x, pre-activations h_i iid N(0, v ||x||^2), so

    R = ||phi(h)||^2 / ||x||^2 = v * sum_{i <= n_out} phi(g_i)^2,       g_i iid N(0, 1),

independent of x and of every other layer. log ||x_L||^2 = log ||x_0||^2 + sum_l log R_l is a sum of
independent increments: a random walk (Hanin & Nica 2019; Sussillo & Abbott 2014).

* linear (phi(u) = u): sum g_i^2 is chi-square with n_out degrees of freedom, so
  E[log R] = log v + log 2 + psi(n_out / 2) and Var[log R] = psi_1(n_out / 2);
* ReLU: the number K of active units is Binomial(n_out, 1/2) and, given K, the sum is chi-square with K degrees
  of freedom, so E[log R] = log v + log 2 + E[psi(K/2)] and Var[log R] = E[psi_1(K/2)] + Var(psi(K/2)),
  K >= 1 (with probability 2^-n_out no unit is active and the signal is lost for good: the walk's absorbing
  state, reported by :func:`dead_probability`). For large n Var[log R] is close to 5 / n.

Here psi is the digamma and psi_1 the trigamma function, from E[log G] = psi(a) and Var[log G] = psi_1(a) for
G ~ Gamma(a, 1) (chi-square with k degrees of freedom is 2 Gamma(k/2, 1)); ``varprop derive finite-width``
derives both with SymPy. He's 2 / n_in keeps E[R] = 1 but not E[log R] = 0: the typical network shrinks
(log E > E log). Random-walk initialization (Sussillo & Abbott 2014) picks the weight variance that makes
E[log R] = 0 exactly at the layer's width: :func:`random_walk_variance`.

>>> round(log_ratio_mean("relu", 2 / 100, 100), 6)      # He at width 100: the typical signal shrinks
-0.025421
>>> round(random_walk_gain("linear", 100), 6), round(math.exp(1 / 200), 6)   # exact and the paper's linear gain
(1.005029, 1.005013)
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["ACTIVATIONS", "log_ratio_mean", "log_ratio_var", "dead_probability", "random_walk_variance",
           "random_walk_gain", "sussillo_abbott_gain", "norm_walk"]

ACTIVATIONS = ("linear", "relu")
LOG2 = math.log(2.0)


def _activation(activation) -> str:
    name = str(activation).lower()
    if name not in ACTIVATIONS:
        raise ValueError(f"the finite-width random walk is exact for {' and '.join(ACTIVATIONS)} "
                         f"(positively homogeneous, one chi-square per layer); got {activation!r}")
    return name


def _width(n, what="width") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{what} must be a positive integer, got {n!r}")
    if n > 10**8:
        raise ValueError(f"{what} {n} is beyond the supported 10^8")
    return int(n)


def _variance(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"the weight variance must be a real number, got {v!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"the weight variance must be positive and finite, got {v!r}")
    return v


@lru_cache(maxsize=4096)
def _active_moments(n: int) -> tuple[float, float, float]:
    """(E[psi(K/2)], E[psi_1(K/2)], Var(psi(K/2))) for K ~ Binomial(n, 1/2) conditioned on K >= 1."""
    from scipy.special import polygamma, psi
    from scipy.stats import binom
    k = np.arange(1, n + 1)
    lo, hi = binom.ppf([1e-17, 1 - 1e-17], n, 0.5) if n > 200 else (1, n)   # the rest weighs below 1e-16
    k = k[(k >= max(lo, 1)) & (k <= hi)]
    w = binom.pmf(k, n, 0.5)
    w = w / w.sum()
    d = psi(k / 2.0)
    m = float(np.sum(w * d))
    return m, float(np.sum(w * polygamma(1, k / 2.0))), float(np.sum(w * (d - m) ** 2))


def log_ratio_mean(activation, weight_var, fan_out) -> float:
    """E[log R], R = ||phi(W x)||^2 / ||x||^2 for iid N(0, weight_var) weights and ``fan_out`` output units."""
    from scipy.special import psi
    a, v, n = _activation(activation), _variance(weight_var), _width(fan_out, "fan_out")
    base = math.log(v) + LOG2
    return base + (float(psi(n / 2.0)) if a == "linear" else _active_moments(n)[0])


def log_ratio_var(activation, fan_out) -> float:
    """Var[log R] (it does not depend on the weight variance): psi_1(n/2) linear, E psi_1 + Var psi for ReLU."""
    from scipy.special import polygamma
    a, n = _activation(activation), _width(fan_out, "fan_out")
    if a == "linear":
        return float(polygamma(1, n / 2.0))
    _, e1, vd = _active_moments(n)
    return e1 + vd


def dead_probability(activation, fan_out) -> float:
    """The probability that a layer has no active unit (ReLU: 2^-n; the walk stops there for good)."""
    a, n = _activation(activation), _width(fan_out, "fan_out")
    return 0.0 if a == "linear" else 2.0 ** -n


def random_walk_variance(activation, fan_out) -> float:
    """The weight variance v with E[log R] = 0: exp(-psi(n/2)) / 2 (linear), exp(-E psi(K/2)) / 2 (ReLU).

    It depends on the layer's fan_out only (the number of terms of the chi-square); it tends to He's 2 / n
    for ReLU and LeCun's 1 / n for linear layers as n grows.
    """
    return math.exp(-(log_ratio_mean(activation, 1.0, fan_out)))


def random_walk_gain(activation, width) -> float:
    """The std multiplier g of a square layer of ``width`` units, Var(w) = g^2 / width, in the papers' form."""
    return math.sqrt(random_walk_variance(activation, width) * _width(width))


def sussillo_abbott_gain(activation, width) -> float:
    """Sussillo & Abbott (2014)'s gains: exp(1/(2n)) for linear (derived), sqrt(2) exp(1.2/(max(n,6)-2.4)) for
    ReLU (fitted to simulations in their paper)."""
    a, n = _activation(activation), _width(width)
    if a == "linear":
        return math.exp(1.0 / (2.0 * n))
    return math.sqrt(2.0) * math.exp(1.2 / (max(n, 6) - 2.4))


def norm_walk(widths, activation, weight_vars) -> tuple[np.ndarray, np.ndarray]:
    """Per layer l = 1..L, the mean and variance of log(||x_l||^2 / ||x_0||^2) for a fixed input x_0.

    ``widths``: the input width first, then each layer's; ``weight_vars``: one per layer (or one for all). The
    variance grows with sum_l Var[log R_l], close to 5 sum_l 1/n_l for ReLU (Hanin & Nica 2019).
    """
    ws = [_width(w) for w in widths]
    if len(ws) < 2:
        raise ValueError("widths needs the input width and at least one layer")
    vs = np.broadcast_to(np.asarray(weight_vars, dtype=float), (len(ws) - 1,))
    means = np.array([log_ratio_mean(activation, v, n) for v, n in zip(vs, ws[1:])])
    var = np.array([log_ratio_var(activation, n) for n in ws[1:]])
    return np.cumsum(means), np.cumsum(var)

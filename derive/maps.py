"""Maps at initialization beyond the plain length map: gains as functions of q, the correlation map under
dropout, batch norm's gradient growth per layer. Float quadrature on :mod:`varprop.derive.mean_field`.

- gains at q: g_f(q) = sqrt(q / E[phi(sqrt(q) z)^2]), g_b(q) = 1/sqrt(E[phi'(sqrt(q) z)^2]); a gain is
  exact at the q it is computed at, and equal forward and backward gains need g_f(q) = g_b(q).
- dropout (inverted, keep probability p, masks independent across units and examples; Schoenholz et al.
  2017, Section 6): q' = sigma_w^2 E[phi(u)^2] / p + sigma_b^2 for one input, while two inputs share no mask,
  so q'_12 = sigma_w^2 E[phi(u_1) phi(u_2)] + sigma_b^2 and c' = q'_12 / q*. At c = 1 this gives
  c' = (sigma_w^2 E[phi^2] + sigma_b^2) / (sigma_w^2 E[phi^2] / p + sigma_b^2) < 1 for p < 1: c = 1 is no
  longer a fixed point, the map's fixed point c* is below 1, and there is no critical line for correlations.
- batch norm (Yang et al. 2019): after y = BN(W x), x' = phi(y), in the wide and large-batch limit each layer
  multiplies the gradient's second moment by E[phi'(z)^2] / Var(phi(z)), z ~ N(0, 1): the weights' scale
  cancels, since BN divides by the batch std of W x, which is sqrt(sigma_w^2 Var(phi)). For ReLU this is
  (1/2) / ((pi - 1)/(2 pi)) = pi/(pi - 1) = 1.4669.

>>> round(batchnorm_gradient_rate("relu"), 6)
1.466942
>>> round(dropout_c_star("relu", 1.0, 0.0, 0.5), 4)      # ReLU at Var(w) = 2p/fan_in, p = 1/2
0.2172
"""
from __future__ import annotations

import math

import numpy as np

from . import mean_field as mf

__all__ = ["gain_curves", "dropout_fixed_point", "dropout_correlation_map", "dropout_c_star", "dropout_depth_scale",
           "dropout_max_depth_scale",
           "batchnorm_gradient_rate"]


def gain_curves(activation, qs, **params) -> tuple[np.ndarray, np.ndarray]:
    """(g_f(q), g_b(q)) at each q of ``qs`` (q > 0), by float quadrature."""
    qs = np.asarray(qs, dtype=float)
    if qs.ndim != 1 or not np.all(qs > 0):
        raise ValueError("qs must be a 1-d array of positive second moments")
    gf, gb = [], []
    for q in qs:
        m = mf.gaussian_moments(activation, float(q), params or None)
        gf.append(math.sqrt(q / m.second))
        gb.append(1 / math.sqrt(m.deriv2))
    return np.array(gf), np.array(gb)


def _check_keep(keep) -> float:
    keep = float(keep)
    if not 0 < keep <= 1:
        raise ValueError(f"the keep probability must be in (0, 1], got {keep}")
    return keep


def dropout_fixed_point(activation, sigma_w2, sigma_b2, keep, **params) -> float:
    """q* of q' = sigma_w^2 E[phi(sqrt(q) z)^2] / keep + sigma_b^2 (dropout on the layer's inputs)."""
    keep = _check_keep(keep)
    return mf.fixed_point(activation, sigma_w2 / keep, sigma_b2, **params)


def dropout_correlation_map(activation, c, sigma_w2, sigma_b2, keep, q=None, **params) -> float:
    """c' for two inputs of correlation c at the dropout fixed point q* (masks independent per input)."""
    keep = _check_keep(keep)
    qs = dropout_fixed_point(activation, sigma_w2, sigma_b2, keep, **params) if q is None else float(q)
    if not 0 < qs < math.inf:
        raise ValueError(f"the correlation map needs a finite positive q*, got {qs}")
    # mean_field's map divides by q*: sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2 is that times q*
    return mf.correlation_map(activation, c, sigma_w2, sigma_b2, q=qs, **params)


def dropout_c_star(activation, sigma_w2, sigma_b2, keep, **params) -> float:
    """The correlation map's fixed point under dropout, by iterating the map from c = 1 (it is below 1 for
    keep < 1) to a step below 1e-12, then polishing with Brent's method."""
    from scipy.optimize import brentq
    qs = dropout_fixed_point(activation, sigma_w2, sigma_b2, keep, **params)

    def f(c):
        return dropout_correlation_map(activation, c, sigma_w2, sigma_b2, keep, q=qs, **params) - c

    c = 1.0
    for _ in range(10_000):
        nxt = dropout_correlation_map(activation, c, sigma_w2, sigma_b2, keep, q=qs, **params)
        if abs(nxt - c) < 1e-12:
            break
        c = nxt
    lo, hi = max(c - 1e-6, -1.0), min(c + 1e-6, 1.0)
    if f(lo) * f(hi) < 0:
        c = brentq(f, lo, hi, xtol=1e-14)
    return float(c)


def dropout_depth_scale(activation, sigma_w2, sigma_b2, keep, **params) -> float:
    """xi_c = -1/log(chi_c) under dropout, chi_c = sigma_w^2 E[phi'(u1) phi'(u2)] at the dropout c* (the slope
    of the correlation map there: d/dc E[phi(u1) phi(u2)] = q E[phi'(u1) phi'(u2)])."""
    from scipy.optimize import brentq
    qs = dropout_fixed_point(activation, sigma_w2, sigma_b2, keep, **params)
    if not 0 < qs < math.inf:
        raise ValueError(f"the correlation map needs a finite positive q*, got {qs}")

    def f(c):
        return dropout_correlation_map(activation, c, sigma_w2, sigma_b2, keep, q=qs, **params) - c

    # c' - c is negative at c = 1 under dropout; bracket the root from below (0 for an odd phi, else -1)
    lo = 0.0 if f(0.0) >= 0 else -1.0
    c = brentq(f, lo, 1.0, xtol=1e-14) if f(1.0) < 0 else 1.0
    b = mf._bound(activation, params or None)
    rate = float(sigma_w2) * mf._pair(b, qs, c, True)
    return mf._depth(rate)


def dropout_max_depth_scale(activation, sigma_b2, keep, sigma_w2_range=(0.5, 4.0), **params) -> tuple[float, float]:
    """(the largest xi_c under dropout over sigma_w^2 in the range, the sigma_w^2 reaching it): finite for every
    keep < 1, since c = 1 is no longer a fixed point; bounded search (scipy's minimize_scalar) after a coarse grid."""
    from scipy.optimize import minimize_scalar
    lo, hi = float(sigma_w2_range[0]), float(sigma_w2_range[1])
    grid = np.linspace(lo, hi, 24)
    vals = [dropout_depth_scale(activation, s, sigma_b2, keep, **params) for s in grid]
    k = int(np.nanargmax(vals))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    r = minimize_scalar(lambda s: -dropout_depth_scale(activation, s, sigma_b2, keep, **params), bounds=(a, b),
                        method="bounded", options={"xatol": 1e-6})
    return float(-r.fun), float(r.x)


def batchnorm_gradient_rate(activation, **params) -> float:
    """E[phi'(z)^2] / Var(phi(z)) for z ~ N(0, 1): the wide, large-batch growth of the gradient's second
    moment per batch-normalized layer (Yang et al. 2019)."""
    m = mf.gaussian_moments(activation, 1.0, params or None)
    return m.deriv2 / (m.second - m.mean ** 2)

"""The spectrum of the input-output Jacobian at initialization: dynamical isometry (free probability).

For an MLP h_l = W_l phi(h_{l-1}) + b_l at the length map's fixed point q*, the input-output Jacobian is
J = prod_l D_l W_l with D_l = diag(phi'(h_l)). In the wide limit the factors are asymptotically free, so the
first S-transform coefficients of the factors add (Pennington, Schoenholz & Ganguli 2017): with
mu_k = E[phi'(sqrt(q*) z)^(2k)] and chi_1 = sigma_w^2 mu_1, the squared singular values of J (the eigenvalues
of J J^T) have

    mean      m_1 = chi_1^L
    variance  sigma^2 = m_1^2 L (mu_2 / mu_1^2 - 1 - s_1),     s_1 = -1 for Gaussian W, 0 for orthogonal W.

So at criticality (chi_1 = 1) the spread grows linearly with depth unless mu_2 = mu_1^2 and s_1 = 0:

* linear, Gaussian weights: sigma^2 = L (the Fuss-Catalan law, moments C(k(L+1), k) / (kL + 1));
* linear, orthogonal weights: sigma^2 = 0, J is an isometry at every depth;
* ReLU: phi'^2 is 0 or 1, mu_2 / mu_1^2 = 2: sigma^2 = 2L (Gaussian) or L (orthogonal): no isometric regime;
* tanh (or hard tanh) at criticality: mu_2 / mu_1^2 -> 1 as q* -> 0, so orthogonal weights give
  sigma^2 -> 0 (dynamical isometry) while Gaussian weights keep sigma^2 >= L.

>>> round(spectrum_moments("relu", 2.0, 0.0, depth=10, weights="gaussian", q=1.0)[1], 12)
20.0
>>> fuss_catalan_moment(3, 2)                 # L = 3: the second moment L + 1
4.0
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["WEIGHTS", "derivative_moments", "spectrum_moments", "fuss_catalan_moment", "critical_point"]

WEIGHTS = ("gaussian", "orthogonal")


def derivative_moments(activation, q, params=None) -> tuple[float, float]:
    """(mu_1, mu_2) = (E[phi'(sqrt(q) z)^2], E[phi'(sqrt(q) z)^4]) by composite Gauss-Legendre split at kinks."""
    from .mean_field import _bound, _nodes
    b = activation if hasattr(activation, "numpy_derivative") else _bound(activation, params)
    q = float(q)
    if not (q > 0 and math.isfinite(q)):
        raise ValueError(f"q must be positive and finite, got {q}")
    s = math.sqrt(q)
    t, w = _nodes(1.0 / s, tuple(float(k) / s for k in b.kinks()))
    d2 = np.asarray(b.numpy_derivative(s * t), dtype=np.float64) ** 2
    return float(w @ d2), float(w @ d2 ** 2)


def critical_point(activation, sigma_b2=0.0, params=None) -> tuple[float, float]:
    """(sigma_w^2 on the order-to-chaos line at ``sigma_b2``, q* there); q* is at least 1e-8 (sigma_b = 0)."""
    from .mean_field import _bound, critical_sigma_w2, fixed_point
    b = activation if hasattr(activation, "numpy_derivative") else _bound(activation, params)
    if b.name == "maxout":
        raise ValueError("the Jacobian spectrum of maxout (a max over k rows of W) is not implemented")
    sw = critical_sigma_w2(b, sigma_b2)
    q = fixed_point(b, sw, sigma_b2)
    return sw, q


def spectrum_moments(activation, sigma_w2, sigma_b2=0.0, depth=1, weights="gaussian", q=None,
                     params=None) -> tuple[float, float]:
    """(mean, variance) of the squared singular values of J for ``depth`` layers (module docstring).

    ``q`` is the pre-activation second moment every layer has (default: the fixed point q*; ReLU and linear
    nets have none at sigma_b^2 = 0, and their spectrum does not depend on q, so q = 1 is used).
    """
    from .mean_field import _bound, fixed_point
    b = activation if hasattr(activation, "numpy_derivative") else _bound(activation, params)
    if b.name == "maxout":
        raise ValueError("the Jacobian spectrum of maxout (a max over k rows of W) is not implemented")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    sw = float(sigma_w2)
    if not (sw > 0 and math.isfinite(sw)):
        raise ValueError(f"sigma_w2 must be positive and finite, got {sigma_w2!r}")
    if q is None:
        q = fixed_point(b, sw, sigma_b2)
        if not (0 < q < math.inf):
            if b.name in ("relu", "linear", "leaky_relu", "prelu", "abs"):
                q = 1.0                       # positively homogeneous: phi' does not depend on the scale
            else:
                raise ValueError(f"q* = {q} at sigma_w2 = {sw:g}, sigma_b2 = {sigma_b2:g}: give q explicitly")
    mu1, mu2 = derivative_moments(b, q)
    log_m1 = depth * math.log(sw * mu1)
    m1 = math.exp(log_m1) if log_m1 < 709 else math.inf
    s1 = -1.0 if weights == "gaussian" else 0.0
    spread = depth * (mu2 / (mu1 * mu1) - 1.0 - s1)
    return m1, (math.exp(2 * log_m1) * spread if 2 * log_m1 < 709 else math.inf) if spread > 0 else 0.0


def fuss_catalan_moment(depth: int, k: int) -> float:
    """The k-th moment of the Fuss-Catalan law: J J^T of a depth-``depth`` product of Gaussian square layers
    with Var(w) = 1/n, in the wide limit."""
    return math.comb(k * (depth + 1), k) / (k * depth + 1)

"""Numba scalar forms of the registry's activations, for the simulator's and the trainer's fused kernels.

This is the one place besides :mod:`varprop.activations` where an activation is written, because Numba
cannot run the namespace-generic definitions there. ``tests/test_activations.py`` holds every code path
here against the registry's NumPy form at random points.

Each function takes the activation's integer ``code`` and its two kernel parameters ``(p0, p1)``
(``Bound.kernel_params()``), so one compiled kernel serves every activation. Nothing is compiled at
import: Numba compiles on first call and caches to disk (``cache=True``).

>>> from varprop.activations import get
>>> from varprop.kernels import forward
>>> a = get("elu")
>>> round(float(forward(a.code, -1.0, *a.kernel_params())), 6)
-0.632121
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["forward", "derivative", "apply_forward", "apply_derivative"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


@njit(cache=True, inline="always")
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def _softplus(x):
    # log(1 + e^x) without overflow
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@njit(cache=True)
def forward(code, x, p0, p1):
    """phi(x) for the activation ``code`` with kernel parameters ``p0, p1`` (float64)."""
    if code == 0:      # linear (maxout's per-piece map is the identity too: see max kernels)
        return x
    elif code == 1:    # sigmoid
        return _sigmoid(x)
    elif code == 2:    # tanh
        return math.tanh(x)
    elif code == 3:    # relu
        return x if x > 0.0 else 0.0
    elif code == 4:    # leaky_relu / prelu / rrelu (mean slope)
        return x if x > 0.0 else p0 * x
    elif code == 5:    # elu
        return x if x > 0.0 else p0 * math.expm1(x)
    elif code == 6:    # selu: p0 = alpha, p1 = lambda
        return p1 * (x if x > 0.0 else p0 * math.expm1(x))
    elif code == 7:    # celu
        return x if x > 0.0 else p0 * math.expm1(x / p0)
    elif code == 8:    # gelu (erf)
        return 0.5 * x * (1.0 + math.erf(x * _INV_SQRT2))
    elif code == 9:    # gelu_tanh
        return 0.5 * x * (1.0 + math.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)))
    elif code == 10:   # swish(beta), silu
        return x * _sigmoid(p0 * x)
    elif code == 11:   # softplus(beta)
        return _softplus(p0 * x) / p0
    elif code == 12:   # softsign
        return x / (1.0 + abs(x))
    elif code == 13:   # mish
        return x * math.tanh(_softplus(x))
    elif code == 14:   # hardtanh(min, max)
        return p0 if x < p0 else (p1 if x > p1 else x)
    elif code == 15:   # hardsigmoid
        return 0.0 if x < -3.0 else (1.0 if x > 3.0 else x / 6.0 + 0.5)
    elif code == 16:   # abs
        return abs(x)
    return x           # 17 maxout: identity per piece


@njit(cache=True)
def derivative(code, x, p0, p1):
    """phi'(x) for the activation ``code``, with the registry's value at each kink.

    At a kink the value is the one the registry's ``df`` gives there, which is not one side for all:
    relu, leaky_relu, prelu, rrelu, elu, selu, celu and abs take the left value at 0 (the test is x > 0);
    hardtanh takes the inside value 1 at both min_val and max_val, and hardsigmoid 1/6 at both -3 and 3
    (the tests are x < min and x > max). A kink has probability 0 under a Gaussian, so no moment depends
    on it; the trainer's gradients at exactly a kink do.
    """
    if code == 0:
        return 1.0
    elif code == 1:
        s = _sigmoid(x)
        return s * (1.0 - s)
    elif code == 2:
        t = math.tanh(x)
        return 1.0 - t * t
    elif code == 3:
        return 1.0 if x > 0.0 else 0.0
    elif code == 4:
        return 1.0 if x > 0.0 else p0
    elif code == 5:
        return 1.0 if x > 0.0 else p0 * math.exp(x)
    elif code == 6:
        return p1 if x > 0.0 else p1 * p0 * math.exp(x)
    elif code == 7:
        return 1.0 if x > 0.0 else math.exp(x / p0)
    elif code == 8:
        return 0.5 * (1.0 + math.erf(x * _INV_SQRT2)) + x * _INV_SQRT_2PI * math.exp(-0.5 * x * x)
    elif code == 9:
        t = math.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * x * x)
    elif code == 10:
        s = _sigmoid(p0 * x)
        return s + p0 * x * s * (1.0 - s)
    elif code == 11:
        return _sigmoid(p0 * x)
    elif code == 12:
        d = 1.0 + abs(x)
        return 1.0 / (d * d)
    elif code == 13:
        t = math.tanh(_softplus(x))
        return t + x * (1.0 - t * t) * _sigmoid(x)
    elif code == 14:
        return 0.0 if (x < p0 or x > p1) else 1.0
    elif code == 15:
        return 0.0 if (x < -3.0 or x > 3.0) else 1.0 / 6.0
    elif code == 16:
        return 1.0 if x > 0.0 else -1.0
    return 1.0


@njit(parallel=True, cache=True)
def apply_forward(code, p0, p1, x, out):
    """out[...] = phi(x[...]) elementwise over C-contiguous arrays (flattened), in parallel."""
    xf = x.reshape(-1)
    of = out.reshape(-1)
    for i in prange(xf.size):
        of[i] = forward(code, xf[i], p0, p1)


@njit(parallel=True, cache=True)
def apply_derivative(code, p0, p1, x, out):
    """out[...] = phi'(x[...]) elementwise, in parallel."""
    xf = x.reshape(-1)
    of = out.reshape(-1)
    for i in prange(xf.size):
        of[i] = derivative(code, xf[i], p0, p1)


def activate(bound, x: np.ndarray) -> np.ndarray:
    """phi(x) through the Numba kernel (a convenience wrapper for tests and small callers)."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    apply_forward(bound.code, *bound.kernel_params(), x, out)
    return out


def activate_derivative(bound, x: np.ndarray) -> np.ndarray:
    """phi'(x) through the Numba kernel."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    apply_derivative(bound.code, *bound.kernel_params(), x, out)
    return out

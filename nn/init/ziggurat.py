"""Counter-based Gaussian fills: a ziggurat on :mod:`varprop.streams` keys, one slot per counter.

Marsaglia & Tsang's ziggurat (J. Stat. Softw. 5(8), 2000) in Doornik's formulation (ZIGNOR, 2005) with 256
layers: slot ``i`` hashes its counter once, ``z = mix64(key + i * golden)``; the low 8 bits pick a layer
``l`` and the top 53 bits a uniform ``u`` in [-1, 1). When ``|u| < x[l+1] / x[l]`` (98.5% of slots)
the normal is ``u * x[l]``: one hash and one multiply. Otherwise the slot finishes the exact ziggurat
(wedge test, Marsaglia's tail beyond r = 3.654...) from a private SplitMix64 sequence seeded by its own
``z``, so every slot depends on its counter alone and a seed gives the same bits whatever the number of
threads. The truncated fill redraws an out-of-range slot from its private sequence.

``normal_reference`` and ``truncated_reference`` are the NumPy (plus scalar Python) references the kernels
are tested against, bit for bit.

>>> import numpy as np
>>> from varprop.streams import key
>>> a = np.empty(5); b = np.empty(5)
>>> fill_normal(key(3, 1), a, 0.0, 1.0, TABLE_X, TABLE_R)
>>> np.array_equal(normal_reference(key(3, 1), 5), a)    
True
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from varprop.streams import mix64
from varprop.streams import mix64_array as _mix64_np
from varprop.streams import words

__all__ = ["TABLE_X", "TABLE_R", "fill_normal", "fill_truncated", "normal_reference", "truncated_reference"]

_LAYERS = 256
_ZIG_R = 3.6541528853610088      # start of the tail (Marsaglia & Tsang 2000, 256 layers)
_ZIG_V = 0.00492867323399        # common area of every layer


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Layer edges x[0..256] (x[0] = V / f(r) is the base layer's equivalent width) and ratios x[l+1]/x[l]."""
    x = np.zeros(_LAYERS + 1)
    f = math.exp(-0.5 * _ZIG_R * _ZIG_R)
    x[0], x[1] = _ZIG_V / f, _ZIG_R
    for i in range(2, _LAYERS):
        x[i] = math.sqrt(-2.0 * math.log(_ZIG_V / x[i - 1] + f))
        f = math.exp(-0.5 * x[i] * x[i])
    return x, x[1:] / x[:-1]


TABLE_X, TABLE_R = _tables()

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SALT_SLOW = np.uint64(0xD1B54A32D192ED03)    # seeds a slot's private sequence from its first word
_SALT_TRUNC = np.uint64(0x8CB92BA72F3D8DD7)   # a second, independent private sequence for redraws
_S11 = np.uint64(11)
_MASK = np.uint64(_LAYERS - 1)
_TWO_M53 = 1.0 / 9007199254740992.0


@njit(cache=True, inline="always", nogil=True)
def _unit(z):
    """A uniform in (0, 1] from the top 53 bits of z."""
    return (np.float64(z >> _S11) + 1.0) * _TWO_M53


@njit(cache=True, nogil=True)
def _normal_slow(z, X, R):
    """The exact ziggurat for a slot whose first word ``z`` failed the fast test; rare."""
    state = mix64(z ^ _SALT_SLOW)
    while True:
        layer = np.int64(z & _MASK)
        u = 2.0 * np.float64(z >> _S11) * _TWO_M53 - 1.0
        if abs(u) < R[layer]:
            return u * X[layer]
        if layer == 0:                  # Marsaglia's tail beyond r: exact, its own rejection loop
            while True:
                state += _GOLDEN
                x = math.log(_unit(mix64(state))) / X[1]
                state += _GOLDEN
                y = math.log(_unit(mix64(state)))
                if -2.0 * y >= x * x:
                    return x - X[1] if u < 0.0 else X[1] - x
        x = u * X[layer]
        f0 = math.exp(-0.5 * (X[layer] * X[layer] - x * x))
        f1 = math.exp(-0.5 * (X[layer + 1] * X[layer + 1] - x * x))
        state += _GOLDEN
        if f1 + _unit(mix64(state)) * (f0 - f1) < 1.0:
            return x
        state += _GOLDEN
        z = mix64(state)


@njit(cache=True, inline="always", nogil=True)
def _normal_at(k, i, X, R):
    """Standard normal number i of stream k."""
    z = mix64(k + np.uint64(i) * _GOLDEN)
    layer = np.int64(z & _MASK)
    u = 2.0 * np.float64(z >> _S11) * _TWO_M53 - 1.0
    if abs(u) < R[layer]:
        return u * X[layer]
    return _normal_slow(z, X, R)


@njit(cache=True, nogil=True)
def _truncated_slow(k, i, lo, hi, X, R):
    """Redraw slot i until it lands in [lo, hi], from a private sequence of the slot."""
    state = mix64(mix64(k + np.uint64(i) * _GOLDEN) ^ _SALT_TRUNC)
    while True:
        state += _GOLDEN
        z = mix64(state)
        layer = np.int64(z & _MASK)
        u = 2.0 * np.float64(z >> _S11) * _TWO_M53 - 1.0
        # the ziggurat's fast test inline; the rare rest in _normal_slow (which repeats the test)
        x = u * X[layer] if abs(u) < R[layer] else _normal_slow(z, X, R)
        if lo <= x <= hi:
            return x


@njit(parallel=True, cache=True, nogil=True)
def fill_normal(k, out, mean, std, X, R):
    """out.flat[i] = mean + std * (normal number i of stream k), for a C-contiguous array."""
    k = np.uint64(k)
    f = out.reshape(-1)
    for i in prange(f.size):
        f[i] = mean + std * _normal_at(k, i, X, R)


@njit(parallel=True, cache=True, nogil=True)
def fill_truncated(k, out, loc, scale, lo, hi, X, R):
    """out.flat[i] = loc + scale * x_i with x_i standard normal conditioned on lo <= x_i <= hi.

    Rejection from the normal: worth it when the mass of [lo, hi] is not small (the caller's choice).
    """
    k = np.uint64(k)
    f = out.reshape(-1)
    for i in prange(f.size):
        x = _normal_at(k, i, X, R)
        if not lo <= x <= hi:
            x = _truncated_slow(k, i, lo, hi, X, R)
        f[i] = loc + scale * x


# --------------------------------------------------------------------------------------------------
# NumPy references (vectorized fast path, scalar Python for the rare slots), tested against the kernels
# --------------------------------------------------------------------------------------------------

def _add(a, b):
    with np.errstate(over="ignore"):
        return np.asarray(a, dtype=np.uint64) + np.asarray(b, dtype=np.uint64)


def _unit_np(z):
    return ((z >> np.uint64(11)).astype(np.float64) + 1.0) * _TWO_M53


def _slow_py(z) -> float:
    X, R = TABLE_X, TABLE_R
    state = _mix64_np(np.uint64(z) ^ _SALT_SLOW)
    while True:
        layer = int(z & _MASK)
        u = 2.0 * float(z >> _S11) * _TWO_M53 - 1.0
        if abs(u) < R[layer]:
            return u * X[layer]
        if layer == 0:
            while True:
                state = _add(state, _GOLDEN)
                x = math.log(_unit_np(_mix64_np(state))) / X[1]
                state = _add(state, _GOLDEN)
                y = math.log(_unit_np(_mix64_np(state)))
                if -2.0 * y >= x * x:
                    return x - X[1] if u < 0.0 else X[1] - x
        x = u * X[layer]
        f0 = math.exp(-0.5 * (X[layer] * X[layer] - x * x))
        f1 = math.exp(-0.5 * (X[layer + 1] * X[layer + 1] - x * x))
        state = _add(state, _GOLDEN)
        if f1 + float(_unit_np(_mix64_np(state))) * (f0 - f1) < 1.0:
            return x
        state = _add(state, _GOLDEN)
        z = _mix64_np(state)




def normal_reference(k, n: int) -> np.ndarray:
    """The first n standard normals of stream k, as :func:`fill_normal` makes them (float64)."""
    z = words(k, n)
    layer = (z & _MASK).astype(np.int64)
    u = 2.0 * (z >> _S11).astype(np.float64) * _TWO_M53 - 1.0
    out = u * TABLE_X[layer]
    for j in np.flatnonzero(np.abs(u) >= TABLE_R[layer]):
        out[j] = _slow_py(z[j])
    return out


def truncated_reference(k, n: int, lo: float, hi: float) -> np.ndarray:
    """The first n truncated standard normals of stream k, as :func:`fill_truncated` makes them."""
    out = normal_reference(k, n)
    z = words(k, n)
    for j in np.flatnonzero((out < lo) | (out > hi)):
        state = _mix64_np(z[j] ^ _SALT_TRUNC)
        while True:
            state = _add(state, _GOLDEN)
            x = _slow_py(_mix64_np(state))
            if lo <= x <= hi:
                out[j] = x
                break
    return out

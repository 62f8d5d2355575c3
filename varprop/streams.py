"""Counter-based random streams: ``(seed, trial, layer, ...)`` -> numbers, whatever the thread count.

A stream is a 64-bit key hashed from the integers that name it. The i-th number of a stream is a pure
function of ``(key, i)``: the SplitMix64 output function (Steele, Lea & Flood 2014; the finalizer is
Stafford's "Mix13") applied to ``key + i * golden``. So a kernel that fills slot ``i`` from counter ``i``
writes the same bits whether one thread or many run it, and any block of a stream can be produced
without producing what comes before it.

Normals come in pairs by the Box-Muller transform from the uniforms at counters ``2i`` and ``2i + 1``.

>>> from varprop.streams import normal
>>> a = normal(7, (0, 1), (2, 3))
>>> b = normal(7, (0, 1), (2, 3))
>>> bool((a == b).all()) and a.shape == (2, 3)
True
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["mix64", "mix64_array", "words", "stream_key", "key", "uniform_at", "normal_pair_at", "fill_normal",
           "fill_uniform", "normal", "uniform"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0  # 2^-53
_TWO_PI = 2.0 * math.pi


@njit(cache=True, inline="always", nogil=True)
def mix64(z):
    """Stafford's Mix13 finalizer: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def mix64_array(z) -> np.ndarray:
    """:func:`mix64` in NumPy, elementwise (wrapping uint64 arithmetic): the kernels' references use it."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def words(k, n: int) -> np.ndarray:
    """The hashed words ``mix64(k + i * golden)`` for counters ``i = 0 .. n - 1`` of stream ``k``, in NumPy.

    >>> k = key(1, 2)
    >>> uniform_at(k, 2) == (float(words(k, 3)[2] >> np.uint64(11)) + 1.0) * _TWO_M53   # the same word
    True
    """
    with np.errstate(over="ignore"):
        return mix64_array(np.uint64(k) + np.arange(int(n), dtype=np.uint64) * _GOLDEN)


@njit(cache=True, nogil=True)
def stream_key(seed, a, b, c):
    """The key of the stream named by ``(seed, a, b, c)`` (non-negative integers)."""
    k = mix64(np.uint64(seed) * _GOLDEN + np.uint64(0x632BE59BD9B4E019))
    k = mix64(k ^ (np.uint64(a) + _GOLDEN))
    k = mix64(k ^ (np.uint64(b) * _M1 + _GOLDEN))
    k = mix64(k ^ (np.uint64(c) * _M2 + _GOLDEN))
    return k


def key(seed: int, *ids: int) -> np.uint64:
    """Python-side key of the stream ``(seed, *ids)``; up to three ids, missing ones are 0."""
    if len(ids) > 3:
        raise ValueError("a stream is named by a seed and at most three ids")
    vals = [int(seed), *map(int, ids)] + [0] * (3 - len(ids))
    if any(v < 0 or v >= 2 ** 64 for v in vals):
        raise ValueError("seed and stream ids must be integers in [0, 2**64)")
    # Numba boxes a uint64 result as a Python int; keep it a NumPy uint64 so that every kernel receiving
    # it is typed uint64 (an int64-typed key would mix with uint64 counters into float64)
    return np.uint64(stream_key(np.uint64(vals[0]), np.uint64(vals[1]), np.uint64(vals[2]), np.uint64(vals[3])))


@njit(cache=True, inline="always", nogil=True)
def uniform_at(k, i):
    """The i-th uniform of stream ``k``, in (0, 1]: 53 random bits, never 0 (safe under log)."""
    # np.uint64(...) on both: an int64 key or counter mixed with uint64 would silently become float64
    z = mix64(np.uint64(k) + np.uint64(i) * _GOLDEN)
    return (np.float64(z >> _S11) + 1.0) * _TWO_M53


@njit(cache=True, inline="always", nogil=True)
def normal_pair_at(k, i):
    """Standard normals number 2i and 2i + 1 of stream ``k`` (Box-Muller)."""
    u1 = uniform_at(k, 2 * i)
    u2 = uniform_at(k, 2 * i + 1)
    r = math.sqrt(-2.0 * math.log(u1))
    t = _TWO_PI * u2
    return r * math.cos(t), r * math.sin(t)


@njit(parallel=True, cache=True, nogil=True)
def fill_normal(k, out, mean, std):
    """out.flat[j] = mean + std * (normal number j of stream k), for a C-contiguous array."""
    k = np.uint64(k)
    f = out.reshape(-1)
    n = f.size
    npairs = (n + 1) // 2
    for i in prange(npairs):
        z0, z1 = normal_pair_at(k, i)
        f[2 * i] = mean + std * z0
        if 2 * i + 1 < n:
            f[2 * i + 1] = mean + std * z1


@njit(parallel=True, cache=True, nogil=True)
def fill_uniform(k, out, low, high):
    """out.flat[j] = low + (high - low) * (uniform number j of stream k)."""
    k = np.uint64(k)
    f = out.reshape(-1)
    w = high - low
    for i in prange(f.size):
        f[i] = low + w * (1.0 - uniform_at(k, i))


def normal(seed: int, ids: tuple, shape, dtype=np.float64, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """An array of normals from the stream ``(seed, *ids)``."""
    out = np.empty(shape, dtype=dtype)
    fill_normal(key(seed, *ids), out, float(mean), float(std))
    return out


def uniform(seed: int, ids: tuple, shape, dtype=np.float64, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """An array of uniforms on [low, high) from the stream ``(seed, *ids)``."""
    out = np.empty(shape, dtype=dtype)
    fill_uniform(key(seed, *ids), out, float(low), float(high))
    return out

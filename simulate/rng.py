"""Gaussian fills for the engines: Box-Muller on one hash per pair, in float32 arithmetic that vectorizes.

Pair ``i`` of a fill hashes its counter once, ``z = mix64(key + i * golden)`` (the SplitMix64 output
function of :mod:`varprop.streams`). The high 32 bits give ``u = (hi + 1/2) 2^-32`` in (0, 1), the low 32
bits an angle ``t = 2 pi (lo + 1/2) 2^-32``, and slots ``2i`` and ``2i + 1`` get ``r cos t`` and ``r sin t``
with ``r = sqrt(-2 ln u)`` (Box & Muller 1958). The logarithm, sine and cosine are written out as float32
polynomials (the atanh series of ln on [sqrt(1/2), sqrt(2)); Cephes' sinf/cosf minimax polynomials on
[0, pi/4], the octant taken from the angle's top three bits) with IEEE operations only (no fused or
reassociated arithmetic), so LLVM vectorizes the loop and a seed gives the same bits on any number of
threads and on any x86-64 or ARM machine. :func:`normal_reference` is the same arithmetic in NumPy; the
kernel is tested against it bit for bit.

What the float32 arithmetic costs, against an exact normal: each normal carries float32 precision (a
relative error of a few 1e-7), and ``u >= 2^-33`` bounds ``|z|`` by ``sqrt(66 ln 2) = 6.76``, a tail of
mass 1.4e-11 (one normal in 70 billion). The weights the dense engine draws are float32 anyway; the
initializers of :mod:`varprop.nn.init` keep their exact float64 ziggurat.

>>> import numpy as np
>>> a = normal(3, (0, 1, 0), (2, 5)); b = normal(3, (0, 1, 0), (2, 5))
>>> bool(np.array_equal(a, b)), a.dtype.name
(True, 'float64')
>>> bool(np.array_equal(a.ravel(), normal_reference(trial_keys(3, 0, 2, 1)[1, 0], 10)))
True
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from varprop.streams import key as stream_key
from varprop.streams import mix64, words
from varprop.streams import stream_key as _stream_key

__all__ = ["fill_normal", "normal", "normal_reference", "trial_keys"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S32 = np.uint64(32)
_LO32 = np.uint64(0xFFFFFFFF)
_F = np.float32
_TWO_M32 = _F(2.0 ** -32)
_TWO_M29 = _F(2.0 ** -29)
_LN2 = _F(math.log(2.0))
_SQRT2 = _F(math.sqrt(2.0))
_PI_4 = _F(math.pi / 4)
# ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716 on [sqrt(1/2), sqrt(2)): five terms reach 2^-24
_LN_C = tuple(_F(2.0 / (2 * j + 1)) for j in range(5))
# Cephes sinf / cosf on [0, pi/4] (S. Moshier)
_SIN_C = (_F(-1.9515295891e-4), _F(8.3321608736e-3), _F(-1.6666654611e-1))
_COS_C = (_F(2.443315711809948e-5), _F(-1.388731625493765e-3), _F(4.166664568298827e-2))


@intrinsic
def _f32_bits(typingctx, x):
    """The IEEE bits of a float32, as a non-negative int64 (a bit cast: no arithmetic)."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.zext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))
    return types.int64(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, x):
    """The float32 whose IEEE bits are the low 32 bits of an integer (a bit cast)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = args[0]
        if v.type.width != 32:
            v = builder.trunc(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())
    return types.float32(x), codegen


@njit(cache=True, inline="always", nogil=True, error_model="numpy")
def _ln(u):
    """ln u for a positive normal float32 u: exponent and mantissa by bit cast, the mantissa's ln by series."""
    b = _f32_bits(u)
    m = _bits_f32((b & 0x7FFFFF) | 0x3F800000)        # [1, 2)
    e = _F((b >> 23) - 127)
    big = m > _SQRT2
    m = _F(0.5) * m if big else m                       # [sqrt(1/2), sqrt(2))
    e = e + _F(1.0) if big else e
    s = (m - _F(1.0)) / (m + _F(1.0))
    s2 = s * s
    p = _LN_C[4]
    p = p * s2 + _LN_C[3]
    p = p * s2 + _LN_C[2]
    p = p * s2 + _LN_C[1]
    p = p * s2 + _LN_C[0]
    return e * _LN2 + s * p


@njit(cache=True, inline="always", nogil=True, error_model="numpy")
def _pair(z):
    """Two standard normals (float32) from one 64-bit word."""
    hi = np.int64(z >> _S32)
    lo = np.int64(z & _LO32)
    u = (_F(hi) + _F(0.5)) * _TWO_M32                   # (0, 1]; exact for small hi, where the tail is
    r = math.sqrt(_F(-2.0) * _ln(u))
    octant = lo >> 29
    y = lo & 0x1FFFFFFF
    odd = (octant & 1) == 1
    y = 0x1FFFFFFF - y if odd else y                    # odd octants: measure from the octant's far edge
    x = (_F(y) + _F(0.5)) * _TWO_M29 * _PI_4            # (0, pi/4)
    x2 = x * x
    sn = x + x * x2 * ((_SIN_C[0] * x2 + _SIN_C[1]) * x2 + _SIN_C[2])
    cs = _F(1.0) - _F(0.5) * x2 + x2 * x2 * ((_COS_C[0] * x2 + _COS_C[1]) * x2 + _COS_C[2])
    ca = sn if odd else cs                              # cos and sin of the angle within its quadrant
    sa = cs if odd else sn
    swap = ((octant >> 1) & 1) == 1                    # quadrants 1 and 3: (cos, sin) -> (-sin, cos)
    c = -sa if swap else ca
    s = ca if swap else sa
    r = _F(-1.0) * r if octant >= 4 else r              # quadrants 2 and 3: both negated
    return r * c, r * s


@njit(cache=True, nogil=True, error_model="numpy")
def _block(k, g, mean, std, first):
    """Pairs ``first, first + 1, ...`` of stream k into g (a view starting at slot ``2 first``).

    The loop counts from 0 over a view so that every index is provably non-negative: with a start other
    than 0 Numba's negative-index wraparound stays in the loop and LLVM no longer vectorizes it.
    """
    for j in range(g.size // 2):
        z0, z1 = _pair(mix64(k + (first + np.uint64(j)) * _GOLDEN))
        g[2 * j] = mean + std * z0
        g[2 * j + 1] = mean + std * z1
    if g.size % 2:
        z0, _ = _pair(mix64(k + (first + np.uint64(g.size // 2)) * _GOLDEN))
        g[g.size - 1] = mean + std * z0


_BLOCK = 4096   # pairs per task of the parallel fill


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _fill(k, f, mean, std):
    npairs = (f.size + 1) // 2
    for b in prange((npairs + _BLOCK - 1) // _BLOCK):
        lo = b * _BLOCK
        _block(k, f[2 * lo:min(2 * (lo + _BLOCK), f.size)], mean, std, np.uint64(lo))


def fill_normal(k, out: np.ndarray, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """``out.flat[i] = mean + std * z_i`` with z_i the i-th normal of the stream ``k`` (C-contiguous out,
    float32 or float64; a float32 out is scaled in float32, a float64 one in float64)."""
    if not out.flags.c_contiguous or out.dtype not in (np.float32, np.float64):
        raise TypeError("fill_normal needs a C-contiguous float32 or float64 array")
    scalar = np.float32 if out.dtype == np.float32 else np.float64
    _fill(np.uint64(k), out.reshape(-1), scalar(mean), scalar(std))
    return out


def normal_reference(k, n: int) -> np.ndarray:
    """The first ``n`` standard normals of stream ``k`` as float32, by the kernel's arithmetic in NumPy."""
    f = np.float32
    z = words(k, (n + 1) // 2)
    hi = (z >> _S32).astype(np.int64)
    lo = (z & _LO32).astype(np.int64)
    u = (hi.astype(f) + f(0.5)) * _TWO_M32
    b = u.view(np.uint32).astype(np.int64)
    m = ((b & 0x7FFFFF) | 0x3F800000).astype(np.uint32).view(f)
    e = ((b >> 23) - 127).astype(f)
    big = m > _SQRT2
    m = np.where(big, f(0.5) * m, m)
    e = np.where(big, e + f(1.0), e)
    s = (m - f(1.0)) / (m + f(1.0))
    s2 = s * s
    p = _LN_C[4]
    for c in _LN_C[3::-1]:
        p = p * s2 + c
    r = np.sqrt(f(-2.0) * (e * _LN2 + s * p))
    octant = lo >> 29
    odd = (octant & 1) == 1
    y = np.where(odd, 0x1FFFFFFF - (lo & 0x1FFFFFFF), lo & 0x1FFFFFFF)
    x = (y.astype(f) + f(0.5)) * _TWO_M29 * _PI_4
    x2 = x * x
    sn = x + x * x2 * ((_SIN_C[0] * x2 + _SIN_C[1]) * x2 + _SIN_C[2])
    cs = f(1.0) - f(0.5) * x2 + x2 * x2 * ((_COS_C[0] * x2 + _COS_C[1]) * x2 + _COS_C[2])
    ca, sa = np.where(odd, sn, cs), np.where(odd, cs, sn)
    swap = ((octant >> 1) & 1) == 1
    c, s_ = np.where(swap, -sa, ca), np.where(swap, ca, sa)
    r = np.where(octant >= 4, f(-1.0) * r, r)
    out = np.empty(2 * len(z), dtype=f)
    out[0::2], out[1::2] = r * c, r * s_
    return out[:n]


def normal(seed: int, ids: tuple, shape, dtype=np.float64, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """An array of normals from the stream ``(seed, *ids)``."""
    return fill_normal(stream_key(seed, *ids), np.empty(shape, dtype=dtype), mean, std)


def trial_keys(seed: int, trial: int, layers: int, purposes: int) -> np.ndarray:
    """``out[layer, purpose]`` = ``key(seed, trial, layer, purpose)`` for every layer and purpose of a
    trial, in one call (a trial needs a few per layer; one Python call each cost a tenth of a trial).

    >>> int(trial_keys(3, 1, 4, 2)[2, 1]) == int(stream_key(3, 1, 2, 1))
    True
    """
    return _trial_keys(np.uint64(seed), np.uint64(trial), int(layers), int(purposes))


@njit(cache=True, nogil=True)
def _trial_keys(seed, trial, layers, purposes):
    out = np.empty((layers, purposes), dtype=np.uint64)
    for layer in range(layers):
        for p in range(purposes):
            out[layer, p] = _stream_key(seed, trial, np.uint64(layer), np.uint64(p))
    return out

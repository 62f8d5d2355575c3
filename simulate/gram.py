"""Gram products ``a b^T`` of short, wide arrays (B x n, B small): the engines' O(n B^2) work.

OpenBLAS reaches about 20 GFLOP/s on a 16 x 4096 times 4096 x 16 product in float64, under half of one
core's peak: its kernels are built for products whose output is large, while here the output is a 16 x 16
matrix and every flop is a step of some long dot product. Four rows of ``a`` against four rows of ``b`` at
a time keep sixteen dot products in registers and load each operand once per four multiply-adds; that runs
at about twice the BLAS's speed on one thread. The columns are cut into fixed chunks of ``GRAM_CHUNK``
whose partial products are added in chunk order, so the bits do not depend on how many threads share the
chunks. Within a chunk the compiler may reorder each dot product's sum to vectorize it ("reassoc"); NaN
and inf still propagate (no "nnan"/"ninf"), which the engines' overflow checks rely on. The NumPy
reference is ``a @ b.T``; the tests hold the kernel against it.

>>> a = np.arange(12.0).reshape(2, 6)
>>> gram(a).tolist()
[[55.0, 145.0], [145.0, 451.0]]
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .kernels import _parallel

__all__ = ["gram", "GRAM_CHUNK", "GRAM_MAX_ROWS"]

GRAM_CHUNK = 512
GRAM_MAX_ROWS = 64     # above this many rows the BLAS's own blocking pays and the product goes through it
_REORDER = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, fastmath=_REORDER, nogil=True)
def _gram_tile(a, b, i0, j0, k0, k1, part, c):
    """part[c, i0:i0+4, j0:j0+4] = a[i0:i0+4, k0:k1] b[j0:j0+4, k0:k1]^T."""
    # slices of one row each, indexed from 0: the compiler then sees unit-stride loads it can vectorize
    r0 = a[i0, k0:k1]
    r1 = a[i0 + 1, k0:k1]
    r2 = a[i0 + 2, k0:k1]
    r3 = a[i0 + 3, k0:k1]
    s0 = b[j0, k0:k1]
    s1 = b[j0 + 1, k0:k1]
    s2 = b[j0 + 2, k0:k1]
    s3 = b[j0 + 3, k0:k1]
    c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = 0.0
    c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = 0.0
    for k in range(r0.size):
        a0 = r0[k]
        a1 = r1[k]
        a2 = r2[k]
        a3 = r3[k]
        b0 = s0[k]
        b1 = s1[k]
        b2 = s2[k]
        b3 = s3[k]
        c00 += a0 * b0
        c01 += a0 * b1
        c02 += a0 * b2
        c03 += a0 * b3
        c10 += a1 * b0
        c11 += a1 * b1
        c12 += a1 * b2
        c13 += a1 * b3
        c20 += a2 * b0
        c21 += a2 * b1
        c22 += a2 * b2
        c23 += a2 * b3
        c30 += a3 * b0
        c31 += a3 * b1
        c32 += a3 * b2
        c33 += a3 * b3
    part[c, i0, j0] = c00
    part[c, i0, j0 + 1] = c01
    part[c, i0, j0 + 2] = c02
    part[c, i0, j0 + 3] = c03
    part[c, i0 + 1, j0] = c10
    part[c, i0 + 1, j0 + 1] = c11
    part[c, i0 + 1, j0 + 2] = c12
    part[c, i0 + 1, j0 + 3] = c13
    part[c, i0 + 2, j0] = c20
    part[c, i0 + 2, j0 + 1] = c21
    part[c, i0 + 2, j0 + 2] = c22
    part[c, i0 + 2, j0 + 3] = c23
    part[c, i0 + 3, j0] = c30
    part[c, i0 + 3, j0 + 1] = c31
    part[c, i0 + 3, j0 + 2] = c32
    part[c, i0 + 3, j0 + 3] = c33


@njit(cache=True, fastmath=_REORDER, nogil=True)
def _gram_dot(a, b, i, j, k0, k1):
    r = a[i, k0:k1]
    s = b[j, k0:k1]
    acc = 0.0
    for k in range(r.size):
        acc += r[k] * s[k]
    return acc


@njit(cache=True, inline="always", nogil=True)
def _gram_chunk(a, b, sym, c, part):
    """Chunk c's partial product: 4 x 4 tiles, then the rows and columns left over one dot at a time.
    With ``sym`` (b is a) only the tiles on and below the diagonal."""
    p, n = a.shape
    q = b.shape[0]
    k0 = c * GRAM_CHUNK
    k1 = min(n, k0 + GRAM_CHUNK)
    p4 = p - p % 4
    q4 = q - q % 4
    for i0 in range(0, p4, 4):
        for j0 in range(0, i0 + 4 if sym else q4, 4):
            _gram_tile(a, b, i0, j0, k0, k1, part, c)
        if not sym:
            for j in range(q4, q):
                for i in range(i0, i0 + 4):
                    part[c, i, j] = _gram_dot(a, b, i, j, k0, k1)
    for i in range(p4, p):
        for j in range(0, i + 1 if sym else q):
            part[c, i, j] = _gram_dot(a, b, i, j, k0, k1)


@njit(cache=True, nogil=True)
def _gram_sum(part, sym, out):
    """out = the chunks' partial products added in chunk order (then mirrored when symmetric)."""
    nc, p, q = part.shape
    for i in range(p):
        for j in range(q):
            if sym and j > i:
                continue
            acc = part[0, i, j]
            for c in range(1, nc):
                acc += part[c, i, j]
            out[i, j] = acc
            if sym:
                out[j, i] = acc


@njit(cache=True, nogil=True)
def _gram_serial(a, b, sym, part, out):
    for c in range(part.shape[0]):
        _gram_chunk(a, b, sym, c, part)
    _gram_sum(part, sym, out)


@njit(parallel=True, cache=True, nogil=True)
def _gram_parallel(a, b, sym, part, out):
    for c in prange(part.shape[0]):
        _gram_chunk(a, b, sym, c, part)
    _gram_sum(part, sym, out)


def gram(a, b=None, parallel=None, out=None):
    """``a b^T`` in float64 (``a a^T`` when b is None, exactly symmetric) for C-contiguous float64 ``a``
    (p x n) and ``b`` (q x n). ``parallel`` forces the thread team on or off (None: from the size, as the
    layer kernels decide; the same bits either way). Arrays with more than ``GRAM_MAX_ROWS`` rows go
    through the BLAS.
    """
    sym = b is None
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = a if sym else np.ascontiguousarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"gram needs two (rows, n) arrays with the same n, got {a.shape} and {b.shape}")
    p, q = a.shape[0], b.shape[0]
    if max(p, q) > GRAM_MAX_ROWS or a.shape[1] == 0:
        return np.matmul(a, b.T, out=out)
    if out is None:
        out = np.empty((p, q))
    part = np.empty(((a.shape[1] + GRAM_CHUNK - 1) // GRAM_CHUNK, p, q))
    kernel = _gram_parallel if _parallel(parallel, a.size + (0 if sym else b.size)) else _gram_serial
    kernel(a, b, sym, part, out)
    return out

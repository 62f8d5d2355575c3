"""Fused per-layer kernels: the activation, its derivative, dropout and the layer statistics in one pass.

Forward, for a pre-activation batch ``h`` of shape ``(B, k n)`` (``k`` pieces per unit, 1 except maxout):

    a[b, j] = max_i phi(h[b, k j + i])                      (phi itself when k = 1)
    x[b, j] = (res[b, j] + a[b, j]) * m[b, j] / p           (res only for a residual block, m only under dropout)
    d[b, k j + i] = phi'(h[b, k j + i]) at the selected piece, 0 at the others

with the dropout mask ``m[b, j] = [u_{key}(b n + j) < p]`` read from the counter-based stream of the layer,
so the backward pass recomputes it instead of storing it. Backward, from ``g = dLoss/dx``:

    gt[b, j] = g[b, j] m[b, j] / p          (dLoss/d(res + a): the residual path's gradient)
    dh[b, k j + i] = gt[b, j] d[b, k j + i]

The statistics are per-block partial sums (sum h, sum h^2, sum x, sum x^2, saturated count, dead-unit
count; sum g, sum g^2) over fixed blocks of units that the caller adds up in order. Reductions therefore
never depend on how ``prange`` splits the work: a seed gives the same bits on any number of threads.

Each kernel has a NumPy reference below it (``*_reference``), which the tests hold it against.

>>> import numpy as np
>>> from varprop.activations import get
>>> act = get("tanh")
>>> h = np.linspace(-2, 2, 8).reshape(2, 4)
>>> x, d, s = forward(act, h)
>>> bool(np.allclose(x, np.tanh(h))) and s.shape == (6,)
True
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from varprop.kernels import derivative as _dphi
from varprop.kernels import forward as _phi
from varprop.streams import uniform_at

__all__ = ["BLOCK", "SATURATION", "forward", "backward", "forward_reference", "backward_reference",
           "FORWARD_FIELDS", "BACKWARD_FIELDS"]

BLOCK = 256          # units per partial sum: fixed, so the sums do not depend on the thread count
SATURATION = 0.01    # a unit is saturated where |phi'(h)| < SATURATION
PARALLEL_MIN = 1 << 17  # below this many entries a thread team costs more than it saves (same bits either way)
FORWARD_FIELDS = ("sum_h", "sum_h2", "sum_x", "sum_x2", "saturated", "dead")
BACKWARD_FIELDS = ("sum_g", "sum_g2")


@njit(cache=True, inline="always", nogil=True)
def _store_block(part, blk, sat, alive):
    """The counts of row ``blk`` of the partial sums; a unit is dead when phi' was 0 at every batch entry."""
    dead = 0.0
    for j in range(alive.size):
        if not alive[j]:
            dead += 1.0
    part[blk, 4] = sat
    part[blk, 5] = dead


@njit(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp"}, nogil=True)
def _sum2(v):
    """(sum v, sum v^2) of a contiguous row segment, in an order the compiler may pick to vectorize
    (fixed once compiled: the same segment always gives the same bits)."""
    s = 0.0
    s2 = 0.0
    for i in range(v.size):
        t = v[i]
        s += t
        s2 += t * t
    return s, s2


@njit(cache=True, inline="always", nogil=True)
def _add_row(part, blk, hrow, xrow):
    """Adds one batch row's sum h, sum h^2 (over ``hrow``) and sum x, sum x^2 (over ``xrow``) to row ``blk``
    of the partial sums: rows in batch order, so the same bits on any thread count."""
    t, t2 = _sum2(hrow)
    part[blk, 0] += t
    part[blk, 1] += t2
    t, t2 = _sum2(xrow)
    part[blk, 2] += t
    part[blk, 3] += t2


@njit(cache=True, inline="always", nogil=True)
def _forward_block(blk, h, code, p0, p1, k, res, use_res, key, keep, x, d, part):
    nb, m = h.shape
    n = m // k
    inv_keep = 1.0 / keep
    j0 = blk * BLOCK
    j1 = min(j0 + BLOCK, n)
    part[blk, :4] = 0.0
    sat = 0
    alive = np.zeros(j1 - j0, dtype=np.bool_)
    for b in range(nb):  # row-major: each row of the block is contiguous in memory
        for j in range(j0, j1):
            best = -np.inf
            best_i = 0
            for i in range(k):
                hv = h[b, k * j + i]
                if k == 1:
                    if code == 2:  # tanh: d arrives holding tanh(h) (see forward); phi' = 1 - phi^2
                        best = d[b, j]
                        dv = 1.0 - best * best
                    else:
                        best = _phi(code, hv, p0, p1)
                        dv = _dphi(code, hv, p0, p1)
                    d[b, j] = dv
                else:
                    dv = 1.0  # maxout's pieces are the identity
                    d[b, k * j + i] = 0.0
                    if hv > best:
                        best = hv
                        best_i = i
                if abs(dv) < SATURATION:
                    sat += 1
            if k > 1:
                d[b, k * j + best_i] = 1.0
            if d[b, k * j + best_i] != 0.0:
                alive[j - j0] = True
            a = best
            if use_res:
                a += res[b, j]
            if keep < 1.0:
                a = a * inv_keep if uniform_at(key, b * n + j) <= keep else 0.0
            x[b, j] = a
        _add_row(part, blk, h[b, k * j0:k * j1], x[b, j0:j1])
    _store_block(part, blk, float(sat), alive)


@njit(cache=True, inline="always", nogil=True)
def _forward_block_plain(blk, h, code, p0, p1, x, d, part):
    """:func:`_forward_block` for k = 1 without residual or dropout: the same sums in the same order (so
    the same bits), in loops without the branches the general case needs, which the compiler vectorizes
    for tanh (several times the general block's speed)."""
    nb, n = h.shape
    j0 = blk * BLOCK
    j1 = min(j0 + BLOCK, n)
    part[blk, :4] = 0.0
    sat = 0
    alive = np.zeros(j1 - j0, dtype=np.bool_)
    for b in range(nb):
        # row slices indexed from 0: unit-stride loads the compiler can vectorize
        hrow = h[b, j0:j1]
        drow = d[b, j0:j1]
        xrow = x[b, j0:j1]
        if code == 2:  # tanh: d holds tanh(h) (see forward)
            for j in range(drow.size):
                a = drow[j]
                dv = 1.0 - a * a
                drow[j] = dv
                xrow[j] = a
                sat += abs(dv) < SATURATION
                alive[j] |= dv != 0.0
        else:
            for j in range(hrow.size):
                hv = hrow[j]
                a = _phi(code, hv, p0, p1)
                dv = _dphi(code, hv, p0, p1)
                drow[j] = dv
                xrow[j] = a
                sat += abs(dv) < SATURATION
                alive[j] |= dv != 0.0
        _add_row(part, blk, hrow, xrow)
    _store_block(part, blk, float(sat), alive)


@njit(parallel=True, cache=True, nogil=True)
def _forward_parallel(h, code, p0, p1, k, res, use_res, key, keep, x, d, part):
    plain = k == 1 and not use_res and keep >= 1.0
    for blk in prange(part.shape[0]):
        if plain:
            _forward_block_plain(blk, h, code, p0, p1, x, d, part)
        else:
            _forward_block(blk, h, code, p0, p1, k, res, use_res, key, keep, x, d, part)


@njit(cache=True, nogil=True)
def _forward_serial(h, code, p0, p1, k, res, use_res, key, keep, x, d, part):
    plain = k == 1 and not use_res and keep >= 1.0
    for blk in range(part.shape[0]):
        if plain:
            _forward_block_plain(blk, h, code, p0, p1, x, d, part)
        else:
            _forward_block(blk, h, code, p0, p1, k, res, use_res, key, keep, x, d, part)


@njit(cache=True, inline="always", nogil=True)
def _backward_block(blk, g, d, k, key, keep, dh, part):
    nb, n = g.shape
    inv_keep = 1.0 / keep
    j0 = blk * BLOCK
    j1 = min(j0 + BLOCK, n)
    s_g = 0.0
    s_g2 = 0.0
    for b in range(nb):  # row-major: each row of the block is contiguous in memory
        t, t2 = _sum2(g[b, j0:j1])  # the incoming gradient, before the mask
        s_g += t
        s_g2 += t2
        if keep < 1.0:
            for j in range(j0, j1):
                g[b, j] = g[b, j] * inv_keep if uniform_at(key, b * n + j) <= keep else 0.0
        if k == 1:
            grow = g[b, j0:j1]
            drow = d[b, j0:j1]
            hrow = dh[b, j0:j1]
            for j in range(grow.size):
                hrow[j] = grow[j] * drow[j]
        else:
            for j in range(j0, j1):
                for i in range(k):
                    dh[b, k * j + i] = g[b, j] * d[b, k * j + i]
    part[blk, 0] = s_g
    part[blk, 1] = s_g2


@njit(parallel=True, cache=True, nogil=True)
def _backward_parallel(g, d, k, key, keep, dh, part):
    for blk in prange(part.shape[0]):
        _backward_block(blk, g, d, k, key, keep, dh, part)


@njit(cache=True, nogil=True)
def _backward_serial(g, d, k, key, keep, dh, part):
    for blk in range(part.shape[0]):
        _backward_block(blk, g, d, k, key, keep, dh, part)


def _nblocks(n: int) -> int:
    return max((n + BLOCK - 1) // BLOCK, 1)


def forward(act, h, res=None, key=np.uint64(0), keep=1.0, dtype=None, out=None, parallel=None):
    """``(x, d, stats)`` for one layer; ``stats`` sums ``FORWARD_FIELDS`` over the whole batch.

    ``act`` is a registry Bound; ``h`` is ``(B, k n)`` C-contiguous; ``res`` the residual input ``(B, n)``
    or None; ``keep`` the dropout keep probability with mask stream ``key``; ``out`` an optional
    ``(alloc_x, alloc_d)`` pair, each ``alloc(shape, dtype)`` returning the array to write into;
    ``parallel`` forces the thread team on or off (None: from ``PARALLEL_MIN``; same bits either way).
    """
    h = np.ascontiguousarray(h)
    k = act.arity
    nb, m = h.shape
    n = m // k
    dtype = h.dtype if dtype is None else dtype
    new_x, new_d = out if out is not None else (np.empty, np.empty)
    x = new_x((nb, n), dtype)
    d = new_d((nb, m), h.dtype)
    part = np.empty((_nblocks(n), len(FORWARD_FIELDS)), dtype=np.float64)
    use_res = res is not None
    r = np.ascontiguousarray(res) if use_res else np.empty((1, 1), dtype=h.dtype)
    p0, p1 = act.kernel_params()
    if act.code == 2 and k == 1:
        # tanh through the registry's NumPy form, which NumPy evaluates with SIMD instructions (about ten
        # times the speed of a scalar tanh per entry); the kernel reads it from d and leaves phi' there
        np.tanh(h, out=d)
    kernel = _forward_parallel if _parallel(parallel, h.size) else _forward_serial
    kernel(h, act.code, p0, p1, k, r, use_res, np.uint64(key), float(keep), x, d, part)
    return x, d, _ordered_sum(part)


def backward(act, g, d, key=np.uint64(0), keep=1.0, out=None, parallel=None):
    """``(dh, gt, stats)``: dLoss/dh, the gradient through the dropout mask (``g`` is overwritten with it)
    and the sums ``BACKWARD_FIELDS`` of the incoming ``g``; ``out(shape, dtype)`` allocates dh;
    ``parallel`` as in :func:`forward`."""
    k = act.arity
    g = np.ascontiguousarray(g)
    nb, n = g.shape
    # a float32 d (phi' of a float32 product) meets a float64 g: products in float64, as if d were converted
    dh = (np.empty if out is None else out)((nb, k * n), np.result_type(g.dtype, d.dtype))
    part = np.empty((_nblocks(n), len(BACKWARD_FIELDS)), dtype=np.float64)
    kernel = _backward_parallel if _parallel(parallel, d.size) else _backward_serial
    kernel(g, d, k, np.uint64(key), float(keep), dh, part)
    return dh, g, _ordered_sum(part)


def _parallel(parallel, size: int) -> bool:
    return size >= PARALLEL_MIN if parallel is None else bool(parallel)


@njit(cache=True, nogil=True)
def _ordered_sum(part):
    out = np.zeros(part.shape[1], dtype=np.float64)
    for r in range(part.shape[0]):  # a fixed order: the same bits whatever the thread count
        for c in range(part.shape[1]):
            out[c] += part[r, c]
    return out


# ------------------------------------------------------------------------------------------------------
# NumPy references (same contracts; the tests hold the kernels against them)
# ------------------------------------------------------------------------------------------------------

def _mask(key, keep, shape):
    nb, n = shape
    u = np.array([[uniform_at(np.uint64(key), b * n + j) for j in range(n)] for b in range(nb)])
    return u <= keep


def forward_reference(act, h, res=None, key=np.uint64(0), keep=1.0):
    h = np.asarray(h, dtype=np.float64)
    k = act.arity
    nb, m = h.shape
    n = m // k
    dv = act.numpy_derivative(h) if k == 1 else np.ones_like(h)
    if k == 1:
        a = act.numpy(h)
        d = dv.copy()
    else:
        pieces = h.reshape(nb, n, k)
        a = pieces.max(axis=2)
        sel = pieces.argmax(axis=2)
        d = np.zeros_like(pieces)
        np.put_along_axis(d, sel[..., None], 1.0, axis=2)
        d = d.reshape(nb, m)
    x = a + res if res is not None else a
    if keep < 1.0:
        x = np.where(_mask(key, keep, (nb, n)), x / keep, 0.0)
    dead = float(np.sum(~np.any(d.reshape(nb, n, k) != 0, axis=(0, 2))))
    stats = np.array([h.sum(), (h * h).sum(), x.sum(), (x * x).sum(),
                      float(np.sum(np.abs(dv) < SATURATION)), dead])
    return x, d, stats


def backward_reference(act, g, d, key=np.uint64(0), keep=1.0):
    g = np.asarray(g, dtype=np.float64)
    k = act.arity
    nb, n = g.shape
    stats = np.array([g.sum(), (g * g).sum()])
    gt = np.where(_mask(key, keep, (nb, n)), g / keep, 0.0) if keep < 1.0 else g.copy()
    dh = (np.repeat(gt, k, axis=1) * d)
    return dh, gt, stats

"""The trainer's hot loops: fused bias + activation, masks, batch norm, softmax cross-entropy, updates.

Each kernel is ``@njit(cache=True)`` and writes into arrays the caller owns, so a training step
allocates nothing. The per-activation kernels run serially: a minibatch's activations are tens of
thousands of numbers (microseconds of work), less than a parallel region's fork and join, and their
threads would spin against BLAS's between the matrix products. The parameter updates run
serially too, up to millions of weights, and in parallel over chunks beyond (``prange``; each
element is independent, so any thread count gives the same bits). ``error_model="numpy"`` everywhere: a division by zero gives inf or nan, which the
trainer reports as divergence, instead of a per-element check that also keeps loops from vectorizing. Each has a NumPy reference
right below it (``*_ref``); ``tests/test_train_core_kernels.py`` holds one against the other.

The activation itself is the registry's Numba scalar form (:func:`varprop.kernels.forward` /
:func:`varprop.kernels.derivative`); ReLU gets a branch-free loop of its own because it is the
common case and the generic dispatch keeps the compiler from vectorizing.

Random masks come from :mod:`varprop.streams`: element ``(i, j)`` of a ``(rows, cols)`` mask is
counter ``i * cols + j`` of the stream ``key(seed, step, layer, purpose)``, so masks are bit-identical
whatever the thread count and can be recomputed in the backward pass instead of stored.

>>> import numpy as np
>>> from varprop.nn.kernels import bias_act_forward
>>> h = np.array([[-1.0, 2.0]], dtype=np.float32); y = np.empty_like(h)
>>> bias_act_forward(h, np.array([0.5, 0.5], dtype=np.float32), 3, 0.0, 0.0, y)
>>> y.tolist()
[[0.0, 2.5]]
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from varprop.kernels import derivative, forward
from varprop.streams import uniform_at

__all__ = [
    "RELU", "bias_act_forward", "act_backward", "prelu_forward", "prelu_backward",
    "rrelu_forward", "rrelu_backward", "maxout_forward", "maxout_backward",
    "dropout_forward", "alpha_dropout_forward", "mask_multiply",
    "batchnorm_train_forward", "batchnorm_backward",
    "softmax_xent", "hinge_loss", "momentum_step", "adaptive_step", "momentum_step_group", "adaptive_step_group",
    "add_penalty", "gather_rows", "all_finite",
    "same_layout", "flat",
]

RELU = 3  # the registry's code for relu


# -- minibatch ---------------------------------------------------------------------------------------
@njit(cache=True)
def gather_rows(X, idx, out):
    """out[i] = X[idx[i]] for a 2-d C-contiguous X: a minibatch from the shuffled order.

    A third faster than ``np.take(X, idx, axis=0, out=out)`` on 128 rows of Fashion-MNIST (each row a
    contiguous copy the compiler vectorizes; numpy's take goes through its generic indexing loop)."""
    m = X.shape[1]
    for i in range(idx.size):
        src = X[idx[i]]
        dst = out[i]
        for j in range(m):
            dst[j] = src[j]


# -- bias + activation -----------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def bias_act_forward(h, b, code, p0, p1, y):
    """h += b (in place, kept for the backward pass); y = phi(h).

    There is no "no bias" branch: a layer without bias passes zeros, since a loop-invariant branch
    inside the loop keeps it from vectorizing (three times slower for ReLU)."""
    n, m = h.shape
    for i in range(n):
        if code == RELU:
            for j in range(m):
                v = h[i, j] + b[j]
                h[i, j] = v
                y[i, j] = 0 if v <= 0 else v    # NaN > 0 is False: written this way NaN propagates
        else:
            for j in range(m):
                v = h[i, j] + b[j]
                h[i, j] = v
                y[i, j] = forward(code, v, p0, p1)


def bias_act_forward_ref(h, b, bound):
    """NumPy reference: returns (h + b, phi(h + b))."""
    hb = h + b
    return hb, bound.numpy(hb)


@njit(cache=True, error_model="numpy")
def act_backward(dy, h, code, p0, p1, dh):
    """dh = dy * phi'(h)."""
    n, m = h.shape
    for i in range(n):
        if code == RELU:
            for j in range(m):
                dh[i, j] = dy[i, j] if h[i, j] > 0 else h[i, j] * 0   # 0, or NaN where h is NaN
        else:
            for j in range(m):
                dh[i, j] = dy[i, j] * derivative(code, h[i, j], p0, p1)


def act_backward_ref(dy, h, bound):
    return dy * bound.numpy_derivative(h)


# -- PReLU: a learned slope per unit ------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def prelu_forward(h, b, a, y):
    """h += b; y = h if h > 0 else a[j] h."""
    n, m = h.shape
    for i in range(n):
        for j in range(m):
            v = h[i, j] + b[j]
            h[i, j] = v
            y[i, j] = v if v > 0 else a[j] * v


@njit(cache=True, error_model="numpy")
def prelu_backward(dy, h, a, dh, da):
    """dh = dy * (1 if h > 0 else a[j]); da[j] = sum_i dy[i, j] h[i, j] [h <= 0] (overwritten)."""
    n, m = h.shape
    for j in range(m):
        da[j] = 0
    for i in range(n):
        for j in range(m):
            v = h[i, j]
            if v > 0:
                dh[i, j] = dy[i, j]
            else:
                dh[i, j] = dy[i, j] * a[j]
                da[j] += dy[i, j] * v


def prelu_ref(h, a):
    """NumPy reference: (y, dy/dh, dy/da) elementwise."""
    pos = h > 0
    return np.where(pos, h, a * h), np.where(pos, 1.0, a), np.where(pos, 0.0, h)


# -- RReLU: a random slope per element in training, recomputed from the stream in backward ------------
@njit(cache=True, error_model="numpy")
def rrelu_forward(h, b, key, lower, upper, y):
    """h += b; y = h if h > 0 else s h with s = lower + (upper - lower) u, u counter i*m+j of ``key``."""
    n, m = h.shape
    w = upper - lower
    for i in range(n):
        for j in range(m):
            v = h[i, j] + b[j]
            h[i, j] = v
            if v > 0:
                y[i, j] = v
            else:
                y[i, j] = (lower + w * uniform_at(key, i * m + j)) * v


@njit(cache=True, error_model="numpy")
def rrelu_backward(dy, h, key, lower, upper, dh):
    n, m = h.shape
    w = upper - lower
    for i in range(n):
        for j in range(m):
            if h[i, j] > 0:
                dh[i, j] = dy[i, j]
            else:
                dh[i, j] = dy[i, j] * (lower + w * uniform_at(key, i * m + j))


@njit(cache=True, error_model="numpy")
def stream_uniforms(key, n, m):
    """The (n, m) block of uniforms that the mask kernels read (float64), for references and tests."""
    out = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            out[i, j] = uniform_at(key, i * m + j)
    return out


# -- maxout: the max over k consecutive pre-activations ---------------------------------------------
@njit(cache=True, error_model="numpy")
def maxout_forward(h, b, k, y, arg):
    """h += b; y[i, j] = max_r h[i, j k + r]; arg[i, j] = the r that attains it (first on ties)."""
    n, m = y.shape
    for i in range(n):
        for j in range(m):
            best = -np.inf
            r_best = 0
            for r in range(k):
                c = j * k + r
                v = h[i, c] + b[c]
                h[i, c] = v
                if v > best:
                    best = v
                    r_best = r
            y[i, j] = best
            arg[i, j] = r_best


@njit(cache=True, error_model="numpy")
def maxout_backward(dy, arg, k, dh):
    """dh[i, j k + r] = dy[i, j] where r = arg[i, j], 0 elsewhere."""
    n, m = dy.shape
    for i in range(n):
        for j in range(m):
            for r in range(k):
                dh[i, j * k + r] = dy[i, j] if r == arg[i, j] else 0


def maxout_ref(h, k):
    g = h.reshape(h.shape[0], -1, k)
    return g.max(axis=2), g.argmax(axis=2)


# -- dropout masks --------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def dropout_forward(x, key, keep, y, mask):
    """Inverted dropout: mask = [u <= keep] / keep with u counter i*m+j of ``key``; y = x * mask.

    DropConnect uses it on the weight matrix (Wan et al. 2013)."""
    n, m = x.shape
    if n * m == 0:
        return
    one = np.empty(1, mask.dtype)    # the scale in the arrays' dtype: no float64 multiply for float32
    one[0] = 1.0 / keep
    scale = one[0]
    zero = scale * 0
    for i in range(n):
        for j in range(m):
            s = scale if uniform_at(key, i * m + j) <= keep else zero
            mask[i, j] = s
            y[i, j] = x[i, j] * s


def dropout_ref(x, u, keep):
    mask = (u <= keep) / keep
    return x * mask, mask


@njit(cache=True, error_model="numpy")
def alpha_dropout_forward(x, key, keep, a, alpha_p, y, mask):
    """Alpha dropout (Klambauer et al. 2017): y = a (x d + alpha' (1 - d)) + b', d = [u <= keep].

    ``mask`` stores a d (the factor dy/dx); the constant term is ``a alpha' (1 - d) + b'`` with
    b' = -a alpha' (1 - keep), which keeps mean 0 and variance 1 for standardized inputs.
    """
    n, m = x.shape
    bconst = -a * alpha_p * (1.0 - keep)
    for i in range(n):
        for j in range(m):
            if uniform_at(key, i * m + j) <= keep:
                mask[i, j] = a
                y[i, j] = a * x[i, j] + bconst
            else:
                mask[i, j] = 0.0
                y[i, j] = a * alpha_p + bconst


def alpha_dropout_ref(x, u, keep, a, alpha_p):
    d = u <= keep
    return a * np.where(d, x, alpha_p) - a * alpha_p * (1.0 - keep), a * d


@njit(cache=True, error_model="numpy")
def mask_multiply(dy, mask, dx):
    """dx = dy * mask (the backward pass of both dropouts)."""
    n, m = dy.shape
    for i in range(n):
        for j in range(m):
            dx[i, j] = dy[i, j] * mask[i, j]


# -- batch norm -------------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def batchnorm_train_forward(x, gamma, beta, eps, xhat, y, mean, inv_std, running_mean, running_var, momentum):
    """Batch statistics over rows: mean, biased variance; xhat = (x - mean) inv_std; y = gamma xhat + beta.

    Writes ``mean`` and ``inv_std = 1/sqrt(var + eps)`` (per column) and updates the running
    estimates r <- (1 - momentum) r + momentum batch, the variance with PyTorch's unbiased factor
    n/(n - 1) (momentum 0 leaves them). Sums in float64 so float32 batches keep their precision.
    Ioffe & Szegedy (2015), Algorithm 1.
    """
    n, m = x.shape
    s = np.zeros(m)
    for i in range(n):
        for j in range(m):
            s[j] += x[i, j]
    for j in range(m):
        mean[j] = s[j] / n
        s[j] = 0.0
    for i in range(n):
        for j in range(m):
            d = x[i, j] - mean[j]
            s[j] += d * d
    unbiased = n / (n - 1.0) if n > 1 else 1.0
    for j in range(m):
        var = s[j] / n
        inv_std[j] = 1.0 / math.sqrt(var + eps)
        if momentum > 0:
            running_mean[j] = (1.0 - momentum) * running_mean[j] + momentum * mean[j]
            running_var[j] = (1.0 - momentum) * running_var[j] + momentum * unbiased * var
    for i in range(n):
        for j in range(m):
            v = (x[i, j] - mean[j]) * inv_std[j]
            xhat[i, j] = v
            y[i, j] = gamma[j] * v + beta[j]


@njit(cache=True, error_model="numpy")
def batchnorm_backward(dy, xhat, gamma, inv_std, dx, dgamma, dbeta):
    """Closed-form backward of training-mode batch norm.

    dbeta = sum_i dy, dgamma = sum_i dy xhat,
    dx = gamma inv_std / n * (n dy - dbeta - xhat dgamma)  (the three-term form of the chain rule).
    """
    n, m = dy.shape
    sb = np.zeros(m)
    sg = np.zeros(m)
    for i in range(n):
        for j in range(m):
            sb[j] += dy[i, j]
            sg[j] += dy[i, j] * xhat[i, j]
    for j in range(m):
        dbeta[j] = sb[j]
        dgamma[j] = sg[j]
    for i in range(n):
        for j in range(m):
            dx[i, j] = gamma[j] * inv_std[j] / n * (n * dy[i, j] - sb[j] - xhat[i, j] * sg[j])


def batchnorm_ref(x, gamma, beta, eps):
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    xhat = (x - mean) / np.sqrt(var + eps)
    return gamma * xhat + beta, xhat, mean, 1.0 / np.sqrt(var + eps)


def batchnorm_backward_ref(dy, xhat, gamma, inv_std):
    n = dy.shape[0]
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    dx = gamma * inv_std / n * (n * dy - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


# -- losses ---------------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def softmax_xent(z, y, grad, rowloss):
    """Softmax cross-entropy per row: rowloss[i] = logsumexp(z_i) - z_i[y_i];
    grad = (softmax(z) - onehot(y)) / n (the gradient of the mean loss).

    Returns (sum of rowloss, -1), or (0, i) for the first row i whose label is outside [0, c): the
    labels are checked here, in a loop over the labels before any row is read by one (so nothing is read
    out of bounds), instead of two NumPy reductions per batch in the caller."""
    n, c = z.shape
    bad = _bad_label(y, c)
    if bad >= 0:
        return 0.0, bad
    total = 0.0
    for i in range(n):
        zmax = z[i, 0]
        for j in range(1, c):
            if z[i, j] > zmax:
                zmax = z[i, j]
        s = 0.0
        for j in range(c):
            e = math.exp(z[i, j] - zmax)
            grad[i, j] = e
            s += e
        rowloss[i] = r = math.log(s) + zmax - z[i, y[i]]
        total += r
        inv = 1.0 / (s * n)
        for j in range(c):
            grad[i, j] *= inv
        grad[i, y[i]] -= 1.0 / n
    return total, -1


@njit(cache=True)
def _bad_label(y, c):
    """The first i with y[i] outside [0, c), or -1."""
    for i in range(y.size):
        if y[i] < 0 or y[i] >= c:
            return i
    return -1


def softmax_xent_ref(z, y):
    z = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    p = np.exp(z - lse[:, None])
    n = z.shape[0]
    onehot = np.zeros_like(p)
    onehot[np.arange(n), y] = 1.0
    return (lse - z[np.arange(n), y]), (p - onehot) / n


@njit(cache=True, error_model="numpy")
def hinge_loss(z, y, margin, grad, rowloss):
    """Multiclass SVM loss (Weston & Watkins 1999; the lectures' form):
    rowloss[i] = sum_{j != y_i} max(0, z_ij - z_iy_i + margin); grad of the mean loss into ``grad``.
    Returns what :func:`softmax_xent` returns."""
    n, c = z.shape
    bad = _bad_label(y, c)
    if bad >= 0:
        return 0.0, bad
    loss = 0.0
    for i in range(n):
        zy = z[i, y[i]]
        total = 0.0
        count = 0
        for j in range(c):
            if j == y[i]:
                grad[i, j] = 0.0
                continue
            v = z[i, j] - zy + margin
            if v > 0:
                total += v
                count += 1
                grad[i, j] = 1.0 / n
            else:
                grad[i, j] = 0.0
        grad[i, y[i]] = -count / n
        rowloss[i] = total
        loss += total
    return loss, -1


def hinge_ref(z, y, margin):
    n = z.shape[0]
    zy = z[np.arange(n), y][:, None]
    marg = np.maximum(0.0, z - zy + margin)
    marg[np.arange(n), y] = 0.0
    g = (marg > 0).astype(z.dtype)
    g[np.arange(n), y] = -g.sum(axis=1)
    return marg.sum(axis=1), g / n


# -- parameter updates (flattened, C-contiguous) ------------------------------------------------------
# Each update is a loop over [lo, hi) written once (inlined) and run two ways: serially, and over
# chunks in parallel for arrays so large that the threads clearly pay. Every element is independent,
# so both give the same bits. The threshold is high on purpose: a vectorized serial update of a
# 784x256 layer takes a fraction of a millisecond, while a parallel region's threads keep spinning
# after it ends and slow the BLAS threads of the next matrix product (badly so on a busy machine).
CHUNK = 1 << 14
PARALLEL_MIN = 1 << 21   # elements from which an update runs in parallel


@njit(cache=True, error_model="numpy", inline="always")
def _normal(x, tiny, zero):
    """x, or 0 when x is subnormal (|x| below the dtype's smallest normal number ``tiny``); NaN passes.

    A moment whose gradient stays 0 (a dead unit, a pixel that is 0 in every image) decays geometrically
    into the subnormal range, where arithmetic on it takes a slow path. Training Fashion-MNIST's MLP of
    benchmarks/train.py, 2.7% of Adam's first moments were subnormal after three epochs and the update took
    148 us a step against 103 us in the first epoch; the two compares cost about 13 us a step (88 -> 101 us
    on that net's 269k parameters with no subnormal moment). A flushed moment would have added at most
    ``lr * tiny / eps`` (about 1e-33 in float32) to its weight's step: the weight changes only when it is
    itself below about 1e-26."""
    return zero if abs(x) < tiny else x


@njit(cache=True, error_model="numpy", inline="always")
def _momentum_range(pf, gf, bf, kf, lr, mu, nesterov, wd, d, lo, hi):
    # PyTorch's form: g' = g + wd p; b = mu b + g'; p -= lr b (Nesterov: lr (g' + mu b)); one
    # expression p -= lr (cg g' + cb b) with (cg, cb) = (0, 1) or (1, mu), so no branch in the loop
    one = mu - mu + np.float32(1)  # the dtype of mu: an int literal (mu * 0 + 1) would make it float64
    cg = one if nesterov else mu - mu
    cb = mu if nesterov else one
    tiny = pf.dtype.type(np.finfo(pf.dtype).tiny)
    zero = tiny - tiny
    for i in range(lo, hi):
        old = pf[i]
        gi = gf[i] + wd * old
        b = _normal(mu * bf[i] + gi, tiny, zero)
        bf[i] = b
        kf[i] = old
        pf[i] = old - lr * (cg * gi + cb * b) - d * old


@njit(cache=True, error_model="numpy", inline="always")
def _adaptive_range(pf, gf, mf, vf, bf, a, s, eps, b1, b2, accumulate, wd, d, lo, hi):
    one = b1 - b1 + np.float32(1)  # the dtype of b1 (see _momentum_range)
    tiny = pf.dtype.type(np.finfo(pf.dtype).tiny)
    zero = tiny - tiny
    if accumulate:
        for i in range(lo, hi):
            old = pf[i]
            gi = gf[i] + wd * old
            vi = vf[i] + gi * gi
            vf[i] = vi
            bf[i] = old
            pf[i] = old - a * gi / (s * np.sqrt(vi) + eps) - d * old
    elif b1 > 0:
        for i in range(lo, hi):
            old = pf[i]
            gi = gf[i] + wd * old
            mi = _normal(b1 * mf[i] + (one - b1) * gi, tiny, zero)
            vi = _normal(b2 * vf[i] + (one - b2) * gi * gi, tiny, zero)
            mf[i] = mi
            vf[i] = vi
            bf[i] = old
            pf[i] = old - a * mi / (s * np.sqrt(vi) + eps) - d * old
    else:
        for i in range(lo, hi):
            old = pf[i]
            gi = gf[i] + wd * old
            vi = _normal(b2 * vf[i] + (one - b2) * gi * gi, tiny, zero)
            vf[i] = vi
            bf[i] = old
            pf[i] = old - a * gi / (s * np.sqrt(vi) + eps) - d * old


@njit(cache=True, error_model="numpy", inline="always")
def _penalty_range(gf, wf, l1, l2, lo, hi):
    # in the dtype of l1 and l2 (the arrays'): a float64 literal here would make the loop scalar float64
    # code: 87 us a step for the 269k weights of benchmarks/train.py's net, against 33 us
    zero = l1 - l1
    one = zero + np.float32(1)
    if l1 == zero:
        for i in range(lo, hi):
            gf[i] += l2 * wf[i]
    else:
        for i in range(lo, hi):
            x = wf[i]
            sg = one if x > zero else (-one if x < zero else zero)
            gf[i] += l2 * x + l1 * sg


@njit(cache=True, error_model="numpy")
def momentum_step_serial(p, g, buf, backup, lr, mu, nesterov, wd, d):
    _momentum_range(p.reshape(-1), g.reshape(-1), buf.reshape(-1), backup.reshape(-1), lr, mu, nesterov, wd, d,
                    0, p.size)


@njit(parallel=True, cache=True, error_model="numpy")
def momentum_step_parallel(p, g, buf, backup, lr, mu, nesterov, wd, d):
    pf, gf, bf, kf = p.reshape(-1), g.reshape(-1), buf.reshape(-1), backup.reshape(-1)
    n = pf.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _momentum_range(pf, gf, bf, kf, lr, mu, nesterov, wd, d, c * CHUNK, min(n, (c + 1) * CHUNK))


def momentum_step(p, g, buf, backup, lr, mu, nesterov, wd=0.0, d=0.0, parallel_min=None):
    """PyTorch's SGD with momentum (torch.optim.SGD, dampening 0):

        g' = g + wd p_old;  b = mu b + g';  p = p_old - lr b - d p_old
        (Nesterov: p = p_old - lr (g' + mu b) - d p_old)

    ``buf`` is the momentum buffer b (mu = 0 is plain SGD). Keeping lr outside the buffer is what
    makes a changing learning rate act on the whole step, as in PyTorch (the cs231n form
    v = mu v - lr g carries old learning rates in v). ``wd`` is coupled weight decay (L2 added to
    the gradient); ``d = lr * decay`` decoupled decay (0 for none). ``backup`` receives p_old, so a
    caller can undo the step. Scalars should have the arrays' dtype, so float32 parameters are
    updated in float32 arithmetic. A buffer that would become subnormal is stored as 0 (see
    :func:`_normal`). ``parallel_min`` overrides :data:`PARALLEL_MIN`.
    """
    kernel = momentum_step_parallel if p.size >= _threshold(parallel_min) else momentum_step_serial
    f = p.dtype.type
    p, g, buf, backup = same_layout(p, g, buf, backup)
    kernel(p, g, buf, backup, lr, mu, nesterov, f(wd), f(d))


def _threshold(parallel_min):
    return PARALLEL_MIN if parallel_min is None else int(parallel_min)


def same_layout(*arrays):
    """The arrays as C-contiguous views for an elementwise kernel that walks them flat.

    A dense layer stores its weights column-major (see :class:`varprop.nn.layers.Dense`), so a
    parameter, its gradient and the optimizer's slots may all be Fortran-ordered: their transposes
    are then C-contiguous and pair element for element. Arrays of different layouts would pair the
    wrong elements, so they are refused rather than walked.
    """
    if all(a.flags.c_contiguous for a in arrays):
        return arrays
    if all(a.flags.f_contiguous for a in arrays):
        return tuple(a.T for a in arrays)
    kinds = ["C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous else "strided" for a in arrays]
    raise ValueError(f"arrays of an elementwise update must share one memory layout (all C- or all "
                     f"Fortran-contiguous), got {', '.join(kinds)}")


def flat(a: np.ndarray) -> np.ndarray:
    """A 1-D view of a C- or Fortran-contiguous array in memory order (for sums over every element)."""
    return a.reshape(-1) if a.flags.c_contiguous else a.T.reshape(-1)


@njit(cache=True, error_model="numpy")
def adaptive_step_serial(p, g, m, v, backup, a, s, eps, b1, b2, accumulate, wd, d):
    _adaptive_range(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), backup.reshape(-1), a, s, eps,
                    b1, b2, accumulate, wd, d, 0, p.size)


@njit(parallel=True, cache=True, error_model="numpy")
def adaptive_step_parallel(p, g, m, v, backup, a, s, eps, b1, b2, accumulate, wd, d):
    pf, gf, mf, vf, bf = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), backup.reshape(-1)
    n = pf.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _adaptive_range(pf, gf, mf, vf, bf, a, s, eps, b1, b2, accumulate, wd, d, c * CHUNK,
                        min(n, (c + 1) * CHUNK))


def adaptive_step(p, g, m, v, backup, a, s, eps, b1, b2, accumulate, wd=0.0, d=0.0, parallel_min=None):
    """One step of the adaptive-rate core (AdaGrad, RMSProp, Adam, AdamW are its presets).

    g' = g + wd p_old                          (coupled weight decay, as torch.optim's weight_decay)
    m = b1 m + (1 - b1) g'                     (b1 = 0: m = g', no first moment)
    v = v + g'^2 if accumulate else b2 v + (1 - b2) g'^2
    p -= a m / (s sqrt(v) + eps) + d p_old

    With a = lr / c1 and s = 1 / sqrt(c2), where c1 = 1 - beta1^t and c2 = 1 - beta2^t are Adam's
    bias corrections, this is lr (m / c1) / (sqrt(v / c2) + eps); ``d = lr * decay`` is AdamW's
    decoupled weight decay (Loshchilov & Hutter 2019). ``backup`` receives p_old. A decaying moment
    (m, or RMSProp's and Adam's v) that would become subnormal is stored as 0 (see :func:`_normal`).
    The three presets run separate loops so each one vectorizes.
    """
    kernel = adaptive_step_parallel if p.size >= _threshold(parallel_min) else adaptive_step_serial
    f = p.dtype.type
    p, g, m, v, backup = same_layout(p, g, m, v, backup)
    kernel(p, g, m, v, backup, a, s, eps, b1, b2, accumulate, f(wd), f(d))


@njit(cache=True, error_model="numpy")
def adaptive_step_group(ps, gs, ms, vs, bs, reg, a, s, eps, b1, b2, accumulate, wd, d):
    """:func:`adaptive_step_serial` on every parameter of a step in one call: ``ps[k]`` ... ``bs[k]`` are
    the k-th parameter's flat arrays (tuples of 1-D C-contiguous arrays), ``reg[k]`` 1 where its weight
    decays apply and 0 where not. The same loop per element, so the same bits as one call per parameter."""
    for k in range(len(ps)):
        p = ps[k]
        _adaptive_range(p, gs[k], ms[k], vs[k], bs[k], a, s, eps, b1, b2, accumulate, wd * reg[k], d * reg[k],
                        0, p.size)


@njit(cache=True, error_model="numpy")
def momentum_step_group(ps, gs, bufs, bs, reg, lr, mu, nesterov, wd, d):
    """:func:`momentum_step_serial` on every parameter of a step in one call (see :func:`adaptive_step_group`)."""
    for k in range(len(ps)):
        p = ps[k]
        _momentum_range(p, gs[k], bufs[k], bs[k], lr, mu, nesterov, wd * reg[k], d * reg[k], 0, p.size)


@njit(cache=True, nogil=True)
def _top_exponent(u, mask):
    """The largest ``u[i] & mask`` (an integer max: it vectorizes, where a float reduction would not)."""
    m = u.dtype.type(0)
    for i in range(u.size):
        e = u[i] & mask
        if e > m:
            m = e
    return m


def all_finite(a: np.ndarray) -> bool:
    """True when no element of ``a`` is NaN or infinite: ``np.isfinite(a).all()`` in one pass without its
    temporary (a float's exponent bits are all ones exactly when it is not finite). Checking Fashion-MNIST's
    60000 x 784 float32 training set right after an epoch took 6-9 ms against np.isfinite's 80-135 ms, most of
    those spent faulting in the fresh pages of its temporary."""
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        return True
    if a.dtype in (np.float32, np.float64) and (a.flags.c_contiguous or a.flags.f_contiguous):
        if a.dtype == np.float32:
            u, mask = flat(a).view(np.uint32), np.uint32(0x7F800000)
        else:
            u, mask = flat(a).view(np.uint64), np.uint64(0x7FF0000000000000)
        return bool(_top_exponent(u, mask) != mask) if u.size else True
    return bool(np.isfinite(a).all())


@njit(cache=True, error_model="numpy")
def add_penalty_serial(g, w, l1, l2):
    _penalty_range(g.reshape(-1), w.reshape(-1), l1, l2, 0, g.size)


@njit(parallel=True, cache=True, error_model="numpy")
def add_penalty_parallel(g, w, l1, l2):
    gf, wf = g.reshape(-1), w.reshape(-1)
    n = gf.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _penalty_range(gf, wf, l1, l2, c * CHUNK, min(n, (c + 1) * CHUNK))


def add_penalty(g, w, l1, l2, parallel_min=None):
    """g += l2 w + l1 sign(w): the gradient of l1 |w|_1 + l2/2 |w|^2 (elastic net), in g's dtype."""
    kernel = add_penalty_parallel if g.size >= _threshold(parallel_min) else add_penalty_serial
    f = g.dtype.type
    g, w = same_layout(g, w)
    kernel(g, w, f(l1), f(l2))

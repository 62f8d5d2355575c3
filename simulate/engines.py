"""The two engines: one random network, forward and backward, and its per-layer statistics.

Network (the convention derive/mean_field shares): inputs x_0 of shape (B, n_0); for l = 1..L,
``h_l = x_{l-1} W_l^T + b_l`` with ``W_l`` of shape ``(k n_l, n_{l-1})`` and iid entries of variance
``v_l``, ``b_l ~ N(0, sigma_b2)``; optional batch norm of each unit of ``h_l`` over the batch (no affine,
eps 1e-5); ``x_l = phi(h_l)`` (plus ``x_{l-1}`` in a residual block); inverted dropout ``x_l m / p`` on
l = 1..L-1. Backward from ``g_L ~ N(0, 1)``: ``dh_l = g_l m / p * phi'(h_l)``,
``g_{l-1} = dh_l W_l`` (plus the residual path). ``||dLoss/dW_l||_F^2 = ||dh^T x||_F^2 = tr(x x^T dh dh^T)``,
O(n B^2) in both engines.

* :class:`Dense` draws W from the layer's counter-based stream and multiplies through BLAS
  (float32 by default, float64 on request).
* :class:`Gaussian` never forms W. With ``A = [sqrt(v) x, sigma_b 1]`` (B x m) and ``C = A A^T``,
  ``h = mu x 1 1^T + F G`` with ``F F^T = C`` (Cholesky when C is well conditioned, else the
  eigendecomposition with its null directions dropped) and G standard normal: exact in distribution for Gaussian W. Backward, conditioning on the forward draw,
  ``W' = H^T C^+ A + W~ P`` with ``P = I - A^T C^+ A`` and ``W~`` an independent standard copy, so
  ``dh W' = (dh H^T - R A^T) C^+ A + R`` where ``R = M G2`` has iid columns N(0, dh dh^T)
  (``M M^T = dh dh^T``). Cost O(n B^2 + B^3) per layer and O(n B) random numbers instead of O(n^2).
  Sources: each row w of W' is N(0, I) observed through A w = h, so w | h = A^+ h + P w~ (the Gaussian
  conditional, e.g. Rasmussen & Williams, *Gaussian Processes for Machine Learning*, 2006, eq. A.6, in
  the noise-free limit); the network and its statistics follow the lecture's experiment
  (``x = np.tanh(x.dot(W))``, per-layer mean and std).

Random streams are keyed ``(seed, trial, layer, purpose)``; see ``PURPOSE``.

>>> from varprop.simulate.config import Config
>>> cfg = Config.build(widths=[64, 64, 64], batch=4, activation="relu", init="he_normal", trials=1)
>>> stats, hist = simulate_trial(cfg, 0)
>>> stats["act_std"].shape
(2,)
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import histograms, kernels, threads
from .gram import gram
from .rng import fill_normal, trial_keys

__all__ = ["PURPOSE", "STAT_FIELDS", "OVERFLOW", "Dense", "Gaussian", "Workspace", "simulate_trial", "BN_EPS"]

PURPOSE = {"weights": 0, "conditional": 1, "bias": 2, "dropout": 3, "inputs": 4, "upstream": 5}
STAT_FIELDS = ("pre_mean", "pre_std", "pre_second", "act_mean", "act_std", "act_second", "saturated", "dead",
               "grad_std", "grad_second", "weight_grad_norm")
# what overflowed first in a trial: stats["overflow"] = [layer, index into OVERFLOW] (layer 0: nothing did)
OVERFLOW = ("pre-activations h", "activations x", "gradients", "weight-gradient norm")
BN_EPS = 1e-5


class _Keys:
    """The stream keys of one trial, ``keys(layer, purpose)`` = ``varprop.streams.key(cfg.seed, trial, layer,
    PURPOSE[purpose])``, computed together when the trial starts."""

    def __init__(self, cfg, trial):
        self.table = trial_keys(cfg.seed, trial, cfg.depth + 2, len(PURPOSE))

    def __call__(self, layer, purpose):
        return self.table[layer, PURPOSE[purpose]]


class Workspace:
    """Named arrays that successive trials of one configuration write into instead of allocating.

    A trial's large arrays (the layers' h, x, phi'(h), gradients, normals; the dense engine's W) have the
    same shapes in every trial. Fresh ones cost a page fault per 4 KiB page whenever the allocator has
    handed the memory back to the system, which it does readily after large allocations elsewhere in the
    process: that was a third of a lecture trial on the Gaussian engine. Every array is written in full
    before it is read, and a trial returns no reference into the workspace, so reuse changes no result.

    >>> ws = Workspace()
    >>> a = ws.get("x1", (2, 3)); a is ws.get("x1", (2, 3)), a is ws.get("x1", (3, 2))
    (True, False)
    """

    def __init__(self):
        self.arrays = {}
        self.team = threads.Team()   # the trials' choice of thread team, by their times

    def get(self, name: str, shape, dtype=np.float64) -> np.ndarray:
        """The array ``name``, (re)allocated when its shape or dtype changes; contents undefined."""
        a = self.arrays.get(name)
        if a is not None and a.shape == shape and a.dtype == dtype:
            return a         # the common case, a few hundred times a trial: no conversions (and less GIL held)
        shape, dtype = tuple(int(v) for v in shape), np.dtype(dtype)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self.arrays[name] = np.empty(shape, dtype)
        return a

    def alloc(self, name: str):
        """``get`` bound to ``name``: an ``alloc(shape, dtype)`` for the kernels' ``out`` arguments."""
        return lambda shape, dtype=np.float64: self.get(name, shape, dtype)


class Dense:
    """Materializes each W from its stream; ``keep_weights`` trades memory for not drawing W twice."""

    def __init__(self, cfg, trial, keep_weights=True, workspace=None, parallel=None):
        self.cfg, self.trial, self.keep_weights = cfg, trial, keep_weights
        self.keys = _Keys(cfg, trial)
        self.dtype = np.dtype(cfg.dtype)
        self.saved = {}
        self.ws = Workspace() if workspace is None else workspace
        self.parallel = parallel   # the Gram kernels' thread team (see gram.gram); same bits either way

    def _weights(self, layer):
        if layer in self.saved:
            return self.saved[layer]
        keep = self.keep_weights and self.cfg.backward
        out = self.ws.get(f"w{layer}" if keep else "w", self.cfg.shape(layer), self.dtype)
        w = self.cfg.law.sample(self.keys(layer, "weights"), self.cfg.shape(layer), self.dtype,
                                out=out)
        if keep:
            self.saved[layer] = w
        return w

    def forward(self, layer, x):
        w = self._weights(layer)
        # W x^T rather than x W^T: OpenBLAS is several times faster with the long side as the rows of the
        # product (B is small); the values are the same sums
        ht = np.matmul(w, x.astype(self.dtype, copy=False).T,
                       out=self.ws.get("hT", (w.shape[0], x.shape[0]), self.dtype))
        h = self.ws.get("h", (x.shape[0], w.shape[0]), self.dtype)   # dead once the layer kernel has run
        np.copyto(h, ht.T)
        if self.cfg.sigma_b2 > 0:
            h += fill_normal(self.keys(layer, "bias"), np.empty(h.shape[1], self.dtype), 0.0,
                             math.sqrt(self.cfg.sigma_b2))
        return h

    def input_gram(self, layer, x):
        """``x x^T`` of the layer's input (float64)."""
        return gram(x, parallel=self.parallel)

    def backward(self, layer, dh, dd=None):
        w = self._weights(layer)
        # dh W as it stands (about a tenth faster here than the transposed product with W's rows long),
        # into the workspace, then to float64
        g32 = np.matmul(dh.astype(self.dtype, copy=False), w,
                        out=self.ws.get("g32", (dh.shape[0], w.shape[1]), self.dtype))
        g = self.ws.get(f"g{layer - 1}", g32.shape)
        np.copyto(g, g32)
        return g


class Gaussian:
    """Draws ``h`` and then ``dh W`` from their exact conditional laws; W never exists.

    The Gram matrix ``x x^T`` of each layer's input is computed once, in the forward: it gives ``C``
    (``v x x^T + sigma_b^2 1 1^T``) and, kept until the backward, the weight-gradient norm. Without a bias
    ``A = sqrt(v) x``, so the backward works on ``x`` itself and the factor ``sqrt(v)`` moves onto the
    (B x B) side of each product instead of scaling an (B x n) array.
    """

    def __init__(self, cfg, trial, workspace=None, parallel=None):
        self.cfg, self.trial = cfg, trial
        self.keys = _Keys(cfg, trial)
        self.state = {}
        self.ws = Workspace() if workspace is None else workspace
        self.parallel = parallel   # the Gram kernels' thread team (see gram.gram); same bits either way

    def _normals(self, layer, purpose, shape):
        # one scratch array for every draw: each is dead once multiplied by its (B x B) factor
        return fill_normal(self.keys(layer, purpose), self.ws.get("normals", shape))

    def forward(self, layer, x):
        cfg = self.cfg
        x = np.asarray(x, dtype=np.float64)
        s = math.sqrt(cfg.weight_variance(layer))
        mu = cfg.weight_mean(layer)
        xx = gram(x, parallel=self.parallel)
        c = (s * s) * xx
        if cfg.sigma_b2 > 0:
            c += cfg.sigma_b2
        cf = _Factor(c)
        rows = cfg.shape(layer)[0]
        h = np.matmul(cf.f, self._normals(layer, "weights", (cf.rank, rows)),
                      out=self.ws.get(f"h{layer}", (x.shape[0], rows)))
        hc = h
        if mu != 0.0:
            hc = h.copy()
            h += mu * x.sum(axis=1, keepdims=True)
        if cfg.backward:
            self.state[layer] = (x, xx, cf, hc, s, mu)
        return h

    def input_gram(self, layer, x):
        """``x x^T`` of the layer's input, as the forward computed it."""
        return self.state[layer][1]

    def backward(self, layer, dh, dd=None):
        """``dh W`` given the forward draw; ``dd`` is ``dh dh^T`` when the caller already has it."""
        x, _, cf, hc, s, mu = self.state.pop(layer)
        dh = np.asarray(dh, dtype=np.float64)
        m = _Factor(gram(dh, parallel=self.parallel) if dd is None else dd)
        n_in = x.shape[1]
        bias = self.cfg.sigma_b2 > 0
        g2 = self._normals(layer, "conditional", (m.rank, n_in + 1 if bias else n_in))
        r = np.matmul(m.f, g2, out=self.ws.get("r", (dh.shape[0], g2.shape[1])))
        if bias:   # A = [sqrt(v) x, sigma_b 1]: the bias column joins A's products, then is dropped
            a = np.hstack([s * x, np.full((x.shape[0], 1), math.sqrt(self.cfg.sigma_b2))])
            # (dh H^T - R A^T) C^+
            t = cf.right_pinv(gram(dh, hc, self.parallel) - gram(r, a, self.parallel))
            g = s * (t @ a + r)[:, :n_in]
        else:      # A = s x: (dh H^T - s R x^T) C^+ s x + R, times s
            t = cf.right_pinv(gram(dh, hc, self.parallel) - s * gram(r, x, self.parallel))
            g = np.matmul(s * s * t, x, out=self.ws.get(f"g{layer - 1}", (dh.shape[0], n_in)))
            r *= s
            g += r
        if mu != 0.0:
            g += mu * dh.sum(axis=1, keepdims=True)
        return g


class _Factor:
    """A PSD matrix ``c = F F^T``: its Cholesky factor when c is well conditioned (the common case, and
    the cheap one), else ``U diag(sqrt(lam))`` on its range from the eigendecomposition. Any F with
    F F^T = c gives F G the same law, so the choice changes the cost, not the distribution."""
    COND = 1e-10  # the Cholesky route needs min pivot^2 > COND * max diagonal

    def __init__(self, c: np.ndarray):
        if not np.isfinite(c).all():
            raise FloatingPointError("the layer's Gram matrix overflowed")
        self._chol = None
        top = float(np.max(np.diagonal(c))) if c.size else 0.0
        if top > 0.0:
            # LAPACK's potrf directly: numpy.linalg.cholesky's checks and wrapping cost several times the
            # factorization of a B x B matrix, twelve of which a lecture trial needs
            low, info = _lapack("dpotrf")(c, lower=1, clean=1)
            if info == 0 and float(np.min(np.diagonal(low))) ** 2 > self.COND * top:
                self._chol = low
                self.f = low
                self.rank = c.shape[0]
                return
        self._u, self._lam = _range_basis(c)
        self.f = self._u * np.sqrt(self._lam)
        self.rank = self._lam.size

    def right_pinv(self, y: np.ndarray) -> np.ndarray:
        """``y C^+`` (C^-1 on the Cholesky route)."""
        if self._chol is not None:
            # LAPACK's potrs directly (what scipy.linalg.cho_solve calls, without its checks on a B x B
            # system whose factor was just computed)
            sol, info = _lapack("dpotrs")(self._chol, y.T, lower=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"potrs failed (info {info})")
            return sol.T
        return ((y @ self._u) / self._lam) @ self._u.T


def _lapack(name: str):
    """A LAPACK routine from SciPy, imported on first use (SciPy's linalg is slow to import)."""
    from scipy.linalg import lapack
    return getattr(lapack, name)


def _range_basis(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(U, lam)`` with ``c = U diag(lam) U^T`` on the range of the PSD matrix c (tiny eigenvalues dropped,
    numpy.linalg.matrix_rank's tolerance)."""
    scale = float(np.max(np.diagonal(c))) if c.size else 0.0   # bounds every |c_ij| of a PSD matrix
    if not scale > 0.0:
        return np.zeros((c.shape[0], 0)), np.zeros(0)
    # c / scale has entries in [-1, 1]: eigh of c itself overflows inside LAPACK near 1e300 and answers
    # NaN, which would read as rank 0 (a layer of zeros) instead of an overflow
    lam, u = np.linalg.eigh(c / scale)
    lam = lam * scale
    if not (np.isfinite(lam).all() and np.isfinite(u).all()):
        raise FloatingPointError("the layer's Gram matrix overflowed")
    top = lam[-1]
    if top <= 0.0:
        return u[:, :0], lam[:0]
    keep = lam > top * (max(c.shape) * np.finfo(np.float64).eps)   # eps first: top * n overflows near 1e308
    return u[:, keep], lam[keep]


def _inputs(cfg, keys, ws):
    if cfg.inputs is not None:
        return cfg.inputs
    return fill_normal(keys(0, "inputs"), ws.get("x0", (cfg.batch, cfg.widths[0])))


def _batchnorm(h):
    mu = h.mean(axis=0)
    inv = 1.0 / np.sqrt(h.var(axis=0) + BN_EPS)
    return np.ascontiguousarray((h - mu) * inv), inv


def _batchnorm_backward(dhn, hn, inv):
    return inv * (dhn - dhn.mean(axis=0) - hn * (dhn * hn).mean(axis=0))


def _moments(s1, s2, count):
    mean = s1 / count
    second = s2 / count
    return mean, math.sqrt(max(second - mean * mean, 0.0)), second


def simulate_trial(cfg, trial: int, keep_weights: bool = True, workspace: Workspace | None = None,
                   one_thread: bool = False):
    """One random network: ``(stats, hist)`` with ``stats[field]`` an array over the L layers (NaN from the
    layer where a value overflowed on; ``stats["overflow"]`` = ``[layer, i]`` names it, ``OVERFLOW[i]``,
    ``[0, 0]`` when nothing did) and ``hist`` (``{"act": (L, bins), "grad": (L, bins)}`` counts) or None. Pass the same ``workspace`` to
    successive trials of one configuration to reuse their arrays (same results, less allocation).

    ``one_thread``: the caller runs several trials at once, one per thread, and has already limited BLAS to
    one thread for the process; the trial then keeps its kernels on its own thread (Numba's thread count
    is per thread) and leaves the process-wide limits alone. Same bits either way."""
    ws = Workspace() if workspace is None else workspace
    if one_thread:
        import numba
        if numba.get_num_threads() != 1:
            numba.set_num_threads(1)
        with np.errstate(over="ignore", invalid="ignore"):
            return _trial(cfg, trial, keep_weights, ws, False)
    team = None
    if threads.serial(cfg) and threads.numba_team(cfg):   # the team could run: time it against one thread
        team = ws.team.next()
    start = time.perf_counter()
    with threads.limit(cfg, team), np.errstate(over="ignore", invalid="ignore"):
        out = _trial(cfg, trial, keep_weights, ws, team)
    if team is not None:
        ws.team.record(time.perf_counter() - start)
    return out


def _trial(cfg, trial, keep_weights, ws, team):
    # with BLAS on one thread and Numba's team awake for the fills, the kernels use that team too (team is
    # None where the trial's size decides, see threads.Team)
    par = team
    engine = Gaussian(cfg, trial, ws, par) if cfg.engine == "gaussian" else Dense(cfg, trial, keep_weights, ws, par)
    depth = cfg.depth
    act = cfg.act
    stats = {f: np.full(depth, np.nan) for f in STAT_FIELDS}
    over = stats["overflow"] = np.zeros(2, np.int64)
    hist = histograms.empty(cfg) if cfg.histograms else None   # counts and their per-layer edges
    relu_family = act.act.family == "relu"
    keys = engine.keys
    x = _inputs(cfg, keys, ws)
    saved = []
    finite = True
    for layer in range(1, depth + 1):
        try:
            h = engine.forward(layer, x)
        except FloatingPointError:   # the Gram matrix of the layer's input: h's covariance
            over[:] = layer, 0
            finite = False
            break
        raw = None
        if cfg.batchnorm:
            raw = (float(h.sum(dtype=np.float64)), float(np.square(h, dtype=np.float64).sum()))
            h, inv = _batchnorm(h)
        else:
            inv = None
        keep = cfg.keep if layer < depth else 1.0
        mkey = keys(layer, "dropout")
        res = x if cfg.is_residual(layer) else None
        x_new, d, s = kernels.forward(act, h, res, mkey, keep, out=(ws.alloc(f"x{layer}"), ws.alloc(f"d{layer}")),
                                      parallel=par)
        if not np.isfinite(s).all():   # overflow: this layer and the deeper ones have no statistics
            over[:] = layer, 0 if not np.isfinite(s[:2]).all() else 1
            finite = False
            break
        nh, nx = h.size, x_new.size
        if raw is not None:
            s[0], s[1] = raw
        stats["pre_mean"][layer - 1], stats["pre_std"][layer - 1], stats["pre_second"][layer - 1] = \
            _moments(s[0], s[1], nh)
        stats["act_mean"][layer - 1], stats["act_std"][layer - 1], stats["act_second"][layer - 1] = \
            _moments(s[2], s[3], nx)
        stats["saturated"][layer - 1] = s[4] / nh
        if relu_family:
            stats["dead"][layer - 1] = s[5] / x_new.shape[1]
        if hist is not None:
            histograms.record(hist, cfg, "act", layer, x_new)
        if cfg.backward:
            saved.append((x, h if cfg.batchnorm else None, inv, d, mkey, keep, res is not None))
        x = x_new
    if not (cfg.backward and finite):
        return stats, hist
    g = fill_normal(keys(depth + 1, "upstream"), ws.get("upstream", x.shape))
    for layer in range(depth, 0, -1):
        x_in, hn, inv, d, mkey, keep, residual = saved.pop()
        if hist is not None:
            histograms.record(hist, cfg, "grad", layer, g)
        dh, gt, s = kernels.backward(act, g, d, mkey, keep, out=ws.alloc("dh"), parallel=par)
        if not np.isfinite(s).all():
            over[:] = layer, 2
            break
        count = g.size
        _, stats["grad_std"][layer - 1], stats["grad_second"][layer - 1] = _moments(s[0], s[1], count)
        if hn is not None:
            dh = _batchnorm_backward(dh, hn, inv)
        dh64 = np.asarray(dh, dtype=np.float64)
        dd = gram(dh64, parallel=par)   # shared with the Gaussian engine's backward, which needs it too
        xx = engine.input_gram(layer, x_in)
        stats["weight_grad_norm"][layer - 1] = math.sqrt(max(float(np.sum(xx * dd)), 0.0))
        if not math.isfinite(stats["weight_grad_norm"][layer - 1]):   # the norm alone: the gradients go on
            stats["weight_grad_norm"][layer - 1] = np.nan
            if not over[0]:
                over[:] = layer, 3
        try:
            g_prev = np.asarray(engine.backward(layer, dh, dd), dtype=np.float64)
        except FloatingPointError:   # the Gram matrix of dLoss/dh
            over[:] = layer, 2
            break
        if residual:
            g_prev += gt
        g = np.ascontiguousarray(g_prev)
    return stats, hist

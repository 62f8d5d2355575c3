"""Singular values of the input-output Jacobian of random MLPs at initialization (dense, float64).

For each network (trial): an input x_0 with iid N(0, q) entries (q = the length map's fixed point q* by
default), weights iid N(0, sigma_w^2 / n) or sigma_w times a Haar orthogonal matrix (``nn.init``'s
``orthogonal_apply``, which applies its Householder reflectors without forming it), biases N(0, sigma_b^2),
and J = D_L W_L ... D_1 W_1 accumulated layer by layer (one n x n product per layer); then the singular values of J. The theory beside it is
:func:`varprop.derive.jacobian.spectrum_moments`.

Every draw is keyed by (seed, trial, layer) through NumPy's SeedSequence, so a result is the same whatever
the thread count. Memory (three n x n float64 matrices) and work (2 n^3 flops per layer and trial) are checked
before anything is allocated.

>>> r = jacobian_spectrum(64, 3, "linear", 1.0, weights="orthogonal", trials=2, seed=0)
>>> bool(np.allclose(r.sv2, 1.0))
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Spectrum", "jacobian_spectrum", "MAX_WIDTH", "MAX_FLOPS"]

MAX_WIDTH = 8192
MAX_FLOPS = 2e13            # about ten minutes on two cores; beyond, refused with the estimate


@dataclass
class Spectrum:
    config: dict
    sv2: np.ndarray                  # (trials, width): squared singular values of J, per network
    theory_mean: float
    theory_var: float
    extra: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(self.sv2.mean())

    @property
    def var(self) -> float:
        """The spectrum's variance: the variance of the pooled squared singular values."""
        return float(self.sv2.var())

    def se_mean(self) -> float:
        """Standard error of the spectrum mean over networks (nan for one network)."""
        per = self.sv2.mean(axis=1)
        return float(per.std(ddof=1) / math.sqrt(per.size)) if per.size > 1 else math.nan

    def se_var(self) -> float:
        per = self.sv2.var(axis=1)
        return float(per.std(ddof=1) / math.sqrt(per.size)) if per.size > 1 else math.nan

    def to_dict(self) -> dict:
        return {"config": self.config, "mean": self.mean, "var": self.var, "se_mean": _num(self.se_mean()),
                "se_var": _num(self.se_var()), "theory_mean": self.theory_mean, "theory_var": self.theory_var,
                "quantiles_sv2": {str(p): float(np.quantile(self.sv2, p)) for p in (0.01, 0.1, 0.5, 0.9, 0.99)}}


def _num(v):
    return None if not math.isfinite(v) else float(v)


def _int(v, what, low, high):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not low <= v <= high:
        raise ValueError(f"{what} must be an integer from {low} to {high}, got {v!r}")
    return int(v)


def _rng(seed, trial, layer):
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(trial, layer))))


def jacobian_spectrum(width, depth, activation, sigma_w2, sigma_b2=0.0, weights="gaussian", trials=1, seed=0,
                      q=None, params=None) -> Spectrum:
    """The squared singular values of J for ``trials`` networks of ``depth`` square layers of ``width``."""
    from varprop.derive import jacobian
    from varprop.derive.mean_field import _bound, fixed_point
    from varprop.nn.init.draw import Source
    from varprop.nn.init.structured import orthogonal_apply

    from .config import available_memory
    n = _int(width, "width", 1, MAX_WIDTH)
    L = _int(depth, "depth", 1, 100_000)
    T = _int(trials, "trials", 1, 100_000)
    seed = _int(seed, "seed", 0, 2**63 - 1)
    if weights not in jacobian.WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(jacobian.WEIGHTS)}, got {weights!r}")
    b = _bound(activation, params)
    sw, sb = float(sigma_w2), float(sigma_b2)
    if not (sw > 0 and math.isfinite(sw)) or not (sb >= 0 and math.isfinite(sb)):
        raise ValueError(f"need sigma_w2 > 0 and sigma_b2 >= 0, finite; got {sigma_w2!r}, {sigma_b2!r}")
    need = 4 * n * n * 8
    avail = available_memory()
    if avail is not None and need > 0.8 * avail:
        raise ValueError(f"width {n}: the Jacobian needs {need / 2**30:.1f} GiB, more than the "
                         f"{avail / 2**30:.1f} GiB available")
    flops = 2.0 * n ** 3 * L * T + 10.0 * n ** 3 * T
    if flops > MAX_FLOPS:
        raise ValueError(f"width {n} x depth {L} x {T} trials is about {flops:.1e} flops (hours); the ceiling is "
                         f"{MAX_FLOPS:.0e}: fewer trials, layers or units")
    theory_mean, theory_var = jacobian.spectrum_moments(b, sw, sb, L, weights, q=q)
    if q is None:
        q = fixed_point(b, sw, sb)
        if not 0 < q < math.inf:
            q = 1.0
    q = float(q)
    sv2 = np.empty((T, n))
    for t in range(T):
        x = _rng(seed, t, 0).standard_normal(n) * math.sqrt(q)
        J = np.eye(n)
        for layer in range(1, L + 1):
            bias = _rng(seed, t, L + layer).standard_normal(n) * math.sqrt(sb) if sb > 0 else 0.0
            with np.errstate(over="ignore", invalid="ignore"):
                if weights == "gaussian":
                    W = _rng(seed, t, layer).standard_normal((n, n)) * math.sqrt(sw / n)
                    h, WJ = W @ x, W @ J
                else:      # W = sigma_w Q, applied to [x, J] through Q's Householder reflectors (Q never formed)
                    xj = math.sqrt(sw) * orthogonal_apply(Source(generator=_rng(seed, t, layer)), n,
                                                          np.column_stack([x, J]))
                    h, WJ = xj[:, 0], xj[:, 1:]
                h = h + bias
                d = np.asarray(b.numpy_derivative(h), dtype=np.float64)
                J = d[:, None] * WJ
            if not (np.isfinite(J).all() and np.isfinite(h).all()):
                raise ArithmeticError(f"the Jacobian overflowed at layer {layer} of {L} (trial {t}): chi_1^L is "
                                      f"{theory_mean:.3g}; use fewer layers or a smaller sigma_w2")
            x = np.asarray(b.numpy(h), dtype=np.float64)
        sv2[t] = np.linalg.svd(J, compute_uv=False) ** 2
    cfg = {"width": n, "depth": L, "activation": b.label(), "sigma_w2": sw, "sigma_b2": sb, "weights": weights,
           "trials": T, "seed": seed, "q": q}
    return Spectrum(cfg, sv2, theory_mean, theory_var)

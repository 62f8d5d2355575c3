"""The correlation of two inputs' representations through random MLPs, against the correlation map.

Two inputs x1, x2 of width n_0, each of squared norm q_0 n_0 and with correlation c_0 (cosine similarity), go
through the same random network (weights iid N(0, sigma_w^2 / n_{l-1}), biases iid N(0, sigma_b^2), optional
inverted dropout of keep probability p on the hidden units, i.e. the inputs of layers 2..L, as
``varprop simulate --dropout`` places it, an independent mask per input). Per layer the
simulator measures the cosine similarity of the two pre-activation vectors, averaged over networks with its
standard error. Beside it, the mean-field iteration (Poole et al. 2016, Schoenholz et al. 2017):

    q_l     = sigma_w^2 E[phi(u)^2] / p + sigma_b^2                       (each input's length)
    q12_l   = sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2                    (their covariance)
    c_l     = q12_l / q_l,

with (u1, u2) the previous layer's pre-activations, Gaussian with variances q_{l-1} and correlation c_{l-1}
(the first layer, whose input is not dropped: q_1 = sigma_w^2 q_0 + sigma_b^2, q12_1 = sigma_w^2 c_0 q_0 +
sigma_b^2). Dropout divides
the length by p but not the covariance of independent masks, so c = 1 is no longer a fixed point.

>>> r = pair_correlation([64] * 4, "tanh", 1.0, 0.0, c0=0.5, trials=8, seed=0)
>>> r.mean.shape, bool(abs(r.mean[0] - r.theory[0]) < 5 * r.se[0] + 0.05)
((3,), True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PairCorrelation", "pair_correlation", "correlation_theory"]


@dataclass
class PairCorrelation:
    config: dict
    per_trial: np.ndarray          # (trials, layers): cosine similarity of the two pre-activations
    theory: np.ndarray             # (layers,)

    @property
    def mean(self) -> np.ndarray:
        return self.per_trial.mean(axis=0)

    @property
    def se(self) -> np.ndarray:
        t = self.per_trial.shape[0]
        return self.per_trial.std(axis=0, ddof=1) / math.sqrt(t) if t > 1 else np.full(self.per_trial.shape[1], np.nan)


def _pair_moment(b, q: float, c: float) -> float:
    from varprop.derive.mean_field import _pair
    return _pair(b, q, min(max(c, -1.0), 1.0), False)


def correlation_theory(activation, depth: int, sigma_w2: float, sigma_b2: float = 0.0, c0: float = 0.5,
                       q0: float = 1.0, keep_prob: float = 1.0, params=None) -> np.ndarray:
    """c_1..c_depth from the mean-field length and covariance maps (module docstring)."""
    from varprop.derive.mean_field import _bound, gaussian_moments
    b = _bound(activation, params)
    if b.name == "maxout":
        raise ValueError("the correlation map of maxout is not implemented")
    p = float(keep_prob)
    q = sigma_w2 * q0 + sigma_b2
    q12 = sigma_w2 * c0 * q0 + sigma_b2
    out = []
    for _ in range(depth):
        c = q12 / q
        out.append(c)
        second = gaussian_moments(b, q).second
        q12 = sigma_w2 * _pair_moment(b, q, c) + sigma_b2
        q = sigma_w2 * second / p + sigma_b2
    return np.array(out)


def _check(widths, trials, c0, q0, keep_prob, sigma_w2, sigma_b2):
    ws = [int(w) for w in widths]
    if len(ws) < 2 or min(ws) < 1 or max(ws) > 16384:
        raise ValueError(f"widths needs the input width and at least one layer, each from 1 to 16384; got {widths}")
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or not 2 <= trials <= 100_000:
        raise ValueError(f"trials must be an integer from 2 to 100000, got {trials!r}")
    if not -1 <= c0 <= 1:
        raise ValueError(f"c0 is a correlation in [-1, 1], got {c0}")
    if not (q0 > 0 and math.isfinite(q0)):
        raise ValueError(f"q0 must be positive and finite, got {q0}")
    if not 0 < keep_prob <= 1:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
    if not (sigma_w2 > 0 and math.isfinite(sigma_w2)) or not (sigma_b2 >= 0 and math.isfinite(sigma_b2)):
        raise ValueError(f"need sigma_w2 > 0 and sigma_b2 >= 0, finite; got {sigma_w2}, {sigma_b2}")
    work = sum(a * b for a, b in zip(ws[:-1], ws[1:])) * trials
    if work > 5e10:
        raise ValueError(f"{trials} networks of widths {ws[0]}..{ws[-1]} draw about {work:.1e} weights; the "
                         "ceiling is 5e10: fewer networks or narrower layers")
    return ws


def pair_correlation(widths, activation, sigma_w2, sigma_b2=0.0, c0=0.5, q0=1.0, keep_prob=1.0, trials=100,
                     seed=0, params=None) -> PairCorrelation:
    """Simulate ``trials`` networks on a pair of inputs of correlation ``c0``; theory beside it."""
    from varprop.derive.mean_field import _bound
    b = _bound(activation, params)
    ws = _check(widths, trials, float(c0), float(q0), float(keep_prob), float(sigma_w2), float(sigma_b2))
    n0 = ws[0]
    # the two inputs: a fixed pair with exactly the requested norms and cosine (built once from the seed)
    g = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0,))))
    e = np.linalg.qr(g.standard_normal((n0, 2)))[0].T if n0 >= 2 else np.ones((2, 1))
    r = math.sqrt(q0 * n0)
    x1 = r * e[0]
    x2 = r * (c0 * e[0] + math.sqrt(max(1 - c0 * c0, 0.0)) * e[1]) if n0 >= 2 else x1 * np.sign(c0 or 1)
    out = np.empty((trials, len(ws) - 1))
    for t in range(trials):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1, t))))
        a = np.stack([x1, x2])
        for layer, (n_in, n_out) in enumerate(zip(ws[:-1], ws[1:])):
            if keep_prob < 1 and layer > 0:            # hidden units only, as the batch simulator
                a = a * (rng.random(a.shape) < keep_prob) / keep_prob
            W = rng.standard_normal((n_out, n_in)) * math.sqrt(sigma_w2 / n_in)
            h = a @ W.T
            if sigma_b2 > 0:
                h += rng.standard_normal(n_out) * math.sqrt(sigma_b2)
            norms = np.linalg.norm(h, axis=1)
            out[t, layer] = float(h[0] @ h[1] / (norms[0] * norms[1])) if norms.all() else np.nan
            a = np.asarray(b.numpy(h), dtype=np.float64)
    cfg = {"widths": ws, "activation": b.label(), "sigma_w2": float(sigma_w2), "sigma_b2": float(sigma_b2),
           "c0": float(c0), "q0": float(q0), "keep_prob": float(keep_prob), "trials": int(trials), "seed": int(seed)}
    theory = correlation_theory(b, len(ws) - 1, float(sigma_w2), float(sigma_b2), float(c0), float(q0),
                                float(keep_prob))
    return PairCorrelation(cfg, out, theory)

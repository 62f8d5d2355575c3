"""The weight law of a simulated layer: what ``--init`` names, reduced to what the engines need.

``init`` is either an initializer name of :mod:`varprop.nn.init` (``"he_normal"``, ``"xavier_uniform"``,
...) or a distribution expression of :mod:`varprop.expr` (``"normal(0, 0.01)"``,
``"uniform(-sqrt(6/fan_in), sqrt(6/fan_in))"``). For a weight matrix ``W_l`` of shape ``(n_l, n_{l-1})``
(torch layout) ``fan_in = n_{l-1}`` and ``fan_out = n_l`` (``k n_l`` rows for maxout).

The engines need three things: the per-entry mean and variance (the theory overlay and the Gaussian
engine), whether the law is Gaussian (the Gaussian engine is exact only then), and a sampler for the dense
engine. Samples come from the counter-based stream of the layer's key, so they do not depend on the
number of threads; laws the streams cannot express (orthogonal, sparse, ...) use a NumPy Generator
seeded from the same key, which is just as reproducible.

>>> law = resolve("normal(0, 0.01)")
>>> law.gaussian, law.variance(4096, 4096)
(True, 0.0001)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from varprop.names import is_init_name, parse_init_params  # parse_init_params is re-exported: one rule

__all__ = ["WeightLaw", "resolve", "parse_init_params"]


@dataclass(frozen=True)
class WeightLaw:
    """One resolved ``init``: ``kind`` is normal | uniform | truncated_normal | constant | other."""
    text: str
    kind: str
    source: object  # a varprop.expr Distribution or a varprop.nn.init Initializer

    @property
    def gaussian(self) -> bool:
        """True when W is Gaussian with iid entries: the Gaussian engine is then exact in distribution."""
        return self.kind == "normal"

    def variance(self, fan_in: int, fan_out: int) -> float:
        if self._is_initializer:
            return float(self.source.variance((fan_out, fan_in)))
        return float(self.source.variance(fan_in, fan_out))

    def mean(self, fan_in: int, fan_out: int) -> float:
        if self._is_initializer:
            return float(self.source.mean((fan_out, fan_in)))
        return float(self.source.mean(fan_in, fan_out))

    @property
    def _is_initializer(self) -> bool:
        return callable(self.source) and not hasattr(self.source, "sympy_variance")

    def moments(self, fan_in: int, fan_out: int) -> tuple[float, float]:
        """``(mean, variance)`` of an entry, computed once per shape (a sampled layer asks every trial)."""
        memo = self.__dict__.setdefault("_moments", {})   # frozen: the memo lives beside the fields
        m = memo.get((fan_in, fan_out))
        if m is None:
            m = memo[(fan_in, fan_out)] = (self.mean(fan_in, fan_out), self.variance(fan_in, fan_out))
        return m

    def sample(self, key, shape: tuple[int, int], dtype=np.float32, out=None) -> np.ndarray:
        """A weight matrix of ``shape = (fan_out, fan_in)`` drawn from the stream ``key`` (a uint64), written
        into ``out`` (C-contiguous, that shape and dtype) when given."""
        from varprop.streams import fill_uniform

        from .rng import fill_normal
        fan_out, fan_in = shape
        out = np.empty(shape, dtype=dtype) if out is None else out
        mean, var = self.moments(fan_in, fan_out)
        if self.kind == "normal":
            fill_normal(key, out, mean, math.sqrt(var))
        elif self.kind == "uniform":
            half = math.sqrt(3.0 * var)  # U(a, b) has variance (b - a)^2 / 12
            fill_uniform(key, out, mean - half, mean + half)
        elif self.kind == "constant":
            out.fill(mean)
        elif self.kind == "truncated_normal" and not self._is_initializer:
            out[...] = _truncated_normal(key, shape, **_truncation(self.source, fan_in, fan_out))
        else:
            rng = np.random.default_rng(int(key))
            out[...] = np.asarray(self.source(shape, rng=rng, dtype=dtype))
        return out


def _truncation(dist, fan_in, fan_out) -> dict:
    p = dist.params(fan_in, fan_out)
    std = float(p.get("std", p.get("scale", 1.0)))
    return {"mean": float(p.get("mean", 0.0)), "std": std,
            "low": float(p.get("low", p.get("a", -2.0))), "high": float(p.get("high", p.get("b", 2.0)))}


def _truncated_normal(key, shape, mean, std, low, high) -> np.ndarray:
    """mean + std * Phi^-1(Phi(low) + u (Phi(high) - Phi(low))): exact, one uniform per slot (bounds in stds)."""
    from scipy.special import ndtr, ndtri

    from varprop.streams import fill_uniform
    u = np.empty(shape, dtype=np.float64)
    fill_uniform(key, u, 0.0, 1.0)
    a, b = ndtr(low), ndtr(high)
    return mean + std * ndtri(a + u * (b - a))


def resolve(init, params=None) -> WeightLaw:
    """An initializer name (with keyword ``params`` for :func:`varprop.nn.init.get`), a distribution
    expression or a :class:`WeightLaw` -> a WeightLaw.

    Raises ValueError naming the problem when ``init`` is neither.
    """
    params = dict(params or {})
    if isinstance(init, WeightLaw):
        if params:
            raise ValueError("init parameters apply to an initializer name, not to a resolved law")
        return init
    if not isinstance(init, str):
        raise TypeError(f"init must be an initializer name or a distribution expression, got {type(init).__name__}")
    text = init.strip()
    if not text:
        raise ValueError("init is empty: give an initializer name (e.g. he_normal) or an expression "
                         "(e.g. 'normal(0, 0.01)')")
    if not is_init_name(text):
        if params:
            raise ValueError(f"init parameters apply to an initializer name, not to the expression {text!r}")
        dist = _parse_distribution(text)
        return WeightLaw(text, dist.kind, dist)
    initializer = _initializer(text, params)
    if params:
        text += "(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"
    kind = initializer.distribution if initializer.distribution in ("normal", "uniform", "truncated_normal",
                                                                    "constant") else "other"
    return WeightLaw(text, kind, initializer)


# The two seams to the parts that own these concepts: the expression parser (varprop.expr) and the
# initializer presets (varprop.nn.init).

def _parse_distribution(text: str):
    from varprop.expr import parse_distribution
    return parse_distribution(text)


def _initializer(name: str, params: dict):
    from varprop.nn.init import get
    return get(name, **params)

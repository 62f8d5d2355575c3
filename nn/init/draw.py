"""Where an initializer's random numbers come from: an int seed (counter streams) or a NumPy Generator.

* ``rng`` an int seed: the numbers come from the counter-based stream ``(seed, INIT_DOMAIN, stream)`` of
  :mod:`varprop.streams` (normals by the ziggurat of :mod:`.ziggurat`), filled in parallel by Numba. Slot i
  of the array is a function of its counter alone, so the same seed gives the same array bit for bit
  whatever the number of threads.
* ``rng`` a ``numpy.random.Generator``: used as given (``standard_normal``, ``random``), so the caller's
  generator advances exactly as NumPy's own calls would advance it.
* ``rng=None``: a fresh seed from the operating system's entropy, then the counter streams.

A float16 (or other non-native float) array is drawn in float32 and cast; integer dtypes are refused. The
kernels get a flat view, so they compile once per dtype, not once per number of dimensions.

>>> a = Source.of(3).normal((2, 2), np.float32, 0.0, 1.0)
>>> b = Source.of(3).normal((2, 2), np.float32, 0.0, 1.0)
>>> bool((a == b).all()), a.dtype.name
(True, 'float32')
"""
from __future__ import annotations

import numbers

import numpy as np

from varprop import truncnorm

__all__ = ["INIT_DOMAIN", "Source", "check_dtype", "truncated_icdf"]

INIT_DOMAIN = 0x696E6974            # "init": keeps initializer streams apart from the simulator's
_REJECTION_MASS = 0.25              # below this mass, rejection from the normal wastes too many draws


def check_dtype(dtype) -> np.dtype:
    """A floating NumPy dtype, or a ValueError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be a NumPy floating dtype, got {dtype!r}") from None
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating dtype (float16, float32, float64), got {dt.name}")
    return dt


def _work_dtype(dt: np.dtype) -> np.dtype:
    return dt if dt in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float32)


def truncated_icdf(u: np.ndarray, a: float, b: float) -> np.ndarray:
    """Standard normals truncated to [a, b] from uniforms u in (0, 1] by the inverse CDF.

    Sampled on whichever of [a, b] or [-b, -a] lies mostly below 0, where Phi and its inverse keep their
    relative accuracy in the tails (a far upper tail is a far lower tail mirrored).
    """
    from scipy.special import ndtr, ndtri
    flip = a >= 0.0
    lo, hi = (-b, -a) if flip else (a, b)
    plo, phi_ = ndtr(lo), ndtr(hi)
    x = np.clip(ndtri(plo + (1.0 - u) * (phi_ - plo)), lo, hi)
    return -x if flip else x


class Source:
    """A random source for one initializer call; ``stream`` numbers keep independent draws apart."""

    def __init__(self, seed: int | None = None, generator: np.random.Generator | None = None):
        self.seed = seed
        self.generator = generator

    @classmethod
    def of(cls, rng) -> "Source":
        """``rng``: None, an int seed in [0, 2**64), or a numpy.random.Generator."""
        if rng is None:
            return cls(seed=int(np.random.SeedSequence().entropy) & (2 ** 64 - 1))
        if isinstance(rng, np.random.Generator):
            return cls(generator=rng)
        if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
            if not 0 <= int(rng) < 2 ** 64:
                raise ValueError(f"an int seed must be in [0, 2**64), got {rng}")
            return cls(seed=int(rng))
        raise ValueError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")

    def _key(self, stream: int):
        from varprop.streams import key
        return key(self.seed, INIT_DOMAIN, stream)

    def normal(self, shape, dtype, mean: float, std: float, stream: int = 0) -> np.ndarray:
        dt = check_dtype(dtype)
        wt = _work_dtype(dt)
        if self.generator is not None:
            out = self.generator.standard_normal(shape, dtype=wt)
            out *= wt.type(std)
            if mean != 0.0:
                out += wt.type(mean)
        else:
            from .ziggurat import TABLE_R, TABLE_X, fill_normal
            out = np.empty(shape, dtype=wt)
            fill_normal(self._key(stream), out.reshape(-1), float(mean), float(std), TABLE_X, TABLE_R)
        return out.astype(dt, copy=False)

    def uniform(self, shape, dtype, low: float, high: float, stream: int = 0) -> np.ndarray:
        dt = check_dtype(dtype)
        wt = _work_dtype(dt)
        if self.generator is not None:
            out = self.generator.random(shape, dtype=wt)
            out *= wt.type(high - low)
            out += wt.type(low)
        else:
            from varprop.streams import fill_uniform
            out = np.empty(shape, dtype=wt)
            fill_uniform(self._key(stream), out.reshape(-1), float(low), float(high))
        return out.astype(dt, copy=False)

    def unit(self, shape, stream: int = 0) -> np.ndarray:
        """float64 uniforms in (0, 1] (ranks for random subsets, inverse-CDF sampling)."""
        if self.generator is not None:
            return 1.0 - self.generator.random(shape)
        from varprop.streams import uniform
        return 1.0 - uniform(self.seed, (INIT_DOMAIN, stream), shape, np.float64, 0.0, 1.0)

    def truncated(self, shape, dtype, loc: float, scale: float, a: float, b: float,
                  stream: int = 0) -> np.ndarray:
        """loc + scale * Z with Z ~ N(0, 1) conditioned on a <= Z <= b (a, b in units of scale)."""
        dt = check_dtype(dtype)
        wt = _work_dtype(dt)
        a, b = truncnorm.check_bounds(a, b)
        if truncnorm.mass(a, b) < _REJECTION_MASS:
            z = truncated_icdf(self.unit(shape, stream), a, b)
            return (loc + scale * z).astype(dt)
        if self.generator is not None:
            z = self.generator.standard_normal(shape, dtype=wt)
            bad = (z < a) | (z > b)
            while bad.any():
                z[bad] = self.generator.standard_normal(int(bad.sum()), dtype=wt)
                bad = (z < a) | (z > b)
            z *= wt.type(scale)
            if loc != 0.0:
                z += wt.type(loc)
            return z.astype(dt, copy=False)
        from .ziggurat import TABLE_R, TABLE_X, fill_truncated
        out = np.empty(shape, dtype=wt)
        fill_truncated(self._key(stream), out.reshape(-1), float(loc), float(scale), a, b, TABLE_X, TABLE_R)
        return out.astype(dt, copy=False)

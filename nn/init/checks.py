"""Argument checks shared by varprop.nn (initializers, layers, optimizers, the trainer).

One place and one wording for the scalar arguments: each check returns the normalized value or
raises TypeError (not a number, or a bool) or ValueError (out of range), naming the argument.
NumPy integer and float scalars are accepted like Python's.

>>> positive_int(3, "width"), nonneg(0, "l2"), probability(0.5, "dropout")
(3, 0.0, 0.5)
"""
from __future__ import annotations

import math
import numbers

__all__ = ["positive_int", "nonneg_int", "real", "nonneg", "positive", "probability", "distribution_name"]


def _int(v, what, low, words) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
        raise ValueError(f"{what} must be a {words} integer, got {v!r}")
    return int(v)


def positive_int(v, what: str) -> int:
    """An integer >= 1 (widths, epochs, batch sizes, block counts)."""
    return _int(v, what, 1, "positive")


def nonneg_int(v, what: str = "seed") -> int:
    """An integer >= 0 (seeds)."""
    return _int(v, what, 0, "non-negative")


def _number(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{what} must be a number, got {type(v).__name__}")
    return float(v)


def real(v, what: str) -> float:
    """A finite real number."""
    x = _number(v, what)
    if not math.isfinite(x):
        raise ValueError(f"{what} must be finite, got {x}")
    return x


def nonneg(v, what: str) -> float:
    """A finite number >= 0 (penalties, decays)."""
    x = _number(v, what)
    if not (x >= 0 and math.isfinite(x)):
        raise ValueError(f"{what} must be >= 0 and finite, got {x}")
    return x


def positive(v, what: str) -> float:
    """A finite number > 0 (learning rates, eps)."""
    x = _number(v, what)
    if not (x > 0 and math.isfinite(x)):
        raise ValueError(f"{what} must be positive and finite, got {x}")
    return x


def probability(p, what: str) -> float:
    """A drop probability in [0, 1) (1 would drop everything)."""
    p = _number(p, what)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{what} is a drop probability in [0, 1), got {p}")
    return p


def distribution_name(distribution, known) -> str:
    """One of the ``known`` distribution names."""
    if distribution not in known:
        raise ValueError(f"unknown distribution {distribution!r}; known: {', '.join(known)}")
    return distribution

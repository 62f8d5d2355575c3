"""Closed forms of the standard normal truncated to [a, b]: mass, mean, variance and raw moments.

For Z ~ N(0, 1) conditioned on a <= Z <= b, with density phi, distribution function Phi and mass
P = Phi(b) - Phi(a) (Johnson, Kotz & Balakrishnan, *Continuous Univariate Distributions* vol. 1, 13.10):

    E[Z]   = (phi(a) - phi(b)) / P
    Var[Z] = 1 + (a phi(a) - b phi(b)) / P - E[Z]^2
    E[Z^k] = (k - 1) E[Z^(k-2)] + (a^(k-1) phi(a) - b^(k-1) phi(b)) / P      (integration by parts)

with x^j phi(x) = 0 at an infinite bound. Each is plain ``math``: no SymPy, no SciPy, so the initializers can
use it at import. The constant behind every "truncated normal" initializer is the std of N(0, 1) cut at +-2,

    sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)) = 0.87962566103423978...

which JAX writes as a literal and which is computed here.

>>> round(std(-2.0, 2.0), 15)
0.87962566103424
>>> mean(0.0, math.inf) == math.sqrt(2 / math.pi)    # the half-normal mean
True
"""
from __future__ import annotations

import math

__all__ = ["check_bounds", "mass", "mean", "variance", "std", "raw_moment", "central_moment4",
           "STD_2SIGMA"]

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def check_bounds(a: float, b: float) -> tuple[float, float]:
    """(a, b) as floats with a < b and neither NaN, else a ValueError naming the problem."""
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        raise ValueError(f"truncation bounds must be numbers, got a={a!r}, b={b!r}") from None
    if math.isnan(a) or math.isnan(b):
        raise ValueError(f"truncation bounds must not be NaN, got a={a}, b={b}")
    if not a < b:
        raise ValueError(f"truncation bounds need a < b, got a={a}, b={b}")
    if mass(a, b) <= 0.0:
        raise ValueError(f"truncation interval [{a:g}, {b:g}] has no probability mass in double precision")
    return a, b


def _pdf(x: float) -> float:
    return 0.0 if math.isinf(x) else _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def _xpdf(x: float, power: int) -> float:
    """x^power phi(x), which is 0 at an infinite x."""
    return 0.0 if math.isinf(x) else x ** power * _pdf(x)


def mass(a: float, b: float) -> float:
    """P = Phi(b) - Phi(a), written with erfc on the side of the tail so it keeps its relative accuracy."""
    if a >= 0.0:                          # both in the upper tail: Q(a) - Q(b)
        return 0.5 * (math.erfc(a / _SQRT2) - math.erfc(b / _SQRT2))
    if b <= 0.0:                          # both in the lower tail, by symmetry
        return 0.5 * (math.erfc(-b / _SQRT2) - math.erfc(-a / _SQRT2))
    return 1.0 - 0.5 * (math.erfc(-a / _SQRT2) + math.erfc(b / _SQRT2))


def mean(a: float, b: float) -> float:
    """E[Z | a <= Z <= b] = (phi(a) - phi(b)) / P."""
    return (_pdf(a) - _pdf(b)) / mass(a, b)


def variance(a: float, b: float) -> float:
    """Var[Z | a <= Z <= b] = 1 + (a phi(a) - b phi(b)) / P - E[Z]^2.

    In a tail (a >= 1 or b <= -1) the three terms are ~a^2 and their sum ~1/a^2: there the same formula
    is summed in mpmath at 40 digits (imported only then), so the result keeps full double precision.
    """
    if a >= _TAIL or b <= -_TAIL:
        return _tail_variance(a, b)
    p = mass(a, b)
    m = (_pdf(a) - _pdf(b)) / p
    return 1.0 + (_xpdf(a, 1) - _xpdf(b, 1)) / p - m * m


_TAIL = 1.0      # |bound| from which the float formula loses more than a digit to cancellation


def _tail_variance(a: float, b: float) -> float:
    import mpmath as mp
    with mp.workdps(40):
        if b <= -_TAIL:                 # the lower tail, by symmetry
            a, b = -b, -a
        a_, b_ = mp.mpf(a), mp.mpf(b)
        p = (mp.erfc(a_ / mp.sqrt(2)) - mp.erfc(b_ / mp.sqrt(2))) / 2
        pdf_a = mp.npdf(a_)
        pdf_b = mp.mpf(0) if mp.isinf(b_) else mp.npdf(b_)
        b_pdf_b = mp.mpf(0) if mp.isinf(b_) else b_ * pdf_b
        m = (pdf_a - pdf_b) / p
        return float(1 + (a_ * pdf_a - b_pdf_b) / p - m * m)


def std(a: float, b: float) -> float:
    """The standard deviation of N(0, 1) truncated to [a, b]."""
    return math.sqrt(variance(a, b))


def raw_moment(k: int, a: float, b: float) -> float:
    """E[Z^k | a <= Z <= b] by the recursion m_k = (k-1) m_(k-2) + (a^(k-1) phi(a) - b^(k-1) phi(b)) / P."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"the moment order must be a non-negative integer, got {k!r}")
    p = mass(a, b)
    prev, cur = 1.0, (_pdf(a) - _pdf(b)) / p      # m_0, m_1
    if k == 0:
        return prev
    for j in range(2, k + 1):
        prev, cur = cur, (j - 1) * prev + (_xpdf(a, j - 1) - _xpdf(b, j - 1)) / p
    return cur


def central_moment4(a: float, b: float) -> float:
    """E[(Z - E Z)^4 | a <= Z <= b], for the standard error of a sample variance."""
    m1, m2, m3, m4 = (raw_moment(k, a, b) for k in (1, 2, 3, 4))
    return m4 - 4 * m1 * m3 + 6 * m1 * m1 * m2 - 3 * m1 ** 4


STD_2SIGMA = std(-2.0, 2.0)
"""The std of N(0, 1) truncated to [-2, 2], the divisor of every variance-scaling truncated normal."""

"""The truncated-normal variance keeps its relative accuracy in the far tails."""
import math

import mpmath as mp
import pytest

from varprop import truncnorm


def _reference(a, b):
    # Z = a + Y: Y on [0, b - a] with density proportional to exp(-a y - y^2/2), every term O(1)
    with mp.workdps(50):
        a_, c = mp.mpf(a), mp.mpf(b) - mp.mpf(a)
        f = lambda y: mp.exp(-a_ * y - y * y / 2)  # noqa: E731
        pts = [0, 1 / a_, 10 / a_, c]
        p = mp.quad(f, pts)
        m = mp.quad(lambda y: y * f(y), pts) / p
        return mp.quad(lambda y: (y - m) ** 2 * f(y), pts) / p


@pytest.mark.parametrize("a, b", [(30, 31), (10, 10.5), (3, 4), (1.5, 2)])
def test_tail_variance_is_relatively_accurate(a, b):
    ref = _reference(a, b)
    assert abs(truncnorm.variance(a, b) - ref) / ref < 1e-14
    # the lower tail by symmetry
    assert abs(truncnorm.variance(-b, -a) - ref) / ref < 1e-14


def test_one_sided_tail_matches_the_mills_ratio_limit():
    # Var[Z | Z > a] = 1/a^2 - 6/a^4 + O(a^-6) for large a
    a = 1e3
    assert math.isclose(truncnorm.variance(a, math.inf), 1 / a ** 2 - 6 / a ** 4, rel_tol=1e-10)

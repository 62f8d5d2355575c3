"""Closed forms of the truncated standard normal against scipy.stats and mpmath quadrature."""
import math

import mpmath as mp
import pytest
from scipy import stats

from varprop import truncnorm

INF = math.inf
BOUNDS = [(-2.0, 2.0), (0.0, INF), (-INF, 0.5), (1.0, 3.0), (-1.0, 0.5), (5.0, 8.0), (-8.0, -5.0),
          (-0.1, 0.1), (-INF, INF)]


@pytest.mark.parametrize("a,b", BOUNDS)
def test_moments_match_scipy(a, b):
    d = stats.truncnorm(a, b)
    assert truncnorm.mean(a, b) == pytest.approx(d.mean(), rel=1e-10, abs=1e-14)
    assert truncnorm.variance(a, b) == pytest.approx(d.var(), rel=1e-9)
    for k in range(5):
        assert truncnorm.raw_moment(k, a, b) == pytest.approx(d.moment(k), rel=1e-8, abs=1e-13)
    kurt = float(d.stats(moments="k"))
    assert truncnorm.central_moment4(a, b) == pytest.approx((kurt + 3) * d.var() ** 2, rel=1e-7)


@pytest.mark.parametrize("a,b", [(-2.0, 2.0), (1.0, 3.0), (-1.0, 0.5)])
def test_moments_match_quadrature(a, b):
    with mp.workdps(30):
        pdf = lambda x: mp.npdf(x)                     # noqa: E731
        p = mp.quad(pdf, [a, b])
        m = mp.quad(lambda x: x * pdf(x), [a, b]) / p
        v = mp.quad(lambda x: (x - m) ** 2 * pdf(x), [a, b]) / p
    assert truncnorm.mass(a, b) == pytest.approx(float(p), rel=1e-14)
    assert truncnorm.variance(a, b) == pytest.approx(float(v), rel=1e-13)


def test_the_two_sigma_constant():
    # JAX's literal for the std of N(0, 1) cut at +-2
    assert truncnorm.STD_2SIGMA == pytest.approx(0.87962566103423978, rel=1e-15)
    assert truncnorm.mean(0.0, INF) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-15)
    assert truncnorm.variance(0.0, INF) == pytest.approx(1 - 2 / math.pi, rel=1e-14)


def test_bad_bounds():
    for a, b, msg in [(1.0, 1.0, "a < b"), (2.0, -2.0, "a < b"), (math.nan, 1.0, "NaN"),
                      ("x", 1.0, "numbers"), (40.0, 41.0, "no probability mass")]:
        with pytest.raises(ValueError, match=msg):
            truncnorm.check_bounds(a, b)
    with pytest.raises(ValueError, match="order"):
        truncnorm.raw_moment(-1, -1.0, 1.0)

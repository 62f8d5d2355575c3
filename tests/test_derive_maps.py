"""derive.maps: gains as functions of q, the correlation map under dropout, batch norm's gradient growth; each
against an independent route (derive.gains' mpmath quadrature, SciPy's QUADPACK, closed forms)."""
import math

import numpy as np
import pytest

from varprop.derive import maps


@pytest.mark.parametrize("act", ["tanh", "gelu", "selu"])
def test_gain_curves_match_the_mpmath_gains(act):
    from varprop.derive.gains import backward_gain_value, forward_gain_value
    gf, gb = maps.gain_curves(act, [0.25, 1.0, 3.0])
    for q, f, b in zip((0.25, 1.0, 3.0), gf, gb):
        assert f == pytest.approx(forward_gain_value(act, q), rel=1e-10)
        assert b == pytest.approx(backward_gain_value(act, q), rel=1e-10)


def test_relu_gains_do_not_depend_on_q():
    gf, gb = maps.gain_curves("relu", np.geomspace(0.01, 100, 9))
    assert np.allclose(gf, math.sqrt(2), rtol=1e-12) and np.allclose(gb, math.sqrt(2), rtol=1e-12)


@pytest.mark.parametrize("bad", [[0.0, 1.0], [-1.0], [[1.0]]])
def test_gain_curves_reject_bad_q(bad):
    with pytest.raises(ValueError, match="positive"):
        maps.gain_curves("tanh", bad)


def test_dropout_keep_probability_is_checked():
    for keep in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="keep probability"):
            maps.dropout_fixed_point("relu", 1.0, 0.0, keep)


def test_dropout_map_at_c_1_is_the_derived_gap():
    """c'(1) = (sigma_w^2 e + sigma_b^2) / (sigma_w^2 e / p + sigma_b^2) with e = E[phi(sqrt(q*) z)^2]."""
    from varprop.derive import mean_field as mf
    act, sw, sb, p = "tanh", 1.76, 0.05, 0.7
    q = maps.dropout_fixed_point(act, sw, sb, p)
    e = mf.gaussian_moments(act, q).second
    assert q == pytest.approx(sw * e / p + sb, rel=1e-10)
    assert maps.dropout_correlation_map(act, 1.0, sw, sb, p) == pytest.approx((sw * e + sb) / (sw * e / p + sb),
                                                                              rel=1e-9)


def test_batchnorm_rate_against_scipy_for_tanh():
    from scipy import integrate

    def e(f):
        return integrate.quad(lambda z: f(z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi), -np.inf, np.inf,
                              epsabs=1e-14, epsrel=1e-12)[0]
    d2 = e(lambda z: (1 - math.tanh(z) ** 2) ** 2)
    var = e(lambda z: math.tanh(z) ** 2)        # tanh is odd: its mean is 0
    assert maps.batchnorm_gradient_rate("tanh") == pytest.approx(d2 / var, rel=1e-10)
    assert maps.batchnorm_gradient_rate("relu") == pytest.approx(math.pi / (math.pi - 1), rel=1e-12)

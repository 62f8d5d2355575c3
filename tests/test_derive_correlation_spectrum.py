"""The correlation-map and jacobian-spectrum derivations, and the dropout depth scale they quote."""
import math

import pytest

from varprop.derive import derivations, maps
from varprop.derive import mean_field as mf


@pytest.mark.slow
@pytest.mark.parametrize("name", ["correlation-map", "jacobian-spectrum"])
def test_verified_and_listed(name):
    assert name in derivations.names()
    d = derivations.build(name)
    assert d.verified, d.problems()


def test_relu_kernel_against_quadrature_and_the_critical_line():
    for c in (-0.9, -0.2, 0.0, 0.5, 0.95):
        closed = (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / (2 * math.pi)
        assert mf.correlation_map("relu", c, 2.0, 0.0, q=1.0) / 2 == pytest.approx(closed, abs=2e-5)
    for sb in (0.0, 0.1, 0.5):
        assert mf.critical_sigma_w2("relu", sb) == pytest.approx(2.0)


def test_dropout_depth_scale_is_finite_and_grows_as_keep_goes_to_one():
    xs = [maps.dropout_max_depth_scale("tanh", 0.05, keep)[0] for keep in (0.5, 0.9, 0.99)]
    assert all(math.isfinite(x) for x in xs) and xs[0] < xs[1] < xs[2]
    # without dropout xi_c diverges on the critical line: the dropout maximum is below any large number there
    crit = mf.critical_sigma_w2("tanh", 0.05)
    assert mf.depth_scales("tanh", crit, 0.05)[1] > 1e3 > xs[2]
    # the depth scale's rate is the slope of the dropout correlation map at its fixed point (finite difference)
    c_star = maps.dropout_c_star("tanh", 2.0, 0.05, 0.9)
    h = 1e-5
    slope = (maps.dropout_correlation_map("tanh", c_star + h, 2.0, 0.05, 0.9)
             - maps.dropout_correlation_map("tanh", c_star - h, 2.0, 0.05, 0.9)) / (2 * h)
    assert maps.dropout_depth_scale("tanh", 2.0, 0.05, 0.9) == pytest.approx(-1 / math.log(slope), rel=1e-4)

"""Kernels and registry agree at the kinks; rrelu's test-time map is stated wherever its moments are used."""
import numpy as np
import pytest

from varprop.activations import RRELU_NOTE, get


@pytest.mark.parametrize("name, params", [("relu", {}), ("leaky_relu", {}), ("elu", {"alpha": 2}), ("selu", {}),
                                          ("celu", {}), ("abs", {}), ("hardtanh", {}), ("hardsigmoid", {}),
                                          ("rrelu", {})])
def test_kernel_derivative_agrees_with_the_registry_at_every_kink(name, params):
    from varprop.kernels import derivative
    b = get(name, **params)
    kinks = [float(k) for k in b.kinks()] or [0.0]
    want = b.numpy_derivative(np.array(kinks, dtype=np.float64))
    got = [derivative(b.code, x, *b.kernel_params()) for x in kinks]
    assert np.array_equal(np.array(got), want)


def test_rrelu_check_says_it_uses_the_test_time_map():
    from varprop.derive.check import check
    assert RRELU_NOTE in check("normal(0, sqrt(2/fan_in))", "rrelu").notes
    assert RRELU_NOTE not in check("normal(0, sqrt(2/fan_in))", "leaky_relu").notes

"""Gains: the textbook values exactly, SELU's fixed point, PyTorch's table beside them."""
import math

import pytest
import sympy as sp

from varprop.derive.gains import (backward_gain_value, forward_gain_value, forward_scale_value, gains,
                                  torch_gain)


def test_relu_is_sqrt2_exactly():
    g = gains("relu", digits=30)
    assert g.closed_forward() == sp.sqrt(2) and g.closed_backward() == sp.sqrt(2)
    assert g.forward_str(25) == "1.414213562373095048801689"
    assert forward_scale_value("relu") == 2.0


@pytest.mark.parametrize("a", ["0.01", "0.2", "1/3", "1"])
def test_leaky_relu_is_sqrt_2_over_1_plus_a2_exactly(a):
    g = gains("leaky_relu", negative_slope=a)
    av = sp.Rational(a) if "/" not in a else sp.Rational(*map(int, a.split("/")))
    assert sp.simplify(g.closed_forward() - sp.sqrt(2 / (1 + av ** 2))) == 0
    assert sp.simplify(g.closed_backward() - sp.sqrt(2 / (1 + av ** 2))) == 0


def test_linear_is_one_at_every_q():
    for q in ("1/4", "1", "9"):
        g = gains("linear", q=q)
        assert g.closed_forward() == 1 and g.closed_backward() == 1


def test_selu_forward_gain_is_one_at_q1():
    g = gains("selu", digits=30)
    assert g.forward_str(28) == "1"
    assert float(g.backward) == pytest.approx(1 / math.sqrt(1.0715749924557992), rel=1e-15)


def test_tanh_and_selu_against_pytorch():
    t = gains("tanh")
    assert t.torch.value == pytest.approx(5 / 3)
    assert float(t.forward) == pytest.approx(1.5925374197228, rel=1e-12)
    assert t.torch_relative_difference() == pytest.approx(5 / 3 / 1.5925374197228 - 1, rel=1e-9)
    s = gains("selu")
    assert s.torch.value == 0.75 and s.torch_relative_difference() == pytest.approx(-0.25, rel=1e-12)
    assert torch_gain("gelu") is None and torch_gain("silu") is None
    assert torch_gain("leaky_relu", negative_slope="0.2").value == pytest.approx(math.sqrt(2 / 1.04))


def test_float_paths_agree_with_the_exact_route():
    for name in ("tanh", "gelu", "elu", "mish", "maxout"):
        g = gains(name, digits=20)
        assert forward_gain_value(name) == pytest.approx(float(g.forward), rel=1e-15)
        assert backward_gain_value(name) == pytest.approx(float(g.backward), rel=1e-15)


def test_forward_gain_keeps_q_by_monte_carlo():
    """One wide layer with Var(w) = g^2/fan_in maps second moment q to q (5 standard errors)."""
    import numpy as np
    rng = np.random.default_rng(0)
    for name in ("tanh", "gelu", "softsign"):
        g = forward_gain_value(name, q=2)
        n_in, n_out, batch = 2000, 2000, 8
        h = rng.standard_normal((n_in, batch)) * math.sqrt(2)
        from varprop.activations import get
        x = get(name).numpy(h)
        w = rng.standard_normal((n_out, n_in)) * g / math.sqrt(n_in)
        h2 = (w @ x) ** 2
        # columns are independent given x; across the batch the estimates are independent draws
        per_col = h2.mean(axis=0)
        se = per_col.std(ddof=1) / math.sqrt(batch)
        exact_given_x = g ** 2 * (x ** 2).mean(axis=0).mean()
        assert abs(per_col.mean() - exact_given_x) < 5 * se + 1e-12
        assert abs(exact_given_x - 2.0) < 5 * math.sqrt(((x ** 2).var()) / x.size) * g ** 2

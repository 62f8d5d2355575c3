"""The JAX-style front end: jax.nn.initializers' names, defaults and semantics, with NumPy arrays."""
import math

import numpy as np
import pytest
from scipy import stats

from varprop.nn.init import jax as jinit


def _var_ok(x, var, mu4_over_var2):
    x = np.asarray(x, dtype=np.float64).ravel()
    return abs(x.var(ddof=1) - var) < 5 * var * math.sqrt((mu4_over_var2 - 1) / x.size)


TRUNC = stats.truncnorm(-2, 2)


@pytest.mark.parametrize("factory,scale,mode,kind", [
    (jinit.he_normal, 2.0, "fan_in", "truncated_normal"), (jinit.he_uniform, 2.0, "fan_in", "uniform"),
    (jinit.kaiming_normal, 2.0, "fan_in", "truncated_normal"),
    (jinit.lecun_normal, 1.0, "fan_in", "truncated_normal"), (jinit.lecun_uniform, 1.0, "fan_in", "uniform"),
    (jinit.glorot_normal, 1.0, "fan_avg", "truncated_normal"),
    (jinit.xavier_uniform, 1.0, "fan_avg", "uniform"),
])
def test_presets_are_jax_variance_scaling(factory, scale, mode, kind):
    shape = (3, 3, 32, 48)                       # (*kernel, in, out)
    fan_in, fan_out = 9 * 32, 9 * 48
    var = scale / (fan_in if mode == "fan_in" else (fan_in + fan_out) / 2)
    init = factory()
    assert init.variance(shape) == pytest.approx(var, rel=1e-12)
    w = init(0, shape)
    assert w.shape == shape and w.dtype == np.float32
    std = math.sqrt(var)
    law = (stats.uniform(-std * math.sqrt(3), 2 * std * math.sqrt(3)) if kind == "uniform"
           else stats.truncnorm(-2, 2, scale=std / TRUNC.std()))
    assert stats.kstest(w.ravel(), law.cdf).pvalue > 1e-4
    assert _var_ok(w, var, law.stats(moments="k") + 3)
    assert np.array_equal(w, init(0, shape)) and np.array_equal(init(np.random.default_rng(1), shape),
                                                                init(np.random.default_rng(1), shape))


def test_axes_and_batch_axis():
    init = jinit.variance_scaling(1.0, "fan_in", "normal", in_axis=0, out_axis=1, batch_axis=(2,))
    assert init.variance((10, 20, 7)) == 1 / 10
    assert jinit.variance_scaling(1.0, "fan_out", "normal", in_axis=0, out_axis=1).variance((10, 20, 7)) \
        == 1 / 140


def test_simple_factories_follow_jax_defaults():
    w = jinit.normal()(3, (200, 100))
    assert _var_ok(w, 1e-4, 3.0)
    u = jinit.uniform()(3, (200, 100))
    assert u.min() >= 0.0 and u.max() <= 1e-2
    assert stats.kstest(u.ravel(), stats.uniform(0, 1e-2).cdf).pvalue > 1e-4
    # JAX's truncated_normal(stddev) is not corrected: its std is 0.8796 stddev
    t = jinit.truncated_normal(1.0)(3, (300, 300))
    assert np.abs(t).max() <= 2.0
    assert stats.kstest(t.ravel(), TRUNC.cdf).pvalue > 1e-4
    assert _var_ok(t, TRUNC.var(), TRUNC.stats(moments="k") + 3)
    assert np.array_equal(jinit.zeros(0, (2, 3)), np.zeros((2, 3), np.float32))
    assert np.array_equal(jinit.ones(0, (2, 3), np.float64), np.ones((2, 3)))
    assert np.array_equal(jinit.constant(-2.0)(0, (4,)), np.full(4, -2.0, np.float32))


@pytest.mark.parametrize("shape,axis", [((6, 4, 5), -1), ((6, 4, 5), 0), ((30, 8), -1), ((8, 30), -1)])
def test_orthogonal_columns_along_the_column_axis(shape, axis):
    w = jinit.orthogonal(scale=2.0, column_axis=axis)(7, shape, np.float64)
    assert w.shape == shape
    cols = shape[axis]
    m = np.moveaxis(w, axis, -1).reshape(-1, cols) / 2.0
    small = m.T @ m if m.shape[0] >= cols else m @ m.T
    assert np.abs(small - np.eye(min(m.shape))).max() < 1e-10
    assert jinit.orthogonal(2.0, axis).variance(shape) == 4.0 / max(m.shape)


def test_delta_orthogonal_is_orthogonal_at_the_centre_and_zero_elsewhere():
    shape = (3, 3, 16, 32)
    init = jinit.delta_orthogonal(scale=1.5)
    w = init(4, shape, np.float64)
    centre = w[1, 1] / 1.5
    assert np.abs(centre @ centre.T - np.eye(16)).max() < 1e-10
    rest = w.copy()
    rest[1, 1] = 0
    assert not rest.any()
    assert np.mean(w ** 2) == pytest.approx(init.variance(shape), rel=1e-12)
    with pytest.raises(ValueError, match="in <= out"):
        init(0, (3, 3, 32, 16))
    with pytest.raises(ValueError, match="3-, 4- or 5-D"):
        init(0, (16, 32))


def test_delta_orthogonal_puts_an_even_kernel_s_matrix_at_jax_s_tap():
    w = jinit.delta_orthogonal()(0, (4, 4, 3, 5), np.float64)     # JAX: index (k - 1) // 2 = 1
    taps = [tuple(i) for i in np.argwhere(np.abs(w).sum(axis=(2, 3)) > 0)]
    assert taps == [(1, 1)]
    w3 = jinit.delta_orthogonal()(0, (2, 3, 3), np.float64)
    assert np.abs(w3[0]).sum() > 0 and not w3[1].any()


def test_orthogonal_column_axis_must_be_an_integer():
    with pytest.raises(TypeError, match="column_axis"):
        jinit.orthogonal(column_axis="a")


def test_bad_input():
    with pytest.raises(ValueError, match="mode"):
        jinit.variance_scaling(1.0, "fan_sum", "normal")
    with pytest.raises(ValueError, match="out of range"):
        jinit.he_normal(in_axis=5)(0, (3, 4))
    with pytest.raises(ValueError, match="column_axis"):
        jinit.orthogonal(column_axis=3)(0, (3, 4))
    with pytest.raises(ValueError, match="a < b"):
        jinit.truncated_normal(lower=1.0, upper=-1.0)

"""check(): phi(0) != 0 at q -> 0, nonzero-mean weights, maxout's fans, the digits tolerance."""
import math

import numpy as np
import pytest
import sympy as sp

from varprop.activations import get
from varprop.derive.check import check
from varprop.expr import parse_distribution


def test_sigmoid_small_signal_forward_is_not_preserved():
    # the constant phi(0) = 1/2 gives every pre-activation fan_in Var(w)/4 of variance, whatever q
    r = check("normal(0, 4/sqrt(fan_in))", "sigmoid", q=0)
    assert not r.forward.preserved and r.forward.ratio == sp.oo
    assert r.verdict == "neither"
    assert any("phi(0) != 0" in n for n in r.notes)


def test_sigmoid_forward_ratio_grows_as_q_shrinks():
    ratios = [float(check("normal(0, 4/sqrt(fan_in))", "sigmoid", q=q).ratios_at(64, 64)[0])
              for q in ("1e-2", "1e-4", "1e-6")]
    assert ratios[0] < ratios[1] < ratios[2] and ratios[2] > 1e6


@pytest.mark.parametrize("init, act, fan_in, fan_out", [
    ("normal(1, sqrt(2/fan_in))", "relu", 8, 4),
    ("normal(0.2, sqrt(1/fan_in))", "tanh", 12, 6),
])
def test_nonzero_mean_ratios_against_a_sampled_layer(init, act, fan_in, fan_out):
    # h = W x, x = phi(h_prev), h_prev ~ N(0, 1); g_prev = (W^T g) * phi'(h_prev), g ~ N(0, 1)
    r = check(init, act, q=1)
    assert r.verdict == "neither"
    want_f, want_b = r.ratios_at(fan_in, fan_out)
    p = parse_distribution(init).params(fan_in, fan_out)
    phi = get(act)
    rng = np.random.default_rng(11)
    trials, batch = 400, 64
    fwd, bwd = np.empty(trials), np.empty(trials)
    for t in range(trials):
        w = rng.normal(p["mean"], p["std"], (fan_out, fan_in))
        h_prev = rng.standard_normal((batch, fan_in))
        fwd[t] = np.mean((phi.numpy(h_prev) @ w.T) ** 2)
        g = rng.standard_normal((batch, fan_out))
        bwd[t] = np.mean(((g @ w) * phi.numpy_derivative(h_prev)) ** 2)
    assert abs(fwd.mean() - want_f) < 5 * fwd.std(ddof=1) / math.sqrt(trials)
    assert abs(bwd.mean() - want_b) < 5 * bwd.std(ddof=1) / math.sqrt(trials)


def test_maxout_note_says_fan_out_counts_every_row():
    r = check("normal(0, sqrt(1/fan_in))", "maxout", params={"k": 3})
    assert any("fan_out counts all 3 rows" in n for n in r.notes)
    # backward: fan_out rows, one in k carries the gradient: fan_out Var(w) / k
    assert sp.simplify(r.backward.ratio - sp.Symbol("fan_out", positive=True) / (3 * sp.Symbol("fan_in", positive=True))) == 0


@pytest.mark.parametrize("digits", [2, 3, 15])
def test_rational_ratio_is_decided_exactly(digits):
    # 1.35^2 / 2 = 0.91125: within 10^(1-2) of 1 was "preserved, 2 digits"
    r = check("normal(0, 1.35/sqrt(fan_in))", "relu", digits=digits)
    assert not r.forward.preserved


def test_numeric_ratio_tolerance_is_half_a_unit_of_the_last_digit():
    from varprop.derive.gains import gains
    g = float(gains("tanh", 1, 20).forward)
    on = check(f"normal(0, {g!r}/sqrt(fan_in))", "tanh", digits=4)
    off = check(f"normal(0, {g * (1 + 4e-4)!r}/sqrt(fan_in))", "tanh", digits=4)   # ratio 1.0008
    assert on.forward.preserved and on.forward.precision == "4 digits"
    assert not off.forward.preserved

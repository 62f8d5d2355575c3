"""Finite width: the random walk of log ||x_l||^2 against direct sampling and the simulator; random-walk init."""
import math

import numpy as np
import pytest

from varprop.derive import finite_width as fw


@pytest.mark.parametrize("activation,n", [("relu", 16), ("relu", 100), ("linear", 16), ("linear", 100)])
def test_log_ratio_moments_against_direct_sampling(activation, n):
    rng = np.random.default_rng(7)
    g = rng.standard_normal((100_000, n))
    phi = np.maximum(g, 0) if activation == "relu" else g
    v = 2.0 / n
    with np.errstate(divide="ignore"):                 # a ReLU layer with no active unit: log 0
        log_r = np.log(v * np.sum(phi ** 2, axis=1))
    log_r = log_r[np.isfinite(log_r)]
    se = log_r.std(ddof=1) / math.sqrt(log_r.size)
    assert abs(log_r.mean() - fw.log_ratio_mean(activation, v, n)) < 4 * se
    var = log_r.var(ddof=1)
    kurt = np.mean((log_r - log_r.mean()) ** 4) / var ** 2
    se_var = var * math.sqrt((kurt - 1) / log_r.size)
    assert abs(var - fw.log_ratio_var(activation, n)) < 4 * se_var


def test_relu_step_variance_tends_to_five_over_n_and_drift_of_he_is_negative():
    for n in (64, 256, 1024, 4096):
        assert n * fw.log_ratio_var("relu", n) == pytest.approx(5.0 + 19 / n, abs=2 / n)    # 5 + O(1/n)
        assert fw.log_ratio_mean("relu", 2 / n, n) < 0          # He keeps E[R] = 1, not E[log R] = 0
    assert fw.log_ratio_mean("relu", 2 / 64, 64) < fw.log_ratio_mean("relu", 2 / 1024, 1024)
    assert fw.dead_probability("relu", 16) == 2.0 ** -16 and fw.dead_probability("linear", 16) == 0.0


def test_random_walk_variance_zeroes_the_drift_and_tends_to_he_and_lecun():
    for act in ("relu", "linear"):
        for n in (2, 16, 1000):
            assert fw.log_ratio_mean(act, fw.random_walk_variance(act, n), n) == pytest.approx(0, abs=1e-12)
    assert fw.random_walk_variance("relu", 10**5) * 10**5 == pytest.approx(2, rel=1e-4)
    assert fw.random_walk_variance("linear", 10**5) * 10**5 == pytest.approx(1, rel=1e-4)
    # the paper's linear gain exp(1/(2n)) is the leading term of the exact one; its ReLU fit is close to exact
    assert fw.random_walk_gain("linear", 50) == pytest.approx(math.exp(1 / 100 + 1 / (6 * 2500)), rel=1e-6)
    for n in (16, 64, 256, 1024):
        assert fw.random_walk_gain("relu", n) == pytest.approx(fw.sussillo_abbott_gain("relu", n), rel=1e-3)


def _walk(n, depth, init, trials, seed):
    from varprop.simulate import run
    r = run(widths=[n] * (depth + 1), batch=1, activation="relu", init=init, trials=trials, seed=seed,
            inputs=np.ones((1, n)), dtype="float64", backward=False)
    with np.errstate(divide="ignore"):
        walk = np.log(r.per_trial["act_second"])      # ||x_l||^2 / n = ||x_l||^2 / ||x_0||^2 here
    alive = np.isfinite(walk[:, -1])
    return walk[alive], int((~alive).sum())


def _check_walk(walk, dead, n, depth, weight_var):
    mean, var = fw.norm_walk([n] * (depth + 1), "relu", weight_var)
    t = walk.shape[0]
    assert dead <= 3 + 5 * t * depth * fw.dead_probability("relu", n)
    for layer in sorted({0, depth // 2, depth - 1}):
        x = walk[:, layer]
        assert abs(x.mean() - mean[layer]) < 4.5 * x.std(ddof=1) / math.sqrt(t), layer
        assert abs(x.var(ddof=1) - var[layer]) < 4.5 * var[layer] * math.sqrt(2 / (t - 1)), layer


@pytest.mark.parametrize("n,depth", [(1024, 4), (64, 20)])
def test_simulated_networks_follow_the_walk(n, depth):
    walk, dead = _walk(n, depth, "he_normal", 300, seed=3)
    _check_walk(walk, dead, n, depth, 2 / n)


@pytest.mark.slow
@pytest.mark.parametrize("n,depth", [(16, 10), (16, 40), (64, 100), (256, 100), (1024, 30)])
def test_simulated_networks_follow_the_walk_widths_16_to_1024_depths_to_100(n, depth):
    walk, dead = _walk(n, depth, "he_normal", 400, seed=11)
    _check_walk(walk, dead, n, depth, 2 / n)


def test_random_walk_init_keeps_the_typical_norm_where_he_shrinks_it():
    from varprop.nn.init import presets
    n, depth = 32, 30
    rw, _ = _walk(n, depth, "random_walk", 300, seed=5)
    he, _ = _walk(n, depth, "he_normal", 300, seed=5)
    se = lambda x: x.std(ddof=1) / math.sqrt(x.size)                          # noqa: E731
    assert abs(rw[:, -1].mean()) < 4 * se(rw[:, -1])                           # no drift
    assert he[:, -1].mean() < -4 * se(he[:, -1])                               # He's drift, resolved
    _check_walk(rw, 0, n, depth, presets.get("random_walk").variance((n, n)))


def test_random_walk_initializer():
    from varprop.nn.init import presets
    init = presets.get("random_walk")
    assert init.variance((64, 32)) == pytest.approx(fw.random_walk_variance("relu", 64))     # torch layout: (out, in)
    w = init((512, 256), rng=0)
    assert w.var() == pytest.approx(init.variance((512, 256)), rel=4 * math.sqrt(2 / w.size))
    lin = presets.get("random_walk", nonlinearity="linear", distribution="uniform")
    u = lin((64, 64), rng=1)
    assert np.abs(u).max() <= math.sqrt(3 * lin.variance((64, 64)))
    with pytest.raises(ValueError, match="exact for linear and relu"):
        presets.get("random_walk", nonlinearity="tanh")
    with pytest.raises(ValueError, match="fan_out must be a positive integer"):
        fw.random_walk_variance("relu", 0)
    with pytest.raises(ValueError, match="weight variance must be positive"):
        fw.log_ratio_mean("relu", -1.0, 4)


@pytest.mark.slow
def test_derivation_is_verified_and_listed():
    from varprop.derive import derivations
    assert "finite-width" in derivations.names()
    d = derivations.build("finite-width")
    assert d.verified, d.problems()
    res = d.to_dict(8)["result"]
    assert float(res["relu_gain_16"]) == pytest.approx(fw.random_walk_gain("relu", 16), rel=1e-7)

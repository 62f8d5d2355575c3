"""The dropout derivation (derive/dropout.py) against Monte Carlo and PyTorch's dropout."""
import numpy as np
import pytest
import sympy as sp

from varprop.derive.derivations import dropout


@pytest.fixture(scope="module")
def derivation():
    return dropout.build()


def _value(d, name):
    return d.results[name][0]


def within(sample, expected, k=5.0):
    se = sample.std(ddof=1) / np.sqrt(sample.size)
    return abs(sample.mean() - expected) <= k * se


def test_verified(derivation):
    assert derivation.verified, derivation.problems()
    p, n = sp.Symbol("p", positive=True), sp.Symbol("n", positive=True, integer=True)
    assert sp.simplify(_value(derivation, "critical_weight_variance") - 2 * p / n) == 0
    assert sp.simplify(_value(derivation, "second_moment_factor") - 1 / p) == 0


@pytest.mark.parametrize("p", [0.5, 0.8])
def test_inverted_dropout_by_monte_carlo(p):
    rng = np.random.default_rng(31)
    x = rng.normal(0.7, 1.3, 2_000_000)
    y = x * (rng.random(x.size) < p) / p
    s2 = 0.7 ** 2 + 1.3 ** 2
    assert within(y, 0.7)
    assert within(y ** 2, s2 / p)
    assert not within(y ** 2, s2)          # the inflation is large enough to be seen
    v = x * (rng.random(x.size) < p)       # vanilla: train m x, test p x, same mean
    assert within(v, p * 0.7)


def test_critical_variance_keeps_q_through_a_relu_dropout_net():
    # E[h^2] is exact in expectation at any width for relu (E[relu(h)^2] = E[h^2]/2 by symmetry)
    n, p, layers, trials, batch = 64, 0.7, 5, 60, 16
    rng = np.random.default_rng(32)
    q = np.empty((trials, layers))
    for t in range(trials):
        x = rng.standard_normal((batch, n))
        for layer in range(layers):
            if layer > 0:
                x = np.maximum(h, 0) * (rng.random(h.shape) < p) / p
            W = rng.standard_normal((n, n)) * np.sqrt(2 * p / n)
            h = x @ W.T
            q[t, layer] = np.mean(h * h)
    theory = np.full(layers, 2 * p)        # layer 1: n (2p/n) E[x^2] = 2p; after it q' = q
    mean, se = q.mean(0), q.std(0, ddof=1) / np.sqrt(trials)
    assert np.all(np.abs(mean - theory) <= 5 * se), (mean, theory, se)
    # He's 2/n without the 1/p correction would grow q by 1/p per layer: far outside
    assert abs(theory[-1] / p - mean[-1]) > 5 * se[-1]


def test_dropconnect_mean_and_variance():
    rng = np.random.default_rng(33)
    p, n, draws = 0.6, 5, 400_000
    W, x = rng.standard_normal(n), rng.standard_normal(n)
    y = ((rng.random((draws, n)) < p) * W * x).sum(1)
    assert within(y, p * W @ x)
    assert abs(y.var() - p * (1 - p) * np.sum((W * x) ** 2)) <= 5 * np.sqrt(2 / draws) * y.var()


def test_torch_dropout_is_inverted():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    p = 0.75
    x = torch.randn(1_000_000, dtype=torch.float64) + 0.5
    y = torch.nn.functional.dropout(x, p=1 - p, training=True).numpy()
    xn = x.numpy()
    kept = y != 0
    assert np.allclose(y[kept], xn[kept] / p)
    assert within(y - xn, 0.0)                     # the expectation is kept
    assert within(y ** 2 - xn ** 2 / p, 0.0)       # the second moment is E[x^2] / p
    assert not within(y ** 2 - xn ** 2, 0.0)


def test_no_c_equal_1_fixed_point_under_dropout(derivation):
    """c* by three routes: the closed-form arc-cosine map (mpmath, in the derivation), the float quadrature of
    derive.maps, and NumPy networks whose two copies of one input decorrelate to c* < 1."""
    from varprop.derive import maps
    c_star = float(_value(derivation, "relu_c_star_half"))
    assert c_star == pytest.approx(maps.dropout_c_star("relu", 1.0, 0.0, 0.5), rel=1e-5)
    assert round(c_star, 4) == 0.2172
    # without dropout c = 1 is the fixed point; with it the map moves c = 1 inside
    assert maps.dropout_correlation_map("relu", 1.0, 2.0, 0.0, 1.0) == pytest.approx(1.0, abs=1e-9)
    assert maps.dropout_correlation_map("relu", 1.0, 1.0, 0.0, 0.5) == pytest.approx(0.5, abs=1e-6)
    # other activations and sigma_b > 0 lose the fixed point too
    for act, sw, sb in (("tanh", 1.0, 0.0), ("tanh", 1.76, 0.05), ("relu", 0.9, 0.1)):
        assert maps.dropout_c_star(act, sw, sb, 0.8) < 0.999
    mean, se = dropout.simulated_correlation(0.5, depth=12, width=512, trials=20, seed=1)
    assert mean[0] == pytest.approx(1.0)
    # finite width: a 2% allowance beside five standard errors
    assert abs(mean[-1] - c_star) <= 5 * se[-1] + 0.02
    assert mean[-1] < 0.5


def test_jensen_gap_by_monte_carlo(derivation):
    rng = np.random.default_rng(3)
    p, x = 0.6, 1.7
    m = rng.random(1_000_000) < p
    sample = (m * x / p) ** 2 - x ** 2
    assert within(sample, x ** 2 * (1 - p) / p)

"""symmetry, linear-variance, fan-rules, gains, residual, sigmoid: each verifies, and each result is held
against an independent route (Monte Carlo with a 5-standard-error tolerance, quadrature, PyTorch)."""
import math

import numpy as np
import pytest
import sympy as sp

from varprop.derive import derivations

K_SE = 5.0


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(name, **kw):
        key = (name, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = derivations.build(name, **kw)
        return cache[key]
    return get


def _sym(d, name):
    return d.results[name][0]


def _mc_mean(samples):
    samples = np.asarray(samples, dtype=np.float64)
    return samples.mean(), samples.std(ddof=1) / math.sqrt(samples.size)


@pytest.mark.parametrize("name", ["symmetry", "linear-variance", "fan-rules", "residual", "sigmoid"])
def test_derivation_verifies_and_uses_every_assumption(built, name):
    d = built(name)
    assert d.verified, d.problems()
    out = d.to_dict()
    assert out["verified"] and all(s["verified"] for s in out["steps"])
    assert all(a["used_in"] for a in out["assumptions"])


# -- linear-variance --------------------------------------------------------------------------------------
def test_linear_variance_general_form_by_monte_carlo(built):
    d = built("linear-variance")
    n, mu_w, sd_w, mu_x, sd_x = 16, 0.3, 0.5, -0.7, 1.2
    syms = {s.name: s for s in _sym(d, "variance_general").free_symbols}
    predicted = float(_sym(d, "variance_general").subs({syms["n"]: n, syms["mu_w"]: mu_w, syms["v_w"]: sd_w ** 2,
                                                        syms["mu_x"]: mu_x, syms["v_x"]: sd_x ** 2}))
    rng = np.random.default_rng(1)
    N = 200_000
    w = rng.normal(mu_w, sd_w, (N, n))
    x = rng.normal(mu_x, sd_x, (N, n))
    y = (w * x).sum(axis=1)
    dev = (y - y.mean()) ** 2
    est, se = _mc_mean(dev)
    assert abs(est - predicted) < K_SE * se


def test_linear_variance_through_layers_by_monte_carlo(built):
    d = built("linear-variance")
    expr = _sym(d, "variance_after_L_layers")
    syms = {s.name: s for s in expr.free_symbols}
    n, L, vw, vx = 8, 3, 1.5 / 8, 0.8
    predicted = float(expr.subs({syms["n"]: n, syms["L"]: L, syms["v_w"]: vw, syms["v_x"]: vx}))
    rng = np.random.default_rng(2)
    N = 40_000
    x = rng.normal(0, math.sqrt(vx), (N, n))
    for _ in range(L):
        W = rng.normal(0, math.sqrt(vw), (N, n, n))
        x = np.einsum("bij,bj->bi", W, x)
    est, se = _mc_mean(x[:, 0] ** 2)
    assert predicted == pytest.approx(1.5 ** 3 * 0.8)
    assert abs(est - predicted) < K_SE * se


def test_expectation_engine_rejects_higher_moments():
    from varprop.derive.derivations.linear_variance import expectation
    w = sp.Symbol("w")
    with pytest.raises(ValueError):
        expectation(w ** 3, {w: (0, 1)})


# -- fan-rules --------------------------------------------------------------------------------------------
def test_fan_rules_numbers(built):
    d = built("fan-rules")
    fi, fo = sp.symbols("fan_in fan_out", positive=True)
    a = sp.Symbol("a", nonnegative=True)
    vals = {fi: 300, fo: 100, a: sp.Rational(1, 5)}
    f = {k: float(_sym(d, k).subs(vals)) for k in d.results if isinstance(_sym(d, k), sp.Basic)}
    assert f["he_forward_var"] == pytest.approx(2 / 300)
    assert f["glorot_var"] == pytest.approx(2 / 400)
    assert f["glorot_uniform_bound"] == pytest.approx(math.sqrt(6 / 400))
    assert f["leaky_var"] == pytest.approx(2 / (1.04 * 300))
    assert f["he_uniform_bound"] ** 2 / 3 == pytest.approx(f["he_forward_var"])


def test_fan_rules_against_torch(built):
    torch = pytest.importorskip("torch")
    d = built("fan-rules")
    fi, fo = sp.symbols("fan_in fan_out", positive=True)
    a = sp.Symbol("a", nonnegative=True)
    w = torch.empty(100, 300)
    g = torch.nn.init.calculate_gain("leaky_relu", 0.2)
    std_torch = g / math.sqrt(300)                        # kaiming_normal_ std, fan_in mode
    bound_torch = math.sqrt(6 / 400)                       # xavier_uniform_ bound
    assert float(_sym(d, "leaky_normal_std").subs({fi: 300, a: sp.Rational(1, 5)})) == pytest.approx(std_torch)
    assert float(_sym(d, "glorot_uniform_bound").subs({fi: 300, fo: 100})) == pytest.approx(bound_torch)
    torch.manual_seed(0)
    torch.nn.init.xavier_uniform_(w)
    assert float(w.abs().max()) <= bound_torch


def test_uniform_bound_by_monte_carlo(built):
    d = built("fan-rules")
    fi = sp.Symbol("fan_in", positive=True)
    b = float(_sym(d, "he_uniform_bound").subs(fi, 50))
    rng = np.random.default_rng(3)
    w = rng.uniform(-b, b, 400_000)
    est, se = _mc_mean(w ** 2)
    assert abs(est - 2 / 50) < K_SE * se


def test_truncated_std_against_scipy_and_the_float_closed_form(built):
    from scipy import stats
    d = built("fan-rules")
    v = float(_sym(d, "truncated_std_value"))
    assert v == pytest.approx(stats.truncnorm(-2, 2).std(), rel=1e-12)
    truncnorm = pytest.importorskip("varprop.truncnorm")
    assert v == pytest.approx(truncnorm.std(-2.0, 2.0), rel=1e-14)
    assert float(_sym(d, "truncated_std")) == pytest.approx(v, rel=1e-14)


# -- gains ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["tanh", "selu", "relu", "gelu"])
def test_gains_subset_verifies(built, act):
    d = built("gains", activation=act)
    assert d.verified, d.problems()


def test_gains_tanh_forward_by_monte_carlo(built):
    d = built("gains", activation="tanh")
    g = float(d.results["forward_tanh"][0])
    rng = np.random.default_rng(4)
    z = rng.standard_normal(1_000_000)
    est, se = _mc_mean(np.tanh(z) ** 2)
    # 1/g^2 = E[tanh(z)^2]
    assert abs(est - 1 / g ** 2) < K_SE * se
    assert float(d.results["torch_variance_ratio_tanh"][0]) == pytest.approx((5 / 3 / g) ** 2)


def test_gains_selu_ratio_is_9_16(built):
    d = built("gains", activation="selu")
    assert float(d.results["torch_variance_ratio_selu"][0]) == pytest.approx(9 / 16, rel=1e-14)
    assert float(d.results["forward_selu"][0]) == pytest.approx(1.0, rel=1e-14)


def _scipy_tanh(kind, q):
    """E[tanh(sqrt(q) z)^2] or E[tanh'(sqrt(q) z)^2] by QUADPACK: independent of mpmath and the float path."""
    from scipy import integrate

    def f(t):
        y = np.tanh(math.sqrt(q) * t)
        v = y * y if kind == "second" else (1 - y * y) ** 2
        return v * math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    return integrate.quad(f, -np.inf, np.inf, epsabs=1e-14, epsrel=1e-13)[0]


def test_tanh_gains_are_exact_at_their_q(built):
    """The numbers the derivation states, each by SciPy quadrature and root finding."""
    from scipy.optimize import brentq
    d = built("gains", activation="tanh")
    chi_exact = _scipy_tanh("deriv2", 1) / _scipy_tanh("second", 1)
    assert float(d.results["tanh_chi1_at_exact_gain"][0]) == pytest.approx(chi_exact, rel=1e-10)
    assert round(chi_exact, 3) == 1.178
    q_star = brentq(lambda q: 25 / 9 * _scipy_tanh("second", q) - q, 0.5, 3.0, xtol=1e-14)
    assert float(d.results["tanh_torch_q_star"][0]) == pytest.approx(q_star, rel=1e-10)
    chi_t = 25 / 9 * _scipy_tanh("deriv2", q_star)
    assert float(d.results["tanh_torch_chi1"][0]) == pytest.approx(chi_t, rel=1e-10)
    assert (round(q_star, 3), round(chi_t, 3)) == (1.178, 1.210)


def test_tanh_no_gain_keeps_both_passes():
    """g_f(q) > g_b(q) on a grid of q (what the derivation's series shows near 0), by the float quadrature of
    derive.maps against SciPy's at a few points."""
    from varprop.derive.maps import gain_curves
    qs = np.geomspace(1e-3, 100, 60)
    gf, gb = gain_curves("tanh", qs)
    assert np.all(gf > gb)
    for q in (0.05, 1.0, 7.0):
        f, b = gain_curves("tanh", [q])
        assert f[0] == pytest.approx(math.sqrt(q / _scipy_tanh("second", q)), rel=1e-10)
        assert b[0] == pytest.approx(1 / math.sqrt(_scipy_tanh("deriv2", q)), rel=1e-10)
    # near 0 the difference of the moments is 4/3 q^2
    q = 1e-3
    diff = _scipy_tanh("deriv2", q) - _scipy_tanh("second", q) / q
    assert diff == pytest.approx(4 / 3 * q ** 2, rel=0.02)


def test_tanh_critical_point_at_sigma_b_0_is_one():
    from varprop.derive import mean_field as mf
    assert mf.critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, rel=1e-9)
    assert mf.fixed_point("tanh", 1.0, 0.0) < 1e-3          # q* -> 0 (slowly: the map is marginal there)
    assert mf.fixed_point("tanh", 0.9, 0.0) == 0.0


def test_gains_comparisons_against_torch(built):
    torch = pytest.importorskip("torch")
    for act in ("tanh", "selu", "relu"):
        d = built("gains", activation=act)
        (c,) = d.comparisons
        assert float(c.published) == pytest.approx(torch.nn.init.calculate_gain(act))


def test_gains_param_needs_activation():
    with pytest.raises(ValueError, match="--param"):
        derivations.build("gains", params={"negative_slope": "0.2"})


@pytest.mark.slow
def test_gains_all_activations_verify(built):
    d = built("gains")
    assert d.verified, d.problems()


# -- residual ---------------------------------------------------------------------------------------------
def _residual_second_moment(blocks, branch, n=32, N=2000, seed=5):
    """E[x^2] after ``blocks`` residual blocks of the branch construction ``branch`` (BRANCHES), over N
    independent networks of width n on one standard normal input each: (mean, standard error)."""
    from varprop.derive.derivations.residual import BRANCHES
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, n))
    for _ in range(blocks):
        h = x
        for layer in BRANCHES[branch]:
            if layer[0] == "relu":
                h = np.maximum(h, 0)
            else:
                W = rng.normal(0, math.sqrt(layer[1] / n), (N, n, n))
                h = np.einsum("bij,bj->bi", W, h)
        x = x + h
    return _mc_mean((x ** 2).mean(axis=1))


@pytest.mark.parametrize("branch, result, base", [("he_lecun", "he_lecun_blocks", 2),
                                                  ("preact_he", "preact_he_blocks", 2),
                                                  ("he_he", "he_he_blocks", 3)])
def test_residual_growth_of_each_branch_by_monte_carlo(built, branch, result, base):
    from varprop.derive.derivations.residual import BRANCHES, branch_ratio
    d = built("residual")
    L = sp.Symbol("L", positive=True, integer=True)
    vx = sp.Symbol("v_x", positive=True)
    predicted = float(_sym(d, result).subs({L: 3, vx: 1}))
    assert predicted == base ** 3 == (1 + branch_ratio(BRANCHES[branch])) ** 3
    est, se = _residual_second_moment(3, branch, seed=5 + base)
    assert abs(est - predicted) < K_SE * se
    # the construction matters: 2^L and 3^L are told apart at this sample size
    other = 3 ** 3 if base == 2 else 2 ** 3
    assert abs(est - other) > K_SE * se


def _fixup_first_step(blocks, s, n=256, eta=1e-5, seed=3):
    """The exact change of a Fixup ReLU residual network's output (mean over its units) after one SGD step on
    loss = sum(output), from two forward passes: branches x + W2 relu(s W1 x) with W1 He and W2 = 0."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(n)
    W1 = [s * rng.normal(0, math.sqrt(2 / n), (n, n)) for _ in range(blocks)]
    W2 = [np.zeros((n, n)) for _ in range(blocks)]

    def forward(W2s):
        x, hs = x0, []
        for a, b in zip(W1, W2s):
            h = np.maximum(a @ x, 0)
            hs.append(h)
            x = x + b @ h
        return x, hs
    y0, hs = forward(W2)
    # with every W2 zero, dloss/dx is the all-ones vector at every block, so dloss/dW2_i = 1 h_i^T
    y1, _ = forward([b - eta * np.outer(np.ones(n), h) for b, h in zip(W2, hs)])
    return float(np.mean(y1 - y0)) / (eta * float(x0 @ x0))


def test_fixup_scale_makes_the_first_step_independent_of_depth(built):
    """Zhang et al.'s argument, measured: the first step changes the output by L s^(2m-2) |x|^2 eta (m = 2);
    with s = L^(-1/2) it does not grow with depth, with s = 1 it grows as L."""
    d = built("residual")
    L, m = sp.Symbol("L", positive=True, integer=True), sp.Symbol("m", positive=True, integer=True)
    for blocks in (4, 16):
        s = float(_sym(d, "fixup_scale").subs({L: blocks, m: 2}))
        assert s == pytest.approx(blocks ** -0.5)
        # E|relu(W1 x)|^2 = |x|^2 for He W1, so the derived change per unit is -eta L s^2 |x|^2
        assert _fixup_first_step(blocks, s) == pytest.approx(-1.0, rel=0.1)
        assert _fixup_first_step(blocks, 1.0) == pytest.approx(-blocks, rel=0.1)


# -- sigmoid ----------------------------------------------------------------------------------------------
def test_sigmoid_derivative_bound_on_a_grid(built):
    d = built("sigmoid")
    x = np.linspace(-20, 20, 400_001)
    s = 1 / (1 + np.exp(-x))
    ds = s * (1 - s)
    assert ds.max() == pytest.approx(float(_sym(d, "max_derivative")), abs=1e-15)
    assert x[ds.argmax()] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_sigmoid_gradient_rows_one_sign(seed):
    from varprop.derive.derivations.sigmoid import mixed_sign_rows
    assert mixed_sign_rows(seed) == 0


@pytest.mark.parametrize("seed", range(3))
def test_sigmoid_minibatch_mixes_signs(seed):
    """One-signed rows hold per example; summed over a minibatch the rows mix signs."""
    from varprop.derive.derivations.sigmoid import mixed_sign_rows
    assert mixed_sign_rows(seed, widths=(8, 16, 16, 4), batch=1) == 0
    assert mixed_sign_rows(seed, widths=(8, 16, 16, 4), batch=32) > 0


def test_sigmoid_minibatch_mixes_signs_with_torch_autograd():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Sigmoid(), torch.nn.Linear(8, 6)).double()
    x = torch.randn(32, 5, dtype=torch.float64)
    (net(x) * torch.randn(32, 6, dtype=torch.float64)).sum().backward()
    g = net[2].weight.grad
    assert not bool(((g > 0).all(dim=1) | (g < 0).all(dim=1)).all())


@pytest.mark.parametrize("sigma_w", [0.5, 1.0, 2.0])
def test_gaussian_layer_operator_norm_is_near_two_sigma(sigma_w):
    """Bai-Yin: ||W|| -> 2 sigma_w; NumPy's SVD against the limit, within the n^(-2/3) edge fluctuation."""
    from varprop.derive.derivations.sigmoid import gaussian_operator_norm
    norms = [gaussian_operator_norm(400, sigma_w, seed) for seed in range(3)]
    assert all(abs(v / (2 * sigma_w) - 1) < 0.04 for v in norms)


def test_sigmoid_gradient_bound_holds_for_random_networks():
    rng = np.random.default_rng(7)
    for _ in range(20):
        widths = rng.integers(2, 9, size=5)
        Ws = [rng.standard_normal((o, i)) for i, o in zip(widths[:-1], widths[1:])]
        h = rng.standard_normal(widths[0])
        hs = [h]
        for W in Ws:
            hs.append(W @ (1 / (1 + np.exp(-hs[-1]))))
        g = rng.standard_normal(widths[-1])
        gL = np.linalg.norm(g)
        for W, hp in zip(reversed(Ws), reversed(hs[:-1])):
            s = 1 / (1 + np.exp(-hp))
            g = (W.T @ g) * s * (1 - s)
        bound = 0.25 ** len(Ws) * np.prod([np.linalg.norm(W, 2) for W in Ws]) * gL
        assert np.linalg.norm(g) <= bound * (1 + 1e-12)


def test_sigmoid_one_sign_with_torch_autograd():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Sigmoid(), torch.nn.Linear(4, 3)).double()
    x = torch.randn(1, 5, dtype=torch.float64)
    net(x).pow(2).sum().backward()
    g = net[2].weight.grad
    assert bool(((g > 0).all(dim=1) | (g < 0).all(dim=1)).all())


# -- symmetry ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("widths, value", [((4, 5, 5, 1), 0.3), ((3, 2, 7, 2), -0.8), ((6, 9, 3, 1), 0.0)])
def test_constant_init_units_stay_identical(widths, value):
    from varprop.derive.derivations.symmetry import unit_spread
    assert unit_spread("constant", steps=15, widths=widths, value=value) == 0.0
    assert unit_spread("normal", steps=3, widths=widths) > 0.0


@pytest.mark.parametrize("widths, value", [((4, 5, 5, 1), 0.3), ((3, 2, 7, 2), -0.8)])
def test_dropout_breaks_the_symmetry(widths, value):
    """The theorem's no-noise assumption is needed: with per-unit dropout masks a constant network's units
    drift apart, and the spread grows over the steps."""
    from varprop.derive.derivations.symmetry import unit_spread
    trace = unit_spread("constant", steps=20, widths=widths, value=value, dropout=0.5, history=True)
    assert max(trace) > 1e-3
    assert unit_spread("constant", steps=20, widths=widths, value=value, dropout=0.0) == 0.0


def test_dropout_breaks_the_symmetry_with_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6, bias=False), torch.nn.Tanh(), torch.nn.Dropout(0.5),
                              torch.nn.Linear(6, 1, bias=False)).double()
    for p in net.parameters():
        torch.nn.init.constant_(p, 0.25)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    X, Y = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(X), Y).backward()
        opt.step()
    w = net[0].weight.detach()
    assert not torch.allclose(w, w[:1].expand_as(w), rtol=0, atol=1e-12)


def test_symmetry_with_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6, bias=False), torch.nn.Tanh(),
                              torch.nn.Linear(6, 6, bias=False), torch.nn.Tanh(),
                              torch.nn.Linear(6, 1, bias=False)).double()
    for p in net.parameters():
        torch.nn.init.constant_(p, 0.25)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    X, Y = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
    for _ in range(10):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(X), Y).backward()
        opt.step()
    for layer in (net[0], net[2]):
        w = layer.weight.detach()
        assert torch.allclose(w, w[:1].expand_as(w), rtol=0, atol=1e-12)


def test_unit_spread_rejects_unknown_init():
    from varprop.derive.derivations.symmetry import unit_spread
    with pytest.raises(ValueError):
        unit_spread("xavier")


def test_fan_rules_backward_steps_name_the_gradient_independence(built):
    d = built("fan-rules")
    by_title = {s.title: s.uses for s in d.steps}
    assert "grad_indep" in by_title["He backward"] and "grad_indep" in by_title["Glorot backward (small signal)"]
    assert "grad_indep" not in by_title["He forward"]
    assert "grad_indep" not in by_title["LeCun (forward, small signal)"]


def test_symmetry_names_the_no_noise_assumption(built):
    d = built("symmetry")
    assert "no_noise" in d.assumptions and "dropout" in d.assumptions["no_noise"]
    assert float(d.results["dropout_spread"][0]) > 0

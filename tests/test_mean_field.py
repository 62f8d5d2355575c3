"""Mean-field theory (derive/mean_field.py) against closed forms, mpmath quadrature and a NumPy Monte Carlo."""
import math

import numpy as np
import pytest

from varprop.derive import mean_field as mf
from varprop.derive.moments import moment


# --------------------------------------------------------------------------------------------------
# closed forms and published values
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("q, sw, sb", [(1.0, 2.0, 0.0), (0.3, 1.3, 0.1), (7.0, 2.5, 0.4)])
def test_relu_length_map_and_chi1_closed_forms(q, sw, sb):
    assert mf.length_map("relu", q, sw, sb) == pytest.approx(sw * q / 2 + sb, rel=1e-13)
    assert mf.chi1("relu", sw, sb, q=q) == pytest.approx(sw / 2, rel=1e-13)
    assert mf.length_map_slope("relu", q, sw) == pytest.approx(sw / 2, rel=1e-12)


def test_relu_fixed_point_closed_form_and_divergence():
    # q* = sigma_b^2 / (1 - sigma_w^2 / 2) below the critical line, unbounded above it
    assert mf.fixed_point("relu", 1.2, 0.3) == pytest.approx(0.3 / (1 - 0.6), rel=1e-12)
    assert mf.fixed_point("relu", 2.5, 0.3) == math.inf
    assert mf.fixed_point("relu", 1.0, 0.0) == 0.0


def test_critical_lines_published():
    # Poole et al. 2016 / Schoenholz et al. 2017: tanh is critical at sigma_w^2 = 1 when sigma_b^2 = 0 and at
    # sigma_w^2 ~ 1.76 when sigma_b^2 = 0.05; relu (He et al. 2015) at 2 for every sigma_b^2
    assert mf.critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-9)
    assert mf.critical_sigma_w2("tanh", 0.05) == pytest.approx(1.76, abs=0.005)
    for sb in (0.0, 0.05, 1.0):
        assert mf.critical_sigma_w2("relu", sb) == pytest.approx(2.0, rel=1e-12)
    assert mf.critical_sigma_w2("leaky_relu", 0.0, negative_slope=0.5) == pytest.approx(2 / 1.25, rel=1e-12)


def test_critical_point_is_chi1_one_at_its_fixed_point():
    sw = mf.critical_sigma_w2("tanh", 0.3)
    q = mf.fixed_point("tanh", sw, 0.3)
    assert mf.length_map("tanh", q, sw, 0.3) == pytest.approx(q, rel=1e-12)
    assert mf.chi1("tanh", sw, 0.3) == pytest.approx(1.0, abs=1e-10)
    xi_q, xi_c = mf.depth_scales("tanh", sw, 0.3)
    assert xi_c > 1e6 and 0 < xi_q < 10     # xi_c diverges on the critical line, xi_q stays finite


def test_depth_scales_against_definition():
    sw, sb = 1.2, 0.05
    q = mf.fixed_point("tanh", sw, sb)
    xi_q, xi_c = mf.depth_scales("tanh", sw, sb)
    assert xi_c == pytest.approx(-1 / math.log(mf.chi1("tanh", sw, sb)), rel=1e-12)
    # xi_q's rate E[phi'^2 + phi phi''] written out with tanh'' = -2 tanh (1 - tanh^2), by mpmath quadrature
    import mpmath as mp
    s = mp.sqrt(q)
    rate = sw * mp.quad(lambda z: ((1 - mp.tanh(s * z) ** 2) ** 2 - 2 * mp.tanh(s * z) ** 2
                                   * (1 - mp.tanh(s * z) ** 2)) * mp.npdf(z), [-mp.inf, 0, mp.inf])
    assert xi_q == pytest.approx(-1 / math.log(float(rate)), rel=1e-10)
    # the slope is the derivative of the length map (central difference)
    h = 1e-5 * q
    fd = (mf.length_map("tanh", q + h, sw, sb) - mf.length_map("tanh", q - h, sw, sb)) / (2 * h)
    assert mf.length_map_slope("tanh", q, sw) == pytest.approx(fd, rel=1e-8)


@pytest.mark.parametrize("act, params", [("tanh", {}), ("selu", {}), ("gelu", {}), ("hardtanh", {}),
                                         ("leaky_relu", {"negative_slope": "0.2"}), ("maxout", {"k": 3}),
                                         ("softplus", {})])
@pytest.mark.parametrize("q", [0.02, 1.0, 50.0])
def test_float_moments_agree_with_mpmath(act, params, q):
    g = mf.gaussian_moments(act, q, params)
    for kind, value in (("mean", g.mean), ("second", g.second), ("deriv2", g.deriv2)):
        ref = float(moment(act, kind, q=q, digits=16, closed=False, **params).value)
        assert value == pytest.approx(ref, rel=1e-12, abs=1e-14)


def test_limit_versus_exact_zero():
    # h -> 0+ keeps relu's E[phi'^2] = 1/2; h = 0 exactly has phi'(0) = 0
    assert mf.gaussian_moments("relu", 0.0, limit=True).deriv2 == pytest.approx(0.5)
    assert mf.gaussian_moments("relu", 0.0).deriv2 == 0.0
    assert mf.gaussian_moments("sigmoid", 0.0).mean == 0.5


def test_bad_input():
    with pytest.raises(ValueError, match="sigma_b2"):
        mf.length_map("tanh", 1.0, 1.0, -0.1)
    with pytest.raises(ValueError, match="unknown activation"):
        mf.chi1("nope", 1.0)
    with pytest.raises(ValueError, match="keep_prob"):
        mf.predict([4, 4], "relu", 0.5, keep_prob=0.0)
    with pytest.raises(ValueError, match="entries"):
        mf.predict([4, 4, 4], "relu", [0.5])
    with pytest.raises(ValueError, match="zero_branch"):
        mf.predict([4, 4, 4], "relu", 0.5, zero_branch=True)
    with pytest.raises(TypeError, match="widths"):
        mf.predict(4, "relu", 0.5)
    with pytest.raises(ValueError, match="widths"):
        mf.predict("4x1", "relu", 0.5)
    assert mf.predict("4x3", "relu", 0.5).depth == 2
    with pytest.raises(ValueError, match="q"):
        mf.gaussian_moments("tanh", float("nan"))


# --------------------------------------------------------------------------------------------------
# predictions against a small NumPy Monte Carlo of the same network
# --------------------------------------------------------------------------------------------------

def simulate(widths, act, v, trials, batch, seed, sigma_b2=0.0, keep_prob=1.0, batchnorm=False,
             residual=False, sphere_inputs=False):
    """Per-trial per-layer E[h^2], mean/std of x, std of g, in the convention of derive/mean_field.py."""
    from varprop.activations import get
    b = get(act)
    rng = np.random.default_rng(seed)
    L = len(widths) - 1
    out = {k: np.empty((trials, L)) for k in ("pre_q", "act_mean", "act_std", "grad_std")}
    for t in range(trials):
        x = rng.standard_normal((batch, widths[0]))
        if sphere_inputs:     # |x|^2 = n_0 exactly, so h_1 is exactly N(0, n_0 v)
            x *= np.sqrt(widths[0]) / np.linalg.norm(x, axis=1, keepdims=True)
        cache = []
        for i in range(L):
            W = rng.standard_normal((widths[i + 1], widths[i])) * np.sqrt(v)
            h = x @ W.T + rng.standard_normal(widths[i + 1]) * np.sqrt(sigma_b2)
            out["pre_q"][t, i] = np.mean(h * h)
            if batchnorm:
                mu, sd = h.mean(0), h.std(0)
                hn = (h - mu) / sd
            else:
                hn, sd = h, None
            y = b.numpy(hn)
            res = residual and i >= 1 and widths[i] == widths[i + 1]
            if res:
                y = x + y
            mask = None
            if keep_prob < 1 and i < L - 1:
                mask = (rng.random(y.shape) < keep_prob) / keep_prob
                y = y * mask
            cache.append((W, hn, sd, mask, res))
            x = y
            out["act_mean"][t, i], out["act_std"][t, i] = x.mean(), x.std()
        g = rng.standard_normal(x.shape)
        out["grad_std"][t, L - 1] = g.std()
        for i in range(L - 1, 0, -1):
            W, hn, sd, mask, res = cache[i]
            du = g * mask if mask is not None else g
            dh = du * b.numpy_derivative(hn)
            if batchnorm:
                dh = (dh - dh.mean(0) - hn * (dh * hn).mean(0)) / sd
            g = dh @ W + (du if res else 0)
            out["grad_std"][t, i - 1] = g.std()
    return out


def assert_within(mc, theory, k=5.0, bias=0.0):
    """Each layer's Monte Carlo mean within k standard errors (plus a stated O(1/n) bias) of the theory."""
    mean = mc.mean(0)
    se = mc.std(0, ddof=1) / np.sqrt(mc.shape[0])
    gap = np.abs(mean - theory)
    assert np.all(gap <= k * se + bias * np.abs(theory)), (mean, theory, se)


def test_relu_he_pre_q_is_exact_at_every_depth():
    # for relu E[x^2] = E[h^2] / 2 by symmetry and E[h'^2] = n v E[x^2] + sigma_b^2 at any width
    w = [64] * 6
    p = mf.predict(w, "relu", 2 / 64, sigma_b2=0.1)
    mc = simulate(w, "relu", 2 / 64, trials=60, batch=16, seed=1, sigma_b2=0.1)
    assert_within(mc["pre_q"], p.pre_q)
    assert_within(mc["grad_std"][:, -2:], p.grad_std[-2:])    # one backward step is exact


def test_relu_dropout_pre_q_and_grad():
    w = [64] * 5
    p = mf.predict(w, "relu", 2 * 0.8 / 64, keep_prob=0.8)
    assert np.allclose(p.pre_q, 1.6), p.pre_q                 # Var(w) = 2p/fan_in keeps q after layer 1
    mc = simulate(w, "relu", 2 * 0.8 / 64, trials=60, batch=16, seed=2, keep_prob=0.8)
    assert_within(mc["pre_q"], p.pre_q)
    assert_within(mc["grad_std"][:, -2:], p.grad_std[-2:])


def test_tanh_first_layer_exact_and_deep_layers_close():
    w = [128] * 5
    v = 1.5 / 128
    p = mf.predict(w, "tanh", v, sigma_b2=0.05)
    mc = simulate(w, "tanh", v, trials=40, batch=16, seed=3, sigma_b2=0.05, sphere_inputs=True)
    assert_within(mc["act_std"][:, :1], p.act_std[:1])
    # deeper layers carry the known O(1/n) finite-width bias of the mean field; 2/n relative here
    assert_within(mc["act_std"], p.act_std, bias=2 / 128)
    assert_within(mc["grad_std"], p.grad_std, bias=2 / 128)


def test_batchnorm_forward():
    # after batchnorm E[hn^2] = 1 exactly, so E[relu(hn)^2] = 1/2 and the next E[h^2] = n v / 2 (+ sigma_b^2)
    w = [32, 48, 48, 48]
    p = mf.predict(w, "relu", 3.0 / 48, sigma_b2=0.2, batchnorm=True)
    assert np.allclose(p.pre_q[1:], 48 * 3.0 / 48 / 2 + 0.2)
    mc = simulate(w, "relu", 3.0 / 48, trials=40, batch=32, seed=4, sigma_b2=0.2, batchnorm=True)
    assert_within(mc["pre_q"], p.pre_q)


def test_batchnorm_backward_large_batch():
    # the weight scale cancels in batchnorm's backward; the large-batch limit holds to O(1/m)
    w = [64] * 4
    for v in (0.5 / 64, 4.0 / 64):
        p = mf.predict(w, "tanh", v, batchnorm=True)
        mc = simulate(w, "tanh", v, trials=20, batch=256, seed=5, batchnorm=True)
        assert_within(mc["grad_std"], p.grad_std, bias=2 / 64 + 2 / 256)


def test_residual_and_zero_branch():
    w = [64] * 5
    p = mf.predict(w, "relu", 2 / 64, residual=True)
    # each He block adds Var(relu(h)) = E[h^2]/2 - E[relu(h)]^2 with E[h^2] = 2 E[x^2]: the variance grows
    assert np.all(np.diff(p.act_std) > 0)
    mc = simulate(w, "relu", 2 / 64, trials=40, batch=16, seed=6, residual=True)
    assert_within(mc["act_std"], p.act_std, bias=2 / 64)
    z = mf.predict(w, "relu", 2 / 64, residual=True, zero_branch=True, sigma_b2=0.0)
    assert np.allclose(z.act_std, z.act_std[0]) and np.allclose(z.grad_std, 1.0)
    assert z.dead[0] == 0.5 and np.all(z.dead[1:] == 1.0)


def test_maxout_rows_and_dead():
    p = mf.predict([32, 32, 32], "maxout", 1 / 32, params={"k": 2})
    # E[max(a, b)^2] = q for two iid N(0, q) (the max and min share the second moment 2q)
    assert p.pre_q[1] == pytest.approx(p.pre_q[0], rel=1e-12)
    assert np.isnan(p.dead).all()
    r = mf.predict([32, 32, 32], "leaky_relu", 2 / 32, params={"negative_slope": 0.1})
    assert np.all(r.dead == 0.0)


def test_correlation_map_fixed_points():
    q = mf.fixed_point("tanh", 1.5, 0.05)
    assert mf.correlation_map("tanh", 1.0, 1.5, 0.05) == pytest.approx(1.0, rel=1e-12)
    # the slope of the correlation map at c = 1 is chi_1 (Poole et al. 2016): a one-sided difference
    h = 1e-5
    slope = (1.0 - mf.correlation_map("tanh", 1 - h, 1.5, 0.05, q=q)) / h
    assert slope == pytest.approx(mf.chi1("tanh", 1.5, 0.05), rel=1e-3)
    # ordered phase: c* = 1 and chi_c = chi_1; chaotic phase: c* < 1 and chi_c < 1 < chi_1
    assert mf.chi_c("tanh", 1.5, 0.05) == (1.0, pytest.approx(mf.chi1("tanh", 1.5, 0.05)))
    c_star, chic = mf.chi_c("tanh", 3.0, 0.05)
    assert 0 < c_star < 1 and chic < 1 < mf.chi1("tanh", 3.0, 0.05)
    assert mf.correlation_map("tanh", c_star, 3.0, 0.05) == pytest.approx(c_star, abs=1e-10)
    with pytest.raises(ValueError, match="correlation"):
        mf.correlation_map("tanh", 1.5, 1.0)


def test_saturated_fraction():
    from scipy.special import ndtr
    x0 = math.atanh(math.sqrt(0.99))                 # |tanh'(x)| = 0.01 there
    for q in (0.5, 4.0):
        assert mf.saturated_fraction("tanh", q) == pytest.approx(2 * ndtr(-x0 / math.sqrt(q)), rel=1e-10)
        assert mf.saturated_fraction("hardtanh", q) == pytest.approx(2 * ndtr(-1 / math.sqrt(q)), rel=1e-12)
    assert mf.saturated_fraction("relu", 3.0) == 0.5
    assert mf.saturated_fraction("leaky_relu", 3.0) == 0.0       # |phi'| = 0.01 is not below 0.01
    # a non-monotone phi' (gelu's dips below 0.01 on a band of negative h): Monte Carlo within 5 SE
    from varprop.activations import get
    z = np.random.default_rng(23).standard_normal(2_000_000) * 3.0
    hit = (np.abs(get("gelu").numpy_derivative(z)) < 0.01).astype(float)
    assert abs(hit.mean() - mf.saturated_fraction("gelu", 9.0)) <= 5 * hit.std() / np.sqrt(z.size)
    p = mf.predict([32, 32, 32], "tanh", 3 / 32)
    assert p.saturated[0] == pytest.approx(mf.saturated_fraction("tanh", 3.0))

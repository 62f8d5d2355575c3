"""Batch norm over a finite batch (derive/finite_batch.py, predict(batch=B)) against exact moments and NumPy
Monte Carlo."""
import math

import numpy as np
import pytest

from varprop.activations import get
from varprop.derive import finite_batch as mb
from varprop.derive.mean_field import predict, saturated_fraction

EPS = 1e-5


def _normalize(h, eps=0.0):
    """Batch norm of each row of h (rows: units, columns: the batch), population variance."""
    c = h - h.mean(axis=1, keepdims=True)
    return c / np.sqrt((c * c).mean(axis=1, keepdims=True) + eps)


@pytest.mark.parametrize("batch", [3, 4, 5, 16, 1000])
def test_sphere_law_even_moments(batch):
    # hhat_1 = sqrt(B-1) x with x a coordinate of a uniform unit vector in B-1 dimensions:
    # E[hhat^2] = 1, E[hhat^4] = 3 (B-1)/(B+1), E[hhat^6] = 15 (B-1)^2 / ((B+1)(B+3))
    t, w = mb.sphere_nodes(batch)
    assert w.sum() == pytest.approx(1.0, abs=1e-13)
    assert w @ t ** 2 == pytest.approx(1.0, rel=1e-12)
    assert w @ t ** 4 == pytest.approx(3 * (batch - 1) / (batch + 1), rel=1e-12)
    assert w @ t ** 6 == pytest.approx(15 * (batch - 1) ** 2 / ((batch + 1) * (batch + 3)), rel=1e-11)
    assert np.all(np.abs(t) <= math.sqrt(batch - 1))


@pytest.mark.parametrize("batch", [3, 4, 6, 16])
def test_pair_law_exact_moments(batch):
    # sum_i hhat_i = 0 and sum_i hhat_i^2 = B give E[h1 h2] = -1/(B-1) and
    # E[h1^2 h2^2] = (B^2 - B E[h^4]) / (B (B-1)) from (sum h^2)^2 = B^2
    e4 = 3 * (batch - 1) / (batch + 1)
    assert mb.sphere_pair_expect(lambda a, b: a * b, batch) == pytest.approx(-1 / (batch - 1), rel=1e-12)
    assert mb.sphere_pair_expect(lambda a, b: b * b, batch) == pytest.approx(1.0, rel=1e-12)
    assert mb.sphere_pair_expect(lambda a, b: a * a * b * b, batch) == pytest.approx(
        (batch - e4) / (batch - 1), rel=1e-11)
    # a kink in the inner variable: the split panels must agree with the smooth route on a smooth f
    kinked = mb.sphere_pair_expect(lambda a, b: np.maximum(b, 0.0) * a, batch, cuts=(0.0,))
    assert kinked == pytest.approx(mb.sphere_pair_expect(lambda a, b: np.maximum(b, 0.0) * a, batch), rel=1e-3)


@pytest.mark.parametrize("act, batch", [("tanh", 4), ("tanh", 16), ("relu", 3), ("relu", 8), ("elu", 6),
                                        ("hardtanh", 5), ("abs", 9)])
def test_sphere_moments_against_monte_carlo(act, batch):
    b = get(act)
    m = mb.sphere_moments(act, batch)
    rng = np.random.default_rng(batch)
    n = 100_000
    # any mean and scale per unit: batch norm removes both
    h = rng.standard_normal((n, batch)) * rng.uniform(0.1, 3, (n, 1)) + rng.normal(0, 2, (n, 1))
    hn = _normalize(h)
    f, d = b.numpy(hn), b.numpy_derivative(hn)
    samples = {
        "mean": f.mean(1), "second": (f * f).mean(1), "cross": f[:, 0] * f[:, 1],
        "deriv2": (d * d).mean(1), "deriv2_h2": (hn * hn * d * d).mean(1),
        "cross_deriv": d[:, 0] * d[:, 1], "cross_deriv_h": hn[:, 0] * d[:, 0] * hn[:, 1] * d[:, 1],
    }
    for name, x in samples.items():
        se = x.std(ddof=1) / math.sqrt(n)
        assert abs(x.mean() - getattr(m, name)) <= 5 * se + 1e-12, name


def test_small_batches():
    t = get("tanh")
    m1, m2 = mb.sphere_moments("tanh", 1), mb.sphere_moments("tanh", 2)
    assert (m1.mean, m1.second) == (0.0, 0.0)
    assert m2.mean == 0.0 and m2.second == pytest.approx(math.tanh(1) ** 2, rel=1e-15)
    assert m2.cross == pytest.approx(-math.tanh(1) ** 2, rel=1e-15)
    assert m2.deriv2 == pytest.approx(float(t.numpy_derivative(np.float64(1.0))) ** 2, rel=1e-15)


def test_inverse_variance():
    # eps -> 0: E[1/s^2] = B/(lam (B-3)); with eps against direct quadrature over the chi-square law
    from scipy import integrate, stats
    assert mb.inverse_variance(2.0, 10, eps=0.0) == pytest.approx(10 / (2.0 * 7), rel=1e-15)
    for batch, lam, eps in [(3, 0.5, 1e-5), (4, 1.0, 1e-5), (16, 0.01, 1e-3)]:
        chi2 = stats.chi2(batch - 1)
        direct, _ = integrate.quad(lambda x: chi2.pdf(x) / (lam * x / batch + eps), 0, np.inf, points=None,
                                   limit=400, epsabs=0, epsrel=1e-10)
        assert mb.inverse_variance(lam, batch, eps) == pytest.approx(direct, rel=1e-7)
    assert mb.inverse_variance(1.0, 1, eps=EPS) == pytest.approx(1 / EPS)
    with pytest.raises(ValueError):
        mb.inverse_variance(-1.0, 8)


@pytest.mark.parametrize("act, batch, diag, off", [("tanh", 8, 1.0, 0.0), ("tanh", 8, 1.3, -1.3 / 7),
                                                   ("relu", 5, 0.7, 0.2), ("linear", 6, 1.0, -0.2)])
def test_projected_energy_against_monte_carlo(act, batch, diag, off):
    # the batch-norm backward P (g * phi'(hhat)) with g ~ N(0, (diag - off) I + off 1 1^T) independent of hhat
    b = get(act)
    m = mb.sphere_moments(act, batch)
    rng = np.random.default_rng(7)
    n = 100_000
    hn = _normalize(rng.standard_normal((n, batch)))
    cov = (diag - off) * np.eye(batch) + off * np.ones((batch, batch))
    lam, vec = np.linalg.eigh(cov)      # cov may be singular: the centered gradient below a batch-norm layer
    g = rng.standard_normal((n, batch)) @ (vec * np.sqrt(np.maximum(lam, 0))).T
    dhn = g * b.numpy_derivative(hn)
    dh = dhn - dhn.mean(1, keepdims=True) - hn * (dhn * hn).mean(1, keepdims=True)
    e = (dh * dh).mean(1)
    se = e.std(ddof=1) / math.sqrt(n)
    assert abs(e.mean() - mb.projected_energy(m, diag, off)) <= 5 * se


def _network(widths, act, v, batch, trials, seed, keep=1.0, residual=False):
    """NumPy Monte Carlo of the shared convention with batch norm: per-layer (act_std, grad_std) per trial."""
    b = get(act)
    rng = np.random.default_rng(seed)
    L = len(widths) - 1
    out = np.empty((trials, 2, L))
    for trial in range(trials):
        x = rng.standard_normal((batch, widths[0]))
        saved = []
        for i in range(L):
            w = rng.standard_normal((widths[i + 1], widths[i])) * math.sqrt(v)
            h = x @ w.T
            mu, var = h.mean(0), h.var(0)
            inv = 1 / np.sqrt(var + EPS)
            hn = (h - mu) * inv
            y = b.numpy(hn)
            res = residual and i >= 1 and widths[i] == widths[i + 1]
            if res:
                y = y + x
            mask = (rng.random(y.shape) < keep) / keep if i < L - 1 else np.ones_like(y)
            saved.append((w, hn, inv, mask, res))
            x = y * mask
            out[trial, 0, i] = x.std()
        g = rng.standard_normal(x.shape)
        for i in range(L - 1, -1, -1):
            w, hn, inv, mask, res = saved[i]
            out[trial, 1, i] = g.std()
            gt = g * mask
            dhn = gt * b.numpy_derivative(hn)
            dh = inv * (dhn - dhn.mean(0) - hn * (dhn * hn).mean(0))
            g = dh @ w + (gt if res else 0.0)
    return out


_SLOW = pytest.mark.slow


@pytest.mark.parametrize("act, batch, keep, residual", [pytest.param("tanh", 8, 1.0, False, marks=_SLOW),
                                                         ("relu", 6, 0.8, False), ("tanh", 7, 1.0, True),
                                                         pytest.param("relu", 12, 0.7, True, marks=_SLOW)])
def test_predict_against_numpy_network(act, batch, keep, residual):
    # B >= 6: below that E[1/s^4] is infinite, so per-trial gradient energies are heavy-tailed and a
    # standard error would not describe the Monte Carlo
    widths, v, trials = [512] * 5, 1.5 / 512, 60
    out = _network(widths, act, v, batch, trials, seed=batch, keep=keep, residual=residual)
    p = predict(widths, act, v, keep_prob=keep, batchnorm=True, residual=residual, batch=batch)
    for k, theory in ((0, p.act_std), (1, p.grad_std)):
        mean, se = out[:, k].mean(0), out[:, k].std(0, ddof=1) / math.sqrt(trials)
        se[se == 0] = 1e-12      # the upstream gradient's std is exactly its own
        z = (mean - theory) / se
        assert np.all(np.abs(z) <= 5), (k, z)
    # the infinite-batch theory is measurably wrong here, which is the point of batch=B
    inf = predict(widths, act, v, keep_prob=keep, batchnorm=True, residual=residual)
    assert np.max(np.abs(inf.grad_std - p.grad_std)) > 0.01


def test_limits_and_unchanged_paths():
    ws = [64] * 4
    base = predict(ws, "tanh", 1 / 64, batchnorm=True)
    big = predict(ws, "tanh", 1 / 64, batchnorm=True, batch=20000, bn_eps=0.0)
    assert np.allclose(big.act_std, base.act_std, rtol=1e-4)
    assert np.allclose(big.grad_std, base.grad_std, rtol=1e-3)
    # without batch norm the batch size changes nothing
    a, c = predict(ws, "relu", 2 / 64), predict(ws, "relu", 2 / 64, batch=4)
    assert np.array_equal(a.grad_std, c.grad_std) and np.array_equal(a.act_std, c.act_std)


def test_batch_of_one_and_two():
    p1 = predict([32] * 4, "tanh", 1 / 32, batchnorm=True, batch=1)
    assert np.all(p1.act_std == 0) and list(p1.grad_std) == [0.0, 0.0, 1.0]
    p2 = predict([32] * 4, "sigmoid", 1 / 32, batchnorm=True, batch=2)
    s1, s0 = 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1))
    assert p2.act_std == pytest.approx([abs(s1 - s0) / 2] * 3, rel=1e-14)
    assert np.isnan(p2.grad_std[0]) and p2.grad_std[-1] == 1.0


def test_saturated_fraction_under_batch_law():
    rng = np.random.default_rng(3)
    hn = _normalize(rng.standard_normal((200_000, 6)))
    frac = (np.abs(get("hardtanh").numpy_derivative(hn)) < 0.01).mean(1)
    se = frac.std(ddof=1) / math.sqrt(frac.size)
    assert abs(frac.mean() - saturated_fraction("hardtanh", 1.0, batch=6)) <= 5 * se


def test_bad_input():
    for bad in (0, -3):
        with pytest.raises(ValueError, match="batch"):
            predict([8, 8], "tanh", 0.1, batchnorm=True, batch=bad)
    for bad in (2.5, True, "16"):
        with pytest.raises(TypeError, match="batch"):
            predict([8, 8], "tanh", 0.1, batchnorm=True, batch=bad)
    with pytest.raises(ValueError, match="maxout"):
        predict([8, 8], "maxout", 0.1, batchnorm=True, batch=8, params={"k": 2})
    with pytest.raises(ValueError, match="bn_eps"):
        predict([8, 8], "tanh", 0.1, batchnorm=True, batch=8, bn_eps=-1.0)


@pytest.mark.parametrize("module", ["finite_batch", "mean_field"])
def test_doctests(module):
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(f"varprop.derive.{module}"))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.slow
def test_lecture_batchnorm_run_of_the_simulator():
    # the simulator's tanh network (4096 x 7, W = 0.01 randn) with batch norm at B = 16: the finite-batch
    # theory within 5 standard errors at every layer, where the infinite-batch one misses by ~90 of them
    from varprop.simulate import run
    r = run(widths="4096x7", batch=16, activation="tanh", init="normal(0, 0.01)", batchnorm=True, trials=20,
            seed=0, progress=False)
    p = predict("4096x7", "tanh", 1e-4, batchnorm=True, batch=16)
    for field, theory in (("act_std", p.act_std), ("grad_std", p.grad_std[:-1])):
        mean, se = r.mean(field), r.se(field)
        mean, se = (mean, se) if field == "act_std" else (mean[:-1], se[:-1])
        assert np.all(np.abs(mean - theory) <= 5 * se), field
    assert abs(r.mean("act_std")[0] - predict("4096x7", "tanh", 1e-4, batchnorm=True).act_std[0]) > 50 * r.se("act_std")[0]

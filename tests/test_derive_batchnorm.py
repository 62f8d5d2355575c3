"""Batch normalization (derive/batchnorm.py): the derived backward pass against central differences and PyTorch."""
import numpy as np
import pytest
import sympy as sp

from varprop.derive.derivations import batchnorm as bn


@pytest.mark.slow
def test_derivation_verifies():
    d = bn.build()
    assert d.verified, d.problems()
    titles = [s.title for s in d.steps]
    assert all(f"m = {m}: dL/dx_1" in titles for m in bn.EXPLICIT_SIZES)
    assert "dL/dx_k for any m" in titles


@pytest.mark.parametrize("m, k", [(3, 0), (4, 3)])
def test_explicit_gradient_identity(m, k):
    grad, closed = bn.explicit_gradient(m, k)
    assert sp.simplify(grad - closed) == 0
    # a plausible wrong formula, gamma/s (dy_k - mean(dy)) without the xhat term, is told apart
    g, S = sp.Symbol("gamma", real=True), sp.Symbol("s", positive=True)
    dys = sp.symbols(f"dy_1:{m + 1}", real=True)
    wrong = g / S * (dys[k] - sum(dys) / m)
    assert sp.simplify(grad - wrong) != 0


def _loss(x, gamma, beta, dy, eps):
    y, _ = bn.forward(x, gamma, beta, eps)
    return float(np.sum(dy * y))


@pytest.mark.parametrize("eps", [1e-5, 0.3])
def test_backward_against_central_differences(eps):
    rng = np.random.default_rng(41)
    x, dy = rng.normal(0.5, 2.0, (7, 3)), rng.standard_normal((7, 3))
    gamma, beta = rng.normal(1.0, 0.5, 3), rng.standard_normal(3)
    _, cache = bn.forward(x, gamma, beta, eps)
    dx, dgamma, dbeta = bn.backward(dy, cache)
    h = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = (_loss(xp, gamma, beta, dy, eps) - _loss(xm, gamma, beta, dy, eps)) / (2 * h)
    assert np.allclose(dx, num, rtol=1e-6, atol=1e-8)
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        ng = (_loss(x, gamma + e, beta, dy, eps) - _loss(x, gamma - e, beta, dy, eps)) / (2 * h)
        nb = (_loss(x, gamma, beta + e, dy, eps) - _loss(x, gamma, beta - e, dy, eps)) / (2 * h)
        assert dgamma[j] == pytest.approx(ng, rel=1e-6, abs=1e-8)
        assert dbeta[j] == pytest.approx(nb, rel=1e-6, abs=1e-8)


def test_backward_against_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(42)
    x, dy = rng.normal(-1.0, 3.0, (16, 5)), rng.standard_normal((16, 5))
    gamma, beta = rng.normal(1.0, 0.3, 5), rng.standard_normal(5)
    eps = 1e-5
    y, cache = bn.forward(x, gamma, beta, eps)
    dx, dgamma, dbeta = bn.backward(dy, cache)
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    yt = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    yt.backward(torch.tensor(dy))
    assert np.allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert np.allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert np.allclose(dgamma, gt.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert np.allclose(dbeta, bt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_scale_invariance_and_gradient_scaling_numerically():
    rng = np.random.default_rng(43)
    u, dy = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    W = rng.standard_normal((4, 2))

    def loss_and_grad(Wm):
        h = u @ Wm
        y, cache = bn.forward(h, np.ones(2), np.zeros(2), eps=0.0)
        dh, _, _ = bn.backward(dy, cache)
        return float(np.sum(dy * y)), u.T @ dh

    a = 3.7
    l1, g1 = loss_and_grad(W)
    l2, g2 = loss_and_grad(a * W)
    assert l2 == pytest.approx(l1, rel=1e-12)
    assert np.allclose(g2, g1 / a, rtol=1e-10, atol=1e-13)
    assert abs(np.sum(W * g1)) < 1e-10 * np.abs(g1).sum()     # Euler: w . grad = 0


def test_running_statistics_and_unbiased_variance():
    rng = np.random.default_rng(44)
    m, rho, T, trials = 4, 0.1, 30, 20000
    batches = rng.normal(2.0, 1.5, (trials, T, m))
    r = np.zeros(trials)
    for t in range(T):
        r = (1 - rho) * r + rho * batches[:, t].mean(1)
    expected = (1 - (1 - rho) ** T) * 2.0
    assert abs(r.mean() - expected) <= 5 * r.std() / np.sqrt(trials)
    biased = batches.var(2).ravel()
    assert abs(biased.mean() - (m - 1) / m * 1.5 ** 2) <= 5 * biased.std() / np.sqrt(biased.size)


def test_forward_rejects_bad_shapes():
    with pytest.raises(ValueError, match="batch"):
        bn.forward(np.ones((1, 3)), 1.0, 0.0)


@pytest.mark.slow
def test_no_linear_loss_assumption():
    from varprop.derive.derivations import batchnorm
    d = batchnorm.build()
    text = " ".join(d.assumptions.values())
    assert "linear in" not in text
    assert any("general loss" in s.title and s.verified for s in d.steps)


@pytest.mark.slow
def test_gradient_growth_rate_three_routes():
    """pi/(pi - 1): SymPy's closed form, derive.maps' float quadrature, SciPy's quadrature."""
    import math

    from scipy import integrate

    from varprop.derive import maps
    from varprop.derive.derivations import batchnorm
    d = batchnorm.build()
    closed = float(d.results["relu_gradient_growth"][0])
    assert closed == pytest.approx(math.pi / (math.pi - 1), rel=1e-15)
    pdf = (lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi))
    m1 = integrate.quad(lambda z: z * pdf(z), 0, np.inf)[0]
    m2 = integrate.quad(lambda z: z * z * pdf(z), 0, np.inf)[0]
    assert closed == pytest.approx(0.5 / (m2 - m1 ** 2), rel=1e-10)
    assert maps.batchnorm_gradient_rate("relu") == pytest.approx(closed, rel=1e-12)


@pytest.mark.slow
def test_gradient_growth_in_the_simulator():
    """The simulator's batch-normalized ReLU network: the gradient's second moment grows per layer by
    pi/(pi - 1) up to the finite-batch excess (about 1% per layer at batch 128, Yang et al. 2019)."""
    import math

    from varprop.simulate import run
    r = run(widths="256x9", batch=128, activation="relu", init="he_normal", batchnorm=True, trials=8, seed=0,
            progress=False)
    g = r.mean("grad_std")
    rate = (g[0] / g[-1]) ** (2 / (len(g) - 1))
    assert rate == pytest.approx(math.pi / (math.pi - 1), rel=0.03)
    plain = run(widths="256x9", batch=128, activation="relu", init="he_normal", trials=8, seed=0, progress=False)
    gp = plain.mean("grad_std")
    assert (gp[0] / gp[-1]) ** (2 / (len(gp) - 1)) == pytest.approx(1.0, abs=0.05)

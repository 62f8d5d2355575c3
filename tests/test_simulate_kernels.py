"""The simulator's fused kernels against their NumPy references, and one dense network against autograd."""
import math

import numpy as np
import pytest

from varprop.activations import get
from varprop.simulate import kernels
from varprop.simulate.gram import GRAM_CHUNK, GRAM_MAX_ROWS, gram
from varprop.simulate.config import Config
from varprop.simulate.engines import PURPOSE, _batchnorm, _batchnorm_backward, _range_basis, simulate_trial
from varprop.streams import key, uniform_at

CASES = [("tanh", {}), ("relu", {}), ("leaky_relu", {"negative_slope": "0.2"}), ("selu", {}), ("gelu", {}),
         ("hardtanh", {}), ("sigmoid", {}), ("maxout", {"k": 3}), ("abs", {})]


@pytest.mark.parametrize("name,params", CASES)
@pytest.mark.parametrize("residual,keep", [(False, 1.0), (True, 0.7)])
@pytest.mark.parametrize("parallel", [False, True])
def test_kernels_match_reference(name, params, residual, keep, parallel, monkeypatch):
    monkeypatch.setattr(kernels, "PARALLEL_MIN", 0 if parallel else 1 << 40)
    act = get(name, **params)
    rng = np.random.default_rng(3)
    n = 3 * kernels.BLOCK + 17  # several blocks, the last one partial
    h = rng.normal(scale=2.0, size=(5, act.arity * n))
    h[:, :7] = -np.abs(h[:, :7])  # units negative over the whole batch: dead for the relu family
    res = rng.normal(size=(5, n)) if residual else None
    k = key(11, 2, 3)
    x, d, s = kernels.forward(act, h, res, k, keep)
    x_ref, d_ref, s_ref = kernels.forward_reference(act, h, res, k, keep)
    np.testing.assert_allclose(x, x_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d, d_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s, s_ref, rtol=1e-10, atol=1e-9)
    g = rng.normal(size=(5, n))
    dh, gt, t = kernels.backward(act, g.copy(), d, k, keep)
    dh_ref, gt_ref, t_ref = kernels.backward_reference(act, g, d, k, keep)
    np.testing.assert_allclose(dh, dh_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gt, gt_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t, t_ref, rtol=1e-10, atol=1e-9)


def test_dead_and_saturated_counts():
    act = get("relu")
    h = np.array([[-1.0, 2.0, -3.0], [-0.5, -1.0, 4.0]])
    _, _, s = kernels.forward(act, h)
    assert s[5] == 1.0          # only unit 0 is zero for the whole batch
    assert s[4] == 4.0          # four entries have phi'(h) = 0 < 0.01


def test_dropout_mask_reads_the_counter():
    act = get("linear")
    h = np.ones((3, 50))
    k = key(5, 1, 1, PURPOSE["dropout"])
    x, _, _ = kernels.forward(act, h, None, k, 0.6)
    expect = np.array([[uniform_at(k, b * 50 + j) <= 0.6 for j in range(50)] for b in range(3)]) / 0.6
    np.testing.assert_array_equal(x, expect)


def test_batchnorm_backward_central_differences():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(6, 4))
    w = rng.normal(size=(6, 4))
    hn, inv = _batchnorm(h)
    grad = _batchnorm_backward(w, hn, inv)
    eps = 1e-6
    num = np.empty_like(h)
    for i in np.ndindex(h.shape):
        hp, hm = h.copy(), h.copy()
        hp[i] += eps
        hm[i] -= eps
        num[i] = (np.sum(w * _batchnorm(hp)[0]) - np.sum(w * _batchnorm(hm)[0])) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


def test_range_basis_singular():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 3))
    u, lam = _range_basis(a @ a.T)
    assert lam.size == 3
    np.testing.assert_allclose((u * lam) @ u.T, a @ a.T, atol=1e-12)


@pytest.mark.parametrize("opts", [{}, {"sigma_b2": 0.3, "dropout": 0.25},
                                  {"residual": True, "batchnorm": True, "sigma_b2": 0.1}])
def test_dense_network_against_torch_autograd(opts):
    torch = pytest.importorskip("torch")
    cfg = Config.build(widths=[7, 6, 6, 5], batch=4, activation="tanh", init="he_uniform", trials=1, seed=9,
                       engine="dense", dtype="float64", **opts)
    stats, _ = simulate_trial(cfg, 0)
    from varprop.simulate.rng import normal
    from varprop.streams import key as stream_key

    def _key(cfg, trial, layer, purpose):   # the streams' naming rule, from outside the engine
        return stream_key(cfg.seed, trial, layer, PURPOSE[purpose])
    x = torch.tensor(normal(cfg.seed, (0, 0, PURPOSE["inputs"]), (4, 7)))
    xs, ws = [], []
    for layer in range(1, cfg.depth + 1):
        w = torch.tensor(cfg.law.sample(_key(cfg, 0, layer, "weights"), cfg.shape(layer), np.float64),
                         requires_grad=True)
        h = x @ w.T
        if cfg.sigma_b2 > 0:
            h = h + torch.tensor(normal(cfg.seed, (0, layer, PURPOSE["bias"]), (h.shape[1],),
                                        std=math.sqrt(cfg.sigma_b2)))
        if cfg.batchnorm:
            h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5)
        y = torch.tanh(h)
        if cfg.is_residual(layer):
            y = y + x
        if layer < cfg.depth and cfg.dropout > 0:
            k = _key(cfg, 0, layer, "dropout")
            n = y.shape[1]
            m = np.array([[uniform_at(k, b * n + j) <= cfg.keep for j in range(n)] for b in range(4)])
            y = y * torch.tensor(m / cfg.keep)
        y.retain_grad()
        xs.append(y)
        ws.append(w)
        x = y
    g = torch.tensor(normal(cfg.seed, (0, cfg.depth + 1, PURPOSE["upstream"]), tuple(x.shape)))
    (x * g).sum().backward()
    for i, (y, w) in enumerate(zip(xs, ws)):
        yd = y.detach().numpy()
        assert stats["act_std"][i] == pytest.approx(yd.std(), rel=1e-10)
        assert stats["act_mean"][i] == pytest.approx(yd.mean(), rel=1e-9, abs=1e-12)
        assert stats["grad_std"][i] == pytest.approx(y.grad.numpy().std(), rel=1e-10)
        assert stats["weight_grad_norm"][i] == pytest.approx(float(torch.linalg.norm(w.grad)), rel=1e-9)


@pytest.mark.parametrize("name", ["tanh", "relu", "selu", "sigmoid"])
def test_plain_forward_block_is_the_general_one_bit_for_bit(name):
    """The branch-free block (k = 1, no residual, no dropout) sums in the general block's order."""
    act = get(name)
    p0, p1 = act.kernel_params()
    h = np.random.default_rng(4).normal(size=(5, 3 * kernels.BLOCK + 7))
    nblk = (h.shape[1] + kernels.BLOCK - 1) // kernels.BLOCK
    outs = []
    for plain in (False, True):
        x, d, part = np.empty_like(h), np.empty_like(h), np.empty((nblk, 6))
        if act.code == 2:
            np.tanh(h, out=d)
        for blk in range(nblk):
            if plain:
                kernels._forward_block_plain(blk, h, act.code, p0, p1, x, d, part)
            else:
                kernels._forward_block(blk, h, act.code, p0, p1, 1, np.empty((1, 1)), False, np.uint64(0), 1.0,
                                       x, d, part)
        outs.append((x, d, part))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


# -- the Gram kernel ------------------------------------------------------------------------------------

@pytest.mark.parametrize("p,q,n", [(16, 16, 4096), (5, 7, 1000), (3, 3, GRAM_CHUNK + 1), (1, 1, 10),
                                   (17, 9, 2 * GRAM_CHUNK - 3), (64, 64, 256)])
def test_gram_matches_matmul_on_any_thread_count(p, q, n):
    rng = np.random.default_rng(p * 1000 + q * 10 + n)
    a, b = rng.standard_normal((p, n)), rng.standard_normal((q, n))
    ab = gram(a, b, parallel=False)
    aa = gram(a, parallel=False)
    # a different summation order than the BLAS: agreement to a few ulps of the sums' magnitudes
    scale = np.sqrt(n) * np.finfo(np.float64).eps * 50
    assert np.abs(ab - a @ b.T).max() <= scale * np.abs(a).max() * np.abs(b).max() * np.sqrt(n)
    assert np.abs(aa - a @ a.T).max() <= scale * np.abs(a).max() ** 2 * np.sqrt(n)
    assert np.array_equal(aa, aa.T)                                  # exactly symmetric
    assert np.array_equal(ab, gram(a, b, parallel=True))     # the same bits with the thread team
    assert np.array_equal(aa, gram(a, parallel=True))


def test_gram_large_row_counts_go_through_blas_and_nan_propagates():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((GRAM_MAX_ROWS + 1, 50))
    np.testing.assert_allclose(gram(a), a @ a.T, rtol=1e-12, atol=1e-12)
    b = rng.standard_normal((6, 700))
    b[2, 600] = np.nan
    g = gram(b)
    assert np.isnan(g[2]).all() and np.isnan(g[:, 2]).all() and np.isfinite(np.delete(np.delete(g, 2, 0), 2, 1)).all()
    b[2, 600] = np.inf
    assert not np.isfinite(gram(b)[2, 2])


def test_gram_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same n"):
        gram(np.ones((2, 3)), np.ones((2, 4)))


# -- the engines' Gaussian fill: its kernel against the NumPy reference, and against exact Box-Muller ----------

@pytest.mark.parametrize("n", [1, 2, 7, 8192, 2 * 4096 + 1, 3 * 8192 + 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fill_normal_is_the_reference_bit_for_bit_on_any_thread_count(n, dtype):
    import numba

    from varprop.simulate.rng import fill_normal, normal_reference
    k = key(4, 1, 2)
    ref = normal_reference(k, n)
    outs = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            outs.append(fill_normal(k, np.empty(n, dtype)))
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for out in outs:
        assert np.array_equal(out.astype(np.float32), ref)     # float64 out: the same normals, widened
    assert np.array_equal(fill_normal(k, np.empty(n, dtype), 1.5, 2.0), (1.5 + 2.0 * ref.astype(dtype)).astype(dtype))


def test_fill_normal_against_float64_box_muller_on_the_same_bits():
    from varprop.simulate.rng import normal_reference
    k, n = key(9, 3), 400_000
    from varprop.streams import words
    z = words(k, n // 2)
    u = ((z >> np.uint64(32)).astype(np.float64) + 0.5) / 2.0 ** 32
    t = 2 * np.pi * ((z & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) / 2.0 ** 32
    r = np.sqrt(-2 * np.log(u))
    exact = np.empty(n)
    exact[0::2], exact[1::2] = r * np.cos(t), r * np.sin(t)
    got = normal_reference(k, n).astype(np.float64)
    # float32 arithmetic: u is rounded to 24 bits, which moves r by up to ~5e-6 where u is near 1
    assert np.abs(got - exact).max() < 1e-5
    big = np.abs(exact) > 0.5
    assert (np.abs(got - exact)[big] / np.abs(exact[big])).max() < 4e-6


def test_fill_normal_moments_and_tails():
    from scipy import stats

    from varprop.simulate.rng import fill_normal
    n = 4_000_000
    z = fill_normal(key(21, 7), np.empty(n))
    se = 1 / math.sqrt(n)
    assert abs(z.mean()) < 4 * se
    assert abs(z.var() - 1) < 4 * math.sqrt(2) * se
    assert abs((z ** 4).mean() - 3) < 4 * math.sqrt(96) * se
    assert stats.kstest(z[:1_000_000], "norm").pvalue > 1e-3
    # the two normals of a pair are independent: uncorrelated, and so are their squares
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 4 * math.sqrt(2) * se
    assert abs(np.corrcoef(z[0::2] ** 2, z[1::2] ** 2)[0, 1]) < 4 * math.sqrt(2) * se
    # the tail beyond 4 sigma: P = 6.33e-5, binomial standard error
    p = 2 * stats.norm.sf(4.0)
    assert abs((np.abs(z) > 4).mean() - p) < 4 * math.sqrt(p / n)

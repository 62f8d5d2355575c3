"""Each Numba kernel of nn/kernels.py against its NumPy reference, in float32 and float64."""
import numpy as np
import pytest

from varprop import streams
from varprop.activations import get, names
from varprop.nn import kernels as K

DTYPES = [np.float32, np.float64]
# float32 kernels evaluate phi in float64 and round once; the NumPy reference works in float32 throughout
RTOL = {np.float32: 2e-6, np.float64: 1e-13}


def _a(shape, dtype, seed=0, scale=2.0):
    return (np.random.default_rng(seed).normal(scale=scale, size=shape)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", [n for n in names() if n != "maxout"])
def test_bias_activation_forward_and_backward(act, dtype):
    bound = get(act)
    h = _a((7, 5), dtype)
    b = _a(5, dtype, seed=1)
    dy = _a((7, 5), dtype, seed=2)
    want_h, want_y = K.bias_act_forward_ref(h, b, bound)
    y = np.empty_like(h)
    K.bias_act_forward(h, b, bound.code, *bound.kernel_params(), y)
    np.testing.assert_allclose(h, want_h, rtol=RTOL[dtype], atol=1e-6)
    np.testing.assert_allclose(y, want_y, rtol=RTOL[dtype], atol=1e-6)
    dh = np.empty_like(h)
    K.act_backward(dy, h, bound.code, *bound.kernel_params(), dh)
    np.testing.assert_allclose(dh, K.act_backward_ref(dy, h, bound), rtol=RTOL[dtype], atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_rrelu_maxout(dtype):
    h0 = _a((6, 4), dtype)
    b = _a(4, dtype, seed=1)
    a = np.array([0.1, 0.2, 0.3, 0.4], dtype)
    dy = _a((6, 4), dtype, seed=2)
    h, y, dh, da = h0.copy(), np.empty_like(h0), np.empty_like(h0), np.empty(4, dtype)
    K.prelu_forward(h, b, a, y)
    K.prelu_backward(dy, h, a, dh, da)
    ry, rd, ra = K.prelu_ref(h0 + b, a)
    np.testing.assert_allclose(y, ry, rtol=RTOL[dtype])
    np.testing.assert_allclose(dh, dy * rd, rtol=RTOL[dtype])
    np.testing.assert_allclose(da, (dy * ra).sum(axis=0), rtol=RTOL[dtype] * 10, atol=1e-6)

    key = streams.key(3, 1, 2, 2)
    slopes = 0.125 + (1 / 3 - 0.125) * K.stream_uniforms(key, 6, 4)
    h = h0.copy()
    K.rrelu_forward(h, b, key, 0.125, 1 / 3, y)
    K.rrelu_backward(dy, h, key, 0.125, 1 / 3, dh)
    hb = h0 + b
    np.testing.assert_allclose(y, np.where(hb > 0, hb, slopes * hb), rtol=RTOL[dtype])
    np.testing.assert_allclose(dh, dy * np.where(hb > 0, 1, slopes), rtol=RTOL[dtype])

    h = _a((5, 6), dtype)
    want_y, want_arg = K.maxout_ref(h, 3)
    y, arg = np.empty((5, 2), dtype), np.empty((5, 2), np.int32)
    K.maxout_forward(h.copy(), np.zeros(6, dtype), 3, y, arg)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(arg, want_arg)
    d = np.empty((5, 6), dtype)
    K.maxout_backward(dy[:5, :2].copy(), arg, 3, d)
    assert np.count_nonzero(d) <= 10 and d.sum() == pytest.approx(dy[:5, :2].sum(), rel=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_masks_from_the_stream(dtype):
    x = _a((9, 7), dtype)
    key = streams.key(1, 5, 3, 1)
    u = K.stream_uniforms(key, 9, 7)
    y, mask = np.empty_like(x), np.empty_like(x)
    K.dropout_forward(x, key, 0.6, y, mask)
    ry, rm = K.dropout_ref(x, u, 0.6)
    np.testing.assert_allclose(y, ry, rtol=RTOL[dtype])
    np.testing.assert_allclose(mask, rm, rtol=RTOL[dtype])
    a, alpha_p = 1.7, -1.758
    K.alpha_dropout_forward(x, key, 0.6, a, alpha_p, y, mask)
    ry, rm = K.alpha_dropout_ref(x, u, 0.6, a, alpha_p)
    np.testing.assert_allclose(y, ry, rtol=RTOL[dtype], atol=1e-6)
    np.testing.assert_allclose(mask, rm, rtol=RTOL[dtype])
    dx = np.empty_like(x)
    K.mask_multiply(x, mask, dx)
    np.testing.assert_array_equal(dx, x * mask)


def test_dropout_keep_rate_within_five_standard_errors():
    n, keep = 200_000, 0.7
    x = np.ones((1, n))
    y, mask = np.empty_like(x), np.empty_like(x)
    K.dropout_forward(x, streams.key(11, 0, 1, 1), keep, y, mask)
    rate = np.count_nonzero(mask) / n
    assert abs(rate - keep) < 5 * np.sqrt(keep * (1 - keep) / n)
    assert abs(y.mean() - 1.0) < 5 * np.sqrt((1 - keep) / keep / n)   # inverted dropout keeps the mean


def test_alpha_dropout_keeps_zero_mean_and_unit_variance():
    from varprop.nn.layers import AlphaDropout
    n = 200_000
    x = np.random.default_rng(0).normal(size=(1, n))
    d = AlphaDropout(0.2)
    y = d.forward(x, train=True)
    # standard errors of the sample mean and variance of a unit-variance sample (kurtosis ~ 3 + a bit)
    assert abs(y.mean()) < 5 / np.sqrt(n)
    assert abs(y.var() - 1.0) < 5 * np.sqrt(3.0 / n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_kernels(dtype):
    x = _a((8, 5), dtype, scale=3.0) + 4
    gamma, beta = _a(5, dtype, seed=1), _a(5, dtype, seed=2)
    xhat, y = np.empty_like(x), np.empty_like(x)
    mean, inv = np.empty(5, dtype), np.empty(5, dtype)
    rm, rv = np.full(5, 0.5, dtype), np.full(5, 2.0, dtype)
    K.batchnorm_train_forward(x, gamma, beta, 1e-5, xhat, y, mean, inv, rm, rv, 0.25)
    ry, rxhat, rmean, rinv = K.batchnorm_ref(x.astype(np.float64), gamma, beta, 1e-5)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for got, want in ((y, ry), (xhat, rxhat), (mean, rmean), (inv, rinv)):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    x64 = x.astype(np.float64)     # running estimates: PyTorch's update, unbiased variance
    np.testing.assert_allclose(rm, 0.75 * 0.5 + 0.25 * x64.mean(axis=0), rtol=tol)
    np.testing.assert_allclose(rv, 0.75 * 2.0 + 0.25 * x64.var(axis=0, ddof=1), rtol=tol)
    dy = _a((8, 5), dtype, seed=3)
    dx, dg, db = np.empty_like(x), np.empty(5, dtype), np.empty(5, dtype)
    K.batchnorm_backward(dy, xhat, gamma, inv, dx, dg, db)
    for got, want in zip((dx, dg, db), K.batchnorm_backward_ref(dy, xhat, gamma, inv)):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_kernels(dtype):
    z = _a((6, 4), dtype)
    y = np.array([0, 3, 1, 2, 3, 0])
    g, rows = np.empty_like(z), np.empty(6)
    total, bad = K.softmax_xent(z, y, g, rows)
    rrows, rg = K.softmax_xent_ref(z.astype(np.float64), y)
    np.testing.assert_allclose(rows, rrows, rtol=RTOL[dtype] * 10)
    np.testing.assert_allclose(g, rg, rtol=RTOL[dtype] * 10, atol=1e-7)
    assert bad == -1 and total == pytest.approx(rrows.sum(), rel=RTOL[dtype] * 10)
    total, bad = K.hinge_loss(z, y, 1.0, g, rows)
    rrows, rg = K.hinge_ref(z.astype(np.float64), y, 1.0)
    np.testing.assert_allclose(rows, rrows, rtol=RTOL[dtype] * 10, atol=1e-6)
    np.testing.assert_allclose(g, rg, rtol=RTOL[dtype] * 10)
    assert bad == -1 and total == pytest.approx(rrows.sum(), rel=RTOL[dtype] * 10)


@pytest.mark.parametrize("label", [-1, 4, 2 ** 40])
def test_loss_kernels_find_a_label_out_of_range_before_reading_by_it(label):
    """The kernels check the labels themselves (the losses no longer take y.min and y.max per batch):
    they name the first bad row and write nothing."""
    z = _a((5, 4), np.float32)
    y = np.array([0, 3, label, 1, label], np.int64)
    for kernel, args in ((K.softmax_xent, ()), (K.hinge_loss, (1.0,))):
        g, rows = np.full_like(z, 7.0), np.full(5, 7.0)
        assert kernel(z, y, *args, g, rows) == (0.0, 2)
        assert np.all(g == 7.0) and np.all(rows == 7.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l1", [0.0, 0.5])
def test_add_penalty(dtype, l1):
    """g + l2 w + l1 sign(w) computed in the arrays' dtype, element for element (NaN stays NaN)."""
    w = np.array([-2.0, 0.0, 3.0, 1e-3, np.nan], dtype)
    g = np.linspace(0.5, 1.5, 5).astype(dtype)
    f = np.dtype(dtype).type
    want = g + (f(0.1) * w + f(l1) * np.sign(w))
    K.add_penalty(g, w, l1, 0.1)
    assert g.dtype == dtype
    np.testing.assert_array_equal(g[:4], want[:4])
    assert np.isnan(g[4])


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_and_serial_updates_give_the_same_bits(dtype):
    n = 5 * K.CHUNK + 12345          # several chunks and a ragged last one
    rng = np.random.default_rng(5)

    def fresh():
        return [rng.normal(size=n).astype(dtype) for _ in range(4)] + [np.empty(n, dtype)]

    f = np.dtype(dtype).type
    cases = [(K.adaptive_step_serial, K.adaptive_step_parallel, (f(1e-3), f(1.1), f(1e-8), f(b1), f(0.999), acc, f(2e-3), f(1e-4)))
             for b1, acc in ((0.9, False), (0.0, False), (0.0, True))]
    for serial, parallel, args in cases:
        p, g, m, v, bk = fresh()
        p2, g2, m2, v2, bk2 = (a.copy() for a in (p, g, m, v, bk))
        v, v2 = np.abs(v), np.abs(v2)
        serial(p, g, m, v, bk, *args)
        parallel(p2, g2, m2, v2, bk2, *args)
        for a, b in ((p, p2), (m, m2), (v, v2), (bk, bk2)):
            np.testing.assert_array_equal(a, b)
    for nesterov in (False, True):
        p, g, v, _, bk = fresh()
        p2, g2, v2, bk2 = p.copy(), g.copy(), v.copy(), bk.copy()
        K.momentum_step_serial(p, g, v, bk, f(0.01), f(0.9), nesterov, f(2e-3), f(1e-3))
        K.momentum_step_parallel(p2, g2, v2, bk2, f(0.01), f(0.9), nesterov, f(2e-3), f(1e-3))
        np.testing.assert_array_equal(p, p2)
        np.testing.assert_array_equal(v, v2)
    g, w = rng.normal(size=n).astype(dtype), rng.normal(size=n).astype(dtype)
    g2 = g.copy()
    K.add_penalty_serial(g, w, 0.1, 0.2)
    K.add_penalty_parallel(g2, w, 0.1, 0.2)
    np.testing.assert_array_equal(g, g2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather_rows_is_take(dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 13)).astype(dtype)
    idx = rng.permutation(50)[:17]
    out = np.full((17, 13), np.nan, dtype)
    K.gather_rows(X, idx, out)
    np.testing.assert_array_equal(out, np.take(X, idx, axis=0))


def test_float32_updates_run_in_float32_arithmetic():
    """The documented contract: float32 parameters are updated in float32 arithmetic, so the kernels give
    the bits of the same formula evaluated in float32 by NumPy (a float64 evaluation rounded once differs)."""
    f = np.float32
    rng = np.random.default_rng(5)
    n = 4096
    p, g, m = (rng.standard_normal(n).astype(f) for _ in range(3))
    v = np.abs(rng.standard_normal(n)).astype(f)
    a, s, eps, b1, b2, wd, d = f(1e-3), f(1.03), f(1e-8), f(0.9), f(0.999), f(0.01), f(1e-5)
    gi = g + wd * p
    mi = b1 * m + (f(1) - b1) * gi
    vi = b2 * v + (f(1) - b2) * gi * gi
    want = p - a * mi / (s * np.sqrt(vi) + eps) - d * p
    P, M, V, back = p.copy(), m.copy(), v.copy(), np.empty_like(p)
    K.adaptive_step(P, g, M, V, back, a, s, eps, b1, b2, False, wd, d)
    assert P.dtype == np.float32
    np.testing.assert_array_equal(M, mi)
    np.testing.assert_array_equal(V, vi)
    np.testing.assert_array_equal(P, want)
    np.testing.assert_array_equal(back, p)
    lr, mu = f(0.05), f(0.9)
    buf = rng.standard_normal(n).astype(f)
    for nesterov in (False, True):
        gi = g + wd * p
        b = mu * buf + gi
        step = (gi + mu * b) if nesterov else (f(0) * gi + f(1) * b)
        want = p - lr * step - d * p
        P, B = p.copy(), buf.copy()
        K.momentum_step(P, g, B, back, lr, mu, nesterov, wd, d)
        np.testing.assert_array_equal(B, b)
        np.testing.assert_array_equal(P, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_finds_every_kind_of_non_finite_value_anywhere(dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(37, 23)).astype(dtype) * (np.finfo(dtype).max / 10)   # large but finite
    assert K.all_finite(X) and K.all_finite(np.asfortranarray(X)) and K.all_finite(X[:, ::3])
    for bad in (np.nan, np.inf, -np.inf, -np.nan):
        for where in [(0, 0), (36, 22), (17, 5)]:
            Y = X.copy()
            Y[where] = bad
            assert not K.all_finite(Y) and not K.all_finite(np.asfortranarray(Y))
            assert K.all_finite(Y) == bool(np.isfinite(Y).all())
    assert K.all_finite(np.empty((0, 3), dtype)) and K.all_finite(np.arange(6).reshape(2, 3))
    sub = np.ones((4, 6), dtype)
    sub[2, 4] = np.nan
    assert not K.all_finite(sub[:, ::2][:, 2:]) and K.all_finite(sub[:, ::2][:, :2])   # strided views

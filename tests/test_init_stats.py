"""Every initializer draws from the law it claims: KS tests and variances within 5 standard errors.

The law each initializer should follow is built here from scipy.stats, independently of the package; the
variance the package derives (``init.variance(shape)``) must equal that law's variance and the sample
variance within 5 standard errors, SE = sqrt((mu4 - var^2) / n) with mu4 the law's fourth central moment.
Seeds are fixed, so a test cannot flake; both random sources (int seed, numpy Generator) are checked.
"""
import math

import numpy as np
import pytest
from scipy import stats

from varprop.nn import init

SHAPES = [(64, 128), (200, 50), (32, 16, 3, 3), (16, 8, 5)]
SOURCES = ["seed", "generator"]


def _rng(kind, seed):
    return seed if kind == "seed" else np.random.default_rng(seed)


def _law(ini, shape):
    """The scipy distribution an iid initializer should follow, from its stated parameters."""
    p = ini.params(shape)
    if ini.distribution == "normal":
        return stats.norm(p["mean"], p["std"])
    if ini.distribution == "uniform":
        return stats.uniform(p["low"], p["high"] - p["low"])
    if ini.distribution == "truncated_normal":
        return stats.truncnorm(p["a"], p["b"], loc=p["loc"], scale=p["scale"])
    raise AssertionError(ini.distribution)


def _expected_variance(name, kwargs, shape):
    """The published formula for each preset, written from the papers (torch layout)."""
    fan_in = shape[1] * math.prod(shape[2:])
    fan_out = shape[0] * math.prod(shape[2:])
    base = name.split("_")[0]
    if name.startswith("dropout_he"):
        return 2.0 * kwargs["keep_prob"] / fan_in
    if base in ("he", "kaiming"):
        return 2.0 / (fan_out if kwargs.get("mode") == "fan_out" else fan_in)
    if base in ("xavier", "glorot"):
        return kwargs.get("gain", 1.0) ** 2 * 2.0 / (fan_in + fan_out)
    if base == "lecun":
        return 1.0 / fan_in
    if name == "normal":
        return kwargs["std"] ** 2
    if name == "uniform":
        return (kwargs["high"] - kwargs["low"]) ** 2 / 12
    if name == "truncated_normal":
        return kwargs["std"] ** 2
    raise AssertionError(name)


IID = [
    ("he_normal", {}), ("he_uniform", {}), ("he_truncated_normal", {}),
    ("kaiming_normal", {"mode": "fan_out"}), ("kaiming_uniform", {"mode": "fan_out"}),
    ("xavier_normal", {}), ("glorot_uniform", {}), ("xavier_uniform", {"gain": 1.5}),
    ("glorot_truncated_normal", {}),
    ("lecun_normal", {}), ("lecun_uniform", {}), ("lecun_truncated_normal", {}),
    ("dropout_he_normal", {"keep_prob": 0.8}), ("dropout_he_uniform", {"keep_prob": 0.5}),
    ("normal", {"std": 0.3, "mean": 0.1}), ("uniform", {"low": -0.5, "high": 2.0}),
    ("truncated_normal", {"std": 0.7}),
]


def _check_sample(w, law, variance, mean):
    x = w.astype(np.float64).ravel()
    n = x.size
    assert stats.kstest(x, law.cdf).pvalue > 1e-4
    var = law.var()
    mu4 = (law.stats(moments="k") + 3.0) * var ** 2          # kurtosis is excess kurtosis
    assert variance == pytest.approx(var, rel=1e-12)
    assert abs(x.var(ddof=1) - var) < 5 * math.sqrt((mu4 - var ** 2) / n)
    assert mean == pytest.approx(law.mean(), abs=1e-12)
    assert abs(x.mean() - mean) < 5 * math.sqrt(var / n)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,kwargs", IID, ids=[n for n, _ in IID])
def test_iid_initializers_follow_their_law(name, kwargs, shape, source):
    ini = init.get(name, **kwargs)
    assert ini.variance(shape) == pytest.approx(_expected_variance(name, kwargs, shape), rel=1e-12)
    w = ini(shape, rng=_rng(source, 1234), dtype=np.float32)
    assert w.shape == shape and w.dtype == np.float32
    _check_sample(w, _law(ini, shape), ini.variance(shape), ini.mean(shape))


@pytest.mark.parametrize("activation", ["tanh", "gelu", "silu", "mish", "selu", "sigmoid", "elu"])
def test_for_activation_follows_its_law_with_the_exact_gain(activation):
    from scipy import integrate
    from varprop.activations import get as get_act
    phi = get_act(activation)
    # the forward scale by an independent quadrature: 1 / E[phi(z)^2], z ~ N(0, 1)
    second = integrate.quad(lambda z: float(phi.numpy(np.array(z))) ** 2 * stats.norm.pdf(z), -40, 40,
                            epsabs=1e-13, epsrel=1e-12)[0]
    shape = (128, 96)
    ini = init.for_activation(activation)
    assert ini.variance(shape) == pytest.approx(1.0 / (second * 96), rel=1e-8)
    w = ini(shape, rng=5)
    _check_sample(w, _law(ini, shape), ini.variance(shape), 0.0)


def test_truncated_normal_gives_the_std_asked_for():
    for std, low, high in [(1.0, -2.0, 2.0), (0.05, -2.0, 2.0), (2.0, -1.0, 3.0), (1.0, 2.5, 4.0)]:
        ini = init.get("truncated_normal", std=std, low=low, high=high)
        law = stats.truncnorm(low, high, scale=ini.params((10, 10))["scale"])
        assert law.std() == pytest.approx(std, rel=1e-12)
        assert ini.std((10, 10)) == pytest.approx(std, rel=1e-15)
        w = ini((400, 250), rng=9, dtype=np.float64)
        assert w.min() >= low * law.kwds["scale"] - 1e-12 and w.max() <= high * law.kwds["scale"] + 1e-12
        _check_sample(w, law, ini.variance((400, 250)), ini.mean((400, 250)))


def test_truncated_normal_far_tail_uses_the_inverse_cdf_and_stays_exact():
    ini = init.TruncatedNormal(1.0, 5.0, 9.0)
    for rng in (3, np.random.default_rng(3)):
        w = ini((100, 100), rng=rng, dtype=np.float64)
        law = stats.truncnorm(5.0, 9.0, scale=ini.sigma)
        assert stats.kstest(w.ravel(), law.cdf).pvalue > 1e-4


@pytest.mark.parametrize("shape", [(64, 256), (256, 64), (32, 8, 3, 3), (50, 50)], ids=str)
@pytest.mark.parametrize("source", SOURCES)
def test_orthogonal_is_orthogonal_and_has_the_sphere_marginal(shape, source):
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):            # small QRs: a second BLAS thread only spins on a busy machine
        _check_orthogonal(shape, source)


def _check_orthogonal(shape, source):
    gain = 1.7
    ini = init.get("orthogonal", gain=gain)
    w = ini(shape, rng=_rng(source, 21), dtype=np.float64)
    m = w.reshape(shape[0], -1) / gain
    rows, cols = m.shape
    small = m @ m.T if rows <= cols else m.T @ m
    assert np.abs(small - np.eye(min(rows, cols))).max() < 1e-5
    w32 = ini(shape, rng=_rng(source, 21))
    m32 = w32.reshape(shape[0], -1).astype(np.float64) / gain
    small32 = m32 @ m32.T if rows <= cols else m32.T @ m32
    assert np.abs(small32 - np.eye(min(rows, cols))).max() < 1e-5
    n = max(rows, cols)
    # an entry is a coordinate of a uniform point on S^(n-1): its square is Beta(1/2, (n-1)/2)
    x = m.ravel()
    cdf = lambda t: 0.5 + 0.5 * np.sign(t) * stats.beta.cdf(t * t, 0.5, (n - 1) / 2)   # noqa: E731
    assert stats.kstest(x, cdf).pvalue > 1e-4
    # the squares sum to min(rows, cols) exactly, so the variance is exact
    assert np.mean(w ** 2) == pytest.approx(ini.variance(shape), rel=1e-10)
    assert ini.variance(shape) == pytest.approx(gain ** 2 / n, rel=1e-15)


@pytest.mark.parametrize("source", SOURCES)
def test_sparse_zeros_exactly_per_column_and_normal_elsewhere(source):
    shape, sparsity, std = (300, 80), 0.3, 0.02
    ini = init.get("sparse", sparsity=sparsity, std=std)
    w = ini(shape, rng=_rng(source, 4), dtype=np.float64)
    zeros = math.ceil(sparsity * shape[0])
    assert ((w == 0).sum(axis=0) == zeros).all()
    nz = w[w != 0]
    assert stats.kstest(nz, stats.norm(0, std).cdf).pvalue > 1e-4
    var = ini.variance(shape)
    assert var == pytest.approx(std ** 2 * (1 - zeros / shape[0]), rel=1e-15)
    keep = 1 - zeros / shape[0]
    mu4 = keep * 3 * std ** 4
    assert abs(w.var() - var) < 5 * math.sqrt((mu4 - var ** 2) / w.size)
    # the zero pattern differs between columns: positions are random
    assert len({tuple(np.flatnonzero(w[:, j] == 0)) for j in range(shape[1])}) > shape[1] // 2


@pytest.mark.parametrize("name,kwargs,shape", [
    ("zeros", {}, (3, 4)), ("ones", {}, (2, 5, 3)), ("constant", {"value": -0.25}, (7,)),
    ("eye", {}, (3, 5)), ("identity", {}, (6, 4)), ("dirac", {}, (4, 3, 3, 3)),
    ("dirac", {"groups": 2}, (6, 5, 3)), ("dirac", {}, (2, 2, 3, 3, 3)),
])
def test_deterministic_fills_and_their_moments(name, kwargs, shape):
    ini = init.get(name, **kwargs)
    w = ini(shape, rng=0, dtype=np.float64)
    assert w.shape == shape
    assert ini.mean(shape) == pytest.approx(w.mean(), abs=1e-15)
    assert ini.variance(shape) == pytest.approx(w.var(), abs=1e-15)
    if name in ("eye", "identity"):
        assert np.array_equal(w, np.eye(*shape))
    if name == "dirac":
        # a dirac kernel convolved with x returns x on the first min(out/groups, in) channels of each group
        g = kwargs.get("groups", 1)
        per = shape[0] // g
        centre = tuple(d // 2 for d in shape[2:])
        for o in range(shape[0]):
            for i in range(shape[1]):
                expect = 1.0 if (o % per == i and i < min(per, shape[1])) else 0.0
                assert w[(o, i) + centre] == expect
        assert w.sum() == g * min(per, shape[1])


def test_fixup_scales_he_by_the_published_factor():
    L, m = 16, 3
    ini = init.get("fixup", num_blocks=L, layers_per_block=m)
    shape = (128, 64)
    assert ini.variance(shape) == pytest.approx(2.0 / 64 * L ** (-2.0 / (2 * m - 2)), rel=1e-12)
    branch = init.fixup_branch(L, m)
    assert len(branch) == m and branch[-1].distribution == "constant"
    assert not branch[-1](shape).any()
    w = ini(shape, rng=8, dtype=np.float64)
    _check_sample(w, _law(ini, shape), ini.variance(shape), 0.0)


def test_float16_and_float64_dtypes():
    for dt in (np.float16, np.float64):
        w = init.he_uniform((64, 64), rng=1, dtype=dt)
        assert w.dtype == dt
        limit = math.sqrt(6 / 64)
        assert np.abs(w.astype(np.float64)).max() <= limit * (1 + 1e-3)


def test_jax_layout_fans_are_the_transposed_torch_fans():
    a = init.variance_scaling(2.0, "fan_in", "normal", layout="jax")
    b = init.variance_scaling(2.0, "fan_in", "normal")
    assert a.variance((3, 3, 64, 128)) == b.variance((128, 64, 3, 3)) == 2.0 / (64 * 9)
    w = a((3, 3, 64, 128), rng=2)
    _check_sample(w, _law(a, (3, 3, 64, 128)), a.variance((3, 3, 64, 128)), 0.0)

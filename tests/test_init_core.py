"""The core of varprop.nn.init: fans, variance_scaling, presets, seeds, bad input, import cost, kernels."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from varprop.nn import init
from varprop.nn.init import ziggurat
from varprop.streams import key


def test_fans_follow_pytorch_and_jax_conventions():
    assert init.fans((10, 20)) == (20, 10)
    assert init.fans((64, 3, 5, 5)) == (75, 1600)
    assert init.fans((5, 5, 3, 64), layout="jax") == (75, 1600)
    assert init.fans((5, 5, 3, 64), layout="keras") == (75, 1600)
    assert init.fans((7, 3, 4), layout=(0, 2)) == (7 * 3, 4 * 3)
    assert init.fans((2, 7, 3, 4), layout=(1, 3, 0)) == (7 * 3, 4 * 3)     # a batch axis is not a fan
    assert init.fan((10, 20), "fan_avg") == 15 and init.fan((10, 40), "fan_geo_avg") == 20


def test_fans_agree_with_torch_when_installed():
    torch = pytest.importorskip("torch")
    for shape in [(10, 20), (64, 3, 5, 5), (8, 4, 3), (2, 3, 4, 5, 6)]:
        assert init.fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_scales_come_from_the_derived_gains():
    from varprop.derive.gains import forward_scale_value
    assert init.get("he_normal").scale == forward_scale_value("relu") == 2.0
    assert init.get("lecun_normal").scale == forward_scale_value("linear") == 1.0
    leaky = init.get("he_normal", nonlinearity="leaky_relu", negative_slope=0.2)
    assert leaky.scale == pytest.approx(2 / (1 + 0.2 ** 2), rel=1e-14)
    assert init.get("he_normal", nonlinearity="tanh", gain="torch").scale == pytest.approx(25 / 9)
    assert init.get("he_normal", nonlinearity="tanh").scale == pytest.approx(1.5925374197228312 ** 2,
                                                                               rel=1e-12)
    assert init.get("he_normal", gain=1.5).scale == 2.25


def test_backward_mode_uses_the_backward_scale():
    from scipy import integrate
    # an independent route: 1 / E[tanh'(z)^2], z ~ N(0, 1), by adaptive quadrature
    e, err = integrate.quad(lambda z: (1 - np.tanh(z) ** 2) ** 2 * np.exp(-z * z / 2) / np.sqrt(2 * np.pi),
                            -np.inf, np.inf, epsabs=1e-14, epsrel=1e-13)
    ini = init.for_activation("tanh", mode="fan_out")
    assert ini.variance((30, 10)) == pytest.approx(1 / e / 30, rel=1e-10)
    assert init.for_activation("relu", mode="fan_out").variance((30, 10)) == 2 / 30


@pytest.mark.slow
def test_every_registered_activation_has_a_for_activation_initializer():
    from varprop.activations import names
    for name in names():
        ini = init.for_activation(name)
        v = ini.variance((10, 10))
        assert math.isfinite(v) and v > 0, name


def test_names_and_aliases_resolve():
    for name in init.names():
        kwargs = {"sparse": {"sparsity": 0.1}, "variance_scaling": {"scale": 1.0},
                  "for_activation": {"name": "relu"},
                  "fixup": {"num_blocks": 4, "layers_per_block": 2}}.get(name, {})
        if name.startswith("dropout"):
            kwargs = {"keep_prob": 0.9}
        ini = init.get(name, **kwargs)
        assert isinstance(ini, init.Initializer)
        assert ini.distribution in ("normal", "truncated_normal", "uniform", "constant", "orthogonal",
                                    "sparse", "eye", "dirac")
    assert init.get("kaiming_uniform").name == "he_uniform"
    assert init.get("glorot_normal").variance((4, 6)) == init.get("xavier_normal").variance((4, 6))
    ini = init.get("he_normal")
    assert init.get(ini) is ini


def test_array_functions_match_get():
    w = init.he_normal((30, 40), 5, np.float64, mode="fan_out")
    assert np.array_equal(w, init.get("he_normal", mode="fan_out")((30, 40), rng=5, dtype=np.float64))
    assert np.array_equal(init.constant((2, 3), value=0.5), np.full((2, 3), 0.5, dtype=np.float32))
    import inspect
    sig = inspect.signature(init.kaiming_uniform)
    assert list(sig.parameters)[:3] == ["shape", "rng", "dtype"]
    assert "nonlinearity" in sig.parameters and "negative_slope" in sig.parameters


def test_seeds_reproduce_and_differ():
    for name, kw in [("he_normal", {}), ("xavier_uniform", {}), ("truncated_normal", {"std": 0.1}),
                     ("orthogonal", {}), ("sparse", {"sparsity": 0.2})]:
        a = init.get(name, **kw)((50, 30), rng=11)
        assert np.array_equal(a, init.get(name, **kw)((50, 30), rng=11)), name
        assert not np.array_equal(a, init.get(name, **kw)((50, 30), rng=12)), name
        g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
        assert np.array_equal(init.get(name, **kw)((50, 30), rng=g1), init.get(name, **kw)((50, 30), rng=g2))
    # a Generator is used as given: it advances, so the next draw differs
    g = np.random.default_rng(0)
    assert not np.array_equal(init.he_normal((5, 5), g), init.he_normal((5, 5), g))
    # None draws a fresh seed each time
    assert not np.array_equal(init.he_normal((5, 5)), init.he_normal((5, 5)))


def test_float32_and_float64_draws_agree_for_a_seed():
    a = init.he_normal((40, 50), 3, np.float64)
    b = init.he_normal((40, 50), 3, np.float32)
    assert np.array_equal(a.astype(np.float32), b)


_THREADS_SCRIPT = """
import hashlib, numpy as np
from varprop.nn import init
arrays = [init.he_normal((513, 257), rng=7), init.truncated_normal((300, 301), rng=7, std=0.2),
          init.xavier_uniform((100, 99), rng=7), init.sparse((64, 40), rng=7, sparsity=0.25)]
print(hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest())
"""


@pytest.mark.slow
def test_a_seed_gives_the_same_bits_whatever_the_thread_count():
    digests = set()
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT], env=env, capture_output=True,
                             text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_import_is_light():
    # not even Numba is imported until a first fill: nothing can compile at import
    code = ("import sys, varprop.nn.init as i; "
            "print('sympy' in sys.modules, 'torch' in sys.modules, 'numba' in sys.modules, "
            "'varprop.nn.init.ziggurat' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False", "False"]
    # building an initializer (scales from derive/) still imports no SymPy and compiles nothing
    code = ("import sys, varprop.nn.init as i; i.get('he_normal'); i.for_activation('gelu'); "
            "print('sympy' in sys.modules, 'varprop.nn.init.ziggurat' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- the ziggurat kernels against their NumPy reference, and the parts a KS test cannot see ---------------

def test_ziggurat_kernels_match_the_reference_bit_for_bit():
    k = key(42, 1, 2)
    out = np.empty(10001)
    ziggurat.fill_normal(k, out, 0.0, 1.0, ziggurat.TABLE_X, ziggurat.TABLE_R)
    assert np.array_equal(out, ziggurat.normal_reference(k, out.size))
    for lo, hi in [(-2.0, 2.0), (-0.5, 1.0)]:
        ziggurat.fill_truncated(k, out, 0.0, 1.0, lo, hi, ziggurat.TABLE_X, ziggurat.TABLE_R)
        assert np.array_equal(out, ziggurat.truncated_reference(k, out.size, lo, hi))


def test_ziggurat_tables_close_the_top_layer():
    x = ziggurat.TABLE_X
    r, v = x[1], x[0] * math.exp(-0.5 * x[1] ** 2)
    # every layer has area v: the top layer x[255] * (1 - f(x[255])) must also be v
    assert x[255] * (1 - math.exp(-0.5 * x[255] ** 2)) == pytest.approx(v, rel=1e-8)
    # the base layer: rectangle r f(r) plus the tail mass
    assert r * math.exp(-0.5 * r * r) + math.sqrt(2 * math.pi) * stats.norm.sf(r) == pytest.approx(v, rel=1e-9)


def test_ziggurat_tail_and_wedges_have_the_right_mass():
    n = 4_000_000
    z = np.empty(n)
    ziggurat.fill_normal(key(8, 0), z, 0.0, 1.0, ziggurat.TABLE_X, ziggurat.TABLE_R)
    r = ziggurat.TABLE_X[1]
    # the tail beyond r comes only from the slow path: its count is Binomial(n, 2 Q(r))
    p = 2 * stats.norm.sf(r)
    tail = np.abs(z) > r
    assert abs(tail.sum() - n * p) < 5 * math.sqrt(n * p * (1 - p))
    t = np.abs(z[tail]) - r
    cond = stats.norm(0, 1)
    assert stats.kstest(t, lambda s: 1 - cond.sf(r + s) / cond.sf(r)).pvalue > 1e-4
    # the mass in each layer's wedge band (x[l+1], x[l]) matches the normal's
    x = ziggurat.TABLE_X
    for lyr in (2, 50, 128, 200, 254):
        lo, hi = x[lyr + 1], x[lyr]
        q = 2 * (cond.cdf(hi) - cond.cdf(lo))
        cnt = ((np.abs(z) > lo) & (np.abs(z) <= hi)).sum()
        assert abs(cnt - n * q) < 5 * math.sqrt(n * q * (1 - q)), lyr


# -- bad input --------------------------------------------------------------------------------------------

BAD = [
    (lambda: init.he_normal((10,)), "at least 2 dimensions"),
    (lambda: init.he_normal((10, 0)), "positive"),
    (lambda: init.he_normal((10, -3)), "positive"),
    (lambda: init.he_normal((10, 2.5)), "integers"),
    (lambda: init.he_normal("ab"), "integers"),
    (lambda: init.variance_scaling(-1.0, "fan_in", "normal"), "scale"),
    (lambda: init.variance_scaling(float("nan"), "fan_in", "normal"), "finite"),
    (lambda: init.variance_scaling(float("inf"), "fan_in", "normal"), "finite"),
    (lambda: init.variance_scaling(1.0, "fan_middle", "normal"), "mode"),
    (lambda: init.variance_scaling(1.0, "fan_in", "cauchy"), "distribution"),
    (lambda: init.variance_scaling(1.0, "fan_in", "normal", layout="tf"), "layout"),
    (lambda: init.fans((3, 4), layout=(0, 0)), "differ"),
    (lambda: init.fans((3, 4, 5), layout=(0, 1, (1,))), "differ"),
    (lambda: init.fans((3, 4), layout=(0, 5)), "out of range"),
    (lambda: init.get("he_gaussian"), "unknown initializer"),
    (lambda: init.get("he_normal", slope=0.1), "slope"),
    (lambda: init.get("he_normal", mode="fan_avg"), "mode"),
    (lambda: init.get("he_normal", nonlinearity="relu", negative_slope=0.1), "leaky_relu only"),
    (lambda: init.get("he_normal", nonlinearity="gelu", gain="torch"), "PyTorch"),
    (lambda: init.get("he_normal", gain="approx"), "gain"),
    (lambda: init.get("he_normal", nonlinearity="swishy"), "unknown activation"),
    (lambda: init.get("normal", std=-1.0), "std"),
    (lambda: init.get("uniform", low=1.0, high=0.0), "low <= high"),
    (lambda: init.get("truncated_normal", low=2.0, high=-2.0), "a < b"),
    (lambda: init.get("truncated_normal", low=40.0, high=50.0), "no probability mass"),
    (lambda: init.get("sparse", sparsity=1.5), "sparsity"),
    (lambda: init.sparse((3, 4, 5), sparsity=0.5), "2-D"),
    (lambda: init.eye((3, 4, 5)), "2-D"),
    (lambda: init.dirac((3, 4)), "3-, 4- or 5-D"),
    (lambda: init.dirac((3, 4, 3), groups=2), "divisible"),
    (lambda: init.get("dropout_he_normal", keep_prob=0.0), "keep_prob"),
    (lambda: init.get("dropout_he_normal", keep_prob=1.5), "keep_prob"),
    (lambda: init.fixup_scale(4, 1), "m >= 2"),
    (lambda: init.fixup_scale(0, 2), "num_blocks"),
    (lambda: init.he_normal((3, 4), rng=-1), "seed"),
    (lambda: init.he_normal((3, 4), rng=1.5), "rng"),
    (lambda: init.he_normal((3, 4), dtype=np.int32), "floating"),
    (lambda: init.for_activation("tanh", mode="fan_avg"), "mode"),
    (lambda: init.for_activation("relu", distribution="laplace"), "distribution"),
    (lambda: init.constant((2, 2), value=float("nan")), "finite"),
    (lambda: init.zeros((2, 2), rng="seed"), "rng"),
    (lambda: init.eye((2, 2), rng=-5), "seed"),
]


@pytest.mark.parametrize("call,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_raises_value_error_with_a_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


_TRUNC_STD = stats.truncnorm(-2, 2).std()


# -- hypothesis: any shape, mode, distribution and layout -----------------------------------------------

@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=2, max_size=4),
       mode=st.sampled_from(init.MODES), distribution=st.sampled_from(init.DISTRIBUTIONS),
       layout=st.sampled_from(["torch", "jax"]), scale=st.floats(0.01, 10.0),
       seed=st.integers(0, 2 ** 64 - 1), generator=st.booleans())
def test_variance_scaling_for_any_shape_mode_distribution(shape, mode, distribution, layout, scale, seed,
                                                          generator):
    shape = tuple(shape)
    ini = init.variance_scaling(scale, mode, distribution, layout=layout)
    if layout == "torch":
        fan_in, fan_out = shape[1] * math.prod(shape[2:]), shape[0] * math.prod(shape[2:])
    else:
        fan_in, fan_out = shape[-2] * math.prod(shape[:-2]), shape[-1] * math.prod(shape[:-2])
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
         "fan_geo_avg": math.sqrt(fan_in * fan_out)}[mode]
    assert ini.variance(shape) == pytest.approx(scale / n, rel=1e-12)
    rng = (lambda: np.random.default_rng(seed)) if generator else (lambda: seed)
    w = ini(shape, rng=rng(), dtype=np.float64)
    assert w.shape == shape and np.isfinite(w).all()
    assert np.array_equal(w, ini(shape, rng=rng(), dtype=np.float64))
    std = math.sqrt(scale / n)
    if distribution == "uniform":
        assert np.abs(w).max() <= math.sqrt(3) * std
    if distribution == "truncated_normal":
        assert np.abs(w).max() <= 2 * std / _TRUNC_STD * (1 + 1e-12)


def test_documented_differences_are_computed_and_agree_with_independent_values():
    from varprop.nn.init import differences
    rows = {r.key: r for r in differences.table()}
    assert rows["tanh"].theirs == 5 / 3 and rows["tanh"].exact == pytest.approx(1.5925374197228312, rel=1e-12)
    assert rows["selu"].theirs == 0.75 and rows["selu"].exact == pytest.approx(1.0, rel=1e-12)
    assert rows["trunc_normal"].theirs == pytest.approx(stats.truncnorm(-2, 2).std(), rel=1e-12)
    assert rows["linear_default"].theirs == pytest.approx(1 / 3, rel=1e-15)
    assert rows["keras_normal"].theirs == pytest.approx(2 / stats.truncnorm(-2, 2).std(), rel=1e-12)
    assert differences.main([]) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_scale_whose_draws_overflow_the_dtype_is_refused(dtype):
    from varprop.nn.init import variance_scaling
    scale = 1e300 if dtype is np.float32 else 1.7e308
    big = variance_scaling(scale, distribution="normal")
    if dtype is np.float64:      # std 6.5e153 at fan 4: draws of 1e154 fit a float64
        assert np.isfinite(big((4, 4), rng=0, dtype=dtype)).all()
        return
    with pytest.raises(ValueError, match=r"scale 1e\+300 gives std 5e\+149 .* overflow float32"):
        big((4, 4), rng=0, dtype=dtype)
    assert np.isfinite(variance_scaling(1e70)((4, 4), rng=0, dtype=dtype)).all()   # std 5e34, draws < 3.4e38


def test_basic_laws_whose_draws_overflow_are_refused():
    from varprop.nn.init import Normal, Uniform
    with pytest.raises(ValueError, match="std 1e\\+39 .* overflow float32"):
        Normal(1e39)((3, 3), rng=0)
    with pytest.raises(ValueError, match="overflow float32"):
        Uniform(-1e39, 1e39)((3, 3), rng=0)


def test_an_expression_is_an_initializer_wherever_a_name_is():
    """get("normal(0, sqrt(2/fan_in))") draws what he_normal draws, bit for bit (same law, same source)."""
    shape = (64, 48)
    np.testing.assert_array_equal(init.get("normal(0, sqrt(2/fan_in))")(shape, rng=3),
                                  init.get("he_normal")(shape, rng=3))
    with pytest.raises(ValueError, match="options apply to an initializer name"):
        init.get("normal(0, 1)", mode="fan_in")
    with pytest.raises(ValueError, match="underflows to 0"):
        init.get("normal(0, 1e-400)")


@pytest.mark.parametrize("text,variance", [
    ("uniform(-sqrt(6/(fan_in+fan_out)), sqrt(6/(fan_in+fan_out)))", 2 / (300 + 200)),
    ("truncated_normal(sqrt(2/fan_in), -2, 2)", 2 / 300 * 0.7737413),     # Var of N(0,1) cut at +-2
    ("normal(0.1, sqrt(1/fan_out))", 1 / 200),
])
def test_expression_draws_have_the_expression_variance(text, variance):
    e = init.get(text)
    assert e.variance((200, 300)) == pytest.approx(variance, rel=1e-6)
    w = e((200, 300), rng=0, dtype=np.float64).ravel()
    # sample variance within 5 standard errors (SE of s^2 ~ sqrt((m4 - s^4)/n), m4 estimated)
    se = math.sqrt((np.mean((w - w.mean()) ** 4) - w.var() ** 2) / w.size)
    assert abs(w.var() - variance) < 5 * se
    assert abs(w.mean() - e.mean((200, 300))) < 5 * w.std() / math.sqrt(w.size)

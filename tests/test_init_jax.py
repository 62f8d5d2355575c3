"""The JAX-style front end: jax.nn.initializers' names, defaults and semantics, with NumPy arrays."""
import math

import numpy as np
import pytest
from scipy import stats

from varprop.nn.init import jax as jinit


def _var_ok(x, var, mu4_over_var2):
    x = np.asarray(x, dtype=np.float64).ravel()
    return abs(x.var(ddof=1) - var) < 5 * var * math.sqrt((mu4_over_var2 - 1) / x.size)


TRUNC = stats.truncnorm(-2, 2)


@pytest.mark.parametrize("factory,scale,mode,kind", [
    (jinit.he_normal, 2.0, "fan_in", "truncated_normal"), (jinit.he_uniform, 2.0, "fan_in", "uniform"),
    (jinit.kaiming_normal, 2.0, "fan_in", "truncated_normal"),
    (jinit.lecun_normal, 1.0, "fan_in", "truncated_normal"), (jinit.lecun_uniform, 1.0, "fan_in", "uniform"),
    (jinit.glorot_normal, 1.0, "fan_avg", "truncated_normal"),
    (jinit.xavier_uniform, 1.0, "fan_avg", "uniform"),
])
def test_presets_are_jax_variance_scaling(factory, scale, mode, kind):
    shape = (3, 3, 32, 48)                       # (*kernel, in, out)
    fan_in, fan_out = 9 * 32, 9 * 48
    var = scale / (fan_in if mode == "fan_in" else (fan_in + fan_out) / 2)
    init = factory()
    assert init.variance(shape) == pytest.approx(var, rel=1e-12)
    w = init(0, shape)
    assert w.shape == shape and w.dtype == np.float32
    std = math.sqrt(var)
    law = (stats.uniform(-std * math.sqrt(3), 2 * std * math.sqrt(3)) if kind == "uniform"
           else stats.truncnorm(-2, 2, scale=std / TRUNC.std()))
    assert stats.kstest(w.ravel(), law.cdf).pvalue > 1e-4
    assert _var_ok(w, var, law.stats(moments="k") + 3)
    assert np.array_equal(w, init(0, shape)) and np.array_equal(init(np.random.default_rng(1), shape),
                                                                init(np.random.default_rng(1), shape))


def test_axes_and_batch_axis():
    init = jinit.variance_scaling(1.0, "fan_in", "normal", in_axis=0, out_axis=1, batch_axis=(2,))
    assert init.variance((10, 20, 7)) == 1 / 10
    assert jinit.variance_scaling(1.0, "fan_out", "normal", in_axis=0, out_axis=1).variance((10, 20, 7)) \
        == 1 / 140


def test_simple_factories_follow_jax_defaults():
    w = jinit.normal()(3, (200, 100))
    assert _var_ok(w, 1e-4, 3.0)
    u = jinit.uniform()(3, (200, 100))
    assert u.min() >= 0.0 and u.max() <= 1e-2
    assert stats.kstest(u.ravel(), stats.uniform(0, 1e-2).cdf).pvalue > 1e-4
    # JAX's truncated_normal(stddev) is not corrected: its std is 0.8796 stddev
    t = jinit.truncated_normal(1.0)(3, (300, 300))
    assert np.abs(t).max() <= 2.0
    assert stats.kstest(t.ravel(), TRUNC.cdf).pvalue > 1e-4
    assert _var_ok(t, TRUNC.var(), TRUNC.stats(moments="k") + 3)
    assert np.array_equal(jinit.zeros(0, (2, 3)), np.zeros((2, 3), np.float32))
    assert np.array_equal(jinit.ones(0, (2, 3), np.float64), np.ones((2, 3)))
    assert np.array_equal(jinit.constant(-2.0)(0, (4,)), np.full(4, -2.0, np.float32))


@pytest.mark.parametrize("shape,axis", [((6, 4, 5), -1), ((6, 4, 5), 0), ((30, 8), -1), ((8, 30), -1)])
def test_orthogonal_columns_along_the_column_axis(shape, axis):
    w = jinit.orthogonal(scale=2.0, column_axis=axis)(7, shape, np.float64)
    assert w.shape == shape
    cols = shape[axis]
    m = np.moveaxis(w, axis, -1).reshape(-1, cols) / 2.0
    small = m.T @ m if m.shape[0] >= cols else m @ m.T
    assert np.abs(small - np.eye(min(m.shape))).max() < 1e-10
    assert jinit.orthogonal(2.0, axis).variance(shape) == 4.0 / max(m.shape)


def test_delta_orthogonal_is_orthogonal_at_the_centre_and_zero_elsewhere():
    shape = (3, 3, 16, 32)
    init = jinit.delta_orthogonal(scale=1.5)
    w = init(4, shape, np.float64)
    centre = w[1, 1] / 1.5
    assert np.abs(centre @ centre.T - np.eye(16)).max() < 1e-10
    rest = w.copy()
    rest[1, 1] = 0
    assert not rest.any()
    assert np.mean(w ** 2) == pytest.approx(init.variance(shape), rel=1e-12)
    with pytest.raises(ValueError, match="in <= out"):
        init(0, (3, 3, 32, 16))
    with pytest.raises(ValueError, match="3-, 4- or 5-D"):
        init(0, (16, 32))


def test_delta_orthogonal_puts_an_even_kernel_s_matrix_at_jax_s_tap():
    w = jinit.delta_orthogonal()(0, (4, 4, 3, 5), np.float64)     # JAX: index (k - 1) // 2 = 1
    taps = [tuple(i) for i in np.argwhere(np.abs(w).sum(axis=(2, 3)) > 0)]
    assert taps == [(1, 1)]
    w3 = jinit.delta_orthogonal()(0, (2, 3, 3), np.float64)
    assert np.abs(w3[0]).sum() > 0 and not w3[1].any()


def test_orthogonal_column_axis_must_be_an_integer():
    with pytest.raises(TypeError, match="column_axis"):
        jinit.orthogonal(column_axis="a")


def test_bad_input():
    with pytest.raises(ValueError, match="mode"):
        jinit.variance_scaling(1.0, "fan_sum", "normal")
    with pytest.raises(ValueError, match="out of range"):
        jinit.he_normal(in_axis=5)(0, (3, 4))
    with pytest.raises(ValueError, match="column_axis"):
        jinit.orthogonal(column_axis=3)(0, (3, 4))
    with pytest.raises(ValueError, match="a < b"):
        jinit.truncated_normal(lower=1.0, upper=-1.0)


def test_numpy_path_zero_size_shapes_and_negative_uniform_scale():
    w = jinit.he_normal()(0, (0, 5))
    assert w.shape == (0, 5) and w.dtype == np.float32 and isinstance(w, np.ndarray)
    assert jinit.delta_orthogonal()(0, (3, 3, 0, 4)).shape == (3, 3, 0, 4)
    with pytest.raises(ValueError, match="1-dimensional weights tensor with default in_axis"):
        jinit.he_normal()(0, (0,))
    u = jinit.uniform(-2.0)(5, (400, 250), np.float64)
    assert u.min() >= -2.0 and u.max() <= 0.0
    assert stats.kstest(u.ravel(), stats.uniform(-2.0, 2.0).cdf).pvalue > 1e-4
    assert jinit.uniform(-2.0).variance((3,)) == pytest.approx(4 / 12) and jinit.uniform(-2.0).mean((3,)) == -1


def test_tuple_axes_give_the_fans_of_their_products():
    # shape (2, 3, 4, 5): in = 2 * 3, out = 4 * 5, no receptive field
    vs = jinit.variance_scaling
    assert vs(1.0, "fan_in", "normal", in_axis=(0, 1), out_axis=(-2, -1)).variance((2, 3, 4, 5)) == 1 / 6
    assert vs(1.0, "fan_out", "normal", in_axis=(0, 1), out_axis=(-2, -1)).variance((2, 3, 4, 5)) == 1 / 20
    # in = 2, out = 4 * 5, batch axis 1 ignored: receptive field 1
    assert vs(1.0, "fan_avg", "normal", in_axis=0, out_axis=(2, 3), batch_axis=1).variance((2, 3, 4, 5)) \
        == 1 / 11
    # in = 4, out = 5, receptive field 2 * 3 (a 2x3 conv kernel)
    assert vs(2.0, "fan_in", "normal").variance((2, 3, 4, 5)) == 2 / 24
    # no in axes: in size 1, fan_in = the receptive field
    assert vs(1.0, "fan_in", "normal", in_axis=[], out_axis=[0]).variance((7, 3)) == 1 / 3
    assert vs(1.0, "fan_in", "normal", in_axis=[], out_axis=[]).variance(()) == 1.0
    with pytest.raises(ValueError, match="must all differ"):
        vs(1.0, "fan_in", "normal", in_axis=(0, 1), out_axis=1).variance((2, 3))
    with pytest.raises(ValueError, match="in_axis must be an int or a sequence"):
        vs(1.0, "fan_in", "normal", in_axis="0")


def test_scalar_parameters_from_numpy_are_numbers():
    assert jinit.normal(np.float32(0.5)).variance((3,)) == 0.25
    assert jinit.variance_scaling(np.array(2.0), "fan_in", "normal").variance((4, 3)) == 0.5
    with pytest.raises(ValueError, match="stddev must be a real number"):
        jinit.normal(np.ones(3))
    with pytest.raises(ValueError, match="scale must be a real number"):
        jinit.uniform(True)


def test_bad_keys_and_dtypes_on_the_numpy_path():
    with pytest.raises(ValueError, match="key must be a JAX PRNG key"):
        jinit.normal()("seed", (3,))
    with pytest.raises(ValueError, match="out_sharding"):
        jinit.normal()(0, (3,), out_sharding=object())
    with pytest.raises(ValueError, match="floating or complex dtype"):
        jinit.normal(dtype=np.int32)
    with pytest.raises(ValueError, match="floating"):
        jinit.normal()(0, (3,), np.complex64)              # complex is JAX's, not NumPy's


def _child(code):
    """Run code in a fresh interpreter; its stdout."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_numpy_path_needs_no_jax_and_a_jax_key_without_jax_says_how_to_install():
    out = _child("""
import sys
import numpy as np
from varprop.nn.init import jax as jinit
w = jinit.he_normal()(0, (30, 20))
jinit.orthogonal()(1, (3, 3)); jinit.zeros(None, (2,))
print("jax" in sys.modules, type(w).__name__, w.dtype)
class NoJax:                                    # as if jax were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("jax", "jaxlib"):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoJax())
try:
    jinit.he_normal()(np.array([0, 0], np.uint32), (30, 20))   # raw JAX key data
except ModuleNotFoundError as e:
    print(e)
""")
    lines = out.splitlines()
    assert lines[0] == "False ndarray float32"            # importing and drawing with NumPy: no jax
    assert lines[1] == 'a JAX PRNG key needs JAX, which is not installed: pip install "varprop[jax]"'


# --- the JAX path ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jax():
    return pytest.importorskip("jax")


def _ms_ok(w, var):
    """E|w|^2 (the mean is 0) within 5 standard errors of ``var``, the standard error from the sample."""
    s = np.abs(np.asarray(w, dtype=np.complex128 if np.iscomplexobj(w) else np.float64)).ravel() ** 2
    return abs(s.mean() - var) < 5 * s.std(ddof=1) / math.sqrt(s.size)


def _flax_dense_init(jax, key, in_features, features, kernel_init, bias_init, param_dtype):
    """What flax.linen.Dense(features).init does with its initializers: one rng each, then
    kernel_init(rng, (in_features, features), param_dtype) and bias_init(rng, (features,), param_dtype)."""
    k_kernel, k_bias = jax.random.split(key)
    return {"kernel": kernel_init(k_kernel, (in_features, features), param_dtype),
            "bias": bias_init(k_bias, (features,), param_dtype)}


@pytest.mark.parametrize("typed", [True, False])
def test_flax_style_kernel_init_under_jit(jax, typed):
    jnp = jax.numpy
    key = jax.random.key(0) if typed else jax.random.PRNGKey(0)
    init = jinit.he_normal()
    assert isinstance(init, jax.nn.initializers.Initializer)
    params = jax.jit(_flax_dense_init, static_argnums=(0, 2, 3, 4, 5, 6))(
        jax, key, 512, 256, init, jinit.zeros, jnp.float32)
    kernel, bias = params["kernel"], params["bias"]
    assert isinstance(kernel, jax.Array) and kernel.shape == (512, 256) and kernel.dtype == jnp.float32
    assert isinstance(bias, jax.Array) and bias.dtype == jnp.float32 and not bias.any()
    assert _ms_ok(kernel, 2 / 512)
    eager = _flax_dense_init(jax, key, 512, 256, init, jinit.zeros, jnp.float32)["kernel"]
    np.testing.assert_allclose(np.asarray(kernel), np.asarray(eager), rtol=1e-6, atol=0)


def test_typed_raw_and_numpy_held_keys_draw_the_same(jax):
    init = jinit.glorot_uniform()
    a = init(jax.random.key(3), (6, 7))
    b = init(jax.random.PRNGKey(3), (6, 7))
    c = init(np.asarray(jax.random.PRNGKey(3)), (6, 7))
    assert isinstance(c, jax.Array)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and np.array_equal(np.asarray(a), np.asarray(c))
    assert not np.array_equal(np.asarray(a), np.asarray(init(jax.random.key(4), (6, 7))))
    with pytest.raises(ValueError, match="key must be a JAX PRNG key"):
        init(jax.numpy.zeros(2), (6, 7))


def test_vmap_over_keys_and_eval_shape(jax):
    jnp = jax.numpy
    init = jinit.lecun_normal()
    keys = jax.random.split(jax.random.key(1), 4)
    ws = jax.vmap(lambda k: init(k, (64, 32)))(keys)
    assert ws.shape == (4, 64, 32) and len({float(w[0, 0]) for w in ws}) == 4
    assert _ms_ok(ws, 1 / 64)
    s = jax.eval_shape(lambda k: init(k, (3, 3, 8, 16), jnp.bfloat16), jax.random.key(0))
    assert s.shape == (3, 3, 8, 16) and s.dtype == jnp.bfloat16


DISTRIBUTIONS = ["normal", "uniform", "truncated_normal"]


@pytest.mark.parametrize("distribution,dtype", [
    (d, t) if (d, t) in {("truncated_normal", "bfloat16"), ("uniform", "complex64")}
    else pytest.param(d, t, marks=pytest.mark.slow)
    for d in DISTRIBUTIONS for t in ["bfloat16", "float16", "float32", "complex64"]])
def test_variance_scaling_draws_have_the_target_variance_in_every_dtype(jax, distribution, dtype):
    jnp = jax.numpy
    dt = jnp.dtype(getattr(jnp, dtype))
    init = jinit.variance_scaling(2.0, "fan_avg", distribution, in_axis=(0, 1), out_axis=-1)
    shape = (8, 16, 2000)                      # fan_in 128, fan_out 2000
    w = init(jax.random.key(7), shape, dt)
    assert isinstance(w, jax.Array) and w.shape == shape and w.dtype == dt
    var = init.variance(shape)
    assert var == 2.0 / ((128 + 2000) / 2)
    assert _ms_ok(w, var)
    if distribution != "normal":               # the cut and the disk bound |w|
        bound = {"uniform": math.sqrt((6 if dtype == "complex64" else 3) * var),
                 "truncated_normal": 2 * math.sqrt(var) / (jinit.complex_truncated_std(2.0)
                                                           if dtype == "complex64" else TRUNC.std())}
        assert float(jnp.abs(w.astype(jnp.complex64)).max()) <= bound[distribution] * (1 + 2 ** -7)


@pytest.mark.slow
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_float32_draws_follow_their_law(jax, distribution):
    init = jinit.variance_scaling(1.0, "fan_in", distribution)
    shape = (200, 300)
    w = np.asarray(init(jax.random.key(11), shape), np.float64).ravel()
    std = math.sqrt(1 / 200)
    law = {"normal": stats.norm(scale=std), "uniform": stats.uniform(-std * math.sqrt(3), 2 * std * math.sqrt(3)),
           "truncated_normal": stats.truncnorm(-2, 2, scale=std / TRUNC.std())}[distribution]
    assert stats.kstest(w, law.cdf).pvalue > 1e-4


@pytest.mark.slow
def test_complex_truncated_normal_has_the_stated_variance_where_jax_s_is_high(jax):
    jnp = jax.numpy
    shape, key = (1000, 1000), jax.random.key(5)
    var = 2 / 1000
    ours = jinit.he_normal()(key, shape, jnp.complex64)
    assert _ms_ok(ours, var)
    # JAX divides by 0.95311164380491208 where the cut law's std is 0.9619...: E|w|^2 is var * 1.0187
    theirs = jax.nn.initializers.he_normal()(key, shape, jnp.complex64)
    ratio = (jinit.complex_truncated_std(2.0) / 0.95311164380491208) ** 2
    assert ratio == pytest.approx(1.0187, abs=1e-4)
    assert _ms_ok(theirs, var * ratio) and not _ms_ok(theirs, var)


def _same_as_jax(jax, ours, theirs, shape, dtype=None):
    key = jax.random.key(2)
    a, b = ours(key, shape, dtype), theirs(key, shape, dtype)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=2e-6, atol=0)


@pytest.mark.parametrize("name", ["he_normal", *(pytest.param(n, marks=pytest.mark.slow) for n in [
    "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal", "lecun_uniform", "xavier_uniform",
    "kaiming_normal"])])
def test_presets_draw_what_jax_draws_from_the_same_key(jax, name):
    _same_as_jax(jax, getattr(jinit, name)(), getattr(jax.nn.initializers, name)(), (3, 3, 16, 32))


@pytest.mark.parametrize("factory,args", [("uniform", (-2.0,)), ("orthogonal", (1.0, 0)), *(
    pytest.param(f, a, marks=pytest.mark.slow) for f, a in [
        ("normal", (0.3,)), ("uniform", (0.5,)), ("truncated_normal", (1.5,)),
        ("truncated_normal", (1.0, None, -1.0, 3.0)), ("constant", (-1.25,)), ("orthogonal", (2.0,)),
        ("delta_orthogonal", (1.5,))])])
def test_simple_factories_draw_what_jax_draws_from_the_same_key(jax, factory, args):
    shape = (3, 3, 4, 6) if factory == "delta_orthogonal" else (5, 4, 6)
    _same_as_jax(jax, getattr(jinit, factory)(*args), getattr(jax.nn.initializers, factory)(*args), shape)
    assert np.array_equal(np.asarray(jinit.zeros(jax.random.key(0), (2, 3))), np.zeros((2, 3)))
    assert np.array_equal(np.asarray(jinit.ones(jax.random.key(0), (2, 3))), np.ones((2, 3)))


def test_negative_uniform_scale(jax):
    u = np.asarray(jinit.uniform(-2.0)(jax.random.key(9), (500, 400)), np.float64)
    assert u.min() > -2.0 and u.max() <= 0.0
    assert stats.kstest(u.ravel(), stats.uniform(-2.0, 2.0).cdf).pvalue > 1e-4


def test_jnp_scalar_parameters_keep_the_dtype(jax):
    jnp = jax.numpy
    one = jnp.array(1.0, jnp.float32)
    for init in (jinit.uniform(one, jnp.bfloat16), jinit.normal(one, jnp.bfloat16),
                 jinit.truncated_normal(one, jnp.bfloat16, jnp.array(-1.0), jnp.array(1.0)),
                 jinit.variance_scaling(jnp.array(2.0), "fan_in", "normal", dtype=jnp.bfloat16),
                 jinit.constant(jnp.array(3.0), jnp.bfloat16), jinit.orthogonal(one, dtype=jnp.bfloat16)):
        assert init(jax.random.key(0), (4, 4)).dtype == jnp.bfloat16
    assert jinit.normal(jnp.array(0.5)).variance((2,)) == 0.25
    with pytest.raises(ValueError, match="concrete number"):
        jax.jit(lambda s: jinit.normal(s)(jax.random.key(0), (2,)))(1.0)


@pytest.mark.parametrize("shape", [(0, 4), (4, 0), (2, 0, 3), (0,)])
@pytest.mark.parametrize("factory", ["he_uniform", "normal", "uniform", "truncated_normal", "orthogonal",
                                     "constant", "zeros"])
def test_zero_size_shapes_give_empty_arrays(jax, factory, shape):
    jnp = jax.numpy
    init = getattr(jinit, factory)
    init = init if factory == "zeros" else init(*((1.0,) if factory == "constant" else ()))
    if len(shape) == 1 and factory in ("he_uniform", "orthogonal"):
        with pytest.raises(ValueError):                  # as JAX: a 1-D shape has no default in/out axes
            init(jax.random.key(0), shape)
        return
    w = init(jax.random.key(0), shape, jnp.bfloat16)
    assert isinstance(w, jax.Array) and w.shape == shape and w.dtype == jnp.bfloat16


def test_delta_orthogonal_zero_size_and_errors(jax):
    init = jinit.delta_orthogonal()
    assert init(jax.random.key(0), (3, 3, 0, 5)).shape == (3, 3, 0, 5)
    with pytest.raises(ValueError, match="in <= out"):
        init(jax.random.key(0), (3, 3, 5, 0))
    w = np.asarray(init(jax.random.key(0), (3, 3, 4, 6)), np.float64)
    assert np.abs(w[1, 1] @ w[1, 1].T - np.eye(4)).max() < 1e-5
    w[1, 1] = 0
    assert not w.any()


def test_dtypes(jax):
    jnp = jax.numpy
    key = jax.random.key(0)
    assert jinit.he_normal()(key, (4, 4)).dtype == jnp.float32            # JAX's default float
    assert jinit.he_normal(dtype=jnp.float16)(key, (4, 4)).dtype == jnp.float16
    assert jinit.normal()(key, (4, 4), jnp.complex64).dtype == jnp.complex64
    with pytest.warns(UserWarning, match="float64 is not available"):
        assert jinit.he_normal()(key, (4, 4), np.float64).dtype == jnp.float32
    with pytest.raises(ValueError, match="draws real numbers"):
        jinit.uniform()(key, (4,), jnp.complex64)
    with pytest.raises(ValueError, match="floating or complex"):
        jinit.normal()(key, (4,), jnp.int32)


@pytest.mark.slow
def test_float64_with_x64_enabled(jax):
    jnp = jax.numpy
    key = jax.random.key(0)
    with jax.enable_x64(True):
        w = jinit.he_normal()(key, (300, 200), np.float64)
        assert w.dtype == jnp.float64 and _ms_ok(w, 2 / 300)
        assert jinit.he_normal()(key, (4, 4)).dtype == jnp.float64            # the default float is float64
        assert jinit.orthogonal()(key, (4, 4), jnp.float64).dtype == jnp.float64
        assert jinit.he_uniform()(key, (4, 4), jnp.complex128).dtype == jnp.complex128


def test_out_sharding(jax):
    from jax.sharding import NamedSharding, PartitionSpec
    mesh = jax.make_mesh((1,), ("x",))
    sharding = NamedSharding(mesh, PartitionSpec("x"))
    key = jax.random.key(0)

    def placed(w):                         # unplaced, a result is on one device, without a spec
        return isinstance(w.sharding, NamedSharding) and w.sharding.spec[0] == "x"

    assert not placed(jinit.he_normal()(key, (4, 6)))
    for init in (jinit.he_normal(), jinit.constant(2.0), jinit.orthogonal()):
        w = init(key, (4, 6), out_sharding=sharding)
        assert placed(w) and w.shape == (4, 6)
    assert placed(jinit.normal()(key, (0, 6), out_sharding=sharding))
    with jax.set_mesh(mesh):
        assert placed(jinit.he_normal()(key, (4, 6), out_sharding=PartitionSpec("x")))
        assert placed(jinit.ones(key, (4, 6), out_sharding=PartitionSpec("x")))
        assert placed(jinit.orthogonal()(key, (4, 6), out_sharding=PartitionSpec("x")))


@pytest.mark.slow
def test_out_sharding_everywhere(jax):
    from jax.sharding import NamedSharding, PartitionSpec
    sharding = NamedSharding(jax.make_mesh((1,), ("x",)), PartitionSpec("x"))
    key = jax.random.key(0)
    for init in (jinit.he_uniform(), jinit.glorot_normal(), jinit.normal(), jinit.uniform(),
                 jinit.truncated_normal(), jinit.zeros, jinit.ones):
        assert init(key, (4, 6), out_sharding=sharding).sharding.spec[0] == "x"
    assert jinit.he_normal()(key, (4, 6), jax.numpy.complex64, out_sharding=sharding).sharding.spec[0] == "x"
    assert jinit.delta_orthogonal()(key, (3, 4, 6), out_sharding=sharding).sharding.spec[0] == "x"

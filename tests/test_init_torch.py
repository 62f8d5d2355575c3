"""The PyTorch front end against torch.nn.init: same calls, same numbers (bit for bit where it can be)."""
import math

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")
from varprop.nn.init import torch as vinit  # noqa: E402

TI = torch.nn.init


def _gen(seed):
    return torch.Generator().manual_seed(seed)


SAME_STREAM = [
    ("uniform_", (), {"a": -0.3, "b": 0.7}),
    ("normal_", (), {"mean": 0.2, "std": 0.5}),
    ("trunc_normal_", (), {"std": 0.02}),
    ("trunc_normal_", (), {"mean": 0.1, "std": 1.0, "a": -1.0, "b": 2.5}),
    ("xavier_uniform_", (), {}), ("xavier_normal_", (), {"gain": 2.0}),
    ("kaiming_uniform_", (), {}), ("kaiming_uniform_", (), {"a": math.sqrt(5)}),
    ("kaiming_normal_", (), {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal_", (), {"nonlinearity": "tanh"}), ("kaiming_normal_", (), {"nonlinearity": "selu"}),
    ("kaiming_uniform_", (), {"a": 0.2, "nonlinearity": "leaky_relu"}),
    ("kaiming_normal_", (), {"nonlinearity": "conv2d"}),
    ("orthogonal_", (), {"gain": 1.5}),
]


@pytest.mark.parametrize("shape", [(64, 48), (16, 8, 3, 3)], ids=str)
@pytest.mark.parametrize("fn,args,kwargs", SAME_STREAM, ids=[f"{f}{k}" for f, _, k in SAME_STREAM])
def test_same_call_same_generator_same_tensor(fn, args, kwargs, shape):
    a = getattr(TI, fn)(torch.empty(shape), *args, generator=_gen(3), **kwargs)
    b = torch.empty(shape)
    out = getattr(vinit, fn)(b, *args, generator=_gen(3), **kwargs)
    assert out is b                              # in place, returns the tensor
    assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)


def test_deterministic_fills_match():
    for fn, shape, kw in [("eye_", (3, 5), {}), ("dirac_", (6, 4, 3, 3), {"groups": 2}),
                          ("dirac_", (4, 4, 3), {}), ("constant_", (4, 4), {"val": 0.3}),
                          ("ones_", (2, 3), {}), ("zeros_", (5,), {})]:
        assert torch.equal(getattr(TI, fn)(torch.empty(shape), **kw), getattr(vinit, fn)(torch.empty(shape), **kw))


def test_calculate_gain_table_and_exact_gains():
    for nl, p in [("linear", None), ("conv1d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                  ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert vinit.calculate_gain(nl, p) == pytest.approx(TI.calculate_gain(nl, p), rel=1e-15)
    with pytest.raises(ValueError, match="Unsupported"):
        vinit.calculate_gain("gelu")
    from varprop.derive.gains import forward_gain_value
    for nl in ("gelu", "silu", "mish", "tanh", "selu"):
        assert vinit.calculate_gain(nl, exact=True) == pytest.approx(forward_gain_value(nl), rel=1e-14)
    assert vinit.calculate_gain("selu", exact=True) == pytest.approx(1.0, rel=1e-12)


def _sample_var_ok(x, var, mu4_over_var2):
    n = x.numel()
    return abs(x.double().var().item() - var) < 5 * var * math.sqrt((mu4_over_var2 - 1) / n)


@pytest.mark.parametrize("fn,kwargs,var,kind", [
    ("kaiming_normal_", {"nonlinearity": "gelu", "gain": "exact"}, None, "normal"),
    ("kaiming_uniform_", {"nonlinearity": "mish", "gain": "exact"}, None, "uniform"),
    ("kaiming_normal_", {"nonlinearity": "relu", "gain": 3.0}, 9.0 / 120, "normal"),
    ("lecun_normal_", {}, 1.0 / 120, "normal"),
    ("lecun_uniform_", {}, 1.0 / 120, "uniform"),
    ("dropout_kaiming_normal_", {"keep_prob": 0.8}, 1.6 / 120, "normal"),
    ("dropout_kaiming_uniform_", {"keep_prob": 0.5}, 1.0 / 120, "uniform"),
    ("fixup_", {"num_blocks": 9, "layers_per_block": 3}, 2.0 / 120 / 3, "normal"),
    ("for_activation_", {"nonlinearity": "silu"}, None, "normal"),
    ("variance_scaling_", {"scale": 2.0, "mode": "fan_avg", "distribution": "truncated_normal"},
     2.0 / 110, "truncated_normal"),
])
def test_extras_have_their_derived_variance_and_law(fn, kwargs, var, kind):
    from varprop.derive.gains import forward_scale_value
    shape = (100, 120)
    if var is None:
        var = forward_scale_value(kwargs.get("nonlinearity")) / 120
    w = getattr(vinit, fn)(torch.empty(shape, dtype=torch.float64), generator=_gen(7), **kwargs)
    x = w.numpy().ravel()
    if kind == "normal":
        law = stats.norm(0, math.sqrt(var))
    elif kind == "uniform":
        law = stats.uniform(-math.sqrt(3 * var), 2 * math.sqrt(3 * var))
    else:
        law = stats.truncnorm(-2, 2, scale=math.sqrt(var) / stats.truncnorm(-2, 2).std())
    assert law.var() == pytest.approx(var, rel=1e-12)
    assert stats.kstest(x, law.cdf).pvalue > 1e-4
    assert _sample_var_ok(w, var, law.stats(moments="k") + 3.0)


@pytest.mark.parametrize("fn,kwargs,mu4", [
    ("kaiming_normal_", {}, 3.0), ("kaiming_uniform_", {"a": math.sqrt(5)}, 1.8),
    ("xavier_uniform_", {"gain": 1.3}, 1.8), ("xavier_normal_", {}, 3.0),
    ("kaiming_normal_", {"nonlinearity": "tanh", "mode": "fan_out"}, 3.0),
])
def test_variance_matches_torch_for_the_same_call(fn, kwargs, mu4):
    """Both samples within 5 SE of torch's formula, and a two-sample KS test between them."""
    shape = (128, 64, 3)
    fan_in, fan_out = 64 * 3, 128 * 3
    ours = getattr(vinit, fn)(torch.empty(shape, dtype=torch.float64), generator=_gen(1), **kwargs)
    theirs = getattr(TI, fn)(torch.empty(shape, dtype=torch.float64), generator=_gen(2), **kwargs)
    gain = TI.calculate_gain(kwargs.get("nonlinearity", "leaky_relu"), kwargs.get("a", 0))
    if fn.startswith("xavier"):
        var = kwargs.get("gain", 1.0) ** 2 * 2 / (fan_in + fan_out)
    else:
        var = gain ** 2 / (fan_out if kwargs.get("mode") == "fan_out" else fan_in)
    assert _sample_var_ok(ours, var, mu4) and _sample_var_ok(theirs, var, mu4)
    assert stats.ks_2samp(ours.numpy().ravel(), theirs.numpy().ravel()).pvalue > 1e-4


def test_linear_default_is_one_third_of_lecun():
    # nn.Linear's kaiming_uniform_(a=sqrt(5)): gain^2 = 2 / (1 + 5) = 1/3, so Var = 1 / (3 fan_in)
    lin = torch.nn.Linear(300, 200)
    assert _sample_var_ok(lin.weight.detach(), 1 / 900, 1.8)
    w = vinit.kaiming_uniform_(torch.empty(200, 300), a=math.sqrt(5), generator=_gen(0))
    assert _sample_var_ok(w, (1 / 3) / 300, 1.8)


def test_trunc_normal_keeps_pytorch_semantics_and_init_gives_the_std_asked_for():
    w = vinit.trunc_normal_(torch.empty(400, 300, dtype=torch.float64), generator=_gen(5))
    assert w.abs().max().item() <= 2.0
    law = stats.truncnorm(-2, 2)
    assert _sample_var_ok(w, law.var(), law.stats(moments="k") + 3)
    v = vinit.init_(torch.empty(400, 300, dtype=torch.float64), "truncated_normal", std=0.5, generator=_gen(5))
    assert _sample_var_ok(v, 0.25, law.stats(moments="k") + 3)


def test_sparse_zeros_and_generator_reproduces_it():
    a = vinit.sparse_(torch.empty(50, 40), 0.2, generator=_gen(4))
    b = vinit.sparse_(torch.empty(50, 40), 0.2, generator=_gen(4))
    assert torch.equal(a, b)
    assert ((a == 0).sum(0) == math.ceil(0.2 * 50)).all()


def test_no_grad_and_requires_grad_kept():
    p = torch.nn.Parameter(torch.empty(20, 30))
    out = vinit.kaiming_normal_(p, nonlinearity="gelu", gain="exact")
    assert out is p and p.requires_grad and p.grad_fn is None


def test_bad_input_raises_value_error():
    for call, msg in [
        (lambda: vinit.kaiming_normal_(torch.empty(5)), "at least 2 dimensions"),
        (lambda: vinit.kaiming_normal_(torch.empty(5, 4), mode="fan_avg"), "mode"),
        (lambda: vinit.kaiming_normal_(torch.empty(5, 4), nonlinearity="gelu"), "PyTorch"),
        (lambda: vinit.eye_(torch.empty(2, 3, 4)), "2-D"),
        (lambda: vinit.dirac_(torch.empty(3, 3)), "3-, 4- or 5-D"),
        (lambda: vinit.sparse_(torch.empty(3, 3), 2.0), "sparsity"),
        (lambda: vinit.normal_(np.zeros(3)), "torch.Tensor"),
        (lambda: vinit.calculate_gain("leaky_relu", "x"), "not a valid number"),
        (lambda: vinit.init_(torch.empty(3, 3), "nope"), "unknown initializer"),
    ]:
        with pytest.raises(ValueError, match=msg):
            call()
    with pytest.warns(UserWarning, match="no-op"):
        vinit.kaiming_normal_(torch.empty(0, 3))

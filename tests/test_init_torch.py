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


# -- a drop-in for torch.nn.init: its names, its helpers, its errors ------------------------------------

DEPRECATED = ["uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
              "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse"]


def _replaceable():
    import types
    return sorted(n for n, f in vars(TI).items()
                  if isinstance(f, types.FunctionType) and isinstance(getattr(vinit, n, None), types.FunctionType))


def test_every_name_of_torch_nn_init_is_here():
    assert set(TI.__all__) <= set(_replaceable())
    assert {"_calculate_fan_in_and_fan_out", "_calculate_correct_fan"} <= set(_replaceable())
    assert set(DEPRECATED) <= set(vinit.__all__)


@pytest.mark.parametrize("old", DEPRECATED)
def test_deprecated_names_warn_as_torch_and_fill_as_the_new_name(old):
    args = {"constant": (0.5,), "sparse": (0.3,), "dirac": ()}.get(old, ())
    shape = (6, 4, 3) if old == "dirac" else (6, 5)
    kw = {} if old in ("constant", "eye", "dirac") else {"generator": _gen(9)}
    with pytest.warns(FutureWarning, match=rf"`nn\.init\.{old}` is now deprecated in favor of `nn\.init\.{old}_`"):
        a = getattr(vinit, old)(torch.empty(shape), *args, **kw)
    kw = {} if old in ("constant", "eye", "dirac") else {"generator": _gen(9)}
    b = getattr(vinit, old + "_")(torch.empty(shape), *args, **kw)
    assert torch.equal(a, b)


def test_deprecated_warning_points_at_the_caller():
    with pytest.warns(FutureWarning) as record:
        vinit.normal(torch.empty(3, 3))
    assert record[0].filename == __file__


@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 2), (8, 3, 5, 5), (2, 3, 1, 2, 2), (0, 3), (3, 0, 2), (4, 3, 0)],
                         ids=str)
def test_fan_helpers_match_torch(shape):
    t = torch.empty(shape)
    assert vinit._calculate_fan_in_and_fan_out(t) == TI._calculate_fan_in_and_fan_out(t)
    for mode in ("fan_in", "fan_out", "FAN_OUT", "Fan_In"):
        assert vinit._calculate_correct_fan(t, mode) == TI._calculate_correct_fan(t, mode)


def test_fan_helpers_refuse_as_torch():
    for call in (lambda m: m._calculate_fan_in_and_fan_out(torch.empty(3)),
                 lambda m: m._calculate_correct_fan(torch.empty(3, 3), "fan_avg")):
        with pytest.raises(ValueError):
            call(TI)
        with pytest.raises(ValueError, match="Fan in and fan out|Mode fan_avg not supported"):
            call(vinit)


def test_torch_nn_init_patched_with_ours_works_and_gives_torchs_numbers(monkeypatch):
    """With every torch.nn.init function replaced by ours, torch's own layers and trunc_normal_ still work."""
    reference = {"trunc": TI.trunc_normal_(torch.empty(50, 40), generator=_gen(2), std=0.5, a=-1.0, b=1.0)}
    for n in ("linear", "conv"):
        torch.manual_seed(5)
        reference[n] = torch.nn.Linear(30, 20) if n == "linear" else torch.nn.Conv2d(4, 6, 3)
    for n in _replaceable():
        monkeypatch.setattr(TI, n, getattr(vinit, n))
    # trunc_normal_ draws by torch's sampler, captured at import: no call back into the patched module
    got = TI.trunc_normal_(torch.empty(50, 40), generator=_gen(2), std=0.5, a=-1.0, b=1.0)
    assert torch.equal(got, reference["trunc"])
    for n in ("linear", "conv"):
        torch.manual_seed(5)
        layer = torch.nn.Linear(30, 20) if n == "linear" else torch.nn.Conv2d(4, 6, 3)
        assert torch.equal(layer.weight, reference[n].weight) and torch.equal(layer.bias, reference[n].bias)
    with pytest.warns(UserWarning, match="no-op"):
        empty = torch.nn.Linear(0, 3)                      # fans of an empty weight, as torch computes them
    assert empty.weight.shape == (3, 0) and (empty.bias == 0).all()
    w = torch.empty(30, 20)
    with pytest.warns(FutureWarning):
        TI.normal(w)                                       # the deprecated names are ours too


@pytest.mark.filterwarnings("ignore:To copy construct from a tensor:UserWarning")   # torch's, given tensors
def test_scalars_may_be_zero_dim_tensors_as_in_torch():
    s = torch.tensor
    for fn, kwargs in [("normal_", {"mean": s(0.5), "std": s(2.0)}), ("uniform_", {"a": s(-1.0), "b": s(3.0)}),
                       ("trunc_normal_", {"mean": s(0.1), "std": s(0.5), "a": s(-0.5), "b": s(1.0)}),
                       ("xavier_normal_", {"gain": s(2.0)}), ("orthogonal_", {"gain": s(1.5)}),
                       ("sparse_", {"sparsity": s(0.25), "std": s(0.1)})]:
        theirs = getattr(TI, fn)(torch.empty(20, 16), generator=_gen(1), **kwargs)
        ours = getattr(vinit, fn)(torch.empty(20, 16), generator=_gen(1), **kwargs)
        if fn == "sparse_":                                 # torch draws sparse_'s zeros from the global generator
            both = (ours != 0) & (theirs != 0)
            assert ((ours == 0).sum(0) == 5).all() and torch.equal(ours[both], theirs[both])
        else:
            assert torch.equal(ours, theirs), fn


def test_constant_fills_what_fill_takes():
    for val in (torch.tensor(2.0), 3, -math.inf, math.nan, np.float32(0.25)):
        ours, theirs = vinit.constant_(torch.empty(3, 4), val), TI.constant_(torch.empty(3, 4), val)
        assert torch.equal(ours, theirs) or (ours.isnan().all() and theirs.isnan().all())
    i = vinit.constant_(torch.empty(3, dtype=torch.int64), torch.tensor(7))
    assert i.dtype == torch.int64 and (i == 7).all()
    with pytest.raises(RuntimeError, match="0-dimension"):      # torch's own refusal, as torch raises it
        vinit.constant_(torch.empty(3), torch.tensor([2.0]))
    with pytest.raises(TypeError) as e:
        vinit.constant_(torch.empty(3), "2")
    assert isinstance(e.value, ValueError)


T = torch.empty
# (call, the exception torch raises for the same mistake)
SAME_MISTAKE = [
    (lambda m: m.normal_(T(3, 3), std=-1.0), RuntimeError),
    (lambda m: m.normal_(T(3, 3), std=math.nan), RuntimeError),
    (lambda m: m.uniform_(T(3, 3), 2.0, 1.0), RuntimeError),
    (lambda m: m.uniform_(T(3, 3), 0.0, math.inf), RuntimeError),
    (lambda m: m.xavier_uniform_(T(3, 3), gain=-1.0), RuntimeError),
    (lambda m: m.xavier_normal_(T(3, 3), gain=-1.0), RuntimeError),
    (lambda m: m.sparse_(T(3, 3), 0.5, std=-1.0), RuntimeError),
    (lambda m: m.trunc_normal_(T(3, 3), a=1.0, b=-1.0), RuntimeError),
    (lambda m: m.normal_(T(3, 3), std="1"), TypeError),
    (lambda m: m.normal_(T(3, 3), std=torch.tensor([1.0])), TypeError),
    (lambda m: m.uniform_(T(3, 3), "0", 1.0), TypeError),
    (lambda m: m.constant_(T(3, 3), "1"), TypeError),
    (lambda m: m.eye_(T(2, 2, 2)), ValueError),
    (lambda m: m.dirac_(T(3, 3)), ValueError),
    (lambda m: m.dirac_(T(4, 2, 3), 3), ValueError),
    (lambda m: m.xavier_normal_(T(3)), ValueError),
    (lambda m: m.kaiming_uniform_(T(3)), ValueError),
    (lambda m: m.kaiming_normal_(T(3, 3), mode="fan_avg"), ValueError),
    (lambda m: m.kaiming_normal_(T(3, 3), nonlinearity="gelu"), ValueError),
    (lambda m: m.kaiming_normal_(T(3, 3), a="x"), ValueError),
    (lambda m: m.orthogonal_(T(3)), ValueError),
    (lambda m: m.sparse_(T(3, 3, 3), 0.1), ValueError),
    (lambda m: m.calculate_gain("leaky_relu", [1]), ValueError),
    (lambda m: m.calculate_gain("swish"), ValueError),
]


@pytest.mark.parametrize("call,torch_raises", SAME_MISTAKE)
def test_errors_are_what_torch_raises_and_a_value_error(call, torch_raises):
    with pytest.raises(torch_raises):
        call(TI)                              # the table is right about torch
    with pytest.raises(torch_raises) as e:
        call(vinit)
    assert isinstance(e.value, ValueError) and len(str(e.value).splitlines()) == 1


@pytest.mark.parametrize("call", [
    lambda m: m.normal_(T(3, 3), mean=math.inf),
    lambda m: m.trunc_normal_(T(3, 3), std=-1.0),
    lambda m: m.trunc_normal_(T(3, 3), std=0.0),
    lambda m: m.sparse_(T(3, 3), 2.0),
    lambda m: m.sparse_(T(3, 3), -0.5),
    lambda m: m.orthogonal_(T(3, 3), gain=-1.0),
    lambda m: m.dirac_(T(4, 2, 3), 0),
    lambda m: m.normal_(T(3, 3), std=True),
])
def test_refused_where_torch_fills_something_meaningless(call):
    with pytest.raises(ValueError):
        call(vinit)


def test_kaiming_mode_is_case_blind_as_in_torch():
    a = TI.kaiming_normal_(torch.empty(20, 10), mode="FAN_OUT", generator=_gen(3))
    assert torch.equal(vinit.kaiming_normal_(torch.empty(20, 10), mode="FAN_OUT", generator=_gen(3)), a)


def test_zero_element_warning_points_at_the_caller():
    with pytest.warns(UserWarning, match="no-op") as record:
        vinit.kaiming_uniform_(torch.empty(0, 3))
    assert record[0].filename == __file__

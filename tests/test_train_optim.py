"""Each optimizer's step recomputed from its formula, and its trajectory against torch.optim."""
import numpy as np
import pytest

from varprop.nn.layers import Parameter
from varprop.nn.optim import get_optimizer
from varprop.nn.schedules import get_schedule

STEPS = 5


def _grads(shape=(3, 4), steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) for _ in range(steps)]


def _run(name, p0, grads, regularize=True, **kw):
    p = Parameter(p0.copy(), "w", regularize=regularize)
    opt = get_optimizer(name, **kw)
    out = []
    for g in grads:
        p.grad[...] = g
        opt.step([p])
        out.append(p.value.copy())
    return out


def _formula(name, p, grads, lr, mu=0.9, b1=0.9, b2=0.999, eps=1e-8, rho=0.99, wd=0.0):
    """The update rules as the lectures write them, step by step in float64."""
    p = p.copy()
    v = np.zeros_like(p)
    m = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        if name == "sgd":
            p = p - lr * g
        elif name == "momentum":
            v = mu * v - lr * g
            p = p + v
        elif name == "nesterov":
            v_prev = v
            v = mu * v - lr * g
            p = p - mu * v_prev + (1 + mu) * v
        elif name == "adagrad":
            v = v + g * g
            p = p - lr * g / (np.sqrt(v) + eps)
        elif name == "rmsprop":
            v = rho * v + (1 - rho) * g * g
            p = p - lr * g / (np.sqrt(v) + eps)
        elif name in ("adam", "adamw"):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            mt = m / (1 - b1 ** t)
            vt = v / (1 - b2 ** t)
            p = p - lr * mt / (np.sqrt(vt) + eps) - lr * wd * p
        out.append(p.copy())
    return out


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
def test_each_step_follows_its_formula(name):
    p0 = np.random.default_rng(1).normal(size=(3, 4))
    grads = _grads()
    kw = {"decoupled_decay": 0.1} if name == "adamw" else {}
    got = _run(name, p0, grads, lr=0.05, **kw)
    want = _formula(name, p0, grads, lr=0.05, wd=kw.get("decoupled_decay", 0.0))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_decoupled_decay_spares_unregularized_and_frozen_parameters():
    p0 = np.ones((2, 2))
    grads = _grads((2, 2))
    bias = _run("adamw", p0, grads, regularize=False, lr=0.1, decoupled_decay=0.5)
    plain = _run("adam", p0, grads, lr=0.1)
    np.testing.assert_allclose(bias[-1], plain[-1], rtol=1e-14)
    p = Parameter(p0.copy(), "w")
    p.frozen = True
    p.grad[...] = 1.0
    get_optimizer("adam", lr=0.1).step([p])
    np.testing.assert_array_equal(p.value, p0)


def test_float32_parameters_stay_float32():
    p = Parameter(np.ones(4, np.float32), "w", regularize=True)
    p.grad[...] = 0.5
    opt = get_optimizer("adam", lr=0.01)
    opt.step([p])
    assert p.value.dtype == np.float32 and opt.state["w"]["m"].dtype == np.float32


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_column_major_parameters_step_element_for_element(name):
    """A dense layer's weights are Fortran-ordered: the flat kernels must pair the same (i, j) of
    value, gradient and slots, so the trajectory equals the row-major one exactly."""
    p0 = np.random.default_rng(1).normal(size=(5, 3))
    grads = _grads((5, 3))
    p = Parameter(np.asfortranarray(p0), "w", regularize=True)
    assert p.value.flags.f_contiguous and p.grad.flags.f_contiguous
    opt = get_optimizer(name, lr=0.05, weight_decay=0.01)
    ref = Parameter(p0.copy(), "w", regularize=True)
    ref_opt = get_optimizer(name, lr=0.05, weight_decay=0.01)
    for g in grads:
        p.grad[...] = g
        ref.grad[...] = g
        opt.step([p])
        ref_opt.step([ref])
    np.testing.assert_array_equal(p.value, ref.value)
    assert not np.array_equal(p.value, p0)
    # state saved from a row-major run (an older checkpoint) is re-laid out, not paired by memory
    slot = "m" if name == "adam" else "momentum_buffer"
    fresh = get_optimizer(name, lr=0.05, weight_decay=0.01)
    fresh.load_state_arrays({f"w/{k}": np.ascontiguousarray(a) for k, a in opt.state["w"].items()
                             if not k.startswith("_")}, opt.t)
    q = Parameter(np.asfortranarray(p.value), "w", regularize=True)
    r = Parameter(np.ascontiguousarray(ref.value), "w", regularize=True)
    q.grad[...] = r.grad[...] = grads[0]
    fresh.step([q])
    ref_opt.step([r])
    assert fresh.state["w"][slot].flags.f_contiguous
    np.testing.assert_array_equal(q.value, r.value)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_call_for_all_parameters_gives_one_call_each_bits(name, dtype, monkeypatch):
    """The grouped update (every parameter of a step in one kernel call) against a call per parameter:
    the same values and slots, bit for bit, over column-major weights, biases, an unregularized and a
    frozen parameter, with coupled and decoupled decay and a learning rate that changes each step."""
    from varprop.nn import optim
    rng = np.random.default_rng(3)

    def params():
        r = np.random.default_rng(4)
        ps = [Parameter(np.asfortranarray(r.normal(size=(6, 4)).astype(dtype)), "w1", regularize=True),
              Parameter(r.normal(size=4).astype(dtype), "b1"),
              Parameter(np.asfortranarray(r.normal(size=(4, 3)).astype(dtype)), "w2", regularize=True),
              Parameter(r.normal(size=3).astype(dtype), "b2"),
              Parameter(r.normal(size=(2, 2)).astype(dtype), "frozen", regularize=True)]
        ps[-1].frozen = True
        return ps
    grads = [[rng.normal(size=p.value.shape) for p in params()] for _ in range(STEPS)]
    runs, calls = [], []
    real = optim._Group.build
    for grouped in (True, False):
        monkeypatch.setattr(optim._Group, "build",
                            (lambda *a: calls.append(1) or real(*a)) if grouped else (lambda *a: None))
        ps = params()
        opt = get_optimizer(name, lr=0.05, weight_decay=0.01, decoupled_decay=0.1)
        for t, gs in enumerate(grads):
            for p, g in zip(ps, gs):
                p.grad[...] = g
            opt.lr = 0.05 / (1 + t)
            opt.step(ps)
        runs.append((ps, opt))
    (a, oa), (b, ob) = runs
    assert len(calls) == 1 and oa._group is not None and ob._group is None   # built once, then reused
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.value, q.value)
        assert p.value.dtype == dtype and p.value.flags.f_contiguous == q.value.flags.f_contiguous
    for k in oa.state:
        for slot in oa.slots:
            np.testing.assert_array_equal(oa.state[k][slot], ob.state[k][slot])
    np.testing.assert_array_equal(a[-1].value, params()[-1].value)      # frozen: untouched


def test_mixed_layouts_are_refused():
    from varprop.nn import kernels as K
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="memory layout"):
        K.add_penalty(a, np.asfortranarray(a), 0.1, 0.1)
    assert K.same_layout(np.asfortranarray(a))[0].flags.c_contiguous


_TORCH = {"sgd": ("SGD", {}), "momentum": ("SGD", {"momentum": 0.9}),
          "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}), "adagrad": ("Adagrad", {"eps": 1e-8}),
          "rmsprop": ("RMSprop", {"alpha": 0.99, "eps": 1e-8}), "adam": ("Adam", {}),
          "adamw": ("AdamW", {"weight_decay": 0.01})}


@pytest.mark.parametrize("name", sorted(_TORCH))
def test_trajectory_matches_torch_optim(name):
    torch = pytest.importorskip("torch")
    p0 = np.random.default_rng(2).normal(size=(3, 4))
    grads = _grads(seed=3)
    got = _run(name, p0, grads, lr=0.05)
    cls, kw = _TORCH[name]
    tp = torch.nn.Parameter(torch.tensor(p0))
    topt = getattr(torch.optim, cls)([tp], lr=0.05, **kw)
    for a, g in zip(got, grads):
        tp.grad = torch.tensor(g)
        topt.step()
        np.testing.assert_allclose(a, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, slots", [("adam", ("m", "v")), ("rmsprop", ("v",)),
                                         ("momentum", ("momentum_buffer",)), ("nesterov", ("momentum_buffer",))])
def test_a_moment_decaying_below_the_smallest_normal_number_is_flushed_to_zero(name, slots, dtype):
    """A zero gradient decays a moment geometrically; the step that would make it subnormal stores 0
    (subnormal arithmetic takes a slow path), while a moment that stays normal decays as its formula says
    and a NaN gradient still reaches the state (the flush must not hide a divergence)."""
    tiny = np.finfo(dtype).tiny
    p = Parameter(np.ones(4, dtype), "w")
    opt = get_optimizer(name, lr=1e-3)
    p.grad[...] = 0
    opt.step([p])                                        # creates the slots (zeros)
    state = opt.state["w"]
    start = np.array([1.0001 * tiny, 100 * tiny, 1.0001 * tiny, 100 * tiny], dtype)
    for k in slots:                                      # every decay factor here is below 0.9999
        state[k][...] = start
    p.grad[...] = np.array([0, 0, np.nan, 0], dtype)
    opt.step([p])
    for k in slots:
        a = state[k]
        assert a[0] == 0, (k, a[0])                      # would have been subnormal: flushed
        assert tiny <= a[1] < 100 * tiny, (k, a[1])      # normal: decayed, kept
        assert np.isnan(a[2]), k                         # NaN passes through
        assert a[3] == a[1]
    assert np.isnan(p.value[2]) and np.all(np.isfinite(p.value[[0, 1, 3]]))


def test_bad_optimizer_arguments():
    with pytest.raises(ValueError, match="learning rate"):
        get_optimizer("adam", lr=0)
    with pytest.raises(ValueError, match="learning rate"):
        get_optimizer("sgd", lr=-1.0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        get_optimizer("lbfgs")
    with pytest.raises(TypeError, match="'sgd'"):
        get_optimizer("sgd", lr=0.1, beta1=0.9)
    with pytest.raises(ValueError, match="momentum"):
        get_optimizer("momentum", lr=0.1, momentum=1.0)


def test_schedules_from_their_formulas():
    step = get_schedule("step", step_size=2, gamma=0.5)
    assert [step(t + 0.5, 10) for t in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    cos = get_schedule("cosine", min_factor=0.1)
    for t in (0.0, 2.5, 7.0, 10.0):
        assert cos(t, 10) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t / 10)), rel=1e-15)
    warm = get_schedule("warmup", epochs=2, then="cosine")
    assert warm(0.5, 10) == pytest.approx(0.25)
    assert warm(2.0, 10) == pytest.approx(1.0)
    assert warm(6.0, 10) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown schedule"):
        get_schedule("exp")

"""Hand-written backward passes against central differences in float64, and against PyTorch autograd.

Each check uses the scalar objective L = sum(out * R) for a fixed random R, so dL/dout = R and the
layer's backward(R) must equal the numerical gradient of L with respect to the input and to every
parameter. Random layers run in training mode with the clock held fixed, so their masks are fixed.
Central differences with eps = 1e-6 in float64 are accurate to about 1e-9 here; we allow 1e-6.
"""
import numpy as np
import pytest

from varprop.activations import names
from varprop.nn import build_mlp
from varprop.nn.layers import Activation, AlphaDropout, BatchNorm, Clock, Dense, Dropout, Residual
from varprop.nn.losses import get_loss

EPS = 1e-6
TOL = 1e-6


def _numgrad(f, arr, eps=EPS):
    g = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = arr[i]
        arr[i] = old + eps
        fp = f()
        arr[i] = old - eps
        fm = f()
        arr[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def _check_layer(layer, x, train=True, seed=0):
    rng = np.random.default_rng(seed)
    out = layer.forward(x, train)
    R = rng.normal(size=out.shape)

    def objective():
        return float(np.sum(layer.forward(x, train) * R))

    layer.forward(x, train)
    dx = layer.backward(R.copy(), need_dx=True).copy()
    grads = [p.grad.copy() for p in layer.parameters()]
    np.testing.assert_allclose(dx, _numgrad(objective, x), rtol=TOL, atol=TOL)
    for g, p in zip(grads, layer.parameters()):
        np.testing.assert_allclose(g, _numgrad(objective, p.value), rtol=TOL, atol=TOL, err_msg=p.name)


def _x(n, m, seed=1, scale=1.0):
    return np.random.default_rng(seed).normal(scale=scale, size=(n, m))


@pytest.mark.parametrize("act", names())
def test_dense_every_activation_matches_central_differences(act):
    layer = Dense(3, 4, act, init="xavier_normal", seed=3, dtype=np.float64)
    if layer.bias is not None:
        layer.bias.value[:] = np.random.default_rng(4).normal(size=layer.bias.value.shape)
    _check_layer(layer, _x(5, 3))


def test_prelu_slope_is_learned_and_rrelu_uses_its_drawn_slopes():
    p = Dense(3, 4, "prelu", init="he_normal", seed=1, dtype=np.float64)
    assert [q.name for q in p.parameters()] == ["weight", "bias", "slope"]
    _check_layer(p, _x(6, 3))
    r = Dense(3, 4, "rrelu", init="he_normal", seed=1, dtype=np.float64)
    r.set_clock(Clock(seed=5, step=7))
    _check_layer(r, _x(6, 3), train=True)
    # test time: the mean slope (lower + upper) / 2, deterministic
    x = -np.abs(_x(2, 3))
    h = x @ r.weight.value.T
    y = r.forward(x, train=False)
    np.testing.assert_allclose(y, np.where(h > 0, h, (1 / 8 + 1 / 3) / 2 * h), rtol=1e-12)


def test_rrelu_training_slopes_lie_in_their_interval():
    a = Activation("rrelu", 1000, dtype=np.float64)
    x = -np.ones((4, 1000))
    y = a.forward(x, train=True)
    assert np.all(-y >= 1 / 8) and np.all(-y <= 1 / 3)
    assert len(np.unique(y)) > 3000


def test_maxout_routes_the_gradient_to_the_winning_piece():
    layer = Dense(3, 2, "maxout", params={"k": 3}, init="he_normal", seed=2, dtype=np.float64)
    assert layer.weight.value.shape == (6, 3)
    _check_layer(layer, _x(5, 3))
    h = _x(5, 3) @ layer.weight.value.T + layer.bias.value
    np.testing.assert_allclose(layer.forward(_x(5, 3), False), h.reshape(5, 2, 3).max(axis=2))


def test_batchnorm_training_backward_matches_central_differences():
    bn = BatchNorm(4, dtype=np.float64)
    bn.gamma.value[:] = [0.5, 1.5, -1.0, 2.0]
    bn.beta.value[:] = [0.1, -0.2, 0.3, 0.0]
    _check_layer(bn, _x(7, 4, scale=3.0))


def test_batchnorm_running_statistics_and_test_mode():
    bn = BatchNorm(3, momentum=0.1, dtype=np.float64)
    x = _x(50, 3, scale=2.0) + 5.0
    bn.forward(x, train=True)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=0, ddof=1), rtol=1e-12)
    y = bn.forward(x, train=False)
    np.testing.assert_allclose(y, (x - bn.running_mean) / np.sqrt(bn.running_var + bn.eps), rtol=1e-12)


def test_dropout_and_alpha_dropout_with_a_fixed_mask():
    x = _x(6, 5)
    d = Dropout(0.4)
    d.set_clock(Clock(seed=1, step=3))
    _check_layer(d, x.copy())
    y = d.forward(x, True)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.6, rtol=1e-12)
    a = AlphaDropout(0.2)
    a.set_clock(Clock(seed=1, step=3))
    _check_layer(a, x.copy())
    np.testing.assert_array_equal(d.forward(x, False), x)


def test_dropconnect_backward_uses_the_same_weight_mask():
    layer = Dense(4, 3, "tanh", init="he_normal", dropconnect=0.5, seed=1, dtype=np.float64)
    layer.set_clock(Clock(seed=2, step=11))
    _check_layer(layer, _x(5, 4))
    y_train = layer.forward(_x(5, 4), True).copy()
    y_test = layer.forward(_x(5, 4), False)
    assert not np.allclose(y_train, y_test)


def test_residual_block_backward():
    block = Residual([Dense(4, 4, "tanh", init="he_normal", seed=1, dtype=np.float64),
                      Dense(4, 4, "linear", init="he_normal", seed=2, dtype=np.float64)])
    _check_layer(block, _x(5, 4))


def test_residual_zero_init_and_fixup():
    x = _x(5, 4)
    z = Residual([Dense(4, 4, "relu", init="he_normal", seed=1, dtype=np.float64),
                  Dense(4, 4, "linear", seed=2, dtype=np.float64)], zero_init=True)
    np.testing.assert_array_equal(z.forward(x, False), x)   # x + V relu(W x + b) + c, V = 0, c = 0
    dense = [Dense(4, 4, a, init="he_normal", seed=s, dtype=np.float64)
             for s, a in ((1, "relu"), (2, "relu"), (3, "linear"))]
    before = dense[0].weight.value.copy()
    Residual(dense, fixup_blocks=16)
    np.testing.assert_allclose(dense[0].weight.value, before * 16 ** (-1 / 4), rtol=1e-12)
    assert not dense[2].weight.value.any()


def test_whole_network_backward_including_the_first_layer():
    net = build_mlp(3, [5, 5], 4, activation="gelu", batchnorm=True, dropout=0.3, residual=True,
                    dtype=np.float64, seed=4)
    net.step = 9
    x = _x(6, 3)
    R = np.random.default_rng(0).normal(size=(6, 4))
    net.forward(x, train=True)
    dx = net.backward(R, need_input_grad=True).copy()
    grads = [p.grad.copy() for p in net.parameters()]

    def objective():
        return float(np.sum(net.forward(x, train=True) * R))

    np.testing.assert_allclose(dx, _numgrad(objective, x), rtol=TOL, atol=TOL)
    for g, p in zip(grads, net.parameters()):
        np.testing.assert_allclose(g, _numgrad(objective, p.value), rtol=TOL, atol=TOL, err_msg=p.name)


@pytest.mark.parametrize("name", ["cross_entropy", "hinge", "mse"])
def test_losses_match_central_differences(name):
    loss = get_loss(name)
    z = _x(6, 4, scale=2.0)
    y = np.array([0, 3, 1, 2, 3, 0]) if name != "mse" else _x(6, 4, seed=9)
    loss.forward(z, y)
    g = loss.backward().copy()
    np.testing.assert_allclose(g, _numgrad(lambda: loss.forward(z, y), z), rtol=TOL, atol=TOL)


def test_loss_values_from_their_definitions():
    z = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    y = np.array([1, 0])
    lse = np.log(np.exp(z).sum(axis=1))
    assert get_loss("cross_entropy").forward(z, y) == pytest.approx(np.mean(lse - z[[0, 1], y]), rel=1e-14)
    # hinge, margin 1: row 0: max(0, 1-2+1) + max(0, .5-2+1) = 0; row 1: max(0,-1-0+1) + max(0, 3+1) = 4
    assert get_loss("hinge").forward(z, y) == pytest.approx(2.0, rel=1e-14)
    t = np.zeros_like(z)
    assert get_loss("mse").forward(z, t) == pytest.approx(np.mean(z ** 2), rel=1e-14)


def test_bad_layer_arguments_raise():
    with pytest.raises(ValueError, match="drop probability"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        Dense(2, 2, "nope")
    with pytest.raises(ValueError, match="expects inputs of shape"):
        Dense(2, 2).forward(np.zeros((3, 5), np.float32), False)
    with pytest.raises(TypeError, match="float32 or float64"):
        Dense(2, 2, dtype=np.int32)
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("nope")


# -- PyTorch autograd ---------------------------------------------------------------------------------
_TORCH_ACTS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "elu": "elu", "selu": "selu", "gelu": "gelu",
               "silu": "silu", "softplus": "softplus", "mish": "mish", "leaky_relu": "leaky_relu",
               "hardtanh": "hardtanh", "softsign": "softsign", "celu": "celu"}


def _against_torch(torch, layer, x, fn, rtol=1e-10):
    """Layer forward/backward vs torch autograd of ``fn(x, *params)`` under L = sum(y * R)."""
    R = np.random.default_rng(2).normal(size=layer.forward(x, True).shape)
    y = layer.forward(x, True).copy()
    dx = layer.backward(R, True).copy()
    tx = torch.tensor(x, requires_grad=True)
    tps = [torch.tensor(p.value, requires_grad=True) for p in layer.parameters()]
    ty = fn(tx, *tps)
    (ty * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=rtol, atol=1e-12)
    for p, tp in zip(layer.parameters(), tps):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=rtol, atol=1e-12, err_msg=p.name)


@pytest.mark.parametrize("act", sorted(_TORCH_ACTS))
def test_dense_against_torch_autograd(act):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer = Dense(5, 4, act, init="he_normal", seed=7, dtype=np.float64)
    layer.bias.value[:] = np.random.default_rng(1).normal(size=4)
    _against_torch(torch, layer, _x(6, 5), lambda x, w, b: getattr(F, _TORCH_ACTS[act])(F.linear(x, w, b)))


def test_batchnorm_and_prelu_against_torch_autograd():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    bn = BatchNorm(3, dtype=np.float64)
    bn.gamma.value[:] = [0.5, 2.0, -1.0]
    x = _x(8, 3, scale=2.0)
    _against_torch(torch, bn, x, lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True, eps=bn.eps),
                   rtol=1e-9)
    a = Activation("prelu", 3, dtype=np.float64)
    a.slope.value[:] = [0.1, 0.2, 0.3]
    _against_torch(torch, a, x, F.prelu)


def test_losses_against_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z = _x(7, 5, scale=2.0)
    y = np.array([0, 4, 2, 2, 1, 3, 0])
    for name, fn, factor in (("cross_entropy", lambda t: F.cross_entropy(t, torch.tensor(y)), 1.0),
                             ("hinge", lambda t: F.multi_margin_loss(t, torch.tensor(y)), 5.0)):
        loss = get_loss(name)
        value = loss.forward(z, y)
        tz = torch.tensor(z, requires_grad=True)
        tl = fn(tz) * factor   # torch's multi-margin loss divides by the number of classes
        tl.backward()
        assert value == pytest.approx(float(tl.detach()), rel=1e-12)
        np.testing.assert_allclose(loss.backward(), tz.grad.numpy(), rtol=1e-10, atol=1e-14)
    t = _x(7, 5, seed=4)
    loss = get_loss("mse")
    value = loss.forward(z, t)
    tz = torch.tensor(z, requires_grad=True)
    tl = F.mse_loss(tz, torch.tensor(t))
    tl.backward()
    assert value == pytest.approx(float(tl.detach()), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), tz.grad.numpy(), rtol=1e-12)

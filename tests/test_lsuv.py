"""LSUV (Mishkin & Matas 2015) for varprop networks and PyTorch models."""
import numpy as np
import pytest

from varprop.nn import build_mlp
from varprop.nn.init.lsuv import lsuv, sequential_unit_variance


def _batch(n, width, seed=0):
    return np.random.default_rng(seed).standard_normal((n, width)).astype(np.float32)


def _pre_activation_vars(net, X):
    from varprop.nn.layers import Dense
    out, x = [], X
    for layer in net.layers:
        if isinstance(layer, Dense):
            h = x.astype(np.float64) @ layer.weight.value.T + (0 if layer.bias is None else layer.bias.value)
            out.append(h.var())
        x = layer.forward(x, train=False)
    return np.array(out)


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu", "selu"])
def test_every_layer_ends_at_unit_variance_and_holds_on_new_data(activation):
    net = build_mlp(20, [64] * 8, 5, activation=activation, init="normal", seed=1)   # std 1: far too large
    X, X_new = _batch(512, 20, 1), _batch(512, 20, 2)
    before = _pre_activation_vars(net, X)
    assert np.abs(before - 1).max() > 1                   # the contrast: this init is far from unit variance
    report = lsuv(net, X, tol=0.05, seed=3)
    assert len(report) == 9 and all(abs(r.var_after - 1) < 0.05 for r in report)
    assert _pre_activation_vars(net, X) == pytest.approx([r.var_after for r in report], rel=1e-5)
    # fitted on one batch, the scales carry to another: within a few sampling errors of 1
    assert np.abs(_pre_activation_vars(net, X_new) - 1).max() < 0.05 + 0.15


def test_relu_with_zero_bias_needs_one_rescaling_per_layer():
    # positively homogeneous activation, zero bias: dividing by the std makes the variance exactly 1
    net = build_mlp(10, [32] * 5, 3, activation="relu", init="he_normal", seed=0)
    report = lsuv(net, _batch(256, 10), tol=1e-6, seed=0)
    assert all(r.iterations <= 1 for r in report)
    assert all(abs(r.var_after - 1) < 1e-5 for r in report)


def test_orthonormal_pre_initialization_and_reproducibility():
    a = build_mlp(8, [16, 16], 2, activation="tanh", seed=0)
    b = build_mlp(8, [16, 16], 2, activation="tanh", seed=5)
    X = _batch(128, 8)
    lsuv(a, X, seed=7)
    lsuv(b, X, seed=7)
    for la, lb in zip(a.parameters(), b.parameters()):
        assert np.array_equal(la.value, lb.value)        # the pre-init replaced whatever was there before
    w = a.layers[1].weight.value.astype(np.float64)       # 16 x 16: orthonormal up to LSUV's one scale
    g = w @ w.T
    assert np.allclose(g, np.eye(16) * g[0, 0], atol=1e-5)


def test_bad_input():
    net = build_mlp(4, [8], 2, seed=0)
    with pytest.raises(ValueError, match="width 4"):
        lsuv(net, _batch(10, 5))
    with pytest.raises(ValueError, match="tol must be in"):
        lsuv(net, _batch(10, 4), tol=2)
    with pytest.raises(ValueError, match="max_iter"):
        lsuv(net, _batch(10, 4), max_iter=0)
    with pytest.raises(ValueError, match="cannot be rescaled"):
        lsuv(net, np.zeros((10, 4), np.float32))
    with pytest.raises(TypeError, match="Network"):
        lsuv("net", _batch(10, 4))
    with pytest.raises(ValueError, match="NaN"):
        lsuv(net, np.full((3, 4), np.nan, np.float32))


def test_the_loop_stops_at_max_iter():
    calls = []
    report = sequential_unit_variance([("a", 0)], lambda h: 4.0, lambda h, f: calls.append(f), 0.1, 3)
    assert report[0].iterations == 3 and calls == [0.5, 0.5, 0.5]


def test_pytorch_models():
    torch = pytest.importorskip("torch")
    from varprop.nn.init.torch import lsuv_
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 6 * 6, 32), torch.nn.Dropout(0.5), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10))
    model.train()
    x = torch.randn(128, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    report = lsuv_(model, x, tol=0.02, generator=torch.Generator().manual_seed(1))
    assert [r.name for r in report] == ["0", "3", "6"] and all(abs(r.var_after - 1) < 0.02 for r in report)
    assert model.training and all(not m._forward_hooks for m in model.modules())
    model.eval()
    with torch.no_grad():                    # measured again independently of lsuv_'s own bookkeeping
        h = model[0](x)
        assert abs(float(h.double().var()) - 1) < 0.02
        h = model[3](model[2](model[1](h)))
        assert abs(float(h.double().var()) - 1) < 0.02
    with pytest.raises(ValueError, match="no Linear or Conv"):
        lsuv_(torch.nn.Sequential(torch.nn.Tanh()), x)


def test_against_the_lsuv_package():
    """The PyPI package's LSUV on the same model reaches the same unit variances (where it is installed)."""
    torch = pytest.importorskip("torch")
    pkg = pytest.importorskip("lsuv")
    from varprop.nn.init.torch import lsuv_
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh())
    x = torch.randn(256, 20, generator=torch.Generator().manual_seed(0))
    theirs = pkg.lsuv_with_dataloader(model, [(x, None)], device=torch.device("cpu"))   # noqa: F841
    with torch.no_grad():
        v_theirs = [float(model[0](x).var()), float(model[2](model[1](model[0](x))).var())]
    lsuv_(model, x, tol=0.1)
    with torch.no_grad():
        v_ours = [float(model[0](x).var()), float(model[2](model[1](model[0](x))).var())]
    assert np.allclose(v_theirs, 1, atol=0.1) and np.allclose(v_ours, 1, atol=0.1)

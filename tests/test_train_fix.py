"""Regression tests for the trainer review: each fails on the code before its fix.

Residual zero-init that still learns, the schedule keyed on the trainer's own position, NaN through
ReLU, batch-norm statistics restored on divergence, PyTorch's momentum form under a changing
learning rate, coupled weight decay after clipping, label bounds in the losses.
"""
import numpy as np
import pytest

from varprop.nn import build_mlp
from varprop.nn import kernels as K
from varprop.nn.layers import BatchNorm, Dense, Parameter, Residual
from varprop.nn.losses import get_loss
from varprop.nn.optim import get_optimizer
from varprop.nn.trainer import Trainer, permutation


def _data(n=64, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int)


def _blocks(net):
    return [l for l in net.layers if isinstance(l, Residual)]


# -- finding 1: a zero-initialized ReLU branch must get a gradient ----------------------------------------
@pytest.mark.parametrize("kw", [{"zero_init_residual": True}, {"fixup": True},
                                {"zero_init_residual": True, "batchnorm": True}])
def test_zeroed_residual_branches_start_as_identity_and_get_gradients(kw):
    net = build_mlp(4, [8, 8, 8], 2, activation="relu", residual=True, seed=1, dtype=np.float64, **kw)
    blocks = _blocks(net)
    assert len(blocks) == 2
    X, y = _data()
    X = X.astype(np.float64)
    x1 = net.layers[0].forward(X, False)    # first hidden layer (not residual: 4 -> 8)
    for blk in blocks:
        np.testing.assert_array_equal(blk.forward(x1, False), x1)
    loss = get_loss("cross_entropy")
    loss.forward(net._forward(X, True), y)
    net.backward(loss.backward())
    for blk in blocks:
        last = blk.branch[-1]
        zeroed = last.gamma if isinstance(last, BatchNorm) else last.weight
        assert not zeroed.value.any()
        assert np.abs(zeroed.grad).max() > 1e-6     # relu'(0) = 0 would make this exactly 0


def test_zero_init_refuses_a_branch_ending_in_relu():
    with pytest.raises(ValueError, match="derivative"):
        Residual([Dense(4, 4, "relu", seed=1)], zero_init=True)
    with pytest.raises(ValueError, match="derivative"):
        Residual([Dense(4, 4, "linear", seed=1), Dense(4, 4, "relu", seed=2)], fixup_blocks=3)
    Residual([Dense(4, 4, "tanh", seed=1)], zero_init=True)     # tanh'(0) = 1: allowed


def test_zero_init_relu_branch_trains_away_from_zero():
    X, y = _data(128)
    net = build_mlp(4, [8, 8], 2, residual=True, zero_init_residual=True, seed=0)
    Trainer(net, "cross_entropy", get_optimizer("adam", lr=0.01), batch_size=32, epochs=3, progress=False).fit(X, y)
    assert np.abs(_blocks(net)[0].branch[-1].weight.value).max() > 1e-3


def test_residual_backward_without_input_gradient_matches_with():
    net = build_mlp(4, [6, 6], 3, activation="tanh", residual=True, seed=2, dtype=np.float64)
    blk = _blocks(net)[0]
    x = np.random.default_rng(0).normal(size=(5, 6))
    dy = np.random.default_rng(1).normal(size=(5, 6))
    asked = []
    first = blk.branch[0]
    backward = first.backward
    first.backward = lambda g, need_dx=True: (asked.append(need_dx), backward(g, need_dx))[1]
    blk.forward(x, True)
    assert blk.backward(dy, need_dx=False) is None
    assert asked == [False]             # no input-gradient product for the branch's first layer
    g_without = [p.grad.copy() for p in blk.parameters()]
    blk.forward(x, True)
    blk.backward(dy, need_dx=True)
    for a, p in zip(g_without, blk.parameters()):
        np.testing.assert_array_equal(a, p.grad)


# -- finding 2: the schedule follows the trainer's own position -------------------------------------------
def test_a_second_trainer_starts_its_schedule_afresh():
    X, y = _data(64)
    net = build_mlp(4, [8], 2, seed=0)
    Trainer(net, epochs=3, batch_size=16, progress=False).fit(X, y)
    h = Trainer(net, epochs=4, batch_size=16, schedule="cosine", progress=False).fit(X, y)
    fresh = Trainer(build_mlp(4, [8], 2, seed=0), epochs=4, batch_size=16, schedule="cosine",
                    progress=False).fit(X, y)
    assert [e["lr"] for e in h.epochs] == [e["lr"] for e in fresh.epochs]
    assert h.epochs[0]["lr"] > 0.5e-3


# -- finding 3: NaN is not turned into 0 by ReLU -------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_kernels_propagate_nan(dtype):
    h = np.array([[np.nan, -1.0, 2.0]], dtype)
    y = np.empty_like(h)
    K.bias_act_forward(h, np.zeros(3, dtype), K.RELU, dtype(0), dtype(0), y)
    assert np.isnan(y[0, 0]) and y[0, 1] == 0 and y[0, 2] == 2
    dh = np.empty_like(h)
    K.act_backward(np.ones_like(h), h, K.RELU, dtype(0), dtype(0), dh)
    assert np.isnan(dh[0, 0]) and dh[0, 1] == 0 and dh[0, 2] == 1


# -- findings 3 and 4: divergence with batch norm ------------------------------------------------------------
@pytest.mark.parametrize("activation,optimizer", [("relu", "momentum"), ("linear", "sgd")])
def test_divergence_with_batchnorm_keeps_finite_weights_and_statistics(activation, optimizer):
    X, y = _data(256)
    net = build_mlp(4, [16, 16], 2, activation=activation, batchnorm=True, seed=0)
    t = Trainer(net, "cross_entropy", get_optimizer(optimizer, lr=1e10), batch_size=32, epochs=2,
                progress=False)
    with np.errstate(all="ignore"):
        h = t.fit(X, y)
    assert h.diverged
    assert all(np.isfinite(p.value).all() for p in net.parameters())
    assert all(np.isfinite(a).all() for a in net.buffers().values())
    assert np.isfinite(t.evaluate(X, y)[0])


# -- finding 5: PyTorch's momentum form under a changing learning rate -----------------------------------------
@pytest.mark.parametrize("name,kw", [("momentum", {}), ("nesterov", {"nesterov": True}),
                                     ("momentum", {"weight_decay": 0.3})])
def test_momentum_matches_torch_when_the_learning_rate_changes(name, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(7)]
    lrs = [0.1, 0.1, 0.1, 0.01, 0.01, 0.3, 0.05]
    p = Parameter(p0.copy(), "w", regularize=True)
    opt = get_optimizer(name, lr=0.1, momentum=0.9, weight_decay=kw.get("weight_decay", 0.0))
    tp = torch.nn.Parameter(torch.tensor(p0))
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9, **kw)
    for g, lr in zip(grads, lrs):
        opt.lr = lr
        for group in topt.param_groups:
            group["lr"] = lr
        p.grad[...] = g
        opt.step([p])
        tp.grad = torch.tensor(g)
        topt.step()
        np.testing.assert_allclose(p.value, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,cls", [("adam", "Adam"), ("rmsprop", "RMSprop"), ("adagrad", "Adagrad")])
def test_coupled_weight_decay_of_adaptive_optimizers_matches_torch(name, cls):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(5)]
    p = Parameter(p0.copy(), "w", regularize=True)
    opt = get_optimizer(name, lr=0.05, weight_decay=0.2)
    tp = torch.nn.Parameter(torch.tensor(p0))
    extra = {"alpha": 0.99, "eps": 1e-8} if cls == "RMSprop" else ({"eps": 1e-8} if cls == "Adagrad" else {})
    topt = getattr(torch.optim, cls)([tp], lr=0.05, weight_decay=0.2, **extra)
    for g in grads:
        p.grad[...] = g
        opt.step([p])
        tp.grad = torch.tensor(g)
        topt.step()
        np.testing.assert_allclose(p.value, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


# -- finding 6: coupled weight decay is added after clipping -------------------------------------------------
@pytest.mark.parametrize("optimizer,cls", [("sgd", "SGD"), ("adam", "Adam")])
def test_trainer_weight_decay_with_clipping_matches_torch(optimizer, cls):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 4))
    y = (X[:, 0] > 0).astype(int)
    net = build_mlp(4, [], 2, activation="linear", dtype=np.float64, seed=0)
    W0, b0 = (p.value.copy() for p in net.parameters())
    t = Trainer(net, "cross_entropy", get_optimizer(optimizer, lr=0.1), batch_size=32, epochs=1,
                weight_decay=0.5, clip_norm=0.01, progress=False)
    t.fit(X, y)
    lin = torch.nn.Linear(4, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(W0))
        lin.bias.copy_(torch.tensor(b0))
    # the trainer decays weights only (biases are not regularized)
    topt = getattr(torch.optim, cls)([{"params": [lin.weight], "weight_decay": 0.5},
                                      {"params": [lin.bias], "weight_decay": 0.0}], lr=0.1)
    idx = permutation(0, 0, 32)
    torch.nn.functional.cross_entropy(lin(torch.tensor(X[idx])), torch.tensor(y[idx])).backward()
    # torch.nn.utils.clip_grad_norm_ divides by norm + 1e-6; the trainer by the norm itself
    norm = torch.sqrt(sum((q.grad ** 2).sum() for q in lin.parameters()))
    assert norm > 0.01
    for q in lin.parameters():
        q.grad *= 0.01 / norm
    topt.step()
    W, b = (p.value for p in net.parameters())
    # rounding of the two gradient routes is ~1e-13; decaying before clipping was off by 2e-2
    np.testing.assert_allclose(W, lin.weight.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, lin.bias.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_trainer_weight_decay_overrides_adamw_without_mutating_it():
    X, y = _data(32)
    opt = get_optimizer("adamw", lr=0.01)
    net_off = build_mlp(4, [8], 2, seed=0)
    Trainer(net_off, "cross_entropy", opt, batch_size=32, epochs=2, weight_decay=0.0, progress=False).fit(X, y)
    assert opt.decoupled_decay == 0.01
    net_adam = build_mlp(4, [8], 2, seed=0)
    Trainer(net_adam, "cross_entropy", get_optimizer("adam", lr=0.01), batch_size=32, epochs=2,
            progress=False).fit(X, y)
    for a, b in zip(net_off.parameters(), net_adam.parameters()):
        np.testing.assert_array_equal(a.value, b.value)       # weight_decay=0 really turns AdamW's decay off


def test_one_name_one_meaning_for_the_optimizer_decays():
    p = Parameter(np.ones(3), "w", regularize=True)
    get_optimizer("sgd", lr=0.1, weight_decay=0.5).step([p])       # coupled: g' = 0 + 0.5 p
    np.testing.assert_allclose(p.value, 1 - 0.1 * 0.5)
    q = Parameter(np.ones(3), "w", regularize=True)
    get_optimizer("sgd", lr=0.1, decoupled_decay=0.5).step([q])    # decoupled: p -= lr 0.5 p
    np.testing.assert_allclose(q.value, 1 - 0.1 * 0.5)
    for bad in (np.inf, -1.0, np.nan):
        with pytest.raises(ValueError, match="weight_decay"):
            get_optimizer("sgd", lr=0.1, weight_decay=bad)
    with pytest.raises(TypeError, match="weight_decay"):
        get_optimizer("sgd", lr=0.1, weight_decay="a")


# -- finding 7: labels out of range ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cross_entropy", "hinge"])
@pytest.mark.parametrize("labels", [[0, 7], [-1, 0], [0, 3]])
def test_losses_refuse_labels_out_of_range(name, labels):
    with pytest.raises(ValueError, match="out of range"):
        get_loss(name).forward(np.zeros((2, 3)), np.array(labels))


def test_losses_refuse_mismatched_lengths():
    with pytest.raises(ValueError, match="do not match"):
        get_loss("cross_entropy").forward(np.zeros((3, 3)), np.array([0, 1]))


# -- finding 8 is in tests/test_init_jax.py; finding 10: batch-norm backward needs a training pass --------------
def test_batchnorm_backward_without_a_training_forward_is_a_clear_error():
    bn = BatchNorm(3)
    bn.forward(np.zeros((2, 3), np.float32), train=False)
    with pytest.raises(RuntimeError, match="training-mode forward"):
        bn.backward(np.zeros((2, 3), np.float32))


# -- finding 11: validation ------------------------------------------------------------------------------------
def test_bad_arguments_are_refused_at_construction():
    from varprop.nn.init.structured import Dirac
    from varprop.nn.schedules import get_schedule
    with pytest.raises(ValueError, match="seed"):
        build_mlp(3, [4], 2, seed=1.5)
    with pytest.raises(ValueError, match="bias_init"):
        Dense(3, 2, bias_init=float("nan"))
    with pytest.raises(TypeError, match="residual branch"):
        Residual([3])
    with pytest.raises(TypeError, match="momentum"):
        BatchNorm(3, momentum="a")
    with pytest.raises(TypeError, match="margin"):
        get_loss("hinge", margin="a")
    with pytest.raises(TypeError, match="gamma"):
        get_schedule("step", gamma="a")
    with pytest.raises(TypeError, match="callback"):
        Trainer(build_mlp(3, [4], 2), callback=3)
    assert Dirac(groups=np.int64(2)).groups == 2


def test_a_truncated_checkpoint_is_a_value_error(tmp_path):
    from varprop.nn import checkpoint as ckpt
    X, y = _data(32)
    t = Trainer(build_mlp(4, [4], 2), batch_size=16, epochs=1, progress=False)
    t.fit(X, y)
    path = str(tmp_path / "run.npz")
    t.save_checkpoint(path)
    config, arrays = ckpt.read(path)
    del config["state"]["opt_t"]
    ckpt.write(path, config, arrays)
    with pytest.raises(ValueError, match="incomplete"):
        Trainer.from_checkpoint(path)


# -- finding 12: running statistics without a variance recomputed from inv_std ------------------------------------
@pytest.mark.parametrize("c", [1.0, 3.0, 1e3])
def test_running_variance_of_a_constant_feature_is_exactly_zero(c):
    # recomputing var = 1/inv_std^2 - eps from a float32 inv_std leaves a rounding residue (even < 0)
    bn = BatchNorm(2, momentum=1.0)
    x = np.array([[c, 0.0], [c, 2.0]], np.float32)     # feature 0 constant: batch variance 0
    bn.forward(x, train=True)
    assert bn.running_var[0] == 0.0 and bn.running_var[1] == 2.0
    assert bn.running_mean.tolist() == [np.float32(c), 1.0]


# -- finding 13: float32 stays float32 ----------------------------------------------------------------------------
def test_regression_targets_take_the_network_dtype():
    assert get_loss("mse").check_targets(np.arange(4.0), 1, np.float32).dtype == np.float32


# -- finding 16: one set of argument checks ------------------------------------------------------------------
def test_shared_argument_checks():
    from varprop.nn.init import checks
    assert checks.positive_int(np.int64(3), "width") == 3 and checks.nonneg_int(0) == 0
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(ValueError, match="width must be a positive integer"):
            checks.positive_int(bad, "width")
    assert checks.nonneg(np.float32(0.25), "l2") == 0.25
    for f, bad in ((checks.nonneg, -1.0), (checks.nonneg, np.inf), (checks.positive, 0.0), (checks.real, np.nan),
                   (checks.probability, 1.0)):
        with pytest.raises(ValueError, match="x "):
            f(bad, "x")
    for f in (checks.nonneg, checks.positive, checks.real, checks.probability):
        with pytest.raises(TypeError, match="x must be a number"):
            f("a", "x")

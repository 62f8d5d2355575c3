"""The training loop: symmetry of zero initialization, divergence, early stopping, clipping, penalties,
freezing, thread-count independence and input validation."""
import numpy as np
import pytest

from varprop.nn import build_mlp
from varprop.nn.optim import get_optimizer
from varprop.nn.trainer import Trainer, permutation


def _blobs(n=240, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    y = rng.integers(0, k, size=n)
    X = centers[y] + rng.normal(size=(n, d))
    return X.astype(np.float32), y


def test_learns_separable_blobs():
    X, y = _blobs()
    t = Trainer(build_mlp(5, [16], 3, seed=1), "cross_entropy", "adam", batch_size=32, epochs=15, progress=False)
    t.optimizer.lr = t.base_lr = 0.01
    h = t.fit(X[:200], y[:200], X[200:], y[200:])
    assert h.epochs[-1]["train_loss"] < 0.5 * h.epochs[0]["train_loss"]
    loss, acc = t.evaluate(X[200:], y[200:])
    assert acc >= 0.9 and loss == pytest.approx(h.epochs[-1]["val_loss"])
    assert set(h.epochs[0]) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}


@pytest.mark.parametrize("act, value", [("sigmoid", 0.0), ("tanh", 0.1)])
def test_zero_initialization_keeps_hidden_units_identical(act, value):
    """Symmetric starts (all zeros; or one common constant, so the signal is not zero either)
    give every hidden unit of a layer the same gradient, so they never become different."""
    X, y = _blobs()
    net = build_mlp(5, [6, 6], 3, activation=act, init="zeros", seed=0)
    for p in net.parameters():
        p.value[...] = value
    Trainer(net, "cross_entropy", "sgd", batch_size=16, epochs=3, progress=False).fit(X, y)
    W1, b1, W2, b2, W3, _ = (p.value for p in net.parameters())
    assert not np.allclose(W3, value)                     # it did train
    for M in (W1, b1[:, None], W2):
        np.testing.assert_array_equal(M, np.broadcast_to(M[:1], M.shape))   # every row the same unit
    np.testing.assert_array_equal(W2, np.broadcast_to(W2[:, :1], W2.shape))
    np.testing.assert_array_equal(W3, np.broadcast_to(W3[:, :1], W3.shape))


def test_divergence_stops_with_a_message_and_keeps_finite_weights():
    X, y = _blobs()
    X = X * 1e3
    net = build_mlp(5, [16], 3, seed=0, activation="linear")
    t = Trainer(net, "cross_entropy", "momentum", batch_size=16, epochs=5, progress=False)
    t.optimizer.lr = t.base_lr = 1e4
    h = t.fit(X, y)
    assert h.diverged
    assert "diverged at epoch 1, step" in h.message and "loss is" in h.message
    assert all(np.isfinite(p.value).all() for p in net.parameters())
    assert len(h.epochs) == 0


def test_early_stopping_restores_the_best_weights():
    X, y = _blobs(n=120)
    rng = np.random.default_rng(0)
    y_noisy = rng.integers(0, 3, size=len(y))          # labels unrelated to X: validation loss rises
    net = build_mlp(5, [64], 3, seed=0)
    t = Trainer(net, "cross_entropy", "adam", batch_size=8, epochs=60, patience=3, early_stopping=True,
                progress=False)
    t.optimizer.lr = t.base_lr = 0.01
    h = t.fit(X, y_noisy)
    assert h.stopped_early and len(h.epochs) < 60
    best = min(h.epochs, key=lambda e: e["val_loss"])
    assert h.best_epoch == best["epoch"] == len(h.epochs) - 3
    Xtr, ytr, Xva, yva = t._split(*t._check_xy(X, y_noisy))
    assert t.evaluate(Xva, yva)[0] == pytest.approx(best["val_loss"], rel=1e-12)


def test_gradient_clipping_caps_the_global_norm():
    X, y = _blobs(n=32)
    net = build_mlp(5, [8], 3, seed=0)
    t = Trainer(net, clip_norm=0.01, progress=False)
    out = net._forward(t._check_X(X), True)
    t.loss.forward(out, y)
    net.backward(t.loss.backward())
    params = net.parameters()
    before = np.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in params))
    t._clip(params)
    after = np.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in params))
    assert before > 0.01 and after == pytest.approx(0.01, rel=1e-5)


def test_penalties_apply_to_weights_only():
    net = build_mlp(3, [4], 2, seed=0)
    t = Trainer(net, l1=0.3, l2=0.2, weight_decay=0.1, progress=False)
    params = net.parameters()
    for p in params:
        p.grad[...] = 0
    t._regularize(params)
    W, b = params[0], params[1]
    # weight_decay is not a penalty of the objective: the optimizer adds it after clipping
    np.testing.assert_allclose(W.grad, 0.3 * np.sign(W.value) + 0.2 * W.value, rtol=1e-6)
    assert not b.grad.any()
    w = [p.value.astype(float) for p in params if p.regularize]
    assert t._penalty(params) == pytest.approx(sum(0.3 * np.abs(a).sum() + 0.1 * (a ** 2).sum() for a in w))


def test_frozen_layers_keep_their_weights_and_a_new_head_trains():
    X, y = _blobs()
    net = build_mlp(5, [8, 8], 3, seed=0)
    Trainer(net, epochs=2, progress=False).fit(X, y)
    net.replace_head(2, seed=5)
    net.freeze(len(net.layers) - 1)
    frozen = [p.value.copy() for p in net.parameters()[:-2]]
    head = net.parameters()[-2].value.copy()
    Trainer(net, epochs=2, l2=0.1, progress=False).fit(X, (y > 0).astype(int))
    for a, p in zip(frozen, net.parameters()[:-2]):
        np.testing.assert_array_equal(a, p.value)
    assert not np.array_equal(head, net.parameters()[-2].value)


def test_results_do_not_depend_on_the_thread_count(monkeypatch):
    numba = pytest.importorskip("numba")
    from varprop.nn import kernels as K
    # run the parallel update kernels on this small network: a 64 x 1024 weight is four chunks
    monkeypatch.setattr(K, "PARALLEL_MIN", K.CHUNK)
    calls = []
    parallel = K.adaptive_step_parallel
    monkeypatch.setattr(K, "adaptive_step_parallel", lambda *a: (calls.append(1), parallel(*a)))
    X, y = _blobs(n=64)
    runs = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        net = build_mlp(5, [64, 1024], 3, seed=2, dropout=0.5, activation="rrelu")
        Trainer(net, batch_size=16, epochs=2, seed=3, l2=0.01, progress=False).fit(X, y)
        runs.append([p.value.copy() for p in net.parameters()])
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert calls
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_epoch_orders_are_permutations_fixed_by_the_seed():
    a = permutation(1, 0, 50)
    assert sorted(a) == list(range(50))
    np.testing.assert_array_equal(a, permutation(1, 0, 50))
    assert not np.array_equal(a, permutation(1, 1, 50))


@pytest.mark.parametrize("bad, match", [
    (lambda X, y: (X[:, :3], y), "features"),
    (lambda X, y: (X, y[:-1]), "samples"),
    (lambda X, y: (X, y + 5), "out of range"),
    (lambda X, y: (np.where(X > 2, np.nan, X), y), "NaN"),
    (lambda X, y: (X, y + 0.5), "integers"),
])
def test_bad_data_fails_with_one_clear_line(bad, match):
    X, y = _blobs(n=20)
    t = Trainer(build_mlp(5, [4], 3), epochs=1, progress=False)
    with pytest.raises(ValueError, match=match):
        t.fit(*bad(X, y))


def test_bad_settings_raise():
    net = build_mlp(5, [4], 3)
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(net, batch_size=0)
    with pytest.raises(ValueError, match="l2"):
        Trainer(net, l2=-1)
    with pytest.raises(ValueError, match="learning rate"):
        Trainer(net, optimizer=__import__("varprop.nn.optim", fromlist=["x"]).get_optimizer("sgd", lr=0.0))


def test_regression_with_mse():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    yv = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    t = Trainer(build_mlp(3, [16], 1, seed=0), "mse", "adam", batch_size=20, epochs=40, progress=False)
    t.optimizer.lr = t.base_lr = 0.01
    h = t.fit(X, yv)
    assert h.epochs[-1]["train_acc"] is None
    assert h.epochs[-1]["train_loss"] < 0.05 * np.var(yv)
    assert t.predict(X).shape == (200, 1)


def test_one_trainer_step_is_penalized_clipped_gradient_descent():
    X, y = _blobs(n=16)
    X = X.astype(np.float64)
    lr, l1, l2, wd, clip = 0.05, 0.01, 0.02, 0.03, 0.5
    ref = build_mlp(5, [4], 3, activation="tanh", seed=3, dtype=np.float64)
    net = build_mlp(5, [4], 3, activation="tanh", seed=3, dtype=np.float64)
    from varprop.nn.losses import get_loss
    from varprop.nn.optim import get_optimizer
    loss = get_loss("cross_entropy")
    loss.forward(ref._forward(X, True), y)
    ref.backward(loss.backward())
    grads = []
    for p in ref.parameters():
        g = p.grad.copy()
        if p.regularize:
            g += l1 * np.sign(p.value) + l2 * p.value
        grads.append(g)
    norm = np.sqrt(sum((g ** 2).sum() for g in grads))
    scale = min(1.0, clip / norm)
    # coupled decay enters after clipping, as torch's clip_grad_norm_ then SGD(weight_decay=wd).step()
    grads = [scale * g + (wd * p.value if p.regularize else 0.0) for g, p in zip(grads, ref.parameters())]
    t = Trainer(net, "cross_entropy", get_optimizer("sgd", lr=lr), batch_size=16, epochs=1, l1=l1, l2=l2,
                weight_decay=wd, clip_norm=clip, progress=False)
    t.fit(X, y)
    assert scale < 1.0
    for p, q, g in zip(ref.parameters(), net.parameters(), grads):
        np.testing.assert_allclose(q.value, p.value - lr * g, rtol=1e-12, atol=1e-14, err_msg=p.name)


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "adagrad", "adam", "adamw"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_l2_penalty_left_to_the_update_kernel_gives_the_same_bits(optimizer, dtype):
    """With L2 alone and nothing between the penalty and the step, the trainer lets the update kernel add
    l2 w (its coupled decay) instead of a pass of its own: the weights must be those of the separate pass,
    which a clip_norm too large to clip forces."""
    X, y = _blobs(n=80)
    runs, folded = [], []
    for clip in (None, 1e30):
        net = build_mlp(5, [16, 8], 3, seed=4, dtype=dtype)
        t = Trainer(net, optimizer=get_optimizer(optimizer, lr=0.05), batch_size=16, epochs=3, seed=1,
                    l2=0.03, clip_norm=clip, progress=False)
        folded.append(t._l2_in_step(t.optimizer))
        t.fit(X, y)
        runs.append([p.value.copy() for p in net.parameters()])
    assert folded == [True, False]
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][0], build_mlp(5, [16, 8], 3, seed=4, dtype=dtype).parameters()[0].value)


def test_the_l2_penalty_stays_a_pass_of_its_own_when_something_stands_between_it_and_the_step():
    net = build_mlp(3, [4], 2, seed=0)
    sgd = get_optimizer("sgd", lr=0.1)
    assert not Trainer(net, optimizer=sgd, l2=0.1, clip_norm=1.0, progress=False)._l2_in_step(sgd)
    assert not Trainer(net, optimizer=sgd, l2=0.1, l1=0.1, progress=False)._l2_in_step(sgd)
    assert not Trainer(net, optimizer=sgd, l2=0.1, weight_decay=0.01, progress=False)._l2_in_step(sgd)
    coupled = get_optimizer("sgd", lr=0.1, weight_decay=0.01)
    assert not Trainer(net, optimizer=coupled, l2=0.1, progress=False)._l2_in_step(coupled)
    assert Trainer(net, optimizer=coupled, l2=0.1, weight_decay=0.0, progress=False)._l2_in_step(coupled)
    assert not Trainer(net, optimizer=sgd, progress=False)._l2_in_step(sgd)


def test_adamw_weight_decay_is_decoupled():
    net = build_mlp(3, [4], 2, seed=0)
    opt = get_optimizer("adamw", lr=0.01)
    t = Trainer(net, optimizer=opt, weight_decay=0.2, progress=False)
    assert t._step_decay == {"decoupled_decay": 0.2} and opt.decoupled_decay == 0.01   # caller's not mutated
    for p in net.parameters():
        p.grad[...] = 0
    t._regularize(net.parameters())
    assert not any(p.grad.any() for p in net.parameters())   # nothing added to the gradient


def test_batchnorm_never_sees_a_batch_of_one():
    X, y = _blobs(n=33)
    t = Trainer(build_mlp(5, [8], 3, batchnorm=True), batch_size=16, epochs=2, progress=False)
    h = t.fit(X, y)
    assert t.network.step == 4 and h.epochs[-1]["train_acc"] is not None   # 2 batches of 16 per epoch


def test_full_batch_adam_training_matches_torch():
    torch = pytest.importorskip("torch")
    X, y = _blobs(n=40)
    X = X.astype(np.float64)
    net = build_mlp(5, [7], 3, activation="tanh", seed=1, dtype=np.float64)
    lin1 = torch.nn.Linear(5, 7).double()
    lin2 = torch.nn.Linear(7, 3).double()
    with torch.no_grad():
        for lin, (w, b) in zip((lin1, lin2), zip(*[iter(net.parameters())] * 2)):
            lin.weight.copy_(torch.tensor(w.value))
            lin.bias.copy_(torch.tensor(b.value))
    model = torch.nn.Sequential(lin1, torch.nn.Tanh(), lin2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(6):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.tensor(X)), torch.tensor(y)).backward()
        opt.step()
    from varprop.nn.optim import get_optimizer
    Trainer(net, "cross_entropy", get_optimizer("adam", lr=0.01), batch_size=40, epochs=6, progress=False).fit(X, y)
    ours = [p.value for p in net.parameters()]
    theirs = [t.detach().numpy() for t in (lin1.weight, lin1.bias, lin2.weight, lin2.bias)]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_digits_end_to_end():
    from varprop.nn import data
    ds = data.load("digits", seed=0)
    net = build_mlp(ds.n_features, [128], ds.n_classes, activation="relu", init="he_normal", seed=0)
    t = Trainer(net, "cross_entropy", "adam", batch_size=64, epochs=30, schedule="cosine", progress=False)
    t.optimizer.lr = t.base_lr = 3e-3
    t.fit(ds.X_train, ds.y_train, ds.X_val, ds.y_val)
    assert t.evaluate(ds.X_test, ds.y_test)[1] > 0.95


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "rmsprop", "adagrad"])
def test_memory_estimate_counts_the_arrays_training_really_holds(optimizer):
    """The per-parameter part of memory_estimate against the bytes of every array a fitted trainer keeps."""
    from varprop.nn.network import mlp_shapes
    from varprop.nn.trainer import _EVAL_CHUNK, memory_estimate
    X, y = _blobs()
    net = build_mlp(5, [16, 8], 3, seed=0)
    t = Trainer(net, "cross_entropy", get_optimizer(optimizer, lr=1e-3), batch_size=16, epochs=1, progress=False)
    t.fit(X, y)
    held = sum(p.value.nbytes + p.grad.nbytes for p in net.parameters())
    held += sum(a.nbytes for s in t.optimizer.state.values() for a in s.values())   # slots and pre-step copies
    held += sum(b.nbytes for b in t._backup)
    shapes = mlp_shapes(5, [16, 8], 3)
    assert [tuple(p.value.shape)[::-1] for p in net.parameters() if p.value.ndim == 2] == shapes   # (out, in)
    widths = [5, 16, 8, 3]
    activations = 4 * 4 * 16 * sum(widths) + 4 * 2 * _EVAL_CHUNK * max(widths)
    assert memory_estimate(shapes, 16, optimizer) - activations == held


def test_a_network_too_large_for_memory_is_refused_before_drawing():
    with pytest.raises(ValueError, match=r"an MLP 64-100000000-10 .* needs about .* GiB"):
        build_mlp(64, [100_000_000], 10)


def test_the_epoch_ceiling_is_one_number():
    from varprop.cli import train as cli_train
    from varprop.nn.trainer import MAX_EPOCHS
    assert cli_train.MAX_EPOCHS == MAX_EPOCHS
    with pytest.raises(ValueError, match="epochs must be at most"):
        Trainer(build_mlp(2, [2], 2), epochs=MAX_EPOCHS + 1)


def test_fit_refuses_training_state_beyond_the_memory_available(monkeypatch):
    import varprop.memory
    X, y = _blobs()
    net = build_mlp(5, [16], 3, seed=0)
    before = [p.value.copy() for p in net.parameters()]
    monkeypatch.setattr(varprop.memory, "available_memory", lambda: 1000)   # bytes
    t = Trainer(net, "cross_entropy", "adam", batch_size=16, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"training this network \(.* parameters, adam\) needs about"):
        t.fit(X, y)
    assert all(np.array_equal(p.value, b) for p, b in zip(net.parameters(), before))   # nothing moved

"""Augmentation in the training loop: soft-target cross-entropy (central differences, PyTorch), the
trainer's per-batch ``augment`` hook (training batches only, keyed by position, so a resumed run
repeats the uninterrupted one bit for bit) and mixup through the trainer."""
import os
import signal

import numpy as np
import pytest

from varprop.nn import build_mlp
from varprop.nn.augment import Augment, one_hot
from varprop.nn.losses import get_loss
from varprop.nn.trainer import Trainer


def _soft(n, k, seed):
    rng = np.random.default_rng(seed)
    t = rng.random((n, k))
    return t / t.sum(axis=1, keepdims=True)


def _blobs(n=160, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.normal(scale=2.0, size=(k, d))[y] + rng.normal(size=(n, d))
    return X.astype(np.float32), y


# -- soft-target cross-entropy --------------------------------------------------------------------------
def test_one_hot_targets_give_the_integer_label_loss_and_gradient():
    z = np.random.default_rng(1).normal(size=(7, 4))
    y = np.array([0, 3, 1, 2, 2, 0, 1])
    ce = get_loss("cross_entropy")
    a, ga = ce.forward(z, y), ce.backward().copy()
    b, gb = ce.forward(z, one_hot(y, 4, np.float64)), ce.backward().copy()
    assert a == pytest.approx(b, rel=1e-14)
    np.testing.assert_allclose(ga, gb, rtol=0, atol=1e-16)


@pytest.mark.parametrize("normalized", [True, False])
def test_soft_target_gradient_matches_central_differences(normalized):
    rng = np.random.default_rng(2)
    z = rng.normal(scale=3.0, size=(5, 4))
    t = _soft(5, 4, 3) if normalized else rng.random((5, 4)) * 2    # the formula holds for any mass
    ce = get_loss("cross_entropy")
    ce.forward(z, t)
    g = ce.backward().copy()
    eps = 1e-6
    num = np.empty_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        num[idx] = (ce.forward(zp, t) - ce.forward(zm, t)) / (2 * eps)
    # central differences in float64: truncation ~eps^2, rounding ~1e-16/eps
    np.testing.assert_allclose(g, num, rtol=0, atol=1e-8)


def test_soft_targets_are_stable_for_large_logits():
    z = np.array([[1000.0, 0.0, -1000.0]], np.float32)
    ce = get_loss("cross_entropy")
    value = ce.forward(z, np.array([[0.5, 0.5, 0.0]], np.float32))
    assert value == pytest.approx(500.0, rel=1e-6)
    np.testing.assert_allclose(ce.backward(), [[0.5, -0.5, 0.0]], atol=1e-6)


def test_soft_targets_match_pytorch():
    torch = pytest.importorskip("torch")
    z = np.random.default_rng(4).normal(scale=2.0, size=(6, 5))
    t = _soft(6, 5, 5)
    ce = get_loss("cross_entropy")
    value, g = ce.forward(z, t), ce.backward().copy()
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.tensor(t))
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(g, zt.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("t, err", [
    (np.full((3, 2), 0.5), ValueError),                          # wrong shape
    (np.array([[0.5, np.nan, 0.5]] * 3), ValueError),
    (np.array([[1.5, -0.5, 0.0]] * 3), ValueError),              # negative
    (np.array([[1, 0, 0]] * 3), TypeError),                     # integer 2-d array is not a probability
])
def test_bad_soft_targets_raise(t, err):
    with pytest.raises(err):
        get_loss("cross_entropy").forward(np.zeros((3, 3)), t)


def test_check_targets_accepts_soft_targets_of_the_right_width():
    ce = get_loss("cross_entropy")
    t = ce.check_targets(_soft(4, 3, 0), 3, np.float32)
    assert t.dtype == np.float32 and t.shape == (4, 3)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        ce.check_targets(_soft(4, 3, 0), 2)


# -- the trainer's augment hook ---------------------------------------------------------------------------
def test_augment_sees_training_batches_only_at_their_positions():
    X, y = _blobs(50)
    calls = []

    def spy(xb, yb, epoch, step):
        calls.append((epoch, step, len(xb)))
        return xb, yb

    t = Trainer(build_mlp(6, [8], 3, seed=0), batch_size=16, epochs=2, progress=False, augment=spy)
    t.fit(X, y, X[:20], y[:20])
    assert calls == [(e, b, 16 if b < 3 else 2) for e in range(2) for b in range(4)]
    t.evaluate(X, y)
    t.predict(X)
    assert len(calls) == 8


def test_identity_augment_changes_nothing():
    X, y = _blobs()
    a = Trainer(build_mlp(6, [8], 3, seed=0), batch_size=32, epochs=2, progress=False)
    b = Trainer(build_mlp(6, [8], 3, seed=0), batch_size=32, epochs=2, progress=False,
                augment=lambda xb, yb, e, s: (xb.copy(), yb.copy()))
    a.fit(X, y)
    b.fit(X, y)
    for p, q in zip(a.network.parameters(), b.network.parameters()):
        np.testing.assert_array_equal(p.value, q.value)


def test_augment_changes_training_and_bad_outputs_are_caught():
    X, y = _blobs()
    a = Trainer(build_mlp(6, [8], 3, seed=0), batch_size=32, epochs=1, progress=False)
    b = Trainer(build_mlp(6, [8], 3, seed=0), batch_size=32, epochs=1, progress=False,
                augment=Augment(noise=0.5, seed=1))
    a.fit(X, y)
    b.fit(X, y)
    assert not np.array_equal(a.network.parameters()[0].value, b.network.parameters()[0].value)
    with pytest.raises(TypeError, match="callable"):
        Trainer(build_mlp(6, [8], 3), augment=3)
    bad = Trainer(build_mlp(6, [8], 3), progress=False, augment=lambda xb, yb, e, s: (xb[:, :3], yb))
    with pytest.raises(ValueError, match="augment returned"):
        bad.fit(X, y)


def test_mixup_trains_with_soft_targets_and_counts_argmax_accuracy():
    X, y = _blobs(240)
    t = Trainer(build_mlp(6, [16], 3, seed=0), batch_size=32, epochs=8, progress=False,
                augment=Augment(mixup=0.2, n_classes=3, seed=0))
    t.optimizer.lr = t.base_lr = 0.01
    h = t.fit(X[:200], y[:200], X[200:], y[200:])
    assert not h.diverged and h.epochs[-1]["train_loss"] < h.epochs[0]["train_loss"]
    assert 0 <= h.epochs[-1]["train_acc"] <= 1 and h.epochs[-1]["train_acc"] > 0.8
    assert h.epochs[-1]["val_acc"] > 0.9


def test_fit_accepts_soft_targets_directly():
    X, y = _blobs()
    T = 0.9 * one_hot(y, 3) + 0.1 / 3        # label smoothing
    t = Trainer(build_mlp(6, [8], 3, seed=0), batch_size=32, epochs=3, progress=False)
    t.optimizer.lr = t.base_lr = 0.01
    h = t.fit(X, T, X, T)
    loss, acc = t.evaluate(X, y)
    assert h.epochs[-1]["val_acc"] == acc and 0 <= acc <= 1


def _aug_trainer(epochs, augment, **kw):
    net = build_mlp(6, [8], 3, seed=0, dropout=0.2)
    return Trainer(net, "cross_entropy", "adam", batch_size=16, epochs=epochs, progress=False, seed=5,
                   augment=augment, **kw)


def _aug():
    return Augment(noise=0.3, mixup=0.4, n_classes=3, seed=7)


def test_resume_mid_epoch_with_augmentation_is_bit_identical(tmp_path):
    X, y = _blobs(100)
    full = _aug_trainer(3, _aug())
    full.fit(X, y)
    path = tmp_path / "aug.npz"
    inner = _aug()

    def interrupting(xb, yb, epoch, step):
        if (epoch, step) == (1, 2):
            os.kill(os.getpid(), signal.SIGINT)    # honoured after this step completes
        return inner(xb, yb, epoch, step)

    t = _aug_trainer(3, interrupting, checkpoint=path)
    with pytest.raises(KeyboardInterrupt):
        t.fit(X, y)
    resumed = Trainer.resume(path, X, y, augment=_aug())
    assert resumed.epoch == 3
    for p, q in zip(full.network.parameters(), resumed.network.parameters()):
        np.testing.assert_array_equal(p.value, q.value)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in full.history.epochs]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history.epochs]

"""Multi-task heads on a shared trunk: the weighted loss and its gradient, missing labels, training,
checkpoints, auxiliary targets, the CLI and bad input."""
import doctest
import json

import numpy as np
import pytest

from gradcheck import loss_output_gradient

from varprop.cli import main
from varprop.nn import multitask as mt
from varprop.nn.losses import get_loss
from varprop.nn.trainer import Trainer


def _images(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    protos = rng.uniform(size=(3, 16))
    X = np.clip(protos[y] + 0.2 * rng.normal(size=(n, 16)), 0, None)
    return X.astype(np.float32), y


def test_doctests():
    r = doctest.testmod(mt)
    assert r.attempted > 0 and r.failed == 0


def test_loss_is_the_weighted_sum_of_the_heads():
    rng = np.random.default_rng(1)
    heads = [mt.Head("cross_entropy", 3), mt.Head("mse", 2, weight=0.25)]
    loss = mt.MultiTaskLoss(heads)
    out = rng.normal(size=(6, 5))
    y = np.column_stack([[0, 1, 2, -1, 1, -1], rng.normal(size=(6, 2))])
    y = loss.check_targets(y, 5)
    lab = y[:, 0] >= 0
    ce = get_loss("cross_entropy").forward(np.ascontiguousarray(out[lab, :3]), y[lab, 0].astype(int))
    mse = float(np.mean((out[:, 3:] - y[:, 1:]) ** 2))
    assert loss.forward(out, y) == pytest.approx(ce + 0.25 * mse, rel=1e-12)


def test_gradient_matches_central_differences():
    rng = np.random.default_rng(2)
    loss = mt.MultiTaskLoss([mt.Head("cross_entropy", 3), mt.Head("mse", 1, weight=2.0)])
    out = rng.normal(size=(5, 4))
    y = loss.check_targets(np.column_stack([[2, -1, 0, 1, -1], rng.normal(size=5)]), 4)
    loss.forward(out, y)
    g = loss.backward().copy()
    assert np.allclose(g, loss_output_gradient(loss, out, y), atol=1e-7)
    assert np.all(g[[1, 4], :3] == 0)     # unlabelled rows give the class head no gradient


def test_aux_targets():
    X = np.arange(32, dtype=float).reshape(2, 16)
    heads, T = mt.aux_targets("pooled", X, np.array([1, -1]), n_classes=3)
    assert heads[1].width == 4 and T.shape == (2, 5)
    assert T[0, 1] == pytest.approx(np.mean([0, 1, 4, 5]))
    _, T = mt.aux_targets("left-mean", X, np.array([1, 2]))
    assert T[0, 1] == pytest.approx(np.mean([0, 1, 4, 5, 8, 9, 12, 13]))
    _, T = mt.aux_targets("parity", X, np.array([3, -1]), n_classes=4)
    assert T[:, 1].tolist() == [1, -1]
    with pytest.raises(ValueError, match="auxiliary task"):
        mt.aux_targets("nope", X, np.array([0, 1]))
    with pytest.raises(ValueError, match="square"):
        mt.aux_targets("pooled", np.zeros((2, 5)), np.array([0, 1]))


def _trainer(heads, **kw):
    net = mt.build_multitask(16, [12], heads, seed=0)
    return Trainer(net, mt.MultiTaskLoss(heads), "adam", batch_size=16, epochs=kw.pop("epochs", 20),
                   progress=False, **kw)


def test_training_learns_both_heads_and_resumes_bit_for_bit(tmp_path):
    X, y = _images()
    ym = y.copy()
    ym[40:] = -1
    heads, T = mt.aux_targets("pooled", X, ym, weight=0.5, n_classes=3)
    t = _trainer(heads)
    pooled = T[:, 1:]
    start = np.mean((mt.predict_heads(t, X)[1] - pooled) ** 2)
    h = t.fit(X, T)
    cls, reg = mt.predict_heads(t, X)
    assert np.mean(cls == y) > 0.9 and h.epochs[-1]["train_acc"] > 0.9
    assert np.mean((reg - pooled) ** 2) < 0.5 * start      # the regression head learned too
    # accuracy counts the main head's labelled rows only
    loss, acc = t.evaluate(X[:40], T[:40])
    assert acc == pytest.approx(np.mean(cls[:40] == y[:40]))
    path = tmp_path / "m.ckpt"
    a = _trainer(heads, epochs=4, checkpoint=str(path))
    a.fit(X, T, max_epochs=2)
    r = Trainer.resume(str(path), X, T, progress=False)
    b = _trainer(heads, epochs=4)
    b.fit(X, T)
    assert isinstance(r.loss, mt.MultiTaskLoss) and r.loss.heads == b.loss.heads
    assert np.array_equal(r.network.layers[-1].weight.value, b.network.layers[-1].weight.value)


def test_bad_targets_and_heads():
    loss = mt.MultiTaskLoss([mt.Head("cross_entropy", 3), mt.Head("mse", 1)])
    with pytest.raises(ValueError, match="shape"):
        loss.check_targets(np.zeros((4, 3)), 4)
    with pytest.raises(ValueError, match="labels must be integers"):
        loss.check_targets(np.array([[3, 0.0], [0, 1.0]]), 4)
    with pytest.raises(ValueError, match="outputs"):
        loss.check_targets(np.zeros((4, 2)), 5)
    with pytest.raises(ValueError, match="no labelled row"):
        loss.check_targets(np.array([[-1, 0.0]]), 4)
    with pytest.raises(ValueError, match="weight"):
        mt.MultiTaskLoss([mt.Head("cross_entropy", 3, weight=-1)])
    with pytest.raises(ValueError, match="2 classes"):
        mt.MultiTaskLoss([mt.Head("cross_entropy", 1)])
    with pytest.raises(ValueError, match="non-empty"):
        mt.MultiTaskLoss([])
    with pytest.raises(ValueError, match="hidden layer"):
        mt.build_multitask(4, [], [mt.Head("mse", 1)])


def test_cli_aux_task(tmp_path, capsys):
    X, y = _images(150)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = tmp_path / "r.json"
    rc = main(["train", "--data", str(tmp_path / "d.npz"), "--hidden", "8", "--epochs", "2", "--batch-size", "16",
               "--labelled-fraction", "0.2", "--aux-task", "pooled", "--aux-weight", "0.3", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["config"]["aux_task"] == "pooled" and 0 <= res["test_acc"] <= 1
    assert res["config"]["network"]["layers"][-1]["n_out"] == 3 + 4
    rc = main(["train", "--data", str(tmp_path / "d.npz"), "--aux-task", "pooled", "--mixup", "0.2"])
    err = capsys.readouterr().err
    assert rc == 2 and "--aux-task" in err

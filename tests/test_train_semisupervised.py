"""Semi-supervised training: label masking, the two-view objective and its gradient, reproducible and
resumable runs, the CLI and bad input."""
import doctest
import json

import numpy as np
import pytest

from gradcheck import loss_output_gradient

from varprop.cli import main
from varprop.nn import semisupervised as ss
from varprop.nn.losses import get_loss
from varprop.nn.network import build_mlp
from varprop.nn.trainer import Trainer


def _data(n=150, d=16, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = (rng.normal(size=(k, d)) * 1.5)[y] + rng.normal(size=(n, d))
    return X.astype(np.float32), y


def test_doctests():
    r = doctest.testmod(ss)
    assert r.attempted > 0 and r.failed == 0


def test_mask_labels_is_stratified_and_reproducible():
    y = np.repeat(np.arange(4), [50, 30, 20, 10])
    m = ss.mask_labels(y, 0.1, seed=3)
    kept = m >= 0
    assert np.array_equal(m[kept], y[kept])
    assert [int(np.sum(m == c)) for c in range(4)] == [5, 3, 2, 1]
    assert np.array_equal(m, ss.mask_labels(y, 0.1, seed=3)) and not np.array_equal(m, ss.mask_labels(y, 0.1, 4))
    with pytest.raises(ValueError, match="fraction"):
        ss.mask_labels(y, 0.0)


def test_oversampling_keeps_every_unlabelled_row_once():
    X = np.arange(20.0)[:, None]
    y = np.array([0, 1] + [-1] * 18)
    Xo, yo = ss.oversample_labelled(X, y, share=0.5)
    assert np.sum(yo >= 0) == 18 and sorted(Xo[yo < 0, 0].tolist()) == list(range(2, 20))


def test_evaluation_is_the_cross_entropy_of_the_labelled_rows():
    rng = np.random.default_rng(0)
    out = rng.normal(size=(5, 3))
    y = np.array([0, -1, 2, 1, -1])
    lab = y >= 0
    ce = get_loss("cross_entropy").forward(np.ascontiguousarray(out[lab]), y[lab])
    assert ss.SemiSupervisedLoss().forward(out, y) == pytest.approx(ce, rel=1e-10)


def test_two_view_gradient_matches_central_differences():
    rng = np.random.default_rng(1)
    loss = ss.SemiSupervisedLoss(threshold=0.5, pseudo_weight=0.7, consistency=2.0)
    y = np.array([1, -1, -1, 0, -1])
    out = rng.normal(size=(10, 3)) * 2
    loss.forward(out, y)
    assert loss.last["pseudo_fraction"] > 0 and loss.last["consistency"] > 0
    g = loss.backward().copy()
    assert np.allclose(g, loss_output_gradient(loss, out, y), atol=1e-6)


def test_views_differ_and_are_keyed_by_the_step():
    loss = ss.SemiSupervisedLoss(view_noise=0.2, view_shift=1)
    xb = np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32)
    v = loss.prepare_batch(xb, None, 0, 5)
    assert v.shape == (8, 16) and not np.array_equal(v[:4], v[4:])
    assert np.array_equal(v, loss.prepare_batch(xb, None, 0, 5))
    assert not np.array_equal(v, loss.prepare_batch(xb, None, 0, 6))


def _fit(X, y, epochs=6, **kw):
    t = Trainer(build_mlp(16, [16], 3, seed=0), ss.SemiSupervisedLoss(threshold=0.8, view_noise=0.3), "adam",
                batch_size=16, epochs=epochs, progress=False, **kw)
    return t, t.fit(X, y)


def test_training_reproduces_and_resumes(tmp_path):
    X, y = _data()
    ym = ss.mask_labels(y, 0.1, 0)
    Xs, ys = ss.oversample_labelled(X, ym)
    a, ha = _fit(Xs, ys)
    b, _ = _fit(Xs, ys)
    assert np.array_equal(a.network.layers[0].weight.value, b.network.layers[0].weight.value)
    assert 0 <= ha.epochs[-1]["train_acc"] <= 1 and np.mean(a.predict(X) == y) > 0.6
    path = tmp_path / "s.ckpt"
    p, _ = _fit(Xs, ys, checkpoint=str(path))
    p2 = Trainer(build_mlp(16, [16], 3, seed=0), ss.SemiSupervisedLoss(threshold=0.8, view_noise=0.3), "adam",
                 batch_size=16, epochs=6, progress=False, checkpoint=str(path))
    p2.fit(Xs, ys, max_epochs=3)
    r = Trainer.resume(str(path), Xs, ys, progress=False)
    assert isinstance(r.loss, ss.SemiSupervisedLoss) and r.loss.threshold == 0.8
    assert np.array_equal(r.network.layers[0].weight.value, a.network.layers[0].weight.value)


def test_bad_labels_and_settings():
    loss = ss.SemiSupervisedLoss()
    with pytest.raises(ValueError, match="out of range"):
        loss.check_targets(np.array([0, -2]), 3)
    with pytest.raises(ValueError, match="at least one labelled"):
        loss.check_targets(np.array([-1, -1]), 3)
    with pytest.raises(ValueError, match="threshold"):
        ss.SemiSupervisedLoss(threshold=0)
    with pytest.raises(ValueError, match="consistency"):
        ss.SemiSupervisedLoss(consistency=-1)
    with pytest.raises(ValueError, match="square"):
        ss.SemiSupervisedLoss(view_shift=1).prepare_batch(np.zeros((2, 5), np.float32), None, 0, 0)


def test_cli_semi_supervised(tmp_path, capsys):
    X, y = _data()
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = tmp_path / "r.json"
    rc = main(["train", "--data", str(tmp_path / "d.npz"), "--hidden", "8", "--epochs", "2", "--batch-size", "16",
               "--labelled-fraction", "0.2", "--semi-supervised", "--pseudo-threshold", "0.8", "--view-shift", "1",
               "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["config"]["semi_supervised"] is True and res["config"]["loss"] == "semisupervised"
    rc = main(["train", "--data", str(tmp_path / "d.npz"), "--labelled-fraction", "0.2", "--semi-supervised",
               "--pseudo-threshold", "1.5"])
    err = capsys.readouterr().err
    assert rc == 2 and "--pseudo-threshold" in err and "Traceback" not in err

"""Divergence for every optimizer: a loss not finite or above DIVERGENCE_FACTOR x its reference stops the run
at that epoch and step, and the weights kept are the ones before the loss left its range."""
import json
import math

import numpy as np
import pytest

from varprop.nn import build_mlp
from varprop.nn.optim import get_optimizer
from varprop.nn.trainer import DIVERGENCE_FACTOR, Trainer


def _blobs(n=240, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def _recording(trainer):
    """Wrap the optimizer's step to keep a copy of the weights each step starts from."""
    before, step = [], trainer.optimizer.step

    def recorded(params, *a, **kw):
        before.append([p.value.copy() for p in params])
        return step(params, *a, **kw)
    trainer.optimizer.step = recorded
    return before


@pytest.mark.parametrize("optimizer,lr", [("sgd", 1e4), ("momentum", 1e3), ("adam", 100.0), ("rmsprop", 1e3),
                                          ("adagrad", 1e6), ("adamw", 100.0)])
def test_each_optimizer_stops_with_the_weights_before_the_loss_left_its_range(optimizer, lr):
    X, y = _blobs()
    net = build_mlp(5, [16], 3, seed=0)
    t = Trainer(net, "cross_entropy", get_optimizer(optimizer, lr=lr), batch_size=16, epochs=4, progress=False)
    before = _recording(t)
    h = t.fit(X, y)
    assert h.diverged and h.diverged_epoch >= 1 and h.diverged_step >= 1
    assert f"epoch {h.diverged_epoch}, step {h.diverged_step} of" in h.message
    # the reference is at least the loss of a zero output, log 3 for three classes
    assert t._loss_ref >= math.log(3) - 1e-6
    # steps taken before the stop: the kept weights are those the last of them started from, whose forward
    # pass gave a loss inside the range (its own check passed), not the values it produced
    taken = (h.diverged_epoch - 1) * 15 + h.diverged_step - 1
    assert len(before) == taken
    if taken:
        for p, w in zip(net.parameters(), before[-1]):
            np.testing.assert_array_equal(p.value, w)
    loss, _ = t.evaluate(X, y)
    assert math.isfinite(loss) and loss < DIVERGENCE_FACTOR * t._loss_ref
    assert max(float(np.abs(p.value).max()) for p in net.parameters()) < 1e6   # not the overflowing ~1e23


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.1), ("adam", 0.01), ("rmsprop", 0.01), ("adagrad", 0.1)])
def test_ordinary_runs_are_not_called_divergent(optimizer, lr):
    X, y = _blobs()
    t = Trainer(build_mlp(5, [16], 3, seed=0), "cross_entropy", get_optimizer(optimizer, lr=lr), batch_size=16,
                epochs=5, progress=False)
    h = t.fit(X, y)
    assert not h.diverged and h.diverged_epoch is None and len(h.epochs) == 5
    assert h.epochs[-1]["train_loss"] < h.epochs[0]["train_loss"]


def test_a_loss_that_grows_past_the_factor_but_stays_finite_is_divergence():
    """A finite loss above the limit (no NaN, no inf anywhere) is caught by the factor rule alone."""
    X, y = _blobs()
    t = Trainer(build_mlp(5, [16], 3, seed=0), "cross_entropy", get_optimizer("adam", lr=100.0), batch_size=16,
                epochs=3, progress=False)
    h = t.fit(X, y)
    assert h.diverged and "more than 1000 x its reference" in h.message
    value = float(h.message.split("the loss is ")[1].split(",")[0])
    assert math.isfinite(value) and value > DIVERGENCE_FACTOR * t._loss_ref


def test_the_reference_survives_a_checkpoint(tmp_path):
    X, y = _blobs()
    t = Trainer(build_mlp(5, [8], 3, seed=0), "cross_entropy", "adam", batch_size=16, epochs=2, progress=False)
    t.fit(X, y, max_epochs=1)
    t.save_checkpoint(tmp_path / "c.ckpt")
    assert Trainer.from_checkpoint(tmp_path / "c.ckpt")._loss_ref == t._loss_ref is not None


def test_cli_exits_3_on_divergence_and_still_writes_json(tmp_path, capsys):
    from varprop.cli import main
    X, y = _blobs()
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = tmp_path / "r.json"
    rc = main(["train", "--data", str(tmp_path / "d.npz"), "--hidden", "16", "--batch-size", "16", "--epochs", "3",
               "--optimizer", "adam", "--lr", "100", "--json", str(out)])
    err = capsys.readouterr().err
    assert rc == 3
    assert len(err.splitlines()) == 1 and err.startswith("varprop: training diverged at epoch")
    res = json.loads(out.read_text())
    assert res["diverged"] is True and res["diverged_epoch"] >= 1 and res["diverged_step"] >= 1
    assert math.isfinite(res["test_loss"])

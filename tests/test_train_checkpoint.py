"""Checkpoints: resuming reproduces the uninterrupted run bit for bit; Ctrl-C saves one; no pickle."""
import os
import signal

import numpy as np
import pytest

from varprop.nn import build_mlp
from varprop.nn import checkpoint as ckpt
from varprop.nn.trainer import Trainer


def _data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 0)
    return X, y


def _trainer(epochs, **kw):
    net = build_mlp(6, [16, 16], 3, seed=4, dropout=0.2, batchnorm=True, activation="rrelu")
    return Trainer(net, "cross_entropy", "adam", batch_size=32, epochs=epochs, seed=9, schedule="cosine",
                   clip_norm=5.0, l1=1e-4, progress=False, **kw)


def _state(t):
    return {k: v.copy() for k, v in t.network.state_arrays().items()}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _strip(history):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history.epochs]


def test_resume_at_an_epoch_boundary_is_bit_identical(tmp_path):
    X, y = _data()
    full = _trainer(4)
    full.fit(X[:120], y[:120], X[120:], y[120:])
    path = tmp_path / "run.npz"
    half = _trainer(4, checkpoint=path)
    half.fit(X[:120], y[:120], X[120:], y[120:], max_epochs=2)
    resumed = Trainer.resume(path, X[:120], y[:120], X[120:], y[120:])
    _same(_state(full), _state(resumed))
    _same(full.optimizer.state_arrays(), resumed.optimizer.state_arrays())
    assert _strip(full.history) == _strip(resumed.history)


def test_ctrl_c_saves_a_checkpoint_mid_epoch_and_resuming_matches(tmp_path):
    X, y = _data()
    full = _trainer(3)
    full.fit(X, y)
    path = tmp_path / "interrupted.npz"

    def interrupt(record):
        if record["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGINT)   # lands between steps of epoch 2

    t = _trainer(3, checkpoint=path, callback=interrupt)
    with pytest.raises(KeyboardInterrupt):
        t.fit(X, y)
    config, _ = ckpt.read(path)
    assert config["state"]["epoch"] == 1 and config["state"]["batch"] == 1
    resumed = Trainer.resume(path, X, y)
    _same(_state(full), _state(resumed))
    assert _strip(full.history) == _strip(resumed.history)


def test_checkpoint_loads_without_pickle_and_holds_everything(tmp_path):
    X, y = _data(60)
    path = tmp_path / "c.npz"
    t = _trainer(1)
    t.fit(X, y)
    t.save_checkpoint(path)
    with np.load(path, allow_pickle=False) as z:
        names = set(z.files)
        assert z["config"].dtype.kind == "U"
    assert "param/0.weight" in names and "buffer/1.running_var" in names
    assert any(n.startswith("opt/0.weight/") for n in names)
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []
    restored = Trainer.from_checkpoint(path)
    np.testing.assert_array_equal(restored.predict(X), t.predict(X))
    assert restored.network.config() == t.network.config()


def test_early_stopping_state_survives_a_resume(tmp_path):
    X, y = _data(120)
    path = tmp_path / "es.npz"
    t = _trainer(5, early_stopping=True, patience=10, checkpoint=path)
    t.fit(X, y, max_epochs=3)
    full = _trainer(5, early_stopping=True, patience=10)
    full.fit(X, y)
    resumed = Trainer.resume(path, X, y)
    _same(_state(full), _state(resumed))
    assert resumed.history.best_epoch == full.history.best_epoch


def test_bad_checkpoint_files_raise_value_error(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises(ValueError, match="does not exist"):
        ckpt.read(missing)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        ckpt.read(junk)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(2))
    with pytest.raises(ValueError, match="not a varprop checkpoint"):
        ckpt.read(other)
    obj = tmp_path / "obj.npz"
    np.savez(obj, config=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        ckpt.read(obj)


@pytest.mark.parametrize("kw, loss, opt, schedule", [
    (dict(activation="maxout", params={"k": 3}, dropconnect=0.2), "hinge", "nesterov", "step"),
    (dict(activation="prelu", residual=True, fixup=True, batchnorm=True), "cross_entropy", "rmsprop", "warmup"),
    (dict(activation="selu", init="lecun_normal", dropout=0.1), "cross_entropy", "adagrad", None),
])
def test_every_kind_of_layer_round_trips(tmp_path, kw, loss, opt, schedule):
    X, y = _data(64)
    net = build_mlp(6, [8, 8], 3, seed=1, **kw)
    t = Trainer(net, loss, opt, batch_size=16, epochs=2, schedule=schedule, progress=False)
    t.fit(X, y, max_epochs=1)
    path = tmp_path / "k.npz"
    t.save_checkpoint(path)
    r = Trainer.from_checkpoint(path)
    assert r.network.config() == net.config() and r.config() == t.config()
    np.testing.assert_array_equal(r.predict_output(X), t.predict_output(X))
    t.fit(X, y)
    r.fit(X, y)
    _same(_state(t), _state(r))


def test_ctrl_c_during_the_last_epoch_end_is_not_lost(tmp_path):
    X, y = _data(64)
    path = tmp_path / "end.npz"
    t = _trainer(1, checkpoint=path, callback=lambda rec: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        t.fit(X, y)
    config, _ = ckpt.read(path)
    assert config["state"]["epoch"] == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

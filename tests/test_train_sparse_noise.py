"""Activation L1 penalty (gradient, zero fractions in History) and train-time noise on inputs, hidden units
and weights: reproducible, resumable, train-time only, bad input refused."""
import doctest
import json

import numpy as np
import pytest

from varprop.cli import main
from varprop.nn import hooks
from varprop.nn.layers import Dense
from varprop.nn.losses import get_loss
from varprop.nn.network import build_mlp
from varprop.nn.trainer import Trainer


def _data(n=96, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = (rng.normal(size=(k, d)) * 2)[y] + rng.normal(size=(n, d))
    return X.astype(np.float32), y


def _weights(net):
    return {k: v.copy() for k, v in net.state_arrays().items()}


def test_doctests():
    r = doctest.testmod(hooks)
    assert r.attempted > 0 and r.failed == 0


def test_recording_without_penalty_changes_nothing_but_the_records():
    X, y = _data()
    a = Trainer(build_mlp(6, [8, 8], 3, seed=1), epochs=3, batch_size=16, progress=False)
    b = Trainer(build_mlp(6, [8, 8], 3, seed=1), epochs=3, batch_size=16, progress=False, record_sparsity=True)
    ha, hb = a.fit(X, y), b.fit(X, y)
    wa, wb = _weights(a.network), _weights(b.network)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert "zero_fraction" not in ha.epochs[0]
    zf = hb.epochs[-1]["zero_fraction"]
    assert len(zf) == 2 and all(0.0 <= z <= 1.0 for z in zf)


def test_zero_fraction_is_the_fraction_of_dead_relu_outputs():
    X, _ = _data()
    net = build_mlp(6, [5], 3, seed=2)
    W, b = net.layers[0].weight.value, net.layers[0].bias.value
    expected = float(np.mean(np.maximum(X @ W.T + b, 0) == 0))
    assert hooks.zero_fractions(net, X) == [pytest.approx(expected, abs=1e-12)]


def test_activation_penalty_gradient_matches_central_differences():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 4))
    y = np.arange(7) % 3
    net = build_mlp(4, [5, 5], 3, activation="tanh", dtype=np.float64, seed=3)
    lam = 0.3
    h = hooks.TrainHooks(net, activation_l1=lam)
    loss = get_loss("cross_entropy")

    def objective():
        out, a = X, 0.0
        for i, layer in enumerate(net.layers):
            out = layer.forward(out, False)
            if i in h.hidden:
                a += lam * np.abs(out).sum() / len(X)
        return loss.forward(out, y) + a

    loss.forward(h.forward(X, 0, 0), y)
    h.backward(loss.backward())
    w = net.layers[1].weight
    g = w.grad.copy()
    eps = 1e-6
    for idx in [(0, 0), (2, 3), (4, 1)]:
        old = w.value[idx]
        w.value[idx] = old + eps
        up = objective()
        w.value[idx] = old - eps
        down = objective()
        w.value[idx] = old
        assert g[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8)


def test_penalty_raises_the_zero_fraction():
    X, y = _data(192)
    zs = []
    for lam in (0.0, 0.2):
        t = Trainer(build_mlp(6, [16], 3, seed=0), epochs=15, batch_size=16, progress=False, activation_l1=lam,
                    record_sparsity=True)
        hist = t.fit(X, y)
        zs.append(hist.epochs[-1]["zero_fraction"][0])
        assert hist.epochs[-1]["activation_penalty"] >= 0
    assert zs[1] > zs[0] + 0.03   # 0.548 -> 0.600 with this seed


def test_weight_noise_is_undone_before_the_step():
    X, y = _data()
    net = build_mlp(6, [8], 3, seed=0)
    before = _weights(net)
    h = hooks.TrainHooks(net, weight_noise=0.5)
    loss = get_loss("cross_entropy")
    loss.forward(h.forward(X, 0, 0), y)
    h.backward(loss.backward())
    after = _weights(net)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    plain = build_mlp(6, [8], 3, seed=0)
    loss.forward(plain._forward(X, True), y)
    plain.backward(loss.backward())
    assert not np.allclose(net.layers[0].weight.grad, plain.layers[0].weight.grad)


@pytest.mark.parametrize("kw", [{"input_noise": 0.5}, {"hidden_noise": 0.5}, {"weight_noise": 0.2}])
def test_noise_changes_training_but_not_evaluation(kw):
    X, y = _data()
    a = Trainer(build_mlp(6, [8], 3, seed=0), epochs=2, batch_size=16, progress=False)
    b = Trainer(build_mlp(6, [8], 3, seed=0), epochs=2, batch_size=16, progress=False, **kw)
    a.fit(X, y)
    b.fit(X, y)
    assert not np.array_equal(a.network.layers[0].weight.value, b.network.layers[0].weight.value)
    # evaluation is deterministic (no noise at test time)
    assert np.array_equal(b.predict_output(X), b.predict_output(X))
    c = Trainer(build_mlp(6, [8], 3, seed=0), epochs=2, batch_size=16, progress=False, **kw)
    c.fit(X, y)
    assert np.array_equal(b.network.layers[0].weight.value, c.network.layers[0].weight.value)


def test_resume_repeats_the_uninterrupted_run(tmp_path):
    X, y = _data()
    kw = dict(epochs=4, batch_size=16, progress=False, activation_l1=1e-3, input_noise=0.2, hidden_noise=0.1,
              weight_noise=0.05)
    full = Trainer(build_mlp(6, [8, 8], 3, seed=4), **kw)
    full.fit(X, y)
    path = tmp_path / "c.ckpt"
    part = Trainer(build_mlp(6, [8, 8], 3, seed=4), checkpoint=str(path), **kw)
    part.fit(X, y, max_epochs=2)
    resumed = Trainer.resume(str(path), X, y, progress=False)
    assert resumed.hooks.activation_l1 == 1e-3 and resumed.hooks.weight_noise == 0.05
    wf, wr = _weights(full.network), _weights(resumed.network)
    assert all(np.array_equal(wf[k], wr[k]) for k in wf)
    assert [e["zero_fraction"] for e in full.history.epochs] == [e["zero_fraction"] for e in resumed.history.epochs]


@pytest.mark.parametrize("kw, word", [({"activation_l1": -1}, "activation_l1"), ({"input_noise": -0.1}, "input_noise"),
                                      ({"weight_noise": float("nan")}, "weight_noise")])
def test_bad_values_are_refused(kw, word):
    with pytest.raises(ValueError, match=word):
        Trainer(build_mlp(6, [8], 3), progress=False, **kw)


def test_penalty_needs_a_hidden_layer():
    with pytest.raises(ValueError, match="hidden layer"):
        Trainer(build_mlp(6, [], 3), progress=False, activation_l1=0.1)


def test_hidden_layers_skip_the_output_and_linear_layers():
    net = build_mlp(6, [8, 8], 3, dropout=0.1, seed=0)
    idx = hooks.hidden_layers(net)
    assert all(isinstance(net.layers[i], Dense) for i in idx) and len(idx) == 2
    assert len(net.layers) - 1 not in idx


def test_cli_prints_zero_fractions_and_refuses_bad_noise(tmp_path, capsys):
    X, y = _data(120)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = tmp_path / "r.json"
    rc = main(["train", "--data", str(tmp_path / "d.npz"), "--hidden", "8", "--epochs", "2", "--batch-size", "16",
               "--activation-l1", "1e-3", "--input-noise", "0.2", "--weight-noise", "0.01", "--json", str(out)])
    assert rc == 0 and "zeros " in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert len(res["epochs"][0]["zero_fraction"]) == 1 and res["config"]["input_noise"] == 0.2
    rc = main(["train", "--data", str(tmp_path / "d.npz"), "--hidden-noise", "-1"])
    err = capsys.readouterr().err
    assert rc == 2 and "--hidden-noise" in err and "Traceback" not in err


def test_estimator_parameters():
    from varprop.nn.estimator import MLPClassifier
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, activation_l1=1e-3,
                        input_noise=0.1).fit(X, y)
    assert len(clf.zero_fraction_curve_) == 3 and clf.score(X, y) > 0.3
    with pytest.raises(ValueError, match="weight_noise"):
        MLPClassifier(max_iter=1, weight_noise=-1.0).fit(X, y)


def test_cli_resume_keeps_the_noise_and_refuses_another(tmp_path, capsys):
    X, y = _data(120)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    base = ["train", "--data", str(tmp_path / "d.npz"), "--hidden", "8", "--batch-size", "16", "--input-noise", "0.2"]
    ck = str(tmp_path / "c.ckpt")
    full, part = tmp_path / "full.json", tmp_path / "part.json"
    assert main(base + ["--epochs", "3", "--json", str(full)]) == 0
    assert main(base + ["--epochs", "1", "--checkpoint", ck]) == 0
    assert main(base + ["--epochs", "3", "--resume", ck, "--json", str(part)]) == 0
    assert json.loads(full.read_text())["test_acc"] == json.loads(part.read_text())["test_acc"]
    assert ([e["train_loss"] for e in json.loads(full.read_text())["epochs"]]
            == [e["train_loss"] for e in json.loads(part.read_text())["epochs"]])
    capsys.readouterr()
    rc = main(base[:-1] + ["0.5", "--epochs", "4", "--resume", ck])
    assert rc == 2 and "--input-noise" in capsys.readouterr().err

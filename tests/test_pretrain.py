"""Greedy layer-wise pretraining: each layer learns to reconstruct the frozen outputs below it, the output
layer is untouched, runs are bit-reproducible, and it rescues a deep tanh MLP from a small init."""
import json

import numpy as np
import pytest

from varprop.cli import main
from varprop.nn import Trainer, build_mlp, get_optimizer
from varprop.nn.layers import Dense
from varprop.nn.pretrain import hidden_blocks, pretrain


def _data(n=256, d=8, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))                      # 3 latent factors: a low-dimensional structure to find
    X = (z @ rng.normal(size=(3, d)) + 0.1 * rng.normal(size=(n, d))).astype(np.float32)
    return X, (z[:, 0] > 0).astype(int)


def _weights(net):
    return {p.name: p.value.copy() for p in net.parameters()}


def test_each_layer_learns_to_reconstruct_and_the_output_layer_is_untouched():
    X, _ = _data()
    net = build_mlp(8, [6, 5], 2, activation="tanh", seed=1)
    before = _weights(net)
    names = [p.name for p in net.parameters()]
    recs = pretrain(net, X, epochs=15, batch_size=32, lr=1e-2, seed=0)
    assert [r["layer"] for r in recs] == [1, 2] and [r["width"] for r in recs] == [6, 5]
    for r in recs:
        assert r["loss"][-1] < 0.5 * r["loss"][0] and not r["diverged"]
    after = _weights(net)
    assert [p.name for p in net.parameters()] == names          # names restored after the autoencoders
    for name in ("0.weight", "1.weight"):
        assert not np.array_equal(before[name], after[name])
    np.testing.assert_array_equal(before["2.weight"], after["2.weight"])   # the output layer as drawn
    np.testing.assert_array_equal(before["2.bias"], after["2.bias"])


def test_final_mse_is_the_reconstruction_of_the_layer_below():
    """Independent route: rebuild layer 1's reconstruction by hand from the frozen layer-0 outputs."""
    X, _ = _data()
    net = build_mlp(8, [6, 5], 2, activation="tanh", seed=1)
    snap = {}
    recs = pretrain(net, X, epochs=30, batch_size=32, lr=1e-2, seed=0,
                    callback=lambda r: snap.setdefault(r["layer"], _weights(net)))
    # layer 1 (the first hidden layer) did not move while layer 2 learned: the layers below are frozen
    np.testing.assert_array_equal(snap[1]["0.weight"], _weights(net)["0.weight"])
    np.testing.assert_array_equal(snap[1]["0.bias"], _weights(net)["0.bias"])
    h1 = np.tanh(X.astype(np.float64) @ net.layers[0].weight.value.T.astype(np.float64) + net.layers[0].bias.value)
    h2 = np.tanh(h1 @ net.layers[1].weight.value.T.astype(np.float64) + net.layers[1].bias.value)
    # a linear decoder fitted by least squares can only do better than the trained one
    A = np.column_stack([h2, np.ones(len(h2))])
    coef, *_ = np.linalg.lstsq(A, h1, rcond=None)
    best = float(np.mean((A @ coef - h1) ** 2))
    assert best <= recs[1]["final_mse"] * (1 + 1e-4)
    assert recs[1]["final_mse"] < float(np.mean((h1 - h1.mean(0)) ** 2))   # better than the mean alone


def test_bit_reproducible_and_epochs_zero_is_a_no_op():
    X, _ = _data()
    a, b = (build_mlp(8, [6, 6], 2, activation="tanh", seed=2) for _ in range(2))
    pretrain(a, X, 3, seed=5)
    pretrain(b, X, 3, seed=5)
    for (k, va), vb in zip(_weights(a).items(), _weights(b).values()):
        np.testing.assert_array_equal(va, vb, err_msg=k)
    c = build_mlp(8, [6, 6], 2, activation="tanh", seed=2)
    w = _weights(c)
    assert pretrain(c, X, 0) == []
    for k, v in _weights(c).items():
        np.testing.assert_array_equal(v, w[k])


def test_frozen_parameters_stay_frozen_and_blocks_carry_their_batchnorm():
    X, _ = _data()
    net = build_mlp(8, [6, 6], 2, activation="relu", batchnorm=True, dropout=0.1, seed=0)
    blocks = hidden_blocks(net)
    assert len(blocks) == 2 and all(isinstance(b[0], Dense) for b in blocks) and len(blocks[0]) == 4
    net.freeze(1)
    pretrain(net, X, 1, seed=0)
    assert net.frozen_names() == ["0.weight"]


@pytest.mark.parametrize("kw, err", [
    ({"epochs": -1}, ValueError), ({"epochs": 1.5}, TypeError), ({"epochs": 1, "batch_size": 0}, ValueError),
    ({"epochs": 1, "optimizer": "nope"}, ValueError), ({"epochs": 1, "X": np.zeros((4, 3))}, ValueError),
    ({"epochs": 1, "X": np.full((4, 8), np.nan)}, ValueError), ({"epochs": 1, "X": np.zeros((0, 8))}, ValueError),
])
def test_bad_input(kw, err):
    net = build_mlp(8, [4], 2, seed=0)
    X = kw.pop("X", np.zeros((4, 8), np.float32))
    with pytest.raises(err):
        pretrain(net, X, **kw)
    with pytest.raises(TypeError):
        pretrain("net", X, 1)


def test_pretraining_rescues_a_deep_tanh_mlp_from_a_small_init():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = ((X - X.mean(0)) / (X.std(0) + 1e-8)).astype(np.float32)
    X, y, Xt, yt = X[:1000], y[:1000], X[1000:], y[1000:]
    acc = {}
    for pre in (False, True):
        net = build_mlp(64, [32] * 4, 10, activation="tanh", init="normal", init_kwargs={"std": 0.01}, seed=0)
        if pre:
            pretrain(net, X, 3, lr=1e-2, batch_size=32, seed=0)
        tr = Trainer(net, "cross_entropy", get_optimizer("sgd", lr=0.1), batch_size=32, epochs=4, progress=False)
        tr.fit(X, y)
        acc[pre] = tr.evaluate(Xt, yt)[1]
    assert acc[False] < 0.3 < 0.8 < acc[True]


def _npz(path, n=120, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    yy = np.arange(n) % k
    X = rng.normal(size=(k, d))[yy] * 2 + rng.normal(size=(n, d))
    np.savez(path, X=X, y=yy)
    return str(path)


def test_cli_pretrain_writes_its_records_and_refuses_bad_options(tmp_path, capsys):
    data = _npz(tmp_path / "d.npz")
    out = tmp_path / "r.json"
    rc = main(["train", "--data", data, "--hidden", "8,8", "--activation", "tanh", "--batch-size", "16",
               "--epochs", "2", "--pretrain", "2", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "pretrain layer 1: width 8" in text and "pretrain layer 2: width 8" in text
    blob = json.loads(out.read_text())
    assert blob["pretrain"]["epochs"] == 2 and len(blob["pretrain"]["layers"]) == 2
    for extra in (["--pretrain", "-1"], ["--pretrain", "1", "--augment", "--noise", "0.1"]):
        assert main(["train", "--data", data, "--hidden", "8", "--epochs", "1", *extra]) == 2
        assert "--pretrain" in capsys.readouterr().err


def test_estimator_pretrain_parameter():
    from varprop.nn.estimator import MLPClassifier
    X, y = _data(120)
    m = MLPClassifier((6, 6), activation="tanh", max_iter=2, random_state=0, pretrain=2)
    assert m.get_params()["pretrain"] == 2
    m.fit(X, y)
    assert len(m.pretrain_records_) == 2
    m2 = MLPClassifier((6, 6), activation="tanh", max_iter=2, random_state=0, pretrain=2).fit(X, y)
    np.testing.assert_array_equal(m.predict_proba(X), m2.predict_proba(X))
    with pytest.raises(ValueError, match="pretrain"):
        MLPClassifier(pretrain=-1).fit(X, y)

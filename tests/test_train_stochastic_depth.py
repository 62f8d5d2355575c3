"""Stochastic depth (Huang et al. 2016): the linear decay rule, the skip rate, skipped blocks are the identity
with zero branch gradients, kept blocks are the plain block, test time scales by the survival probability,
and training stays bit-reproducible through checkpoints."""
import math

import numpy as np
import pytest

from varprop.cli import main
from varprop.nn import Trainer, build_mlp
from varprop.nn.estimator import MLPClassifier
from varprop.nn.layers import Dense, Residual
from varprop.nn.network import Network


def _blocks(net):
    return [l for l in net.layers if isinstance(l, Residual)]


def test_linear_decay_rule():
    net = build_mlp(6, [6, 6, 6, 6], 2, residual=True, stochastic_depth=0.4, seed=0)
    drops = [b.drop for b in _blocks(net)]
    assert drops == pytest.approx([0.1, 0.2, 0.3, 0.4])
    # the config carries it through a rebuild
    again = Network.from_config(net.config())
    assert [b.drop for b in _blocks(again)] == pytest.approx(drops)
    assert "drop" not in build_mlp(6, [6, 6], 2, residual=True, seed=0).layers[0].config()


def _pair(drop, seed=1):
    mk = lambda: [Dense(5, 5, "tanh", seed=seed), Dense(5, 5, "linear", seed=seed + 1)]
    return Residual(mk(), drop=drop), Residual(mk())


def test_test_time_output_is_scaled_by_the_survival_probability():
    sd, plain = _pair(0.3)
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    y_sd = sd.forward(x, train=False).copy()
    y_plain = plain.forward(x, train=False).copy()
    np.testing.assert_allclose(y_sd - x, 0.7 * (y_plain - x), rtol=1e-5, atol=1e-6)


def test_skip_rate_matches_the_drop_probability():
    sd, _ = _pair(0.3)
    n = 4000
    skipped = 0
    for step in range(n):
        sd.clock.step = step
        skipped += sd.skipped()
    se = math.sqrt(0.3 * 0.7 / n)
    assert abs(skipped / n - 0.3) < 4 * se


def test_skipped_block_is_the_identity_and_kept_block_is_the_plain_one():
    sd, plain = _pair(0.5)
    x = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    dy = np.random.default_rng(2).normal(size=(4, 5)).astype(np.float32)
    seen = set()
    for step in range(40):
        sd.clock.step = step
        for p in sd.parameters():
            p.grad[...] = 7.0                           # stale gradients must not survive a skipped step
        y = sd.forward(x, train=True).copy()
        dx = sd.backward(dy).copy()
        if sd._skipped:
            seen.add("skip")
            assert np.array_equal(y, x) and np.array_equal(dx, dy)
            assert all(np.all(p.grad == 0) for p in sd.parameters())
        else:
            seen.add("keep")
            yp = plain.forward(x, train=True).copy()
            dxp = plain.backward(dy).copy()
            assert np.array_equal(y, yp) and np.array_equal(dx, dxp)
            for p, q in zip(sd.parameters(), plain.parameters()):
                assert np.array_equal(p.grad, q.grad)
    assert seen == {"skip", "keep"}


def _data(n=96, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X[:, :4].sum(1) > 0).astype(int)


def _trainer(**kw):
    net = build_mlp(8, [8, 8, 8], 2, residual=True, zero_init_residual=True, stochastic_depth=0.5, seed=3)
    return Trainer(net, epochs=4, batch_size=16, seed=3, progress=False, **kw)


def test_training_is_reproducible_and_resumes_bit_for_bit(tmp_path):
    X, y = _data()
    a = _trainer()
    a.fit(X, y)
    b = _trainer()
    b.fit(X, y)
    for p, q in zip(a.network.parameters(), b.network.parameters()):
        assert np.array_equal(p.value, q.value)
    ck = tmp_path / "ck.npz"
    c = _trainer(checkpoint=str(ck))
    c.fit(X, y, max_epochs=2)
    d = Trainer.resume(str(ck), X, y, progress=False)
    assert [e["train_loss"] for e in d.history.epochs] == [e["train_loss"] for e in a.history.epochs]
    for p, q in zip(a.network.parameters(), d.network.parameters()):
        assert np.array_equal(p.value, q.value)
    assert [blk.drop for blk in _blocks(d.network)] == [blk.drop for blk in _blocks(a.network)]


def test_stochastic_depth_changes_training_but_not_when_zero():
    X, y = _data()
    with_sd = _trainer()
    with_sd.fit(X, y)
    net = build_mlp(8, [8, 8, 8], 2, residual=True, zero_init_residual=True, stochastic_depth=0.0, seed=3)
    plain = Trainer(net, epochs=4, batch_size=16, seed=3, progress=False)
    plain.fit(X, y)
    assert with_sd.history.epochs[-1]["train_loss"] != plain.history.epochs[-1]["train_loss"]


@pytest.mark.parametrize("kw, what", [({"residual": True, "stochastic_depth": 1.0}, "stochastic"),
                                      ({"residual": False, "stochastic_depth": 0.2}, "residual"),
                                      ({"residual": True, "stochastic_depth": -0.1}, "stochastic")])
def test_bad_stochastic_depth_is_refused(kw, what):
    with pytest.raises(ValueError, match=what):
        build_mlp(6, [6, 6], 2, seed=0, **kw)


def test_estimator_parameter():
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(8, 8, 8), residual=True, stochastic_depth=0.3, max_iter=3,
                        random_state=0).fit(X, y)
    assert clf.get_params()["stochastic_depth"] == 0.3
    assert [b.drop for b in _blocks(clf.network_)] == pytest.approx([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="residual"):
        MLPClassifier(hidden_layer_sizes=(8,), stochastic_depth=0.3, max_iter=1).fit(X, y)


def test_cli(tmp_path, capsys):
    assert main(["train", "--data", "digits", "--stochastic-depth", "0.2"]) == 2
    assert "--residual" in capsys.readouterr().err
    assert main(["train", "--data", "digits", "--residual", "--stochastic-depth", "1"]) == 2
    out = tmp_path / "r.json"
    assert main(["train", "--data", "digits", "--hidden", "16,16,16", "--residual", "--stochastic-depth", "0.3",
                 "--epochs", "1", "--json", str(out)]) == 0
    import json
    res = json.loads(out.read_text())
    drops = [c.get("drop") for c in res["config"]["network"]["layers"] if c["type"] == "Residual"]
    assert drops == pytest.approx([0.15, 0.3])

"""Ensembles: member seeds, the average of probabilities checked against the members', reproducibility,
the scikit-learn style classifier, the CLI, and bad input."""
import json

import numpy as np
import pytest
from sklearn.base import clone

from varprop.cli import main
from varprop.nn import Trainer, build_mlp
from varprop.nn.ensemble import Ensemble, EnsembleClassifier, average_proba, member_seed
from varprop.nn.estimator import MLPClassifier


def _data(n=120, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = (rng.normal(size=(k, d)) * 1.5)[y] + rng.normal(size=(n, d))
    return X.astype(np.float32), y


def _make(seed):
    return Trainer(build_mlp(6, [8], 3, seed=seed), epochs=3, batch_size=16, seed=seed, progress=False)


def test_member_seeds():
    assert member_seed(7, 0) == 7
    seeds = [member_seed(s, k) for s in range(5) for k in range(1, 6)]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2 ** 31 for s in seeds)
    assert member_seed(3, 2) == member_seed(3, 2)


def test_ensemble_averages_its_members_and_is_reproducible():
    X, y = _data()
    ens = Ensemble(_make, 3, seed=2).fit(X, y)
    assert ens.seeds[0] == 2 and len(set(ens.seeds)) == 3
    probas = ens.member_proba(X)
    np.testing.assert_allclose(ens.predict_proba(X), np.mean(np.asarray(probas, np.float64), axis=0), rtol=1e-12)
    np.testing.assert_allclose(ens.predict_proba(X).sum(1), 1.0, rtol=1e-6)
    # member 0 is the ordinary run of the ensemble's seed
    solo = _make(2)
    solo.fit(X, y)
    assert np.array_equal(probas[0], solo.predict_output(X))
    again = Ensemble(_make, 3, seed=2).fit(X, y)
    assert np.array_equal(again.predict_proba(X), ens.predict_proba(X))
    sc = ens.scores(X, y)
    assert sc["ensemble"] == pytest.approx(np.mean(ens.predict(X) == y))
    assert sc["member_mean"] == pytest.approx(np.mean([np.mean(p.argmax(1) == y) for p in probas]))


def test_average_proba_checks_shapes():
    with pytest.raises(ValueError, match="at least one"):
        average_proba([])
    with pytest.raises(ValueError, match="shape"):
        average_proba([np.zeros((2, 3)), np.zeros((2, 4))])


def test_ensemble_bad_input():
    with pytest.raises(TypeError, match="callable"):
        Ensemble(3)
    with pytest.raises((TypeError, ValueError), match="n_members"):
        Ensemble(_make, 0)
    with pytest.raises(ValueError, match="not fitted"):
        Ensemble(_make, 2).predict(np.zeros((1, 6)))
    with pytest.raises(TypeError, match="Trainer"):
        Ensemble(lambda s: None, 2).fit(*_data())


def test_ensemble_classifier():
    X, y = _data()
    labels = np.array(["a", "b", "c"])[y]
    base = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, batch_size=16)
    ens = EnsembleClassifier(base, n_members=3, random_state=1).fit(X, labels)
    assert [e.random_state for e in ens.estimators_] == [member_seed(1, k) for k in range(3)]
    p = ens.predict_proba(X)
    np.testing.assert_allclose(p, np.mean([e.predict_proba(X) for e in ens.estimators_], axis=0))
    assert set(ens.predict(X)) <= {"a", "b", "c"} and ens.classes_.tolist() == ["a", "b", "c"]
    assert len(ens.member_scores(X, labels)) == 3 and 0 <= ens.score(X, labels) <= 1
    c = clone(ens)
    assert c.get_params()["n_members"] == 3
    with pytest.raises((TypeError, ValueError), match="n_members"):
        EnsembleClassifier(base, n_members=0).fit(X, y)


def test_cli_ensemble(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X, y = _data()
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out, solo = tmp_path / "e.json", tmp_path / "s.json"
    base = ["train", "--data", str(tmp_path / "d.npz"), "--hidden", "8", "--batch-size", "16", "--epochs", "2",
            "--seed", "4"]
    assert main(base + ["--ensemble", "3", "--json", str(out)]) == 0
    assert "ensemble of 3: test accuracy" in capsys.readouterr().out
    assert main(base + ["--json", str(solo)]) == 0
    e, s = json.loads(out.read_text()), json.loads(solo.read_text())
    ens = e["ensemble"]
    assert ens["seeds"] == [member_seed(4, k) for k in range(3)]
    assert ens["member_test_acc"][0] == s["test_acc"] == e["test_acc"]        # member 0 is the seed's run
    assert ens["member_mean_test_acc"] == pytest.approx(np.mean(ens["member_test_acc"]))
    assert 0 <= ens["test_acc"] <= 1
    assert main(base + ["--ensemble", "0"]) == 2
    assert main(base + ["--ensemble", "2", "--checkpoint", str(tmp_path / "c.npz")]) == 2
    assert "--ensemble" in capsys.readouterr().err


def test_ensemble_classifier_passes_sklearn_checks():
    from sklearn.utils.estimator_checks import check_estimator
    res = check_estimator(EnsembleClassifier(MLPClassifier(max_iter=20), n_members=2), on_fail=None)
    failed = [r["check_name"] for r in res if r["status"] == "failed"]
    assert not failed

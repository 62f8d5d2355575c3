"""MLPClassifier / MLPRegressor: scikit-learn's conventions, checked by its own check suite and by hand."""
import inspect
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from varprop.nn.estimator import MLPClassifier, MLPRegressor, auto_init


def _blobs(n=90, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.normal(size=(k, d))[y] * 3 + rng.normal(size=(n, d))
    return X, y


@pytest.mark.slow
@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_check_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def test_parameter_names_follow_sklearn():
    ours = set(inspect.signature(MLPClassifier).parameters)
    theirs = set(inspect.signature(SkMLPClassifier).parameters)
    shared = {"hidden_layer_sizes", "activation", "solver", "alpha", "batch_size", "learning_rate_init",
              "max_iter", "early_stopping", "validation_fraction", "n_iter_no_change", "random_state"}
    assert shared <= ours and shared <= theirs
    assert {"init", "dropout", "batchnorm"} <= ours
    clf = clone(MLPClassifier(hidden_layer_sizes=(7,), dropout=0.1))
    assert clf.get_params()["hidden_layer_sizes"] == (7,) and clf.set_params(alpha=0.5).alpha == 0.5


def test_predict_proba_is_the_softmax_of_the_weights_by_hand():
    X, y = _blobs()
    clf = MLPClassifier(hidden_layer_sizes=(6,), activation="tanh", max_iter=5, random_state=1).fit(X, y)
    W1, b1, W2, b2 = (p.value.astype(np.float64) for p in clf.network_.parameters())
    z = np.tanh(X @ W1.T + b1) @ W2.T + b2
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X), p, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[p.argmax(axis=1)])
    assert clf.network_.dtype == np.float64  # float64 input trains in float64, as in scikit-learn


def test_alpha_is_the_trainers_l2():
    from varprop.nn.network import build_mlp
    from varprop.nn.trainer import Trainer
    X, y = _blobs()
    clf = MLPClassifier(hidden_layer_sizes=(5,), alpha=0.3, max_iter=4, batch_size=16, random_state=0,
                        dtype="float64").fit(X, y)
    seed = int(np.random.RandomState(0).randint(0, 2 ** 31 - 1))
    init, out_init = auto_init("relu")
    net = build_mlp(4, [5], 3, init=init, output_init=out_init, seed=seed, dtype=np.float64)
    Trainer(net, "cross_entropy", "adam", batch_size=16, epochs=4, seed=seed, l2=0.3, progress=False).fit(X, y)
    for a, b in zip(clf.network_.parameters(), net.parameters()):
        np.testing.assert_array_equal(a.value, b.value)


def test_string_labels_reproducibility_and_pickle():
    X, y = _blobs()
    names = np.array(["ant", "bee", "cat"])[y]
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=4).fit(X, names)
    b = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=4).fit(X, names)
    c = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=5).fit(X, names)
    assert a.classes_.tolist() == ["ant", "bee", "cat"] and a.n_iter_ == 20 and len(a.loss_curve_) == 20
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    assert set(a.predict(X)) <= {"ant", "bee", "cat"}
    d = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(d.predict_proba(X), a.predict_proba(X))


def test_digits_accuracy_at_least_sklearns():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    tr, te = idx[:1400], idx[1400:]
    kw = dict(hidden_layer_sizes=(64,), max_iter=30, batch_size=64, learning_rate_init=1e-3, alpha=0.0,
              random_state=0)
    ours = MLPClassifier(**kw).fit(X[tr], y[tr]).score(X[te], y[te])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SkMLPClassifier(**kw).fit(X[tr], y[tr]).score(X[te], y[te])
    # binomial standard error of an accuracy on 397 test images, at most 0.025; 2 of them as slack
    se = np.sqrt(theirs * (1 - theirs) / len(te))
    assert ours >= theirs - 2 * se and ours > 0.9, (ours, theirs)


def test_early_stopping_and_float32():
    X, y = _blobs(n=200)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, early_stopping=True, n_iter_no_change=3,
                        learning_rate_init=0.05, random_state=0).fit(X.astype(np.float32), y)
    assert clf.network_.dtype == np.float32
    assert clf.n_iter_ < 200 and len(clf.validation_loss_curve_) == clf.n_iter_
    best = int(np.argmin(clf.validation_loss_curve_)) + 1
    assert clf.best_epoch_ == best


def test_regressor_fits_a_linear_map_single_and_multi_output():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    W = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 1.5]])
    Y = X @ W
    reg = MLPRegressor(hidden_layer_sizes=(16,), activation="linear", max_iter=60, learning_rate_init=0.01,
                       alpha=0.0, random_state=0)
    assert reg.fit(X, Y).predict(X).shape == (300, 2)
    assert reg.score(X, Y) > 0.99
    assert reg.fit(X, Y[:, 0]).predict(X).shape == (300,)
    assert reg.score(X, Y[:, 0]) > 0.99


def test_bad_parameters_raise_at_fit():
    X, y = _blobs()
    for bad, msg in ((dict(solver="lbfgs"), "solver"), (dict(learning_rate_init=0.0), "learning_rate_init"),
                     (dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes"), (dict(dropout=1.0), "dropout"),
                     (dict(batch_size=0), "batch_size"), (dict(dtype="float16"), "dtype")):
        with pytest.raises(ValueError, match=msg):
            MLPClassifier(max_iter=1, **bad).fit(X, y)
    with pytest.raises(ValueError, match="class"):
        MLPClassifier(max_iter=1).fit(X, np.zeros(len(X), int))


def test_far_apart_labels_are_encoded_as_scikit_learn_does():
    """Labels 0 and 1000000 are two classes (np.unique, LabelEncoder), not a million-class softmax."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y01 = (X[:, 0] > 0).astype(int)
    y = y01 * 1000000
    kw = dict(hidden_layer_sizes=(8,), max_iter=100, learning_rate_init=0.01, random_state=0)
    clf = MLPClassifier(**kw).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 1000000])
    assert clf.network_.n_out == 2
    # the same run as on labels 0 and 1: only the names of the classes differ
    ref = MLPClassifier(**kw).fit(X, y01)
    np.testing.assert_array_equal(clf.predict(X), ref.predict(X) * 1000000)
    assert clf.score(X, y) > 0.9


def test_complex_input_is_refused_not_cast():
    X = np.ones((10, 2)) + 1j
    y = np.arange(10) % 2
    with pytest.raises((TypeError, ValueError), match="[Cc]omplex"):
        MLPClassifier(max_iter=1).fit(X, y)

"""Ensembles: K networks trained alike from different seeds, their class probabilities averaged.

Member k of an ensemble of seed s is trained with seed :func:`member_seed` (s, k) (member 0 with s itself,
so a one-member ensemble is the ordinary run of that seed); its weights, batch order, masks and
augmentations all follow from that seed, so the ensemble is a pure function of s. The ensemble predicts
``argmax_c (1/K) sum_k p_k(c | x)``, the mean of the members' softmax probabilities.

Two ways in:

- :class:`Ensemble` over :class:`~varprop.nn.trainer.Trainer`: ``Ensemble(make_trainer, k, seed)`` where
  ``make_trainer(seed)`` returns a fresh trainer (its network built from that seed);
- :class:`EnsembleClassifier`, scikit-learn style: ``EnsembleClassifier(MLPClassifier(...), n_members=5)``.

>>> import numpy as np
>>> from varprop.nn import Trainer, build_mlp
>>> rng = np.random.default_rng(0); X = rng.normal(size=(64, 2)).astype(np.float32); y = (X[:, 0] > 0).astype(int)
>>> ens = Ensemble(lambda s: Trainer(build_mlp(2, [8], 2, seed=s), epochs=3, seed=s, progress=False), 3, seed=0)
>>> ens.fit(X, y).predict_proba(X).shape
(64, 2)
"""
from __future__ import annotations

import numpy as np

from varprop.nn.init.checks import nonneg_int as _nonneg_int
from varprop.nn.init.checks import positive_int as _posint

__all__ = ["member_seed", "average_proba", "Ensemble", "EnsembleClassifier"]


def member_seed(seed: int, k: int) -> int:
    """The seed of member ``k``: ``seed`` for k = 0, else 31 bits of SeedSequence([seed, k])."""
    seed, k = _nonneg_int(seed, "seed"), _nonneg_int(k, "member index")
    if k == 0:
        return seed
    return int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint32)[0] >> np.uint32(1))


def average_proba(probas) -> np.ndarray:
    """The mean of a list of (n, K) probability arrays of one shape."""
    probas = [np.asarray(p, dtype=np.float64) for p in probas]
    if not probas:
        raise ValueError("an ensemble needs at least one member's probabilities")
    shape = probas[0].shape
    if len(shape) != 2 or any(p.shape != shape for p in probas):
        raise ValueError(f"the members' probabilities must all have one (n, K) shape, got "
                         f"{sorted({p.shape for p in probas})}")
    return np.mean(probas, axis=0)


def _accuracy(proba, y) -> float:
    return float(np.mean(np.argmax(proba, axis=1) == np.asarray(y)))


class Ensemble:
    """K trainers from ``make_trainer(member_seed(seed, k))``, fitted on the same data, probabilities averaged."""

    def __init__(self, make_trainer, n_members: int = 5, seed: int = 0):
        if not callable(make_trainer):
            raise TypeError(f"make_trainer must be callable (seed -> Trainer), got {type(make_trainer).__name__}")
        self.make_trainer = make_trainer
        self.n_members = _posint(n_members, "n_members")
        self.seed = _nonneg_int(seed, "seed")
        self.members: list = []
        self.histories: list = []

    @property
    def seeds(self) -> list[int]:
        return [member_seed(self.seed, k) for k in range(self.n_members)]

    def fit(self, X, y, X_val=None, y_val=None) -> "Ensemble":
        from varprop.nn.trainer import Trainer
        self.members, self.histories = [], []
        for s in self.seeds:
            t = self.make_trainer(s)
            if not isinstance(t, Trainer):
                raise TypeError(f"make_trainer must return a Trainer, got {type(t).__name__}")
            if not t.loss.classification:
                raise ValueError("an ensemble averages class probabilities: the members need a classification loss")
            self.histories.append(t.fit(X, y, X_val, y_val))
            self.members.append(t)
        return self

    def _fitted(self):
        if not self.members:
            raise ValueError("the ensemble is not fitted yet: call fit first")
        return self.members

    def member_proba(self, X, **predict_kw) -> list:
        """Each member's class probabilities (``predict_kw``: e.g. ``tta=``, passed to ``predict_output``)."""
        return [t.predict_output(X, **predict_kw) for t in self._fitted()]

    def predict_proba(self, X, **predict_kw) -> np.ndarray:
        return average_proba(self.member_proba(X, **predict_kw))

    def predict(self, X, **predict_kw) -> np.ndarray:
        return np.argmax(self.predict_proba(X, **predict_kw), axis=1)

    def scores(self, X, y, **predict_kw) -> dict:
        """``{"ensemble": accuracy of the average, "members": [accuracy of each member], "member_mean": ...}``."""
        probas = self.member_proba(X, **predict_kw)
        members = [_accuracy(p, y) for p in probas]
        return {"ensemble": _accuracy(average_proba(probas), y), "members": members,
                "member_mean": float(np.mean(members))}


def _classifier_base():
    from sklearn.base import BaseEstimator, ClassifierMixin
    return BaseEstimator, ClassifierMixin


_Base, _Mixin = _classifier_base()


class EnsembleClassifier(_Mixin, _Base):
    """``n_members`` clones of ``estimator`` (default :class:`~varprop.nn.estimator.MLPClassifier()`), member
    k fitted with ``random_state = member_seed(random_state, k)``; ``predict_proba`` averages theirs.

    ``random_state`` is the ensemble's seed (None: 0). Fitted attributes: ``estimators_``, ``classes_``,
    ``n_features_in_``. It passes scikit-learn's ``check_estimator``.
    """

    def __init__(self, estimator=None, n_members: int = 5, random_state=0):
        self.estimator = estimator
        self.n_members = n_members
        self.random_state = random_state

    def fit(self, X, y):
        from sklearn.base import clone
        from sklearn.utils.multiclass import check_classification_targets

        from varprop.nn.estimator import MLPClassifier
        k = _posint(self.n_members, "n_members")
        if self.random_state is not None and (isinstance(self.random_state, bool)
                                              or not isinstance(self.random_state, (int, np.integer))):
            raise ValueError(f"random_state must be a non-negative integer or None, got {self.random_state!r}")
        base = MLPClassifier() if self.estimator is None else self.estimator
        if not (hasattr(base, "fit") and hasattr(base, "predict_proba")):
            raise TypeError(f"the ensemble's estimator needs fit and predict_proba, got {type(base).__name__}")
        if y is None:
            raise ValueError("EnsembleClassifier requires y to be passed, but the target y is None")
        check_classification_targets(np.asarray(y))
        seed = 0 if self.random_state is None else _nonneg_int(self.random_state, "random_state")
        self.estimators_ = [clone(base).set_params(random_state=member_seed(seed, i)).fit(X, y) for i in range(k)]
        self.classes_ = self.estimators_[0].classes_
        self.n_features_in_ = getattr(self.estimators_[0], "n_features_in_", None)
        return self

    def _check_fitted(self):
        from sklearn.utils.validation import check_is_fitted
        check_is_fitted(self, "estimators_")

    def member_proba(self, X) -> list:
        self._check_fitted()
        return [e.predict_proba(X) for e in self.estimators_]

    def predict_proba(self, X):
        return average_proba(self.member_proba(X))

    def predict(self, X):
        proba = self.predict_proba(X)        # checks that the ensemble is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def member_scores(self, X, y) -> list[float]:
        """Each member's accuracy on (X, y)."""
        self._check_fitted()
        return [float(e.score(X, y)) for e in self.estimators_]

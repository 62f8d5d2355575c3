"""scikit-learn estimators over the trainer: ``MLPClassifier`` and ``MLPRegressor``.

They follow scikit-learn's conventions (``fit``/``predict``/``predict_proba``/``score``, parameters set
in ``__init__`` and read only in ``fit``, fitted attributes ending in ``_``) and its MLPClassifier names
where they overlap: ``hidden_layer_sizes``, ``activation``, ``solver``, ``alpha``, ``batch_size``,
``learning_rate_init``, ``max_iter`` (= epochs), ``early_stopping``, ``validation_fraction``,
``n_iter_no_change``, ``random_state``. On top: ``init`` (any :mod:`varprop.nn.init` name; "auto" draws
hidden layers with the variance-preserving scale derived for the activation, see :func:`auto_init`), ``dropout``
(probability of dropping a hidden unit), ``batchnorm`` and ``dtype`` ("auto": float32 input trains in
float32, anything else in float64, as scikit-learn's MLP; or "float32"/"float64" to force one).
``augment``: a dict of :class:`~varprop.nn.augment.Augment` options (``{"rotate": 10, "cutout": 2}``; with
``image_shape``, e.g. (8, 8), for the image transforms) applied afresh to every training batch; ``tta = V``
averages the predicted probabilities over V fixed views of the same augmentation (the first is the input
itself); ``residual`` and ``stochastic_depth`` as :func:`~varprop.nn.network.build_mlp`'s;
``activation_l1`` (an L1 penalty on the hidden activations; the per-epoch fraction of zero activations of each
hidden layer lands in ``zero_fraction_curve_``) and ``input_noise``/``hidden_noise``/``weight_noise`` (train-time
Gaussian noise, :mod:`varprop.nn.hooks`);
and ``pretrain`` (epochs per hidden layer of greedy layer-wise autoencoder pretraining before training, with the
solver and learning rate, :func:`varprop.nn.pretrain.pretrain`; 0, the default, is off; the per-layer records
are in ``pretrain_records_``).

Training runs ``max_iter`` epochs; with ``early_stopping`` it stops once the loss on the held-out
``validation_fraction`` has not improved for ``n_iter_no_change`` epochs and restores the best weights
(scikit-learn's ``tol`` stop on the training loss is not used).

The objective is scikit-learn's: mean loss over the minibatch plus ``alpha/2 * |W|^2`` summed over
weights (biases unpenalized). scikit-learn divides that penalty by the batch size; here ``alpha`` is the
coefficient itself (``Trainer(l2=alpha)``), so sklearn's ``alpha`` corresponds to ``alpha / batch_size``.

>>> from sklearn.datasets import load_iris
>>> X, y = load_iris(return_X_y=True)
>>> clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0).fit((X - X.mean(0)) / X.std(0), y)
>>> clf.classes_.tolist(), clf.n_iter_
([0, 1, 2], 50)
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

__all__ = ["MLPClassifier", "MLPRegressor", "SOLVERS", "auto_init"]

SOLVERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
_CHUNK = 4096  # rows per forward pass at prediction time (bounds the scratch memory)
_DTYPES = ("auto", "float32", "float64")


def auto_init(activation: str, params: dict | None = None):
    """``(hidden-layer initializer, output-layer initializer)`` that preserve the forward variance.

    Hidden layers: ``Var(w) = 1 / (E[phi(z)^2] fan_in)`` with the exact moment of ``activation``
    (:func:`varprop.nn.init.for_activation`; 2/fan_in for ReLU, He's scheme). The output layer is linear:
    ``1 / fan_in`` (LeCun).
    """
    from varprop.nn.init import for_activation
    return for_activation(activation, **(params or {})), "lecun_normal"


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: validation, the network, the training run."""

    _loss = "cross_entropy"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate_init=0.001, max_iter=200, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, random_state=None, init="auto", dropout=0.0,
                 batchnorm=False, dtype="auto", augment=None, image_shape=None, tta=0, residual=False,
                 stochastic_depth=0.0, activation_l1=0.0, input_noise=0.0, hidden_noise=0.0, weight_noise=0.0,
                 pretrain=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.init = init
        self.dropout = dropout
        self.batchnorm = batchnorm
        self.dtype = dtype
        self.augment = augment
        self.image_shape = image_shape
        self.tta = tta
        self.residual = residual
        self.stochastic_depth = stochastic_depth
        self.activation_l1 = activation_l1
        self.input_noise = input_noise
        self.hidden_noise = hidden_noise
        self.weight_noise = weight_noise
        self.pretrain = pretrain

    # -- checks of the hyper-parameters (at fit time, as scikit-learn does) ----------------------------
    def _hidden(self):
        h = self.hidden_layer_sizes
        h = [h] if isinstance(h, (int, np.integer)) else list(h)
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in h):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}")
        return [int(v) for v in h]

    def _check_params(self, n_samples):
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if not (isinstance(self.learning_rate_init, (int, float)) and self.learning_rate_init > 0):
            raise ValueError(f"learning_rate_init must be > 0, got {self.learning_rate_init!r}")
        if not (isinstance(self.alpha, (int, float)) and self.alpha >= 0):
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if isinstance(self.pretrain, bool) or not isinstance(self.pretrain, (int, np.integer)) or self.pretrain < 0:
            raise ValueError(f"pretrain must be a non-negative integer (epochs per layer), got {self.pretrain!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {self.dtype!r}")
        if self.batch_size == "auto":
            batch = min(200, n_samples)
        elif isinstance(self.batch_size, (int, np.integer)) and not isinstance(self.batch_size, bool) \
                and self.batch_size >= 1:
            batch = min(int(self.batch_size), n_samples)
        else:
            raise ValueError(f"batch_size must be 'auto' or a positive integer, got {self.batch_size!r}")
        return batch

    def _augmenter(self, seed):
        """The Augment of ``augment`` and ``image_shape`` (None when ``augment`` is None); ``tta`` checked."""
        from varprop.nn.augment import Augment
        if isinstance(self.tta, bool) or not isinstance(self.tta, (int, np.integer)) or self.tta < 0:
            raise ValueError(f"tta must be a non-negative integer (0 or 1: off), got {self.tta!r}")
        if self.augment is None:
            if self.tta > 1:
                raise ValueError("tta needs an augmentation: set augment, e.g. {'rotate': 10}")
            return None
        if not isinstance(self.augment, dict):
            raise ValueError(f"augment must be a dict of Augment options (e.g. {{'rotate': 10}}), got {self.augment!r}")
        allowed = ("shift", "flip", "noise", "rotate", "zoom", "shear", "translate", "brightness", "contrast", "cutout")
        unknown = sorted(set(self.augment) - set(allowed))
        if unknown:
            raise ValueError(f"augment: unknown option(s) {', '.join(map(str, unknown))}; known: {', '.join(allowed)}")
        return Augment(self.image_shape, seed=seed, stream=1, **self.augment)

    def _inits(self):
        return auto_init(self.activation) if self.init == "auto" else (self.init, None)

    # -- training ------------------------------------------------------------------------------------
    def _train(self, X, targets, n_out):
        from varprop.nn.network import build_mlp
        from varprop.nn.optim import get_optimizer
        from varprop.nn.trainer import Trainer

        batch = self._check_params(len(X))
        seed = int(check_random_state(self.random_state).randint(0, 2 ** 31 - 1))
        # "auto" keeps float32 input in float32 and computes everything else in float64, as scikit-learn's
        # MLP does; float64 also makes each row's prediction independent of the batch it comes in
        dtype = np.dtype(np.float32 if X.dtype == np.float32 else np.float64) if self.dtype == "auto" \
            else np.dtype(self.dtype)
        init, output_init = self._inits()
        aug = self._augmenter(seed)
        net = build_mlp(X.shape[1], self._hidden(), n_out, activation=self.activation, init=init,
                        output_init=output_init, dropout=float(self.dropout), batchnorm=bool(self.batchnorm),
                        seed=seed, dtype=dtype, residual=bool(self.residual),
                        stochastic_depth=self.stochastic_depth)
        if self.pretrain:
            from varprop.nn.pretrain import pretrain
            self.pretrain_records_ = pretrain(net, np.asarray(X, dtype=dtype), int(self.pretrain), self.solver,
                                              float(self.learning_rate_init), batch, seed)
        early = bool(self.early_stopping)
        if early and len(X) < 2:
            early = False       # nothing to hold out: train on the single sample
        trainer = Trainer(net, self._loss, get_optimizer(self.solver, lr=float(self.learning_rate_init)),
                          batch_size=batch, epochs=int(self.max_iter), seed=seed, l2=float(self.alpha),
                          early_stopping=early, patience=int(self.n_iter_no_change), progress=False,
                          validation_fraction=float(self.validation_fraction), augment=aug,
                          activation_l1=self.activation_l1, input_noise=self.input_noise,
                          hidden_noise=self.hidden_noise, weight_noise=self.weight_noise)
        history = trainer.fit(np.asarray(X, dtype=dtype), targets)
        if history.diverged:
            warnings.warn(history.message, ConvergenceWarning, stacklevel=3)
        self.network_ = net
        self.augment_ = aug
        self.n_iter_ = len(history.epochs)
        self.loss_curve_ = [float(e["train_loss"]) for e in history.epochs]
        self.validation_loss_curve_ = ([float(e["val_loss"]) for e in history.epochs]
                                       if early else None)
        self.best_epoch_ = history.best_epoch
        self.diverged_ = bool(history.diverged)
        self.zero_fraction_curve_ = ([e["zero_fraction"] for e in history.epochs]
                                     if history.epochs and "zero_fraction" in history.epochs[0] else None)
        return self

    def _output(self, X):
        """The network's test-mode outputs, passed through the loss's output map (softmax for cross-entropy)."""
        from varprop.nn.losses import get_loss
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        X = np.ascontiguousarray(X, dtype=self.network_.dtype)
        loss = get_loss(self._loss)

        def output(A):
            A = np.ascontiguousarray(A, dtype=self.network_.dtype)
            out = np.empty((len(A), self.network_.n_out), self.network_.dtype)
            for s in range(0, len(A), _CHUNK):
                out[s:s + _CHUNK] = self.network_.forward(A[s:s + _CHUNK], train=False)
            return loss.output(out)

        aug = getattr(self, "augment_", None)
        if aug is not None and self.tta > 1:
            from varprop.nn.augment import tta_average
            return tta_average(output, X, aug, int(self.tta)).astype(self.network_.dtype)
        return output(X)

    # a fitted network holds compiled-kernel handles: pickle its configuration and arrays instead
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ may return __dict__ itself
        net = state.get("network_")
        if net is not None:
            state["network_"] = {"config": net.config(),
                                 "arrays": {k: np.array(v) for k, v in net.state_arrays().items()}}
        return state

    def __setstate__(self, state):
        saved = state.get("network_")
        if isinstance(saved, dict):
            from varprop.nn.network import Network
            net = Network.from_config(saved["config"])
            net.load_state_arrays(saved["arrays"])
            state = dict(state, network_=net)
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron trained on softmax cross-entropy (scikit-learn's MLPClassifier interface).

    Fitted attributes: ``classes_``, ``n_iter_`` (epochs run), ``loss_curve_``, ``network_`` (the
    trained :class:`~varprop.nn.network.Network`), ``n_features_in_``.
    """

    _loss = "cross_entropy"

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=False)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        enc = LabelEncoder().fit(y)
        self.classes_ = enc.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"the classifier needs at least 2 classes in y; got 1 class ({self.classes_[0]!r})")
        return self._train(X, enc.transform(y), len(self.classes_))

    def predict_proba(self, X):
        """Softmax probabilities, one column per class of ``classes_``."""
        return self._output(X).astype(np.float64)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        proba = self._output(X)
        return self.classes_[np.argmax(proba, axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron trained on mean squared error (scikit-learn's MLPRegressor interface).

    ``y`` may be 1-D or (n, k) for k outputs. The network's output layer is linear.
    """

    _loss = "mse"

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self._one_output = y.ndim == 1
        Y = y[:, None] if y.ndim == 1 else y
        return self._train(X, Y, Y.shape[1])

    def predict(self, X):
        out = self._output(X).astype(np.float64)
        return out[:, 0] if self._one_output else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

"""Diagnostics of training from the lecture notes: dead units, the bias-variance decomposition, and the
bias/variance diagnosis of a finished run.

Dead units. A unit is dead on a data set when no sample gives it a gradient: phi'(h_n) = 0 for every row
n of its pre-activation h (for ReLU: h_n <= 0 for all n, the unit is never positive). A dead unit's own
weights get no gradient; in the first hidden layer, whose inputs are fixed, it stays dead for good, while in a
deeper layer it can come back when the layers below it change. Leaky ReLU cannot die: its slope is ``negative_slope`` > 0 where h < 0, so its
dead fraction is 0 by construction; PReLU dies only if its learned slope reaches exactly 0.
:func:`dead_fraction` measures it per hidden layer on a whole data set; :class:`DeadUnits` records it after
every epoch as a :class:`~varprop.nn.trainer.Trainer` callback. ``never_positive`` (h_n <= 0 for all n)
is reported beside it for every activation.

Bias and variance (seed 004). For data y = f(x) + e, e ~ N(0, s^2), and a fit f_D from the data set D,
the expected squared error at x over data sets and fresh noise splits as

    E[(y - f_D(x))^2] = (E_D f_D(x) - f(x))^2 + Var_D f_D(x) + s^2 = bias^2 + variance + noise.

:func:`bias_variance` estimates each term by Monte Carlo over data sets drawn on a fixed design, with
standard errors (the jackknife over data sets), and measures the expected test error on its own, from
fresh noisy targets, so the identity can be checked; for least-squares polynomials (a linear smoother
y -> S y) bias^2 = ((S f - f)(x))^2 and variance = s^2 |S_x|^2 are also known exactly
(:func:`poly_exact`), a second route.

Diagnosis (seed 004's table): :func:`diagnose` turns the training and validation errors into the
lecture's verdict, with thresholds relative to the error of chance (always predicting the most frequent
class) and to each other:

- training error high: ``train > BIAS_THRESHOLD x chance`` (the net removed less than 90% of chance's
  error) -> high bias: more capacity, more epochs;
- validation far above training: ``val - train > VARIANCE_THRESHOLD x chance`` and ``val > GAP_RATIO x
  train`` -> high variance: more data, augmentation, regularization, early stopping;
- neither -> done. Both can hold at once.

>>> diagnose(0.01, 0.02, 0.9)["verdict"]
'done'
>>> diagnose(0.5, 0.52, 0.9)["verdict"]
'high bias'
>>> diagnose(0.0, 0.2, 0.9)["verdict"]
'high variance'
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["dead_fraction", "DeadUnits", "bias_variance", "poly_fitter", "poly_exact", "diagnose",
           "diagnose_training", "BIAS_THRESHOLD", "VARIANCE_THRESHOLD", "GAP_RATIO"]

BIAS_THRESHOLD = 0.1       # training error above this fraction of chance's error is high
VARIANCE_THRESHOLD = 0.05  # a validation-training gap above this fraction of chance's error is large ...
GAP_RATIO = 1.5            # ... when the validation error is also this many times the training error
_CHUNK = 1024

_ADVICE = {"high bias": "increase the model's capacity (wider or deeper layers) or train for more epochs",
           "high variance": "add training data (augmentation), regularize (weight decay, dropout) or stop "
                            "early",
           "done": "training and validation errors are both low: you are done"}


# -- dead units -----------------------------------------------------------------------------------------
def _activations(network):
    """The hidden activations of ``network`` (Activation objects, in order), maxout and linear excluded."""
    from varprop.nn.layers import Activation, Dense

    out = []

    def visit(layers):
        for layer in layers:
            if isinstance(layer, Dense):
                act = layer.act
            elif isinstance(layer, Activation):
                act = layer
            else:
                visit(getattr(layer, "branch", []))
                continue
            if act.mode not in ("identity", "maxout"):
                out.append(act)

    visit(network.layers)
    return out


def _derivative(act, h):
    if act.mode == "prelu":
        return np.where(h > 0, 1.0, act.slope.value.astype(np.float64))
    if act.mode == "rrelu":
        return np.where(h > 0, 1.0, act.lower)     # its random slope is at least ``lower``
    with np.errstate(all="ignore"):
        return np.asarray(act.bound.numpy_derivative(h.astype(np.float64)), dtype=np.float64)


def dead_fraction(network, X) -> dict:
    """Per hidden layer, the fraction of units that are dead on all of ``X`` (test mode) and the fraction
    that are never positive; also the pooled fractions over all hidden units.

    >>> import numpy as np
    >>> from varprop.nn.network import build_mlp
    >>> net = build_mlp(2, [4], 2, activation="relu", seed=0)
    >>> net.layers[0].bias.value[:] = -100.0          # every unit pushed below zero
    >>> dead_fraction(net, np.zeros((3, 2), np.float32))["dead"]
    [1.0]
    """
    from varprop.nn.network import Network

    if not isinstance(network, Network):
        raise TypeError(f"network must be a Network, got {type(network).__name__}")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != network.n_in or len(X) == 0:
        raise ValueError(f"X must be a non-empty array of shape (samples, {network.n_in}), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity")
    X = np.ascontiguousarray(X, dtype=network.dtype)
    acts = _activations(network)
    alive = [None] * len(acts)
    positive = [None] * len(acts)
    for s in range(0, len(X), _CHUNK):
        network._forward(X[s:s + _CHUNK], False)
        for i, act in enumerate(acts):
            h = act._h
            a = np.any(_derivative(act, h) != 0, axis=0)
            p = np.any(h > 0, axis=0)
            alive[i] = a if alive[i] is None else alive[i] | a
            positive[i] = p if positive[i] is None else positive[i] | p
    dead = [float(1.0 - a.mean()) for a in alive]
    never = [float(1.0 - p.mean()) for p in positive]
    units = sum(a.size for a in alive)
    return {"dead": dead, "never_positive": never, "units": [int(a.size) for a in alive],
            "dead_total": float(sum((~a).sum() for a in alive) / units) if units else 0.0,
            "never_positive_total": float(sum((~p).sum() for p in positive) / units) if units else 0.0}


class DeadUnits:
    """A :class:`~varprop.nn.trainer.Trainer` callback recording :func:`dead_fraction` of ``network`` on
    ``X`` before training (``record_start``) and after every epoch, in ``records`` (epoch 0 = start)."""

    def __init__(self, network, X, record_start: bool = True):
        self.network = network
        self.X = X
        self.records = []
        if record_start:
            self.records.append({"epoch": 0, **dead_fraction(network, X)})

    def __call__(self, rec: dict) -> None:
        self.records.append({"epoch": int(rec["epoch"]), **dead_fraction(self.network, self.X)})


# -- bias and variance ----------------------------------------------------------------------------------
def _jackknife_se(stat, values: np.ndarray) -> float:
    """The jackknife standard error of ``stat`` (a function of the per-data-set rows) over the rows."""
    D = len(values)
    total = values.sum(axis=0)
    loo = np.array([stat((total - values[d]) / (D - 1), values, d) for d in range(D)])
    return float(math.sqrt((D - 1) / D * np.sum((loo - loo.mean()) ** 2)))


def _scaled(x, lo, hi):
    return (2.0 * np.asarray(x, dtype=np.float64) - (lo + hi)) / (hi - lo)


def poly_fitter(degree: int, lo: float, hi: float):
    """Least squares in the Legendre basis on [lo, hi] mapped to [-1, 1] (well conditioned to degree 25 and
    beyond): ``fit(x, Y) -> predict``, where Y holds one data set per column."""
    from numpy.polynomial import legendre

    degree = int(degree)

    def fit(x, Y):
        A = legendre.legvander(_scaled(x, lo, hi), degree)
        coef, *_ = np.linalg.lstsq(A, Y, rcond=None)
        return lambda xe: legendre.legvander(_scaled(xe, lo, hi), degree) @ coef
    return fit


def poly_exact(degree: int, x_train, x_eval, f, noise_std: float, lo: float, hi: float) -> dict:
    """Exact bias^2(x) and variance(x) of the degree-``degree`` least-squares polynomial on the fixed design
    ``x_train``: the fit is a linear smoother S (rows S_x), so bias = S_x f(x_train) - f(x) and
    variance = s^2 |S_x|^2."""
    from numpy.polynomial import legendre

    A = legendre.legvander(_scaled(x_train, lo, hi), int(degree))
    S = legendre.legvander(_scaled(x_eval, lo, hi), int(degree)) @ np.linalg.pinv(A)
    bias = S @ f(np.asarray(x_train, float)) - f(np.asarray(x_eval, float))
    var = noise_std ** 2 * np.sum(S ** 2, axis=1)
    return {"bias2_x": bias ** 2, "variance_x": var, "bias2": float(np.mean(bias ** 2)), "variance": float(np.mean(var))}


def bias_variance(fit, f=np.sin, n_sets: int = 200, n_points: int = 50, noise_std: float = 0.3,
                  lo: float = 0.0, hi: float = 2 * math.pi, n_eval: int = 100, seed: int = 0) -> dict:
    """Monte Carlo bias-variance decomposition of ``fit`` for y = f(x) + N(0, noise_std^2).

    The design is fixed: ``n_points`` evenly spaced x in [lo, hi] (training) and ``n_eval`` evaluation
    points strictly inside it, midway between grid points; each of ``n_sets`` data sets draws fresh noise
    on the training x, and independent fresh noise on the evaluation x (the validation targets). ``fit(x,
    Y)`` takes the training x and a (n_points, n_sets) matrix of targets (one data set per column) and
    returns ``predict(x) -> (len(x), n_sets)``. Returns per-x ``bias2_x``, ``variance_x`` and totals
    ``bias2``, ``variance``, ``noise`` = noise_std^2, their sum ``decomposed``, the directly measured
    ``test_error`` = mean over data sets and x of (y_fresh - f_D(x))^2 and ``train_error`` (the mean
    squared residual on the training points), each total with its standard error over data sets
    (``*_se``; jackknife for bias^2 and variance). Bias^2 is the unbiased estimate (mean f_D - f)^2 -
    variance / n_sets, so bias^2 + variance is exactly the mean over data sets of (f_D - f)^2.
    """
    from varprop.nn.init.checks import positive_int
    n_sets, n_points, n_eval = (positive_int(v, w) for v, w in ((n_sets, "n_sets"), (n_points, "n_points"),
                                                                 (n_eval, "n_eval")))
    if n_sets < 2:
        raise ValueError(f"n_sets must be at least 2 (a variance needs two data sets), got {n_sets}")
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std}")
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"the interval must have lo < hi, got [{lo}, {hi}]")
    if not callable(fit) or not callable(f):
        raise TypeError("fit and f must be callable")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 4]))
    x = np.linspace(lo, hi, n_points)
    xe = lo + (hi - lo) * (np.arange(n_eval) + 0.5) / n_eval
    fx, fe = f(x), f(xe)
    Y = fx[:, None] + noise_std * rng.standard_normal((n_points, n_sets))
    Yv = fe[:, None] + noise_std * rng.standard_normal((n_eval, n_sets))
    predict = fit(x, Y)
    P = np.asarray(predict(xe), dtype=np.float64).reshape(n_eval, n_sets)
    R = np.asarray(predict(x), dtype=np.float64).reshape(n_points, n_sets)
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(R))):
        raise ValueError("the fit returned non-finite predictions")
    D = n_sets
    mean = P.mean(axis=1)
    var_x = P.var(axis=1, ddof=1)
    bias2_x = (mean - fe) ** 2 - var_x / D
    rows = P.T                              # one row per data set
    sq = rows ** 2

    def b2(m, values, d):
        # leave-one-out mean m; leave-one-out variance from the sums of squares
        s2 = (sq.sum(axis=0) - sq[d]) / (D - 1)
        v = (s2 - m ** 2) * (D - 1) / (D - 2) if D > 2 else np.zeros_like(m)
        return float(np.mean((m - fe) ** 2 - v / (D - 1)))

    def vv(m, values, d):
        s2 = (sq.sum(axis=0) - sq[d]) / (D - 1)
        return float(np.mean((s2 - m ** 2) * (D - 1) / (D - 2))) if D > 2 else 0.0

    test_per_set = np.mean((Yv - P) ** 2, axis=0)
    train_per_set = np.mean((Y - R) ** 2, axis=0)
    mse_f_per_set = np.mean((P - fe[:, None]) ** 2, axis=0)
    noise = noise_std ** 2
    sd = lambda a: float(a.std(ddof=1) / math.sqrt(len(a)))
    return {"x": xe.tolist(), "bias2_x": bias2_x.tolist(), "variance_x": var_x.tolist(),
            "bias2": float(bias2_x.mean()), "variance": float(var_x.mean()), "noise": noise,
            "bias2_se": _jackknife_se(b2, rows) if D > 2 else math.nan,
            "variance_se": _jackknife_se(vv, rows) if D > 2 else math.nan,
            "decomposed": float(mse_f_per_set.mean() + noise), "decomposed_se": sd(mse_f_per_set),
            "test_error": float(test_per_set.mean()), "test_error_se": sd(test_per_set),
            "identity_diff": float(np.mean(test_per_set - mse_f_per_set) - noise),
            "identity_se": sd(test_per_set - mse_f_per_set),
            "train_error": float(train_per_set.mean()), "train_error_se": sd(train_per_set),
            "n_sets": D, "n_points": n_points, "noise_std": float(noise_std)}


# -- diagnosis ------------------------------------------------------------------------------------------
def diagnose(train_error: float, val_error: float | None, chance_error: float) -> dict:
    """The lecture's bias/variance verdict from the training and validation errors (see the module
    docstring for the rules); ``val_error`` None diagnoses bias only. Returns ``verdict`` ("high bias",
    "high variance", "high bias and high variance", "done", or with no validation set "low bias" /
    "high bias"), ``advice``, the numbers and the thresholds."""
    for name, v in (("train_error", train_error), ("chance_error", chance_error)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    if val_error is not None and (not isinstance(val_error, (int, float, np.floating)) or not math.isfinite(val_error)
                                  or val_error < 0):
        raise ValueError(f"val_error must be a finite number >= 0 or None, got {val_error!r}")
    if chance_error <= 0:
        raise ValueError(f"chance_error must be > 0, got {chance_error!r}")
    bias = train_error > BIAS_THRESHOLD * chance_error
    out = {"train_error": float(train_error), "val_error": None if val_error is None else float(val_error),
           "chance_error": float(chance_error), "bias_threshold": BIAS_THRESHOLD * chance_error,
           "variance_threshold": VARIANCE_THRESHOLD * chance_error, "gap_ratio": GAP_RATIO,
           "high_bias": bool(bias)}
    if val_error is None:
        out.update(high_variance=None, gap=None, verdict="high bias" if bias else "low bias",
                   advice=_ADVICE["high bias"] if bias else "no validation split: variance cannot be judged")
        return out
    gap = val_error - train_error
    variance = gap > VARIANCE_THRESHOLD * chance_error and val_error > GAP_RATIO * train_error
    verdict = {(True, True): "high bias and high variance", (True, False): "high bias",
               (False, True): "high variance", (False, False): "done"}[(bias, variance)]
    advice = "; ".join(_ADVICE[k] for k in ("high bias", "high variance") if k in verdict) or _ADVICE["done"]
    out.update(high_variance=bool(variance), gap=float(gap), verdict=verdict, advice=advice)
    return out


def diagnosis_text(d: dict) -> str:
    """One line: the verdict, the numbers behind it and the advice."""
    val = "-" if d["val_error"] is None else f"{d['val_error']:.4f}"
    gap = "" if d["gap"] is None else (f", gap {d['gap']:.4f} (large above {d['variance_threshold']:.4f} "
                                       f"when validation > {d['gap_ratio']:g} x training)")
    return (f"diagnosis: {d['verdict']} (training error {d['train_error']:.4f}, high above "
            f"{d['bias_threshold']:.4f} = {BIAS_THRESHOLD:g} x chance {d['chance_error']:.4f}; validation error "
            f"{val}{gap}): {d['advice']}")


def diagnose_training(trainer, X_train, y_train, X_val=None, y_val=None, history=None) -> dict:
    """:func:`diagnose` for a finished :class:`~varprop.nn.trainer.Trainer` on a classification task.

    The training error is measured in test mode on ``X_train`` (when it is None, e.g. when the training
    rows are augmented per batch, the last epoch's running training accuracy of ``history`` is used and
    ``train_source`` says so); the validation error on ``X_val``; chance is the error of always predicting
    the most frequent training class. Adds ``text`` (:func:`diagnosis_text`)."""
    if not trainer.loss.classification:
        raise ValueError("the diagnosis needs a classification loss (errors are 1 - accuracy)")
    y = np.asarray(y_train)
    counts = np.bincount(y.astype(np.int64), minlength=trainer.network.n_out)
    chance = 1.0 - counts.max() / counts.sum()
    if X_train is not None:
        train_err, source = 1.0 - trainer.evaluate(X_train, y_train)[1], "test mode on the training split"
    else:
        if history is None or not history.epochs:
            raise ValueError("without X_train the diagnosis needs the history of the run")
        train_err, source = 1.0 - history.epochs[-1]["train_acc"], "running mean of the last epoch (training mode)"
    val_err = None if X_val is None or len(X_val) == 0 else 1.0 - trainer.evaluate(X_val, y_val)[1]
    d = diagnose(float(train_err), None if val_err is None else float(val_err), float(chance))
    d["train_source"] = source
    d["text"] = diagnosis_text(d)
    return d

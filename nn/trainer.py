"""The training loop: minibatches, penalties, clipping, schedules, early stopping, divergence, checkpoints.

One optimizer step on a minibatch B of the shuffled training set:

    out = net(X_B, train=True);  L = loss(out, y_B)
    g = dL/dtheta + l2 theta + l1 sign(theta)                 (penalties of the objective; weights only)
    g <- g min(1, clip_norm / |g|_2)                           (global norm clipping)
    theta <- optimizer(theta, g + weight_decay theta, lr_0 schedule(t))   (coupled decay inside the step)

as ``torch.nn.utils.clip_grad_norm_`` then ``torch.optim.SGD(weight_decay=...).step()``: the decay
term is added after clipping. t = (e nb + b + 1/2) / nb is this trainer's own position (epoch e,
batch b of nb), so a second trainer on an already trained network starts its schedule afresh.

The epoch-e order is the argsort of the counter stream (seed, e), dropout masks are keyed by the
optimizer step and ``augment(xb, yb, epoch, step)`` (training batches only, right after they are
gathered; e.g. :class:`~varprop.nn.augment.Augment`) is called with the epoch and the batch's index
in it, so a run is a pure function of its seed and a resumed run repeats the uninterrupted
one bit for bit, whatever ``NUMBA_NUM_THREADS``. (The matrix products are BLAS's: OpenBLAS rounds
them differently with another ``OPENBLAS_NUM_THREADS``, so compare runs on the same BLAS setting.)
Divergence: training stops with ``History.diverged``, the epoch and step (``diverged_epoch``,
``diverged_step``, 1-based) and a message when a minibatch loss is not finite, exceeds
``DIVERGENCE_FACTOR`` (1e3) times the run's reference loss, or the gradient norm is not finite. The
reference is fixed at the trainer's first step: the larger of that step's loss and the loss of an
all-zero output on the same batch (log K for cross-entropy with K classes, (K - 1) margin for hinge,
the mean square of the targets for mse), so a network that starts near chance can still fall and a
small starting loss does not make ordinary noise look like divergence. The weights and batch-norm
running statistics put back are those of the last forward pass whose loss was inside that range (the
values before the step that left it), never the overflowing ones. Ctrl-C during ``fit`` saves a checkpoint
(when a path is set) at the last completed step, then re-raises.

``train_loss``/``train_acc`` of an epoch are running means over its minibatches (in training mode);
``val_loss``/``val_acc`` come from a test-mode pass over the validation set after the epoch; both
losses are the data loss, and ``penalty`` is l1 |W|_1 + l2/2 |W|^2 at the epoch's end (the
objective minimized is their sum).

>>> import numpy as np
>>> from varprop.nn.network import build_mlp
>>> rng = np.random.default_rng(0); X = rng.normal(size=(64, 2)).astype(np.float32)
>>> y = (X[:, 0] > 0).astype(int)
>>> t = Trainer(build_mlp(2, [8], 2, seed=0), "cross_entropy", "adam", batch_size=16, epochs=5, progress=False)
>>> h = t.fit(X, y)
>>> len(h.epochs), h.diverged
(5, False)
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from varprop import streams, threads
from varprop.io import Progress
from varprop.nn import checkpoint as ckpt
from varprop.nn import hooks as _hooks
from varprop.nn import kernels as K
from varprop.nn.layers import BatchNorm, _check_seed
from varprop.nn.losses import Loss, get_loss
from varprop.nn.network import Network
from varprop.nn.init.checks import nonneg as _nonneg
from varprop.nn.init.checks import positive_int as _posint
from varprop.nn.optim import Optimizer, get_optimizer, optimizer_from_config
from varprop.nn.schedules import Schedule, get_schedule, schedule_from_config

__all__ = ["Trainer", "History", "memory_estimate", "MAX_EPOCHS", "DIVERGENCE_FACTOR"]

_SHUFFLE, _SPLIT = 1, 2     # stream ids: (seed, epoch, _SHUFFLE) orders an epoch; (seed, 0, _SPLIT) the split
_EVAL_CHUNK = 1024
DIVERGENCE_FACTOR = 1e3  # a minibatch loss above this many times the reference loss is divergence
MAX_EPOCHS = 10 ** 6    # a documented ceiling: more epochs than this is a typo, not a run (days of work)


@dataclass
class History:
    """Per-epoch records (epoch, train_loss, train_acc, val_loss, val_acc, lr, penalty, seconds) and how it ended."""
    epochs: list = field(default_factory=list)
    diverged: bool = False
    message: str = ""
    stopped_early: bool = False
    best_epoch: int | None = None
    diverged_epoch: int | None = None     # 1-based epoch and step within it where divergence was caught
    diverged_step: int | None = None

    def to_dict(self) -> dict:
        return {"epochs": [dict(e) for e in self.epochs], "diverged": self.diverged, "message": self.message,
                "stopped_early": self.stopped_early, "best_epoch": self.best_epoch,
                "diverged_epoch": self.diverged_epoch, "diverged_step": self.diverged_step}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls([dict(e) for e in d.get("epochs", [])], bool(d.get("diverged", False)), d.get("message", ""),
                   bool(d.get("stopped_early", False)), d.get("best_epoch"), d.get("diverged_epoch"),
                   d.get("diverged_step"))


# arrays like the weights that training keeps: value, gradient, the trainer's backup and the
# optimizer's pre-step copy, plus the optimizer's slots (momentum buffer; m and v)
_COPIES = 4
_SLOTS = {"sgd": 1, "momentum": 1, "nesterov": 1, "adagrad": 2, "rmsprop": 2, "adam": 2, "adamw": 2}


def memory_estimate(shapes, batch_size: int, optimizer: str = "adam", itemsize: int = 4) -> int:
    """Bytes a training run allocates beyond its data, from the dense layers' (inputs, outputs)
    ``shapes`` (:func:`~varprop.nn.network.mlp_shapes`): every parameter held ``4 + slots`` times (value, gradient,
    the last good copy, the optimizer's pre-step copy and its slots), plus the per-batch activations
    (input, pre-activation, derivative and output of every layer) and the evaluation chunk.

    >>> memory_estimate([(64, 256), (256, 10)], 128, "sgd")   # 19210 parameters x 4 bytes x 5, activations
    3157192
    """
    n_params = sum(r * c + c for r, c in shapes)
    per_param = itemsize * (_COPIES + _SLOTS.get(optimizer, 2))
    widths = [shapes[0][0]] + [c for _, c in shapes]
    acts = itemsize * 4 * max(int(batch_size), 1) * sum(widths)
    evaluation = itemsize * 2 * _EVAL_CHUNK * max(widths)
    return per_param * n_params + acts + evaluation


def _has_batchnorm(layers) -> bool:
    return any(isinstance(l, BatchNorm) or _has_batchnorm(l.sublayers()) for l in layers)


def _correct(out, y) -> int:
    """Rows whose predicted class is the label (the argmax of the target for soft targets)."""
    return int(np.count_nonzero(out.argmax(axis=1) == (y.argmax(axis=1) if y.ndim == 2 else y)))


def _count(loss, out, y):
    """(correct, rows counted): the loss's own rule when it has one (several heads, unlabelled rows)."""
    rule = getattr(loss, "count_correct", None)
    return rule(out, y) if rule is not None else (_correct(out, y), len(y))


def permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of epoch ``epoch``: argsort of n uniforms of the stream (seed, epoch, shuffle)."""
    return np.argsort(streams.uniform(seed, (epoch, _SHUFFLE), n), kind="stable")


class Trainer:
    """Train ``network`` on (X, y) with ``loss`` and ``optimizer`` (names or objects).

    ``weight_decay`` is PyTorch's: coupled (added to the gradient inside the step, after clipping)
    for every optimizer but AdamW, whose decoupled decay it is. When given it replaces the
    optimizer's own setting for this trainer (``weight_decay=0`` turns AdamW's default 0.01 off);
    None keeps the optimizer's. The optimizer object is not changed. ``l1``/``l2`` add l1 |W|_1 + l2/2 |W|^2 to the objective (elastic
    net when both). Penalties touch weights only. ``schedule`` is a name or a
    :class:`~varprop.nn.schedules.Schedule`; ``clip_norm`` caps the global gradient norm;
    ``early_stopping`` watches the validation loss (a ``validation_fraction`` split of the training
    set when no validation set is given), stops after ``patience`` epochs without an improvement
    larger than ``min_delta`` and restores the best weights. ``progress``: None shows a bar on a
    terminal, False never. ``callback(record)`` is called after each epoch. ``checkpoint``: a path
    saved after each epoch, at the end and on Ctrl-C. ``augment(xb, yb, epoch, step) -> (xb, yb)``
    transforms each training batch (``step`` is the batch's index within ``epoch``; evaluation never
    sees it); it must not modify its arguments, and it may return soft targets (n, n_out) for
    cross-entropy (mixup), whose argmax then counts for the training accuracy. It is not saved in
    checkpoints (its ``config()``, when it has one, is recorded there as ``augment``; "custom" when it
    has none): pass it again to :meth:`from_checkpoint`/:meth:`resume`. ``activation_l1`` (an L1 penalty on
    the hidden activations; each epoch's record then holds ``zero_fraction`` per hidden layer and
    ``activation_penalty``; ``record_sparsity`` records them without a penalty) and ``input_noise``,
    ``hidden_noise``, ``weight_noise`` (train-time Gaussian noise) are :class:`~varprop.nn.hooks.TrainHooks`;
    they are saved in checkpoints. A loss may define ``prepare_batch`` (its own views of a batch, as
    :class:`~varprop.nn.semisupervised.SemiSupervisedLoss`) and ``count_correct`` (the rows its accuracy
    counts, as :class:`~varprop.nn.multitask.MultiTaskLoss`).
    """

    def __init__(self, network: Network, loss="cross_entropy", optimizer="adam", batch_size: int = 128,
                 epochs: int = 10, seed: int = 0, weight_decay: float | None = None, l1: float = 0.0, l2: float = 0.0,
                 schedule=None, clip_norm=None, early_stopping: bool = False, patience: int = 5,
                 progress=None, *, validation_fraction: float = 0.1, min_delta: float = 0.0, checkpoint=None,
                 callback=None, augment=None, activation_l1: float = 0.0, input_noise: float = 0.0,
                 hidden_noise: float = 0.0, weight_noise: float = 0.0, record_sparsity: bool = False):
        if not isinstance(network, Network):
            raise TypeError(f"network must be a Network, got {type(network).__name__}")
        self.network = network
        self.loss: Loss = get_loss(loss)
        self.optimizer: Optimizer = get_optimizer(optimizer)
        self.batch_size = _posint(batch_size, "batch_size")
        self.epochs = _posint(epochs, "epochs")
        if self.epochs > MAX_EPOCHS:
            raise ValueError(f"epochs must be at most {MAX_EPOCHS}, got {self.epochs}")
        self.seed = _check_seed(seed)
        self.weight_decay = None if weight_decay is None else _nonneg(weight_decay, "weight_decay")
        self.l1 = _nonneg(l1, "l1")
        self.l2 = _nonneg(l2, "l2")
        decoupled = self.optimizer.name == "adamw"
        self._step_decay = ({} if self.weight_decay is None else
                            {"decoupled_decay" if decoupled else "weight_decay": self.weight_decay})
        self.schedule: Schedule = get_schedule("constant" if schedule is None else schedule)
        self.clip_norm = None if clip_norm is None else _nonneg(clip_norm, "clip_norm")
        if self.clip_norm == 0:
            raise ValueError("clip_norm must be positive")
        self.early_stopping = bool(early_stopping)
        self.patience = _posint(patience, "patience")
        self.validation_fraction = float(validation_fraction)
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
        self.min_delta = _nonneg(min_delta, "min_delta")
        self.progress = progress
        self.checkpoint = checkpoint
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self.callback = callback
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be callable, got {type(augment).__name__}")
        self.augment = augment
        self.base_lr = self.optimizer.lr
        # activation penalty and train-time noise (varprop.nn.hooks); both off by default
        self.hooks = _hooks.TrainHooks(network, activation_l1=activation_l1, input_noise=input_noise,
                                       hidden_noise=hidden_noise, weight_noise=weight_noise,
                                       record_sparsity=record_sparsity)
        # position and bookkeeping (all saved in checkpoints)
        self.epoch = 0          # completed epochs
        self.batch = 0          # next batch within the current epoch
        self._sums = [0.0, 0.0, 0, 0]   # loss sum, correct count, samples, rows the accuracy counts
        self.history = History()
        self._best = None       # (val_loss, epoch, {name: array copy})
        self._bad_epochs = 0
        self._backup = None
        self._have_backup = False
        self._buffer_backup = None
        self._interrupted = False
        self._loss_ref = None   # the reference loss of the divergence rule, fixed at the first step

    # -- data checks ---------------------------------------------------------------------------------
    def _check_X(self, X, what="X") -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"{what} must be a 2-d array (samples, features), got shape {X.shape}")
        if X.shape[1] != self.network.n_in:
            raise ValueError(f"{what} has {X.shape[1]} features but the network expects {self.network.n_in}")
        if X.shape[0] == 0:
            raise ValueError(f"{what} is empty")
        if X.dtype.kind not in "fiub":
            raise TypeError(f"{what} must be numeric, got dtype {X.dtype}")
        X = np.ascontiguousarray(X, dtype=self.network.dtype)
        if not K.all_finite(X):   # one pass without a temporary: every fit and evaluate call checks its X
            raise ValueError(f"{what} contains NaN or infinity")
        return X

    def _check_xy(self, X, y, what="X"):
        X = self._check_X(X, what)
        y = self.loss.check_targets(y, self.network.n_out, self.network.dtype)
        if len(y) != len(X):
            raise ValueError(f"{what} has {len(X)} samples but its targets have {len(y)}")
        return X, y

    # -- evaluation ----------------------------------------------------------------------------------
    def _outputs(self, X):
        out = np.empty((len(X), self.network.n_out), self.network.dtype)
        for s in range(0, len(X), _EVAL_CHUNK):
            out[s:s + _EVAL_CHUNK] = self.network._forward(X[s:s + _EVAL_CHUNK], False)
        return out

    def _evaluate(self, X, y):
        total, correct, counted = 0.0, 0, 0
        for s in range(0, len(X), _EVAL_CHUNK):
            out = self.network._forward(X[s:s + _EVAL_CHUNK], False)
            yb = y[s:s + _EVAL_CHUNK]
            total += self.loss.forward(out, yb) * len(yb)
            if self.loss.classification:
                c, k = _count(self.loss, out, yb)
                correct, counted = correct + c, counted + k
        acc = correct / max(counted, 1) if self.loss.classification else None
        return total / len(X), acc

    def evaluate(self, X, y) -> tuple:
        """(mean loss, accuracy) in test mode; accuracy is None for regression."""
        X, y = self._check_xy(X, y)
        return self._evaluate(X, y)

    def predict_output(self, X, *, tta=None, tta_views: int = 8) -> np.ndarray:
        """Class probabilities (cross-entropy), scores (hinge) or values (mse).

        ``tta``: an :class:`~varprop.nn.augment.Augment` whose ``tta_views`` fixed views of ``X`` (the first
        is ``X`` itself) are averaged (test-time augmentation, :func:`~varprop.nn.augment.tta_average`)."""
        X = self._check_X(X)
        if tta is None:
            return self.loss.output(self._outputs(X))
        from varprop.nn.augment import tta_average
        return tta_average(lambda v: self.loss.output(self._outputs(self._check_X(v))), X, tta, tta_views)

    def predict(self, X, *, tta=None, tta_views: int = 8) -> np.ndarray:
        """Class indices for classification losses, outputs for regression (``tta``: see :meth:`predict_output`)."""
        if tta is not None:
            out = self.predict_output(X, tta=tta, tta_views=tta_views)
        else:
            out = self._outputs(self._check_X(X))
        return out.argmax(axis=1) if self.loss.classification else out

    # -- pieces of a step ----------------------------------------------------------------------------
    def _penalty(self, params) -> float:
        if self.l1 == 0 and self.l2 == 0:
            return 0.0
        s = 0.0
        for p in params:
            if p.regularize:
                w = p.value.astype(np.float64, copy=False)
                w = K.flat(w)
                s += self.l1 * float(np.abs(w).sum()) + 0.5 * self.l2 * float(np.dot(w, w))
        return s

    def _regularize(self, params):
        if self.l1 == 0 and self.l2 == 0:
            return
        for p in params:
            if p.regularize and not p.frozen:
                K.add_penalty(p.grad, p.value, self.l1, self.l2)

    def _l2_in_step(self, opt) -> bool:
        """Whether the L2 penalty's gradient l2 w can be left to the update kernel as its coupled decay
        (which adds wd w to the gradient in the pass it makes anyway, in the same arithmetic, so the same
        bits as :meth:`_regularize` first): only an L2 penalty, no clipping to see it first, and no other
        coupled decay to add it to. It saves a pass over the weights and gradients each step (about 30 us
        for the benchmark net's 269k weights)."""
        coupled = self._step_decay.get("weight_decay", opt.weight_decay)
        return self.l2 > 0 and self.l1 == 0 and self.clip_norm is None and coupled == 0

    @staticmethod
    def _grad_norm(params) -> float:
        """The global gradient norm (inf or nan when a gradient is not finite)."""
        sq = 0.0
        for p in params:
            if not p.frozen:
                g = K.flat(p.grad)    # np.vdot would copy a column-major gradient to flatten it
                s = float(np.dot(g, g))
                if math.isinf(s):      # a float32 sum of squares can overflow while every entry is finite
                    s = float(np.dot(g64 := g.astype(np.float64), g64))
                sq += s
        return math.sqrt(sq)

    def _clip(self, params, norm=None) -> float:
        """Scale the gradients to a global norm of at most ``clip_norm``; returns the norm before."""
        norm = self._grad_norm(params) if norm is None else norm
        if self.clip_norm is not None and norm > self.clip_norm:
            scale = self.clip_norm / norm
            for p in params:
                if not p.frozen:
                    p.grad *= p.grad.dtype.type(scale)
        return norm

    def _backups(self, params):
        if self._backup is None or len(self._backup) != len(params):
            self._backup = [np.empty_like(p.value) for p in params]
        self._have_backup = True
        return self._backup

    def _restore_backup(self, params):
        if self._have_backup:
            for b, p in zip(self._backup, params):
                if not p.frozen:     # frozen values never moved (and their backups were never written)
                    np.copyto(p.value, b)
        if self._buffer_backup is not None:
            for (b, a) in zip(self._buffer_backup, self.network.buffers().values()):
                np.copyto(a, b)

    def _buffers_finite(self) -> bool:
        return all(np.isfinite(a).all() for a in self.network.buffers().values())

    def _backup_buffers(self):
        """Copy the running statistics before a training forward pass moves them."""
        bufs = list(self.network.buffers().values())
        if not bufs:
            return
        if self._buffer_backup is None or len(self._buffer_backup) != len(bufs):
            self._buffer_backup = [np.empty_like(a) for a in bufs]
        for b, a in zip(self._buffer_backup, bufs):
            np.copyto(b, a)

    def _diverge(self, params, b, nb, what):
        self._restore_backup(params)
        h = self.history
        h.diverged = True
        h.diverged_epoch, h.diverged_step = self.epoch + 1, b + 1
        h.message = (f"training diverged at epoch {self.epoch + 1}, step {b + 1} of {nb} "
                     f"(optimizer step {self.network.step + 1}): {what}; kept the weights "
                     f"of the last step whose loss was in range (try a lower learning rate, "
                     f"gradient clipping or a smaller initial weight scale)")

    def _out_of_range(self, value, out, yb):
        """Why ``value`` (this batch's loss) is divergence, or None; fixes the reference at the first step.

        The loss of a zero output is taken at the first step only, then the loss's forward on ``out`` is
        run again so that its backward sees this batch."""
        if not math.isfinite(value):
            return f"the loss is {value}"
        if self._loss_ref is None:
            zero = self.loss.forward(np.zeros_like(out), yb)
            self.loss.forward(out, yb)
            self._loss_ref = max(value, zero if math.isfinite(zero) else 0.0)
            return None
        limit = DIVERGENCE_FACTOR * self._loss_ref
        if self._loss_ref > 0 and value > limit:
            return (f"the loss is {value:.4g}, more than {DIVERGENCE_FACTOR:g} x its reference "
                    f"{self._loss_ref:.4g}")
        return None

    def _snapshot(self) -> dict:
        return {k: v.copy() for k, v in self.network.state_arrays().items()}

    # -- the loop ----------------------------------------------------------------------------------------
    def fit(self, X, y, X_val=None, y_val=None, *, max_epochs: int | None = None) -> History:
        """Train until ``epochs`` epochs are done (continuing from the current position); returns the history.

        ``max_epochs`` pauses after that many more epochs (the schedule still spans ``epochs``): a
        checkpoint saved then resumes into exactly the run that was not paused.
        """
        if max_epochs is not None:
            max_epochs = _posint(max_epochs, "max_epochs")
        X, y = self._check_xy(X, y)
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        if X_val is not None:
            X_val, y_val = self._check_xy(X_val, y_val, "X_val")
        elif self.early_stopping:
            X, y, X_val, y_val = self._split(X, y)
        if self.network.n_out < 2 and self.loss.classification:
            raise ValueError("a classification loss needs at least 2 outputs")
        self._check_memory(len(X))
        with self._sigint_guard(), threads.limit("blas"):   # BLAS and Numba teams within the free cores
            try:
                with np.errstate(over="ignore", invalid="ignore"):   # a non-finite loss is handled below
                    self._loop(X, y, X_val, y_val, self.epochs if max_epochs is None
                               else min(self.epochs, self.epoch + max_epochs))
                if self._interrupted:    # Ctrl-C after the last step: still the caller's to see
                    raise KeyboardInterrupt("interrupted at the end of training")
            except KeyboardInterrupt:
                if self.checkpoint is not None:
                    self.save_checkpoint(self.checkpoint)
                raise
        if self.checkpoint is not None:
            self.save_checkpoint(self.checkpoint)
        return self.history

    def _check_memory(self, n_rows: int) -> None:
        """Refuse, before the first step allocates them, optimizer slots, backups and activations that do not
        fit (the network's values and gradients exist already)."""
        from varprop.memory import check
        params = self.network.parameters()
        item = self.network.dtype.itemsize
        n_params = sum(p.value.size for p in params)
        extra = item * (_COPIES - 2 + _SLOTS.get(self.optimizer.name, 2)) * n_params
        width = max([self.network.n_in, self.network.n_out] + [p.value.shape[0] for p in params])
        acts = item * 4 * min(self.batch_size, n_rows) * width * max(len(params) // 2, 1)
        check(extra + acts, f"training this network ({n_params:.3g} parameters, {self.optimizer.name})",
              "use a smaller network or batch")

    def _split(self, X, y):
        n = len(X)
        n_val = max(1, int(round(self.validation_fraction * n)))
        if n - n_val < 1:
            raise ValueError("too few samples to split off a validation set for early stopping")
        order = np.argsort(streams.uniform(self.seed, (0, _SPLIT), n), kind="stable")
        tr, va = np.sort(order[n_val:]), np.sort(order[:n_val])
        return X[tr], y[tr], X[va], y[va]

    @contextlib.contextmanager
    def _sigint_guard(self):
        """Turn Ctrl-C into a flag checked between steps, so a checkpoint never holds a half-done update."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._interrupted = False

        def handler(signum, frame):
            self._interrupted = True

        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:     # not in the main interpreter
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _loop(self, X, y, X_val, y_val, stop):
        net, opt, loss = self.network, self.optimizer, self.loss
        params = net.parameters()
        n = len(X)
        bs = min(self.batch_size, n)
        nb = (n + bs - 1) // bs
        if n % bs == 1 and nb > 1 and _has_batchnorm(net.layers):
            nb -= 1      # batch statistics of one sample are undefined: that epoch's last sample sits out
        classify = loss.classification
        stateful = bool(net.buffers())     # batch-norm running statistics to back up and check each step
        fold = self._l2_in_step(opt)
        step_decay = dict(self._step_decay, weight_decay=self.l2) if fold else self._step_decay
        xbuf = np.empty((bs,) + X.shape[1:], X.dtype)
        ybuf = np.empty((bs,) + y.shape[1:], y.dtype)
        h = self.history
        while self.epoch < stop and not h.diverged and not h.stopped_early:
            order = permutation(self.seed, self.epoch, n)
            start = time.perf_counter()
            bar = Progress(nb - self.batch, f"epoch {self.epoch + 1}/{self.epochs}",
                           enabled=None if self.progress is None else bool(self.progress))
            with bar:
                for b in range(self.batch, nb):
                    idx = order[b * bs:(b + 1) * bs]
                    m = len(idx)
                    xb = xbuf[:m]
                    K.gather_rows(X, idx, xb)
                    yb = np.take(y, idx, axis=0, out=ybuf[:m])
                    if self.augment is not None:
                        xb, yb = self._augmented(xb, yb, b)
                    prepare = getattr(loss, "prepare_batch", None)
                    if prepare is not None:   # a loss that needs its own views of the batch (semi-supervised)
                        xb = prepare(xb, yb, self.seed, net.step)
                    if stateful:
                        self._backup_buffers()
                    out = self.hooks.forward(xb, self.seed, net.step)
                    value = loss.forward(out, yb)
                    why = self._out_of_range(value, out, yb)
                    if why is not None:
                        self.hooks.restore_weights()
                        self._diverge(params, b, nb, why)
                        break
                    if stateful and not self._buffers_finite():
                        self.hooks.restore_weights()
                        self._diverge(params, b, nb, "the batch-norm running statistics overflowed")
                        break
                    self._sums[0] += value * m
                    if classify:
                        c, k = _count(loss, out, yb)
                        self._sums[1] += c
                        self._sums[3] += k
                    self._sums[2] += m
                    self.hooks.backward(loss.backward())
                    if not fold:
                        self._regularize(params)
                    norm = self._clip(params)
                    if not math.isfinite(norm):
                        self._have_backup = False    # this step's weights had a finite loss: keep them
                        self._buffer_backup = None
                        self._diverge(params, b, nb, f"the gradient norm is {norm}")
                        break
                    opt.lr = self.base_lr * self.schedule((self.epoch * nb + b + 0.5) / nb, self.epochs)
                    opt.step(params, self._backups(params), **step_decay)
                    net.step += 1
                    self.batch = b + 1
                    bar.update(info=f"loss {self._sums[0] / self._sums[2]:.4f}")
                    if self._interrupted:
                        raise KeyboardInterrupt(f"interrupted at epoch {self.epoch + 1}, step {b + 1}")
            if h.diverged:
                break
            self._end_epoch(X_val, y_val, time.perf_counter() - start)

    def _augmented(self, xb, yb, b):
        """The augmented batch, checked and in the network's dtype."""
        m = len(xb)
        xa, ya = self.augment(xb, yb, self.epoch, b)
        xa = np.ascontiguousarray(xa, dtype=self.network.dtype)
        ya = np.asarray(ya)
        if xa.shape != xb.shape or len(ya) != m:
            raise ValueError(f"augment returned inputs {xa.shape} and targets {ya.shape} for a batch of {xb.shape}")
        if ya.ndim == 2 and ya.dtype.kind == "f" and self.loss.classification:
            ya = ya.astype(self.network.dtype, copy=False)
        return xa, ya

    def _end_epoch(self, X_val, y_val, seconds):
        h = self.history
        loss_sum, correct, count, counted = self._sums
        rec = {"epoch": self.epoch + 1, "train_loss": loss_sum / max(count, 1),
               "train_acc": (correct / max(counted, 1)) if self.loss.classification else None,
               "val_loss": None, "val_acc": None, "lr": self.optimizer.lr,
               "penalty": self._penalty(self.network.parameters()), "seconds": seconds}
        if X_val is not None:
            rec["val_loss"], rec["val_acc"] = self._evaluate(X_val, y_val)
        rec.update(self.hooks.end_epoch())
        h.epochs.append(rec)
        self.epoch += 1
        self.batch = 0
        self._sums = [0.0, 0.0, 0, 0]
        if X_val is not None and self.early_stopping:
            if self._best is None or rec["val_loss"] < self._best[0] - self.min_delta:
                self._best = (rec["val_loss"], self.epoch, self._snapshot())
                self._bad_epochs = 0
            else:
                self._bad_epochs += 1
            h.best_epoch = self._best[1]
            if self._bad_epochs >= self.patience or self.epoch >= self.epochs:
                self.network.load_state_arrays(self._best[2])
                if self._bad_epochs >= self.patience:
                    h.stopped_early = True
                    h.message = (f"stopped early after epoch {self.epoch}: no validation improvement for "
                                 f"{self.patience} epochs; restored the weights of epoch {self._best[1]}")
        if self.callback is not None:
            self.callback(dict(rec))
        if self.checkpoint is not None and self.epoch < self.epochs and not h.stopped_early:
            self.save_checkpoint(self.checkpoint)

    # -- checkpoints ---------------------------------------------------------------------------------------
    def config(self) -> dict:
        return {"network": self.network.config(), "loss": self.loss.config(), "optimizer": self.optimizer.config(),
                "schedule": self.schedule.config(), "base_lr": self.base_lr, "batch_size": self.batch_size,
                "epochs": self.epochs, "seed": self.seed, "weight_decay": self.weight_decay, "l1": self.l1,
                "l2": self.l2, "clip_norm": self.clip_norm, "early_stopping": self.early_stopping,
                "patience": self.patience, "validation_fraction": self.validation_fraction,
                "min_delta": self.min_delta, "frozen": self.network.frozen_names(), "augment": self._augment_config(),
                **self.hooks.config()}

    def _augment_config(self):
        a = self.augment
        if a is None:
            return None
        return a.config() if callable(getattr(a, "config", None)) else "custom"

    def save_checkpoint(self, path) -> str:
        """Write the full training state to ``path`` (atomic); :meth:`resume` continues from it."""
        state = {"epoch": self.epoch, "batch": self.batch, "step": self.network.step, "opt_t": self.optimizer.t,
                 "sums": list(self._sums), "history": self.history.to_dict(), "bad_epochs": self._bad_epochs,
                 "best": None if self._best is None else [self._best[0], self._best[1]],
                 "loss_ref": self._loss_ref, "hook_sums": self.hooks.state()}
        arrays = dict(self.network.state_arrays())
        arrays.update({f"opt/{k}": v for k, v in self.optimizer.state_arrays().items()})
        if self._best is not None:
            arrays.update({f"best/{k}": v for k, v in self._best[2].items()})
        return ckpt.write(path, {"format": ckpt.FORMAT, "trainer": self.config(), "state": state}, arrays)

    @classmethod
    def from_checkpoint(cls, path, **overrides) -> "Trainer":
        """The trainer saved at ``path``, ready to continue (``overrides``: e.g. epochs, progress, callback)."""
        config, arrays = ckpt.read(path)
        try:
            tc, st = config["trainer"], config["state"]
            net = Network.from_config(tc["network"])
            net.load_state_arrays(arrays)
            loss = get_loss(tc["loss"]["name"], **{k: v for k, v in tc["loss"].items() if k != "name"})
            opt = optimizer_from_config(tc["optimizer"])
            kw = dict(batch_size=tc["batch_size"], epochs=tc["epochs"], seed=tc["seed"],
                      weight_decay=tc["weight_decay"], l1=tc["l1"], l2=tc["l2"],
                      schedule=schedule_from_config(tc["schedule"]), clip_norm=tc["clip_norm"],
                      early_stopping=tc["early_stopping"], patience=tc["patience"],
                      validation_fraction=tc["validation_fraction"], min_delta=tc["min_delta"],
                      **_hooks.TrainHooks.kwargs_from_config(tc))
            base_lr, frozen = float(tc["base_lr"]), set(tc.get("frozen", ()))
            opt.load_state_arrays({k[4:]: v for k, v in arrays.items() if k.startswith("opt/")}, st["opt_t"])
            step, epoch, batch = int(st["step"]), int(st["epoch"]), int(st["batch"])
            sums = [float(st["sums"][0]), float(st["sums"][1]), int(st["sums"][2])]
            sums.append(int(st["sums"][3]) if len(st["sums"]) > 3 else sums[2])   # older: every row counted
            history, bad_epochs, best = History.from_dict(st["history"]), int(st["bad_epochs"]), st["best"]
            loss_ref = st.get("loss_ref")    # absent in older checkpoints: fixed again at the next step
        except (KeyError, TypeError, IndexError) as e:
            raise ValueError(f"checkpoint {path!r} is incomplete or from another version ({e!r})") from None
        kw.update(overrides)
        t = cls(net, loss, opt, **kw)
        t.base_lr = base_lr
        for p in net.parameters():
            p.frozen = p.name in frozen
        net.step = step
        t.epoch, t.batch, t._sums, t.history, t._bad_epochs = epoch, batch, sums, history, bad_epochs
        t._loss_ref = None if loss_ref is None else float(loss_ref)
        t.hooks.load_state(st.get("hook_sums"))
        if best is not None:
            t._best = (best[0], best[1], {k[5:]: v for k, v in arrays.items() if k.startswith("best/")})
        return t

    @classmethod
    def resume(cls, path, X, y, X_val=None, y_val=None, **overrides) -> "Trainer":
        """Continue the run saved at ``path`` on the same data; returns the trainer (its ``history`` is complete)."""
        t = cls.from_checkpoint(path, **overrides)
        t.fit(X, y, X_val, y_val)
        return t

"""Multi-task learning: one shared trunk, several heads, a weighted sum of their losses.

The network is an ordinary MLP whose last (linear) layer is split into blocks of columns, one per
head: head k reads the shared trunk's last hidden layer through its own weights W_k and bias b_k,
so the heads share every hidden layer and nothing else (hard parameter sharing, Caruana 1997). The
objective of a minibatch is

    L = sum_k w_k L_k(z[:, head k], y_k),     L_k = mean over the rows that have a target for head k,

with L_k a loss of :mod:`varprop.nn.losses` (cross-entropy or hinge for a classification head, mse for
a regression head). Targets are one (n, n_columns) float array: one column per classification head
(a class index, or -1 for a row without a label for that head, e.g. the unlabelled rows of a
few-labels main task) and ``width`` columns per regression head. The first head is the main task:
its accuracy is the trainer's ``train_acc``/``val_acc`` (over rows with a label).

Everything else is the trainer's: :class:`MultiTaskLoss` is a loss (checkpoints save its config),
so ``Trainer(build_multitask(...), MultiTaskLoss(heads), ...)`` trains, resumes and detects divergence
as any run does.

>>> import numpy as np
>>> heads = [Head("cross_entropy", 3), Head("mse", 1, weight=0.5)]
>>> net = build_multitask(4, [8], heads, seed=0)
>>> net.n_out
4
>>> loss = MultiTaskLoss(heads)
>>> y = np.array([[0, 0.5], [-1, 1.0]])
>>> round(loss.forward(np.zeros((2, 4), np.float32), loss.check_targets(y, 4)), 4)   # log 3 + 0.5 * 0.625
1.4111
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from varprop.nn.losses import LOSSES, Loss, get_loss

__all__ = ["Head", "MultiTaskLoss", "build_multitask", "predict_heads", "aux_targets", "AUX_TASKS"]


@dataclass(frozen=True)
class Head:
    """A head: its loss's name, its width (classes, or regression outputs) and its weight in the sum."""
    loss: str
    width: int
    weight: float = 1.0

    def as_dict(self) -> dict:
        return {"loss": self.loss, "width": int(self.width), "weight": float(self.weight)}


def _heads(heads) -> list[Head]:
    if not isinstance(heads, (list, tuple)) or not heads:
        raise ValueError("heads must be a non-empty list of Head (or dicts with loss, width, weight)")
    out = []
    for h in heads:
        if isinstance(h, dict):
            try:
                h = Head(str(h["loss"]), h["width"], h.get("weight", 1.0))
            except KeyError as e:
                raise ValueError(f"a head needs {e.args[0]!r}") from None
        if not isinstance(h, Head):
            raise TypeError(f"a head is a Head or a dict, got {type(h).__name__}")
        if isinstance(h.width, bool) or not isinstance(h.width, (int, np.integer)) or h.width < 1:
            raise ValueError(f"head width must be a positive integer, got {h.width!r}")
        w = h.weight
        if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)) or not (
                np.isfinite(w) and w >= 0):
            raise ValueError(f"head weight must be a finite number >= 0, got {w!r}")
        sub = get_loss(h.loss)
        if sub.classification and h.width < 2:
            raise ValueError(f"a {h.loss} head needs at least 2 classes, got width {h.width}")
        out.append(Head(sub.name, int(h.width), float(w)))
    if out[0].weight == 0:
        raise ValueError("the main (first) head's weight must be positive")
    return out


class MultiTaskLoss(Loss):
    """The weighted sum of the heads' losses (see the module text); the first head is the main task."""
    name = "multitask"

    def __init__(self, heads):
        super().__init__()
        self.heads = _heads(heads)
        self.losses = [get_loss(h.loss) for h in self.heads]
        self.classification = self.losses[0].classification
        self.out_slices, self.y_slices = [], []
        a = c = 0
        for h, sub in zip(self.heads, self.losses):
            self.out_slices.append(slice(a, a + h.width))
            a += h.width
            nc = 1 if sub.classification else h.width
            self.y_slices.append(slice(c, c + nc))
            c += nc
        self.n_out, self.n_columns = a, c
        self.last = []      # each head's loss at the last forward (None when no row had a target)

    def config(self) -> dict:
        return {"name": self.name, "heads": [h.as_dict() for h in self.heads]}

    def check_targets(self, y, n_out: int, dtype=None) -> np.ndarray:
        if n_out != self.n_out:
            raise ValueError(f"the heads have {self.n_out} outputs in all but the network has {n_out}")
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            raise TypeError(f"multi-task targets must be numeric, got dtype {y.dtype}")
        if y.ndim == 1 and self.n_columns == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != self.n_columns:
            raise ValueError(f"multi-task targets must have shape (n, {self.n_columns}) (one column per "
                             f"classification head, width columns per regression head), got {y.shape}")
        y = y.astype(np.float64 if dtype is None else dtype)
        if not np.all(np.isfinite(y)):
            raise ValueError("multi-task targets contain NaN or infinity")
        for k, (h, sub) in enumerate(zip(self.heads, self.losses)):
            if sub.classification:
                col = y[:, self.y_slices[k].start]
                if np.any(col != np.round(col)) or np.any((col < -1) | (col >= h.width)):
                    raise ValueError(f"head {k} ({h.loss}): labels must be integers 0 .. {h.width - 1}, "
                                     f"or -1 for no label")
        if not np.any(y[:, 0] >= 0) and self.losses[0].classification:
            raise ValueError("the main task has no labelled row")
        return y

    def _parts(self, out, y):
        for k, sub in enumerate(self.losses):
            z = out[:, self.out_slices[k]]
            t = y[:, self.y_slices[k]]
            if sub.classification:
                t = t[:, 0]
                rows = np.flatnonzero(t >= 0)
                yield k, sub, rows, np.ascontiguousarray(z[rows]), t[rows].astype(np.int64)
            else:
                yield k, sub, None, np.ascontiguousarray(z), np.ascontiguousarray(t)

    def forward(self, out, y) -> float:
        grad, _ = self._buffers(out)
        grad[...] = 0
        total = 0.0
        self.last = []
        for k, sub, rows, z, t in self._parts(out, y):
            w = self.heads[k].weight
            if rows is not None and len(rows) == 0:
                self.last.append(None)
                continue
            value = sub.forward(z, t)
            self.last.append(value)
            total += w * value
            g = sub.backward() * grad.dtype.type(w)
            if rows is None:
                grad[:, self.out_slices[k]] = g
            else:
                grad[rows, self.out_slices[k]] = g
        return float(total)

    def count_correct(self, out, y):
        """(correct, labelled rows) of the main head."""
        z = out[:, self.out_slices[0]]
        t = y[:, 0]
        rows = t >= 0
        return int(np.count_nonzero(z[rows].argmax(axis=1) == t[rows])), int(np.count_nonzero(rows))

    def output(self, out):
        parts = [sub.output(np.ascontiguousarray(out[:, s])) for sub, s in zip(self.losses, self.out_slices)]
        return np.concatenate(parts, axis=1)


LOSSES["multitask"] = MultiTaskLoss


def build_multitask(n_in: int, hidden, heads, **kwargs):
    """The shared trunk ``n_in -> hidden...`` with the heads' blocks as its last linear layer
    (:func:`~varprop.nn.network.build_mlp`'s keywords apply to the trunk)."""
    from varprop.nn.network import build_mlp
    if isinstance(hidden, (int, np.integer)):
        hidden = [hidden]
    if not list(hidden):
        raise ValueError("a shared trunk needs at least one hidden layer")
    return build_mlp(n_in, hidden, sum(h.width for h in _heads(heads)), **kwargs)


def predict_heads(trainer, X) -> list[np.ndarray]:
    """Each head's predictions: class indices for classification heads, values for regression heads."""
    loss = trainer.loss
    if not isinstance(loss, MultiTaskLoss):
        raise TypeError("predict_heads needs a trainer with a MultiTaskLoss")
    out = trainer._outputs(trainer._check_X(X))
    return [out[:, s].argmax(axis=1) if sub.classification else out[:, s]
            for sub, s in zip(loss.losses, loss.out_slices)]


def _image_side(X) -> int:
    side = int(round(np.sqrt(X.shape[1])))
    if side * side != X.shape[1] or side < 2:
        raise ValueError(f"image auxiliary tasks need square images; {X.shape[1]} features is not a square")
    return side


def _left_mean(X, y):
    s = _image_side(X)
    return X.reshape(len(X), s, s)[:, :, : s // 2].mean(axis=(1, 2))[:, None]


def _pooled(X, y):
    s = _image_side(X)
    if s % 2:
        raise ValueError(f"the pooled task needs an even image side, got {s}")
    return X.reshape(len(X), s // 2, 2, s // 2, 2).mean(axis=(2, 4)).reshape(len(X), -1)


def _parity(X, y):
    y = np.asarray(y)
    return np.where(y >= 0, y % 2, -1)[:, None]


# name -> (loss, width given the features, targets from (images, labels))
AUX_TASKS = {
    "left-mean": ("mse", lambda d: 1, _left_mean),           # mean intensity of the image's left half
    "pooled": ("mse", lambda d: d // 4, _pooled),            # the 2x2-average-pooled image (a coarse reconstruction)
    "parity": ("cross_entropy", lambda d: 2, _parity),       # odd/even of the digit (needs the label)
}


def aux_targets(task: str, X, y, weight: float = 1.0, n_classes: int | None = None):
    """``(heads, targets)`` of the main classification task (labels ``y``, -1 = unlabelled) plus
    the auxiliary ``task`` derived from images ``X`` (see ``AUX_TASKS``), ready for a :class:`MultiTaskLoss`.

    Image-derived tasks have a target on every row, labelled or not; "parity" only on labelled rows.
    """
    if task not in AUX_TASKS:
        raise ValueError(f"unknown auxiliary task {task!r}; choose one of {', '.join(AUX_TASKS)}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X {X.shape} and y {y.shape} must be (n, d) and (n,)")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    loss, width, fn = AUX_TASKS[task]
    aux = fn(X, y)
    heads = [Head("cross_entropy", k), Head(loss, width(X.shape[1]), weight)]
    return heads, np.concatenate([y[:, None].astype(np.float64), aux.astype(np.float64)], axis=1)

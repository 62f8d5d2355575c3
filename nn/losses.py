"""Heads of the MLP: softmax cross-entropy, mean squared error and the multiclass hinge loss.

A loss takes the network's raw outputs ``out`` (batch, n_out) and targets ``y``; ``forward`` returns
the mean loss over the batch (a float) and prepares the gradient of that mean, which ``backward``
returns (an array the loss owns, overwritten by the next call).

* cross-entropy: L = mean_i [log sum_j e^{z_ij} - z_{i y_i}], dL/dz = (softmax(z) - onehot(y)) / n;
  with soft targets t (an (n, K) array of probabilities, e.g. from mixup) the cross-entropy of t
  against softmax(z): L = mean_i sum_j t_ij [logsumexp(z_i) - z_ij], dL/dz = (s_i softmax(z) - t) / n
  with s_i = sum_j t_ij (1 for probabilities), as ``torch.nn.functional.cross_entropy`` with
  probability targets;
* mse: L = mean_{i,j} (z_ij - y_ij)^2 (PyTorch's MSELoss), dL/dz = 2 (z - y) / (n m);
* hinge: L = mean_i sum_{j != y_i} max(0, z_ij - z_{i y_i} + margin) (the lectures' SVM loss).

>>> import numpy as np
>>> ce = get_loss("cross_entropy")
>>> round(ce.forward(np.zeros((2, 4), np.float32), np.array([0, 3])), 6)   # log 4
1.386294
"""
from __future__ import annotations

import math

import numpy as np

from varprop.nn import kernels as K

__all__ = ["Loss", "CrossEntropy", "MSE", "Hinge", "get_loss", "LOSSES", "soft_xent"]


class Loss:
    name = ""
    classification = True

    def __init__(self):
        self._grad = None
        self._cache: dict = {}

    def _buffers(self, out):
        """(gradient, per-row loss) buffers for this batch shape, kept per shape (an epoch's last,
        shorter batch does not push out the full one's)."""
        key = (out.shape, out.dtype)
        bufs = self._cache.get(key)
        if bufs is None:
            bufs = self._cache[key] = (np.empty_like(out), np.empty(out.shape[0], np.float64))
        self._grad = bufs[0]
        return bufs

    @staticmethod
    def _check_labels(out, y):
        """Shapes and dtype before a kernel reads rows by label (the kernel checks each label's range)."""
        if out.ndim != 2 or y.ndim != 1 or len(y) != len(out):
            raise ValueError(f"outputs {out.shape} and labels {y.shape} do not match")
        if y.dtype.kind not in "iu":
            raise TypeError(f"class labels must be integers, got dtype {y.dtype}")

    @staticmethod
    def _mean(result, out, y) -> float:
        """The mean loss from a label kernel's (sum, first bad row), or the error for a label out of range."""
        total, bad = result
        if bad >= 0:
            raise ValueError(f"class labels out of range: found {y.min()} .. {y.max()}, "
                             f"the outputs have {out.shape[1]} classes")
        return total / len(y) if len(y) else math.nan

    def config(self) -> dict:
        return {"name": self.name}

    def backward(self) -> np.ndarray:
        if self._grad is None:
            raise RuntimeError("call forward before backward")
        return self._grad

    def output(self, out: np.ndarray) -> np.ndarray:
        """What predictions are made from: probabilities for cross-entropy, the scores otherwise."""
        return out

    def check_targets(self, y, n_out: int, dtype=None) -> np.ndarray:
        """Targets validated once per fit (not per batch): class indices in [0, n_out)."""
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"class labels must be a 1-d array, got shape {y.shape}")
        if y.dtype.kind not in "iu":
            if y.dtype.kind != "f" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                raise ValueError("class labels must be integers 0 .. n_classes-1")
        if y.size and (y.min() < 0 or y.max() >= n_out):   # checked before the cast: 1e30 is shown as 1e+30
            lo, hi = (f"{v:g}" if y.dtype.kind == "f" else str(v) for v in (y.min(), y.max()))
            raise ValueError(f"class labels out of range: found {lo} .. {hi}, the network has {n_out} outputs")
        return y.astype(np.int64)


def _check_soft(out, t):
    """Soft targets: the outputs' shape, finite and >= 0 (O(n K), cheap beside the forward pass)."""
    if out.ndim != 2 or t.shape != out.shape:
        raise ValueError(f"soft targets must have the outputs' shape {out.shape}, got {t.shape}")
    if t.dtype.kind != "f":
        raise TypeError(f"soft targets must be floats (probabilities), got dtype {t.dtype}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("soft targets must be finite probabilities >= 0")


def soft_xent(z, t, grad, rows):
    """Cross-entropy of soft targets: rows[i] = s_i logsumexp(z_i) - t_i . z_i, grad = (s_i softmax(z_i) - t_i) / n.

    Computed in z's dtype with the row maximum subtracted (so exp never overflows); ``rows`` is float64.

    >>> import numpy as np
    >>> z = np.array([[0.0, np.log(3.0)]]); g = np.empty_like(z); r = np.empty(1)
    >>> soft_xent(z, np.array([[0.5, 0.5]]), g, r); np.round(g, 3).tolist()   # softmax (1/4, 3/4)
    [[-0.25, 0.25]]
    """
    zmax = z.max(axis=1, keepdims=True)
    np.subtract(z, zmax, out=grad)
    np.exp(grad, out=grad)
    s = grad.sum(axis=1, keepdims=True)
    mass = t.sum(axis=1, keepdims=True, dtype=np.float64)
    lse = np.log(s, dtype=np.float64) + zmax
    rows[:] = (mass * lse)[:, 0] - np.einsum("ij,ij->i", t, z, dtype=np.float64)
    grad *= (mass / s).astype(grad.dtype)
    grad -= t
    grad *= grad.dtype.type(1.0 / len(z))


class CrossEntropy(Loss):
    """Softmax cross-entropy of integer labels (n,) or soft targets (n, K) (probabilities, as from mixup)."""
    name = "cross_entropy"

    def forward(self, out, y) -> float:
        y = np.asarray(y)
        grad, rows = self._buffers(out)
        if y.ndim == 2:
            _check_soft(out, y)
            soft_xent(out, y, grad, rows)
        else:
            self._check_labels(out, y)
            return self._mean(K.softmax_xent(out, y, grad, rows), out, y)
        return float(rows.mean())

    def check_targets(self, y, n_out: int, dtype=None) -> np.ndarray:
        """Class indices in [0, n_out), or soft targets: an (n, n_out) float array of probabilities."""
        y = np.asarray(y)
        if y.ndim != 2:
            return super().check_targets(y, n_out, dtype)
        if y.shape[1] != n_out:
            raise ValueError(f"soft targets must have shape (n, {n_out}), got {y.shape}")
        if y.dtype.kind not in "fiub":
            raise TypeError(f"soft targets must be numeric, got dtype {y.dtype}")
        y = y.astype(np.float64 if dtype is None else dtype)
        _check_soft(y, y)
        return y

    def output(self, out):
        z = out - out.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


class Hinge(Loss):
    """The multiclass SVM loss with ``margin`` (Delta = 1 in the lectures)."""
    name = "hinge"

    def __init__(self, margin: float = 1.0):
        super().__init__()
        if isinstance(margin, bool) or not isinstance(margin, (int, float, np.integer, np.floating)):
            raise TypeError(f"hinge margin must be a number, got {type(margin).__name__}")
        if not (margin > 0 and np.isfinite(margin)):
            raise ValueError(f"hinge margin must be positive and finite, got {margin}")
        self.margin = float(margin)

    def config(self):
        return {"name": self.name, "margin": self.margin}

    def forward(self, out, y) -> float:
        y = np.asarray(y)
        self._check_labels(out, y)
        grad, rows = self._buffers(out)
        return self._mean(K.hinge_loss(out, y, self.margin, grad, rows), out, y)


class MSE(Loss):
    name = "mse"
    classification = False

    def check_targets(self, y, n_out, dtype=None):
        """Targets of shape (n, n_out), in ``dtype`` (the network's, so the loss runs in it)."""
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            raise TypeError(f"regression targets must be numeric, got dtype {y.dtype}")
        y = y.astype(np.float64 if dtype is None else dtype, copy=False)
        if y.ndim == 1 and n_out == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != n_out:
            raise ValueError(f"regression targets must have shape (n, {n_out}), got {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("regression targets contain NaN or infinity")
        return y

    def forward(self, out, y) -> float:
        grad, _ = self._buffers(out)
        np.subtract(out, y, out=grad, casting="unsafe")
        loss = float(np.vdot(grad, grad)) / grad.size
        grad *= grad.dtype.type(2.0 / grad.size)
        return loss


LOSSES = {"cross_entropy": CrossEntropy, "mse": MSE, "hinge": Hinge}
_ELSEWHERE = {"multitask": "varprop.nn.multitask", "semisupervised": "varprop.nn.semisupervised"}
_ALIASES = {"crossentropy": "cross_entropy", "xent": "cross_entropy", "log_loss": "cross_entropy",
            "squared_error": "mse", "svm": "hinge", "multiclass_hinge": "hinge"}


def get_loss(name, **kwargs) -> Loss:
    """A loss by name: "cross_entropy", "mse" or "hinge" (a :class:`Loss` is returned unchanged)."""
    from varprop.names import key_of
    if isinstance(name, Loss):
        return name
    if isinstance(name, str) and name in _ELSEWHERE:    # losses of their own modules register on import
        import importlib
        importlib.import_module(_ELSEWHERE[name])
    return LOSSES[key_of(name, LOSSES, "loss", _ALIASES)](**kwargs)

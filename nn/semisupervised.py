"""Semi-supervised learning: a labelled fraction, the unlabelled rest, pseudo-labels and consistency.

The training set is every row; unlabelled rows carry the label -1 (:func:`mask_labels` hides all but
a stratified fraction). Each minibatch of m rows is seen through two augmentations (Gaussian noise
of std ``view_noise`` and, for square images, random shifts of up to ``view_shift`` pixels with zero
fill), views v1 and v2, in one forward pass of 2m rows, and the objective is

    L = CE(z1[lab], y[lab])                                                      (supervised, view 1)
      + pseudo_weight / |U| sum_{i in U, max p1_i >= threshold} CE(z2_i, argmax p1_i)   (pseudo-labels)
      + consistency   / |U| sum_{i in U} |p1_i - p2_i|^2                         (consistency)

with p = softmax(z), U the unlabelled rows of the batch and the pseudo-label's p1 held constant (the
confidence-thresholded pseudo-labels of FixMatch, Sohn et al. 2020, the noise/shift consistency of
the Pi-model, Laine & Aila 2017). The consistency gradient runs through both views:
dL/dz = p * (g - <p, g>) for g = dL/dp. Evaluation (a pass of m rows) is the cross-entropy of the
labelled rows, so validation and test sets are scored as in any run.

:class:`SemiSupervisedLoss` is a trainer loss: it prepares the two views itself
(``prepare_batch``, keyed by ``(seed, optimizer step)`` in :mod:`varprop.streams`), so a run is
bit-reproducible and resumes from its checkpoint like any other.

>>> import numpy as np
>>> loss = SemiSupervisedLoss(threshold=0.9)
>>> y = loss.check_targets(np.array([1, -1]), 3)
>>> round(loss.forward(np.zeros((4, 3), np.float32), y), 6)   # log 3: no confidence, equal views
1.098612
"""
from __future__ import annotations

import numpy as np

from varprop import streams
from varprop.nn.init.checks import nonneg as _nonneg
from varprop.nn.init.checks import nonneg_int as _nonneg_int
from varprop.nn.losses import LOSSES, Loss

__all__ = ["SemiSupervisedLoss", "mask_labels", "oversample_labelled"]

_VIEW = 21     # stream purpose of the views' noise and shifts


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _xent(z, labels):
    """(sum of rows' cross-entropy, its gradient wrt z (not divided by anything))."""
    p = _softmax(z.astype(np.float64))
    rows = np.arange(len(z))
    value = -np.log(np.maximum(p[rows, labels], 1e-300)).sum()
    p[rows, labels] -= 1.0
    return float(value), p


class SemiSupervisedLoss(Loss):
    """The two-view objective of the module text; labels -1 mark unlabelled rows."""
    name = "semisupervised"
    classification = True

    def __init__(self, threshold: float = 0.95, pseudo_weight: float = 1.0, consistency: float = 1.0,
                 view_noise: float = 0.1, view_shift: int = 0):
        super().__init__()
        self.threshold = float(threshold)
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.pseudo_weight = _nonneg(pseudo_weight, "pseudo_weight")
        self.consistency = _nonneg(consistency, "consistency")
        self.view_noise = _nonneg(view_noise, "view_noise")
        self.view_shift = _nonneg_int(view_shift, "view_shift")
        self.last = {}

    def config(self) -> dict:
        return {"name": self.name, "threshold": self.threshold, "pseudo_weight": self.pseudo_weight,
                "consistency": self.consistency, "view_noise": self.view_noise, "view_shift": self.view_shift}

    def check_targets(self, y, n_out: int, dtype=None) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"labels must be a 1-d array (-1 for unlabelled rows), got shape {y.shape}")
        if y.dtype.kind not in "iu" and (y.dtype.kind != "f" or not np.all(np.isfinite(y))
                                         or np.any(y != np.round(y))):
            raise ValueError("labels must be integers 0 .. n_classes-1, or -1 for an unlabelled row")
        if y.size and (y.min() < -1 or y.max() >= n_out):
            raise ValueError(f"labels out of range: found {y.min():g} .. {y.max():g}; use 0 .. {n_out - 1} "
                             f"or -1 for unlabelled")
        if not np.any(y >= 0):
            raise ValueError("semi-supervised training needs at least one labelled row")
        return y.astype(np.int64)

    # -- the two views ------------------------------------------------------------------------------
    def prepare_batch(self, xb, yb, seed: int, step: int) -> np.ndarray:
        return np.concatenate([self._view(xb, seed, step, 0), self._view(xb, seed, step, 1)])

    def _view(self, xb, seed, step, which):
        v = xb.copy()
        if self.view_shift:
            v = _shift(v, self.view_shift, seed, step, which)
        if self.view_noise:
            v += streams.normal(seed, (step, _VIEW, 2 * which), v.shape, v.dtype, std=self.view_noise)
        return v

    # -- the objective -------------------------------------------------------------------------------
    def forward(self, out, y) -> float:
        grad, _ = self._buffers(out)
        m = len(y)
        if len(out) not in (m, 2 * m):
            raise ValueError(f"outputs have {len(out)} rows for {m} labels (expected {m} or {2 * m})")
        lab = np.flatnonzero(y >= 0)
        unl = np.flatnonzero(y < 0)
        g = np.zeros(out.shape, np.float64)
        z1 = out[:m]
        sup, part = (0.0, None) if len(lab) == 0 else _xent(z1[lab], y[lab])
        if part is not None:
            g[lab] = part / len(lab)
        sup = sup / max(len(lab), 1)
        pl = cons = 0.0
        if len(out) == 2 * m and len(unl):
            z2 = out[m:]
            p1 = _softmax(z1[unl].astype(np.float64))
            p2 = _softmax(z2[unl].astype(np.float64))
            conf = p1.max(axis=1)
            sel = np.flatnonzero(conf >= self.threshold)
            if self.pseudo_weight and len(sel):
                v, gp = _xent(z2[unl[sel]], p1[sel].argmax(axis=1))
                pl = self.pseudo_weight * v / len(unl)
                g[m + unl[sel]] += self.pseudo_weight * gp / len(unl)
            if self.consistency:
                d = p1 - p2
                cons = self.consistency * float((d * d).sum()) / len(unl)
                gd = 2.0 * self.consistency * d / len(unl)
                g[unl] += p1 * (gd - (p1 * gd).sum(axis=1, keepdims=True))
                g[m + unl] += p2 * (-gd - (p2 * -gd).sum(axis=1, keepdims=True))
            self.last = {"supervised": sup, "pseudo": pl, "consistency": cons,
                         "pseudo_fraction": len(sel) / len(unl)}
        np.copyto(grad, g, casting="unsafe")
        return float(sup + pl + cons)

    def count_correct(self, out, y):
        """(correct, labelled rows) on the first view."""
        lab = y >= 0
        z = out[:len(y)]
        return int(np.count_nonzero(z[lab].argmax(axis=1) == y[lab])), int(np.count_nonzero(lab))

    def output(self, out):
        return _softmax(out)


LOSSES["semisupervised"] = SemiSupervisedLoss


def _shift(v, s, seed, step, which):
    """Shift each square image by (dy, dx) in [-s, s]^2, zero fill."""
    n, d = v.shape
    side = int(round(np.sqrt(d)))
    if side * side != d:
        raise ValueError(f"view_shift needs square images; {d} features is not a square")
    u = streams.uniform(seed, (step, _VIEW, 2 * which + 1), (n, 2))
    offs = np.minimum(np.floor(u * (2 * s + 1)).astype(np.int64), 2 * s) - s
    img = v.reshape(n, side, side)
    out = np.zeros_like(img)
    for i in range(n):
        dy, dx = offs[i]
        ys, yd = (slice(0, side - dy), slice(dy, side)) if dy >= 0 else (slice(-dy, side), slice(0, side + dy))
        xs, xd = (slice(0, side - dx), slice(dx, side)) if dx >= 0 else (slice(-dx, side), slice(0, side + dx))
        out[i, yd, xd] = img[i, ys, xs]
    return out.reshape(n, d)


def mask_labels(y, fraction: float, seed: int = 0) -> np.ndarray:
    """``y`` with all but a stratified ``fraction`` of each class's rows set to -1 (at least one per class).

    The kept rows are the first of each class in the order of the stream ``(seed, 0, 31)``.

    >>> mask_labels(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.25).tolist().count(-1)
    6
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu" or (y.size and y.min() < 0):
        raise ValueError("labels must be a 1-d array of integers >= 0")
    f = float(fraction)
    if not 0.0 < f <= 1.0:
        raise ValueError(f"the labelled fraction must be in (0, 1], got {fraction}")
    order = np.argsort(streams.uniform(int(seed), (0, 31), len(y)), kind="stable")
    out = np.full(len(y), -1, np.int64)
    for c in np.unique(y):
        rows = order[y[order] == c]
        keep = rows[:max(1, int(round(f * len(rows))))]
        out[keep] = c
    return out


def oversample_labelled(X, y, share: float = 0.5):
    """``(X, y)`` with the labelled rows (y >= 0) repeated so they make about ``share`` of the rows.

    Every batch then carries labelled rows beside unlabelled ones (FixMatch draws a labelled and an
    unlabelled batch per step to the same end). The labelled rows come first, each repeated r times,
    r = max(1, round(share / (1 - share) * n_unlabelled / n_labelled)).

    >>> X = np.zeros((10, 2)); y = np.array([0, 1] + [-1] * 8)
    >>> oversample_labelled(X, y)[1].tolist().count(-1), len(oversample_labelled(X, y)[1])
    (8, 16)
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    s = float(share)
    if not 0.0 < s < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share}")
    lab = np.flatnonzero(y >= 0)
    unl = np.flatnonzero(y < 0)
    if len(lab) == 0:
        raise ValueError("no labelled row to oversample")
    r = max(1, int(round(s / (1.0 - s) * len(unl) / len(lab))))
    idx = np.concatenate([np.tile(lab, r), unl])
    return X[idx], y[idx]

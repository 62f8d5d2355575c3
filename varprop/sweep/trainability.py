"""Trainability at the edge of chaos (Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, Figs. 5-6).

The claim: random tanh networks (sigma_b^2 = 0.05) carry information about their input only over about
xi_c layers, xi_c = -1/log(chi_c) (:func:`varprop.derive.mean_field.depth_scales`), so with a fixed
training budget a network of depth L trains only where L is below a few xi_c; the paper's boundary is
L = 6 xi_c, which diverges at the critical sigma_w^2 (chi_1 = 1).

:func:`trainability` runs a ``train`` sweep over (sigma_w2, depth) with every other option fixed, labels
each cell trainable when its training accuracy (after the budget, in test mode) is above
``chance + (best - chance) / 2`` (best: the highest over the grid, chance: the majority class's share),
and fits the boundary L = c xi_c(sigma_w2):

* c is the threshold on r = L / xi_c that misclassifies the fewest cells under the rule "trainable iff
  r < c" (the geometric middle of the minimizing thresholds, candidates halfway in log r between the
  cells' ratios); its uncertainty comes from a bootstrap over cells (``n_boot`` resamples, a fixed seed):
  the 2.5 and 97.5 percentiles;
* the same fit with r = L alone (a boundary at a fixed depth, whatever sigma_w2) is the null model: the
  xi_c boundary must explain the cells better than it.

Verdict: ``verified`` when the xi_c rule misclassifies at most 10% of the cells, fewer than the
depth-only rule, and the 95% interval of c meets [3, 12] (the paper's 6 within a factor of 2; the
constant depends on the training budget, and the paper's own boundary moves with training time);
``refuted`` when the xi_c rule misclassifies more than 25% of the cells, or it fits well but its whole
interval lies outside [3, 12]; ``inconclusive`` otherwise (including a grid with no cell on one side
of the boundary, a boundary beyond the grid's ratios, fewer than 12 cells, or a best accuracy less than
0.2 above chance).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["PRESETS", "Trainability", "trainability", "fit_boundary", "analyse"]

PAPER_C = 6.0
TOLERANCE = 2.0
MIN_CELLS = 12          # fewer cells than this, or a best accuracy within MIN_GAIN of chance: inconclusive
MIN_GAIN = 0.2

# mode -> (grid, fixed); every mode shares tanh, sigma_b^2 = 0.05 and weights N(0, sigma_w^2 / fan_in)
PRESETS = {
    "smoke": ({"sigma_w2": "1,1.75,4", "depth": "2,16"},
              {"data": "digits", "width": 16, "epochs": 1, "optimizer": "adam", "lr": 1e-3, "batch_size": 64}),
    "quick": ({"sigma_w2": "1,1.25,1.5,1.75,2,2.5,3,4", "depth": "log:6:48:4"},
              {"data": "digits", "width": 128, "epochs": 5, "optimizer": "adam", "lr": 1e-4, "batch_size": 32}),
    "full": ({"sigma_w2": "1:4:13", "depth": "log:6:192:11"},
             {"data": "mnist1d", "width": 128, "epochs": 5, "optimizer": "adam", "lr": 1e-4, "batch_size": 32}),
}
_SHARED = {"activation": "tanh", "sigma_b2": 0.05, "preprocess": "standardize"}


@dataclass
class Trainability:
    """The sweep, the cells' labels and ratios, the fitted c with its bootstrap interval, and the verdict."""
    sweep: object                   # SweepResult
    threshold: float
    ratio: np.ndarray               # depth / xi_c per cell (0 where xi_c is infinite)
    trainable: np.ndarray
    c: float
    c_low: float
    c_high: float
    errors: int
    errors_depth_only: int
    depth_boundary: float
    verdict: str
    reason: str
    metric: str = "train_acc"
    figure: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(len(self.trainable))

    def to_dict(self) -> dict:
        rows = [{"sigma_w2": r["coords"]["sigma_w2"], "depth": r["coords"]["depth"],
                 self.metric: r["metrics"][self.metric], "test_acc": r["metrics"]["test_acc"],
                 "xi_c": x, "trainable": bool(t)}
                for r, x, t in zip(self.sweep.rows, self.extra["xi_c"], self.trainable)]
        return {"claim": "trainable only where depth < c xi_c, c about 6 (Schoenholz et al. 2017)",
                "grid": self.sweep.axes, "fixed": self.sweep.manifest["fixed"], "seed": self.sweep.manifest["seed"],
                "metric": self.metric, "threshold": self.threshold, "c": self.c, "c_interval_95": [self.c_low, self.c_high],
                "paper_c": PAPER_C, "errors": self.errors, "errors_depth_only": self.errors_depth_only,
                "depth_boundary": self.depth_boundary, "cells": self.n, "verdict": self.verdict,
                "reason": self.reason, "rows": rows}


def _candidates(r: np.ndarray) -> np.ndarray:
    u = np.unique(r[r > 0])
    if len(u) == 0:
        return np.array([1.0])
    lu = np.log(u)
    mids = np.exp((lu[1:] + lu[:-1]) / 2) if len(u) > 1 else np.array([])
    return np.concatenate([[u[0] / 2], mids, [u[-1] * 2]])


def fit_boundary(r, trainable) -> tuple[float, int, bool]:
    """(c, errors, inside): the threshold on r with the fewest errors of "trainable iff r < c"; ``inside``
    is False when the best thresholds lie beyond every cell's ratio (the boundary is not in the grid).

    >>> c, errors, inside = fit_boundary(np.array([1.0, 2.0, 4.0, 8.0]), np.array([True, True, False, False]))
    >>> round(c, 12), errors, inside          # sqrt(2 * 4): halfway in log between the two sides
    (2.828427124746, 0, True)
    """
    r = np.asarray(r, dtype=float)
    t = np.asarray(trainable, dtype=bool)
    cand = _candidates(r)
    err = np.array([int(np.sum(t & (r >= c)) + np.sum(~t & (r < c))) for c in cand])
    best = np.flatnonzero(err == err.min())
    c = float(np.exp((np.log(cand[best[0]]) + np.log(cand[best[-1]])) / 2))
    inside = not (best[0] == 0 and best[-1] == 0) and not (best[0] == len(cand) - 1)
    return c, int(err.min()), bool(inside and 0 < best[-1] and best[0] < len(cand) - 1)


def analyse(sweep, metric: str = "train_acc", n_boot: int = 1000, seed: int = 0) -> Trainability:
    """Label the cells of a finished (sigma_w2, depth) train sweep and fit its boundary (module docstring)."""
    from .plot import depth_curve
    rows = sweep.rows
    if not rows:
        raise ValueError("the sweep has no finished cell")
    for k in ("sigma_w2", "depth"):
        if k not in sweep.axes:
            raise ValueError(f"a trainability sweep needs a {k} axis")
    fixed = sweep.manifest["fixed"]
    act = fixed.get("activation", "relu")
    sb2 = fixed.get("sigma_b2") or 0.0
    sw = np.array([r["coords"]["sigma_w2"] for r in rows], dtype=float)
    depth = np.array([r["coords"]["depth"] for r in rows], dtype=float)
    acc = np.array([r["metrics"][metric] for r in rows], dtype=float)
    chance = float(np.max([r["metrics"].get("chance", 0.0) for r in rows]))
    uniq = np.unique(sw)
    xi_u = dict(zip(uniq, depth_curve(act, sb2, uniq, "xi_c")))
    xi = np.array([xi_u[s] for s in sw])
    ratio = np.where(np.isinf(xi), 0.0, depth / np.where(np.isfinite(xi) & (xi > 0), xi, np.nan))
    ok = np.isfinite(ratio) & np.isfinite(acc)
    best = float(np.max(acc[ok])) if ok.any() else math.nan
    threshold = chance + (best - chance) / 2
    trainable = acc > threshold
    r, t, d = ratio[ok], trainable[ok], depth[ok]
    if t.all() or not t.any():
        c = c_lo = c_hi = d_b = math.nan
        errors = err_null = 0
        verdict, reason = "inconclusive", ("every cell trained" if t.all() else "no cell trained") + \
            " within the budget: the grid does not reach the boundary"
    else:
        c, errors, inside = fit_boundary(r, t)
        d_b, err_null, _ = fit_boundary(d, t)
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(int(n_boot)):
            i = rng.integers(0, len(r), len(r))
            if t[i].all() or not t[i].any():
                continue
            boots.append(fit_boundary(r[i], t[i])[0])
        c_lo, c_hi = (float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))) if boots else (c, c)
        frac = errors / len(r)
        lo, hi = PAPER_C / TOLERANCE, PAPER_C * TOLERANCE
        meets = c_hi >= lo and c_lo <= hi
        if len(r) < MIN_CELLS or best - chance < MIN_GAIN:
            verdict, reason = "inconclusive", (f"{len(r)} cells, best {metric} {best:.3g} against chance "
                                               f"{chance:.3g}: too little to decide (at least {MIN_CELLS} cells and "
                                               f"a best {metric} {MIN_GAIN:g} above chance are needed)")
        elif not inside:
            verdict, reason = "inconclusive", "the fitted boundary lies beyond the grid's depth / xi_c ratios"
        elif frac > 0.25:
            verdict, reason = "refuted", f"the c xi_c boundary misclassifies {errors} of {len(r)} cells"
        elif frac <= 0.10 and errors < err_null and meets:
            verdict, reason = "verified", (f"c xi_c misclassifies {errors} of {len(r)} cells (a fixed depth: "
                                           f"{err_null}); c's 95% interval meets [{lo:g}, {hi:g}]")
        elif frac <= 0.10 and not meets:
            verdict, reason = "refuted", (f"the boundary follows c xi_c ({errors} of {len(r)} cells misclassified) "
                                          f"but c's 95% interval [{c_lo:.3g}, {c_hi:.3g}] misses [{lo:g}, {hi:g}]")
        else:
            verdict, reason = "inconclusive", (f"c xi_c misclassifies {errors} of {len(r)} cells, a fixed depth "
                                               f"{err_null}: the grid does not tell them apart")
    return Trainability(sweep, threshold, ratio, trainable, c, c_lo, c_hi, errors, err_null, d_b, verdict, reason,
                        metric, extra={"xi_c": [float(x) for x in xi], "chance": chance, "best": best})


def trainability(out, mode: str = "quick", client=None, *, seed: int = 0, grid=None, fixed=None,
                 metric: str = "train_acc", n_boot: int = 1000, figure: str | None = None, resume: bool = True,
                 workers: int | None = None, progress=None) -> Trainability:
    """Run (or finish) the trainability sweep in folder ``out`` and fit its boundary.

    ``mode``: ``"quick"`` (digits, width 128, 8 sigma_w2 x depths 6, 12, 24, 48, Adam lr 1e-4, batch 32,
    5 epochs: a few minutes on 2 cores), ``"full"`` (MNIST-1D, 13 sigma_w2 from 1 to 4 x 11 depths from 6
    to 192 spaced by sqrt(2), the same budget: 17 minutes on 2 cores) or ``"smoke"`` (6 tiny cells,
    for tests); ``grid`` and ``fixed`` override the preset's entries. ``client`` as in
    :func:`varprop.sweep.run`. ``figure``: a PNG path for the heat map of ``metric`` with 6 xi_c and the
    fitted c xi_c drawn on it. Returns a :class:`Trainability`.

    >>> import tempfile
    >>> t = trainability(tempfile.mkdtemp(), "smoke", "serial", n_boot=50)   # doctest: +SKIP
    """
    from .runner import run
    if mode not in PRESETS:
        raise ValueError(f"mode must be one of {', '.join(PRESETS)}, got {mode!r}")
    g, f = PRESETS[mode]
    g = {**g, **(grid or {})}
    f = {**_SHARED, **f, **(fixed or {})}
    resume = bool(resume) and os.path.isdir(out) and os.path.exists(os.path.join(out, "sweep.json"))
    sweep = run("train", g, f, out, client, seed=seed, resume=resume, workers=workers, progress=progress)
    t = analyse(sweep, metric, n_boot=n_boot, seed=seed)
    if figure:
        from .plot import heatmap
        fit = None if not math.isfinite(t.c) else (t.c, f"fit: {t.c:.3g} xi_c")
        t.figure = heatmap(sweep, x="depth", y="sigma_w2", z=metric, overlay=["6xi_c"], fit=fit, out=figure,
                           title=f"tanh, sigma_b^2 = 0.05: {metric} after a fixed budget ({mode})")
    return t

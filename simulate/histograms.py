"""Per-layer histogram bins chosen from the data, so a panel shows where its layer's values are.

Fixed bins (activations in [-3, 3], gradients in [-4, 4]) drew a layer of mean 10.5 and std 8 inside
[0, 3]. Now a trial run on its own bins each layer over that trial's values, widened by ``MARGIN`` of their
spread on each side; a run takes the bins of its first trial (``Config.hist_edges``, set by the runner) for
every later trial, so the counts pool over trials and a run of T trials has the histogram of the first T
trials of any longer run. A trial's histograms are a function of the configuration and the trial alone
(no workspace state). Values of later trials outside the first trial's range are not counted (with the
margin, a handful at most); ``Config.hist_range`` fixes the activation bins to [-R, R] instead.

>>> import numpy as np
>>> e = edges_for(np.array([8.0, 10.0, 12.0]), bins=4)
>>> float(e[0]), float(e[-1])
(7.2, 12.8)
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["MARGIN", "KINDS", "edges_for", "empty", "record", "with_edges", "counts"]

MARGIN = 0.2
KINDS = ("act", "grad")


def edges_for(values: np.ndarray, bins: int) -> np.ndarray:
    """``bins + 1`` edges spanning the finite ``values``, widened by ``MARGIN`` of their spread each side."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        lo, hi = -1.0, 1.0
    else:
        lo, hi = float(v.min()), float(v.max())
    spread = hi - lo
    if spread <= 0:                      # a constant layer (all zeros, a dead ReLU): a window around it
        half = max(abs(lo) * 0.1, 0.5)
        lo, hi = lo - half, hi + half
    else:
        lo, hi = lo - MARGIN * spread, hi + MARGIN * spread
    return np.linspace(lo, hi, bins + 1)


def empty(cfg) -> dict:
    """A trial's histogram record: counts and the edges they were counted in, per layer."""
    out = {}
    for kind in KINDS:
        out[kind] = np.zeros((cfg.depth, cfg.bins), np.int64)
        out[kind + "_edges"] = np.full((cfg.depth, cfg.bins + 1), np.nan)
    return out


def record(hist: dict, cfg, kind: str, layer: int, values: np.ndarray) -> None:
    """Count ``values`` of ``kind`` at ``layer`` in the run's bins, or in bins from these values."""
    given = cfg.hist_edges
    if given is not None and np.all(np.isfinite(given[kind][layer - 1])):
        edges = given[kind][layer - 1]
    elif kind == "act" and cfg.hist_range is not None:
        edges = np.linspace(-cfg.hist_range, cfg.hist_range, cfg.bins + 1)
    else:
        edges = edges_for(values, cfg.bins)
    # the edges are always a linspace: NumPy's uniform-bin path counts the same without sorting the values
    hist[kind][layer - 1] = np.histogram(values, bins=edges.size - 1, range=(edges[0], edges[-1]))[0]
    hist[kind + "_edges"][layer - 1] = edges


def with_edges(cfg, hist: dict):
    """``cfg`` with the bins of the trial whose record is ``hist`` (the runner's first trial)."""
    return dataclasses.replace(cfg, hist_edges={k: hist[k + "_edges"].copy() for k in KINDS})


def counts(hist: dict) -> dict:
    """The counts of a record, without its edges."""
    return {k: hist[k] for k in KINDS}

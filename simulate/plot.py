"""The simulation figure: per-layer histograms like the lecture's, and std against depth with the theory.

Top row: the histogram of the activations x_l of each layer (counts pooled over trials, fixed bins);
middle row: the same for the gradients g_l = dLoss/dx_l; bottom: the activation and gradient std per
layer (trial mean +- 2 standard errors) with derive/mean_field's curve. At most ``max_panels`` layers get a
histogram (evenly spaced, always the first and the last). Written atomically as PNG without a timestamp,
so the same result renders the same bytes.
"""
from __future__ import annotations

import numpy as np

from varprop.io import atomic_open

__all__ = ["figure", "save_plot"]


def _panels(depth: int, max_panels: int) -> list[int]:
    if depth <= max_panels:
        return list(range(depth))
    return sorted(set(np.linspace(0, depth - 1, max_panels).round().astype(int).tolist()))


def figure(result, max_panels: int = 8):
    """A matplotlib Figure (no pyplot state) for a Result; histograms need ``histograms=True`` in the run."""
    from matplotlib.figure import Figure
    depth = result.depth
    hist = result.histograms
    rows = 3 if hist is not None else 1
    panels = _panels(depth, max_panels)
    cols = len(panels) if hist is not None else 1
    fig = Figure(figsize=(max(2.2 * cols, 7.0), 2.4 * rows + (1.2 if rows > 1 else 1.8)), layout="constrained")
    grid = fig.add_gridspec(rows, cols)
    cfg = result.config
    fig.suptitle(f"{cfg['activation']}, init {cfg['init']}, widths {_widths(cfg['widths'])}, batch {cfg['batch']}, "
                 f"{result.trials} trials ({result.engine} engine)", fontsize=9)
    if hist is not None:
        for c, i in enumerate(panels):
            for r, kind, color in ((0, "act", "tab:blue"), (1, "grad", "tab:orange")):
                edges = result.hist_edges[kind]
                centers = 0.5 * (edges[1:] + edges[:-1])
                width = edges[1] - edges[0]
                ax = fig.add_subplot(grid[r, c])
                ax.bar(centers, hist[kind][i], width=width, color=color)
                stat = "act" if kind == "act" else "grad"
                m = result.mean(f"{stat}_mean")[i] if kind == "act" else np.nan
                s = result.mean(f"{stat}_std")[i]
                label = f"layer {i + 1}\n" + (f"mean={m:.2f}\n" if kind == "act" else "") + f"std={s:.2f}"
                ax.set_title(label, fontsize=8)
                ax.tick_params(labelsize=6)
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel("activations" if kind == "act" else "gradients", fontsize=8)
    ax = fig.add_subplot(grid[rows - 1, :])
    layer = np.arange(1, depth + 1)
    for name, color, label in (("act_std", "tab:blue", "activation std"), ("grad_std", "tab:orange",
                                                                             "gradient std")):
        mean, se = result.mean(name), result.se(name)
        if np.all(np.isnan(mean)):
            continue
        ax.errorbar(layer, mean, yerr=2 * np.nan_to_num(se), fmt="o", ms=3, color=color,
                    label=f"{label} (simulated, +-2 se)")
        th = result.theory.get(name)
        if th is not None and not np.all(np.isnan(th)):
            ax.plot(layer, th, "-", color=color, alpha=0.7, label=f"{label} (mean-field theory)")
    ax.set_xlabel("layer")
    ax.set_ylabel("std")
    positive = [result.mean(n) for n in ("act_std", "grad_std")]
    vals = np.concatenate([v[np.isfinite(v)] for v in positive])
    if vals.size and vals.min() > 0 and vals.max() / vals.min() > 20:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def _widths(ws) -> str:
    return f"{ws[0]}x{len(ws)}" if len(set(ws)) == 1 else ",".join(map(str, ws))


def save_plot(result, path, max_panels: int = 8) -> str:
    """Render :func:`figure` to ``path`` (PNG) atomically; returns the path."""
    fig = figure(result, max_panels)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, metadata={"Software": None})
    return str(path)

"""The simulation figure: per-layer histograms like the lecture's, and std against depth with the theory.

Top row: the histogram of the activations x_l of each layer (counts pooled over trials); middle row: the
same for the gradients g_l = dLoss/dx_l; bottom: the activation and gradient std per layer (trial mean +- 2
standard errors) with derive/mean_field's curve. Each panel's range is its own layer's (the bins span the
first trial's values, see :mod:`varprop.simulate.histograms`; the figure's title says so), and a panel
whose tallest bin towers over the rest (ReLU's spike at 0) gets a log count axis. At most ``max_panels``
layers get a histogram (evenly spaced, always the first and the last). Layers are integers on every axis,
legends sit outside the data, and the PNG is written atomically at ``DPI`` without a timestamp, so the
same result renders the same bytes.
"""
from __future__ import annotations

import numpy as np

from varprop.io import atomic_open

__all__ = ["figure", "save_plot", "DPI", "log_counts"]

DPI = 200            # print resolution
SPIKE = 5.0          # the tallest bin this many times the next one: log counts


def log_counts(counts) -> bool:
    """True when one bin (a spike, as ReLU's zeros) is over ``SPIKE`` times the next tallest."""
    c = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    return c.size > 1 and c[1] > 0 and c[0] > SPIKE * c[1]


def _panels(depth: int, max_panels: int) -> list[int]:
    if depth <= max_panels:
        return list(range(depth))
    return sorted(set(np.linspace(0, depth - 1, max_panels).round().astype(int).tolist()))


def figure(result, max_panels: int = 8):
    """A matplotlib Figure (no pyplot state) for a Result; histograms need ``histograms=True`` in the run."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    depth = result.depth
    hist = result.histograms
    rows = 3 if hist is not None else 1
    panels = _panels(depth, max_panels)
    cols = len(panels) if hist is not None else 1
    fig = Figure(figsize=(max(2.2 * cols, 7.0), 2.4 * rows + (1.2 if rows > 1 else 1.8)), layout="constrained")
    grid = fig.add_gridspec(rows, cols)
    cfg = result.config
    title = (f"{cfg['activation']}, init {cfg['init']}, widths {_widths(cfg['widths'])}, batch {cfg['batch']}, "
             f"{result.trials} trials ({result.engine} engine)")
    if hist is not None:
        title += "\nhistograms: " + _ranges(result) + "; log counts where one bin swamps the rest"
    fig.suptitle(title, fontsize=9)
    if hist is not None:
        for c, i in enumerate(panels):
            for r, kind, color in ((0, "act", "tab:blue"), (1, "grad", "tab:orange")):
                edges = np.asarray(result.hist_edges[kind])
                edges = edges[i] if edges.ndim == 2 else edges
                ax = fig.add_subplot(grid[r, c])
                counts = hist[kind][i]
                if np.all(np.isfinite(edges)):
                    ax.stairs(counts, edges, fill=True, color=color)
                    ax.set_xlim(edges[0], edges[-1])
                log = log_counts(counts)
                if log:
                    ax.set_yscale("log")
                    ax.set_ylim(bottom=0.8)
                stat = "act" if kind == "act" else "grad"
                m = result.mean(f"{stat}_mean")[i] if kind == "act" else np.nan
                s = result.mean(f"{stat}_std")[i]
                label = f"layer {i + 1}\n" + (f"mean={m:.3g}\n" if kind == "act" else "") + f"std={s:.3g}" + \
                    (" (log)" if log else "")
                ax.set_title(label, fontsize=8)
                ax.tick_params(labelsize=6)
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
                if not log:
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
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("std")
    positive = [result.mean(n) for n in ("act_std", "grad_std")]
    vals = np.concatenate([v[np.isfinite(v)] for v in positive])
    if vals.size and vals.min() > 0 and vals.max() / vals.min() > 20:
        ax.set_yscale("log")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.grid(alpha=0.3)
    return fig


def _ranges(result) -> str:
    """How the panels' x ranges were chosen, for the title."""
    act = np.atleast_2d(np.asarray(result.hist_edges["act"], dtype=np.float64))
    shared = act.shape[0] > 1 and np.array_equal(act, np.broadcast_to(act[0], act.shape)) \
        and np.isclose(act[0, 0], -act[0, -1])
    if shared:
        return f"activations share [{act[0, 0]:g}, {act[0, -1]:g}], gradients each layer's own range"
    return "each panel spans its layer's values (first trial)"


def _widths(ws) -> str:
    return f"{ws[0]}x{len(ws)}" if len(set(ws)) == 1 else ",".join(map(str, ws))


def save_plot(result, path, max_panels: int = 8) -> str:
    """Render :func:`figure` to ``path`` (PNG) atomically; returns the path."""
    fig = figure(result, max_panels)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=DPI, metadata={"Software": None})
    return str(path)

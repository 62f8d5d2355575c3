"""Heat maps of a sweep: one metric over two grid axes, with depth-scale curves from derive/ on top.

``heatmap(dir, x="depth", y="sigma_w2", z="test_acc", overlay=["6xi_c"], out="f.png")``: each grid cell
is a tile spanning halfway to its neighbours (in log space along a log axis), missing cells are left
blank, and axes other than x and y are averaged over (said in the title). An overlay ``C xi_c`` (or
``C xi_q``) draws depth = C xi(sigma_w2) from :func:`varprop.derive.mean_field.depth_scales` at the sweep's
activation and sigma_b2, over the sigma_w2 range of the data; it needs a depth axis and a sigma_w2 axis.
"""
from __future__ import annotations

import io
import math
import re

import numpy as np

__all__ = ["heatmap", "parse_overlay", "depth_curve", "grid_matrix"]

_OVERLAY = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)?\s*\*?\s*(xi_c|xi_q)\s*$")


def parse_overlay(text: str) -> tuple[float, str]:
    """``"6xi_c"`` -> (6.0, "xi_c"); ``"xi_q"`` -> (1.0, "xi_q")."""
    m = _OVERLAY.match(str(text))
    if not m:
        raise ValueError(f"an overlay is C xi_c or C xi_q with a number C, e.g. 6xi_c; got {text!r}")
    c = float(m.group(1)) if m.group(1) else 1.0
    if not c > 0:
        raise ValueError(f"the overlay factor must be > 0, got {text!r}")
    return c, m.group(2)


def depth_curve(activation: str, sigma_b2: float, sigma_w2, which: str = "xi_c", params=None) -> np.ndarray:
    """xi_c (or xi_q) at each sigma_w2 (inf at the critical point, nan where it is not defined)."""
    from varprop.derive.mean_field import depth_scales
    i = {"xi_q": 0, "xi_c": 1}[which]
    return np.array([depth_scales(activation, float(s), float(sigma_b2), **(params or {}))[i] for s in sigma_w2])


def _sweep_setting(res, key: str, default):
    """A setting shared by every cell: fixed, a one-value axis, or the kind's default."""
    from .kinds import KINDS
    axes, fixed = res.axes, res.manifest["fixed"]
    if key in axes:
        if len(axes[key]) != 1:
            raise ValueError(f"the overlay needs one {key}; the sweep's axis has {len(axes[key])} values")
        return axes[key][0]
    if key in fixed:
        return fixed[key]
    d = KINDS[res.kind].get(key, (None, default))[1]
    return default if d is None else d


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    v = np.log(values) if log else values.astype(float)
    if len(v) == 1:
        half = 0.5 if not log else 0.25
        e = np.array([v[0] - half, v[0] + half])
    else:
        mid = (v[1:] + v[:-1]) / 2
        e = np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])
    return np.exp(e) if log else e


def grid_matrix(res, x: str, y: str, z: str):
    """(x values, y values, Z of shape (ny, nx), names of the axes averaged over); NaN where no cell."""
    axes = res.axes
    for name, what in ((x, "--x"), (y, "--y")):
        if name not in axes:
            raise ValueError(f"{what} {name!r} is not an axis of the sweep; axes: {', '.join(axes)}")
    if x == y:
        raise ValueError("--x and --y must be different axes")
    metrics = {k for r in res.rows for k in r["metrics"]}
    if res.rows and z not in metrics:
        raise ValueError(f"--z {z!r} is not a metric of the sweep; metrics: {', '.join(sorted(metrics))}")
    xs, ys = list(axes[x]), list(axes[y])
    for name, vals in ((x, xs), (y, ys)):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            raise ValueError(f"axis {name!r} is not numeric; a heat map needs numeric axes")
    xs_s, ys_s = sorted(xs), sorted(ys)
    total = np.zeros((len(ys_s), len(xs_s)))
    count = np.zeros_like(total)
    for r in res.rows:
        v = r["metrics"].get(z)
        if v is None or isinstance(v, str):
            continue
        v = float(v)
        if not math.isfinite(v):
            continue
        i, j = ys_s.index(r["coords"][y]), xs_s.index(r["coords"][x])
        total[i, j] += v
        count[i, j] += 1
    with np.errstate(invalid="ignore"):
        Z = np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)
    others = [a for a in axes if a not in (x, y) and len(axes[a]) > 1]
    return np.array(xs_s, dtype=float), np.array(ys_s, dtype=float), Z, others


def _is_log(res, name, vals) -> bool:
    if res.manifest["grid"].get("kinds", {}).get(name) == "log":
        return True
    if len(vals) < 3 or np.any(vals <= 0):
        return False
    r = vals[1:] / vals[:-1]
    return bool(np.allclose(r, r[0], rtol=0.02) and r[0] > 1.2)


def heatmap(source, x: str, y: str, z: str, overlay=(), out=None, dpi: int = 200, title: str | None = None,
            fit=None) -> str | bytes:
    """Draw ``z`` over axes ``x`` and ``y`` of a sweep (a folder or a SweepResult) as a PNG.

    ``overlay``: ``["6xi_c", ...]``; ``fit``: an extra (c, label) curve c xi_c (the trainability fit).
    Returns the path written, or the PNG bytes when ``out`` is None. Raises ValueError for an unknown
    axis or metric, a bad overlay, or dpi < 200.
    """
    from .runner import SweepResult, load
    res = source if isinstance(source, SweepResult) else load(source)
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 200:
        raise ValueError(f"dpi must be an integer >= 200, got {dpi!r}")
    if out is not None and not str(out).lower().endswith(".png"):
        raise ValueError(f"the heat map is a PNG: --out must end in .png, got {out!r}")
    curves = [parse_overlay(o) for o in (overlay or ())]
    if fit is not None:
        curves.append((float(fit[0]), "xi_c", fit[1]))
    if curves and {x, y} != {"depth", "sigma_w2"}:
        raise ValueError("depth-scale overlays need --x and --y to be depth and sigma_w2")
    xs, ys, Z, others = grid_matrix(res, x, y, z)
    if not np.isfinite(Z).any():
        raise ValueError(f"no finished cell has a finite {z!r}: nothing to draw")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xlog, ylog = _is_log(res, x, xs), _is_log(res, y, ys)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    mesh = ax.pcolormesh(_edges(xs, xlog), _edges(ys, ylog), np.ma.masked_invalid(Z), shading="flat",
                         cmap="viridis")
    cb = fig.colorbar(mesh, ax=ax)
    cb.set_label(z)
    from matplotlib.ticker import NullFormatter
    for log, vals, scale, axis in ((xlog, xs, ax.set_xscale, ax.xaxis), (ylog, ys, ax.set_yscale, ax.yaxis)):
        if log:      # ticks at the grid's own values, plainly written
            scale("log")
            axis.set_ticks(vals)
            axis.set_ticklabels([f"{v:g}" for v in vals])
            axis.set_minor_formatter(NullFormatter())
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    if curves:
        act = _sweep_setting(res, "activation", "relu")
        sb2 = _sweep_setting(res, "sigma_b2", 0.0) or 0.0
        params = {k[6:]: str(v) for k, v in res.manifest["fixed"].items() if k.startswith("param.")}
        sw_axis = ys if y == "sigma_w2" else xs
        sw = np.linspace(sw_axis.min(), sw_axis.max(), 81)   # depth_scales costs ~0.1 s in the chaotic phase
        cache = {}
        styles = ["w--", "r-", "w:", "m-."]
        for k, cur in enumerate(curves):
            c, which = cur[0], cur[1]
            label = cur[2] if len(cur) > 2 else f"{c:g} {which} (mean field)"
            if which not in cache:
                cache[which] = depth_curve(act, sb2, sw, which, params)
            d = c * cache[which]
            d = np.where(np.isfinite(d), d, 1e12)     # infinite at the critical point: off the top
            if x == "depth":
                ax.plot(d, sw, styles[k % len(styles)], lw=1.6, label=label)
            else:
                ax.plot(sw, d, styles[k % len(styles)], lw=1.6, label=label)
        ax.legend(loc="best", fontsize=8, framealpha=0.7)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    head = title or f"{res.kind} sweep: {z}"
    if others:
        head += f" (mean over {', '.join(others)})"
    ax.set_title(head, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    data = buf.getvalue()
    if out is None:
        return data
    from varprop.io import atomic_write_bytes
    return atomic_write_bytes(out, data)

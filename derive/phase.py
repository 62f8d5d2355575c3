"""The (sigma_w^2, sigma_b^2) phase diagram: the order-to-chaos line chi_1 = 1 and the depth scale xi_c.

For each point of a grid this computes, vectorized over the whole grid (Poole et al. 2016; Schoenholz et al.
2017): the length map's fixed point q*, chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2], the slope of the length map
and xi_q = -1/log(slope), the correlation map's stable fixed point c* (1 in the ordered phase chi_1 < 1, below 1
in the chaotic one) and xi_c = -1/log(chi_c), chi_c = sigma_w^2 E[phi'(u1) phi'(u2)] at c*. Signals of two
inputs stay distinguishable for about xi_c layers; it diverges on the order-to-chaos line.

The one-dimensional moments come from :func:`varprop.derive.mean_field.gaussian_moments` (certified
quadrature) at 40 values of q per decade, interpolated by cubic splines in log q, so q*, chi_1, xi_q and the
critical line agree with mean_field's point-by-point root finding to about 1e-8 for every activation; the
correlation map's two-dimensional integrals (chaotic phase only) are 40 x 40 Gauss-Hermite sums, good to about
1e-4 in xi_c for smooth activations. For an activation with kinks (hardtanh, ELU, softsign, ...) such sums of a
jumping phi' are not trustworthy, so xi_c is left undefined in its chaotic phase and the figure says so.
A 100 x 100 diagram takes seconds. ReLU uses its closed forms: q* = sigma_b^2 / (1 - sigma_w^2/2), chi_1
= sigma_w^2 / 2, so its critical line is sigma_w^2 = 2 for every sigma_b^2, with q* infinite on and beyond it
(the arc-cosine kernel's correlation map then has c* = 1 and slope 1: xi_c is infinite there).

>>> p = diagram("tanh", sigma_w2=(0.5, 4.0, 8), sigma_b2=(0.0, 0.2, 5))
>>> p.chi1.shape, bool((p.chi1[:, 0] < 1).all() and (p.chi1[:, -1] > 1).all())
((5, 8), True)
>>> round(float(critical_line("relu", [0.0, 0.1])[1]), 12)
2.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Phase", "diagram", "critical_line", "MAX_POINTS"]

MAX_POINTS = 1000          # per axis: a 1000 x 1000 diagram is minutes; beyond that is refused
_N2 = 40
_Z2, _W2 = np.polynomial.hermite_e.hermegauss(_N2)
_W2 = _W2 / math.sqrt(2 * math.pi)
_Q_MAX, _Q_MIN, _Q_HUGE = 1e30, 1e-30, 1e12


def _bound(activation, params):
    from .mean_field import _bound as bound
    b = bound(activation, params or None)
    if b.name == "maxout":
        raise ValueError("the phase diagram of maxout (a max over k pre-activations) is not implemented")
    return b


def _axis(spec, what, low_ok) -> np.ndarray:
    try:
        lo, hi, n = spec
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be (low, high, points), got {spec!r}") from None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= MAX_POINTS:
        raise ValueError(f"{what}: the number of points per axis (--points) must be an integer from 2 to {MAX_POINTS}, got {n!r}")
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)) or not (0 <= lo < hi) or (lo == 0 and not low_ok):
        raise ValueError(f"{what}: need {'0 <=' if low_ok else '0 <'} low < high, both finite, got {lo:g}, {hi:g}")
    if hi > 1e6:
        raise ValueError(f"{what}: high {hi:g} is beyond the supported 1e6")
    return np.linspace(lo, hi, int(n))


class _Moments:
    """q -> E[phi^2], sigma-free chi_1 integrand E[phi'^2] and the length map's slope d/dq E[phi^2], as cubic
    splines in log q through :func:`varprop.derive.mean_field.gaussian_moments` (certified quadrature) at 40
    points per decade from 1e-30 to 1e12 (beyond: the large-q limit)."""

    def __init__(self, b):
        from scipy.interpolate import CubicSpline

        from .mean_field import gaussian_moments
        self.logq = np.linspace(math.log(_Q_MIN), math.log(_Q_HUGE), 1681)
        ms = [gaussian_moments(b, float(math.exp(t)), limit=True) for t in self.logq]
        self._splines = {}
        for name in ("second", "deriv2", "slope"):
            v = np.array([getattr(m, name) for m in ms])
            pos = bool((v > 0).all())
            self._splines[name] = (CubicSpline(self.logq, np.log(v) if pos else v), pos)

    def __call__(self, name, q):
        spline, pos = self._splines[name]
        logq = np.log(np.clip(q, _Q_MIN, None))
        t = np.clip(logq, self.logq[0], self.logq[-1])
        v = spline(t)
        if name == "second" and pos:
            # beyond the table E[phi^2] grows like a power of q (q for ReLU-like tails, q^0 for bounded phi):
            # extend it with the table's last log-log slope, so that q* = inf stays reachable
            end = self.logq[-1]
            v = v + np.where(logq > end, float(spline(end, 1)) * (logq - end), 0.0)
        return np.exp(v) if pos else v


def _fixed_point(mom, sw, sb) -> np.ndarray:
    """q* reached from q0 = 1 (as :func:`varprop.derive.mean_field.fixed_point`), vectorized: bracket, bisect."""
    def g(q):
        return sw * mom("second", q) + sb - q

    up = g(np.ones_like(sw)) > 0
    lo, hi = np.ones_like(sw), np.ones_like(sw)
    # bracket upwards (doubling) where G(1) > 0 and downwards (halving) elsewhere, all points at once
    for _ in range(110):
        move_up = up & (g(hi) > -1e-12 * hi) & (hi < _Q_MAX)
        move_dn = ~up & (g(lo) <= 1e-12 * lo) & (lo > _Q_MIN)
        if not (move_up.any() or move_dn.any()):
            break
        lo, hi = np.where(move_up, hi, lo), np.where(move_up, hi * 2, hi)
        hi, lo = np.where(move_dn, lo, hi), np.where(move_dn, lo / 2, lo)
    inf = up & (g(hi) > -1e-12 * hi)
    zero = ~up & (g(lo) <= 1e-12 * lo)
    a, c = np.log(lo), np.log(hi)
    for _ in range(60):                                # bisection in log q: 2^-60 of a factor-2 bracket
        m = 0.5 * (a + c)
        pos = g(np.exp(m)) > 0
        a, c = np.where(pos, m, a), np.where(pos, c, m)
    q = np.exp(0.5 * (a + c))
    q = np.where(inf, np.inf, np.where(zero, 0.0, q))
    exact = np.abs(g(np.ones_like(sw))) <= 1e-13        # q0 = 1 is itself the fixed point
    return np.where(exact & ~inf, 1.0, q)


@dataclass
class Phase:
    """A phase diagram: arrays of shape (len(sigma_b2), len(sigma_w2))."""
    activation: str
    sigma_w2: np.ndarray
    sigma_b2: np.ndarray
    q_star: np.ndarray
    chi1: np.ndarray
    c_star: np.ndarray
    xi_q: np.ndarray
    xi_c: np.ndarray
    critical: np.ndarray           # the critical sigma_w^2 at each sigma_b^2 (nan where chi_1 never crosses 1)
    note: str = ""

    def to_dict(self) -> dict:
        def arr(a):
            return [[None if not np.isfinite(x) else float(f"{x:.10g}") for x in row] for row in np.atleast_2d(a)]
        return {"activation": self.activation, "sigma_w2": [float(f"{x:.10g}") for x in self.sigma_w2],
                "sigma_b2": [float(f"{x:.10g}") for x in self.sigma_b2], "q_star": arr(self.q_star),
                "chi_1": arr(self.chi1), "c_star": arr(self.c_star), "xi_q": arr(self.xi_q), "xi_c": arr(self.xi_c),
                "critical_sigma_w2": arr(self.critical)[0], "note": self.note,
                "layout": "arrays are indexed [sigma_b2][sigma_w2]; null = infinite or undefined"}

    def plot(self, path=None, dpi: int = 200):
        """A heat map of xi_c (log colour scale) with the order-to-chaos line; written to ``path`` if given."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import LogNorm
        xi = np.where(np.isfinite(self.xi_c) & (self.xi_c > 0), self.xi_c, np.nan)
        finite = xi[np.isfinite(xi)]
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        if finite.size:
            lo, hi = max(float(finite.min()), 1e-2), float(finite.max())
            mesh = ax.pcolormesh(self.sigma_w2, self.sigma_b2, xi, shading="nearest", cmap="viridis",
                                 norm=LogNorm(vmin=lo, vmax=max(hi, lo * 1.01)))
            fig.colorbar(mesh, ax=ax, label="depth scale $\\xi_c$ (layers)")
        ok = np.isfinite(self.critical)
        ax.plot(self.critical[ok], self.sigma_b2[ok], color="white", lw=2.2)
        ax.plot(self.critical[ok], self.sigma_b2[ok], color="black", lw=1.2, ls="--",
                label="order-to-chaos line $\\chi_1 = 1$")
        ax.set_xlabel("$\\sigma_w^2$")
        ax.set_ylabel("$\\sigma_b^2$")
        ax.set_xlim(self.sigma_w2[0], self.sigma_w2[-1])
        ax.set_ylim(self.sigma_b2[0], self.sigma_b2[-1])
        ax.set_title(f"{self.activation}: ordered ($\\chi_1 < 1$, left) and chaotic (right) phases")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
        if self.note:
            fig.text(0.01, 0.005, self.note, fontsize=7, va="bottom")
        fig.tight_layout()
        if path is not None:
            import io

            from varprop.io import atomic_write_bytes
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
            plt.close(fig)
            atomic_write_bytes(path, buf.getvalue())
            return path
        return fig


def _relu(sw, sb):
    """ReLU's closed forms (the arc-cosine kernel): q*, chi_1, c*, xi_q, xi_c."""
    chi = sw / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(chi < 1, sb / (1 - chi), np.inf)
        xi_c = np.where(chi < 1, -1 / np.log(chi), np.inf)
    return q, chi, np.ones_like(sw), xi_c.copy(), xi_c


def diagram(activation, sigma_w2=(0.5, 4.0, 100), sigma_b2=(0.0, 0.3, 100), params=None) -> Phase:
    """The phase diagram of ``activation`` on the grid ``sigma_w2 = (low, high, points)`` x ``sigma_b2``."""
    b = _bound(activation, params)
    sw_axis = _axis(sigma_w2, "sigma_w2", low_ok=False)
    sb_axis = _axis(sigma_b2, "sigma_b2", low_ok=True)
    sw, sb = np.meshgrid(sw_axis, sb_axis)
    if b.name == "relu":
        q, chi, c_star, xi_q, xi_c = _relu(sw, sb)
        return Phase(b.label(), sw_axis, sb_axis, q, chi, c_star, xi_q, xi_c, np.full(sb_axis.shape, 2.0),
                     note="ReLU: critical at sigma_w^2 = 2 for every sigma_b^2; q* is infinite on and beyond it")
    mom = _Moments(b)
    with np.errstate(all="ignore"):
        q = _fixed_point(mom, sw, sb)
        chi = sw * b.arity * mom("deriv2", q)
        slope = sw * mom("slope", q)
        xi_q = np.where(slope < 1, -1 / np.log(np.clip(slope, 1e-300, None)), np.where(slope == 1, np.inf, np.nan))
        c_star, chi_c = np.ones_like(sw), chi.copy()
        chaotic = (chi > 1 + 1e-9) & (q > 0) & np.isfinite(q)
        note = ""
        if chaotic.any() and b.kinks():
            # Gauss-Hermite sums of phi' with a jump are off by tens of percent: leave these points undefined
            c_star[chaotic], chi_c[chaotic] = np.nan, np.nan
            note = (f"{b.label()} has kinks: xi_c in the chaotic phase is left blank here "
                    "(varprop.derive.mean_field.chi_c computes it point by point)")
        elif chaotic.any():
            c_star[chaotic], chi_c[chaotic] = _correlation_fixed_point(b, sw[chaotic], sb[chaotic], q[chaotic])
        xi_c = np.where(chi_c < 1, -1 / np.log(np.clip(chi_c, 1e-300, None)),
                        np.where(np.isnan(chi_c), np.nan, np.inf))
    crit = _critical(mom, sb_axis, sw_axis[0], sw_axis[-1])
    return Phase(b.label(), sw_axis, sb_axis, q, chi, c_star, xi_q, xi_c, crit, note=note)


def _correlation_fixed_point(b, sw, sb, q, chunk: int = 1024):
    """(c*, chi_c) of the correlation map at the chaotic points: the root of c' - c, chunked and vectorized.

    The bracket [0 or -1, 1 - 1e-6] is halved ten times, then narrowed by the Illinois variant of false
    position, which keeps the root bracketed and converges superlinearly (a few more steps, not 35 halvings).
    """
    c_out, chi_out = np.empty_like(sw), np.empty_like(sw)
    t1, t2 = _Z2[:, None], _Z2[None, :]
    w2 = _W2[:, None] * _W2[None, :]
    for i in range(0, sw.size, chunk):
        s, bb, qq = sw[i:i + chunk], sb[i:i + chunk], q[i:i + chunk]
        rt = np.sqrt(qq)[:, None, None]
        f1 = b.numpy(rt * t1) * w2                     # phi(u1) with the weights: fixed while c moves

        def g(c):
            cc = c[:, None, None]
            f2 = b.numpy(rt * (cc * t1 + np.sqrt(np.maximum(1 - cc * cc, 0)) * t2))
            return (s * np.einsum("nij,nij->n", f1, f2) + bb) / qq - c

        zero = np.zeros_like(s)
        g0 = g(zero)
        lo, hi = np.where(g0 >= 0, 0.0, -1.0), np.full_like(s, 1 - 1e-6)
        # bisection first: near c = 1 the map's excess c' - c is tiny and quadrature noise could flip its sign
        for _ in range(10):
            m = 0.5 * (lo + hi)
            pos = g(m) >= 0
            lo, hi = np.where(pos, m, lo), np.where(pos, hi, m)
        glo, ghi = g(lo), g(hi)
        side = np.zeros(s.shape, dtype=int)
        for _ in range(30):
            with np.errstate(invalid="ignore", divide="ignore"):
                c = np.where(glo != ghi, (lo * ghi - hi * glo) / (ghi - glo), 0.5 * (lo + hi))
            c = np.clip(np.nan_to_num(c, nan=0.5), lo, hi)
            gc = g(c)
            pos = gc >= 0
            # Illinois: halve the value kept at an end that stays put twice in a row
            glo, ghi = (np.where(pos, gc, np.where(side == -1, glo / 2, glo)),
                        np.where(pos, np.where(side == 1, ghi / 2, ghi), gc))
            lo, hi = np.where(pos, c, lo), np.where(pos, hi, c)
            side = np.where(pos, 1, -1)
            if np.all((hi - lo < 1e-13) | (np.abs(gc) < 1e-14)):
                break
        c = np.where(np.abs(gc) < 1e-14, c, 0.5 * (lo + hi))
        c = np.where(np.abs(g0) <= 1e-12, 0.0, c)     # an odd phi without bias: c = 0 maps to itself
        c_out[i:i + chunk] = c
        cc = c[:, None, None]
        d1 = b.numpy_derivative(rt * t1) * w2
        d2 = b.numpy_derivative(rt * (cc * t1 + np.sqrt(np.maximum(1 - cc * cc, 0)) * t2))
        chi_out[i:i + chunk] = s * np.einsum("nij,nij->n", d1, d2)
    return c_out, chi_out


def critical_line(activation, sigma_b2, params=None, sw_range=(1e-3, 1e3)) -> np.ndarray:
    """The sigma_w^2 with chi_1 = 1 at each sigma_b^2 (nan where it is not in ``sw_range``), by bisection."""
    b = _bound(activation, params)
    sb = np.asarray(sigma_b2, dtype=float)
    if b.name == "relu":
        return np.full(sb.shape, 2.0)
    return _critical(_Moments(b), sb, *sw_range)


def _critical(mom, sb, sw_lo, sw_hi) -> np.ndarray:
    lo, hi = np.full(sb.shape, float(sw_lo)), np.full(sb.shape, float(sw_hi))

    def f(sw):
        return sw * mom("deriv2", _fixed_point(mom, sw, sb)) - 1

    with np.errstate(all="ignore"):
        ok = (f(lo) < 0) & (f(hi) >= 0)
        for _ in range(50):
            m = 0.5 * (lo + hi)
            pos = f(m) >= 0
            lo, hi = np.where(pos, lo, m), np.where(pos, m, hi)
    return np.where(ok, 0.5 * (lo + hi), np.nan)

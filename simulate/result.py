"""A simulation's result: per-trial statistics, their means and standard errors, the theory beside them.

For a statistic s measured once per trial (t = 1..T), the reported value is the trial mean
``s_bar = sum_t s_t / T`` and its standard error ``se = sd(s_1..s_T) / sqrt(T)`` (sample sd, ddof 1;
NaN for a single trial). Each ``layers`` row carries ``theory_<field>`` from derive/mean_field where the
theory speaks. A value that overflowed leaves its layer and the deeper ones without statistics (null in
JSON), and ``overflow`` says where it happened first.

>>> import numpy as np
>>> r = Result({"widths": [4, 4]}, "gaussian", 0, 0.1, {"act_std": np.array([[1.0], [3.0]])}, {})
>>> float(r.mean("act_std")[0]), float(r.se("act_std")[0])
(2.0, 1.0)
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Result", "LAYER_FIELDS"]

# the per-layer row: (field, with standard error?)
LAYER_FIELDS = (("pre_mean", True), ("pre_std", True), ("pre_second", True), ("act_mean", True),
                ("act_std", True), ("act_second", True), ("saturated", True), ("dead", True),
                ("grad_std", True), ("grad_second", True), ("weight_grad_norm", True))


def _num(v):
    v = float(v)
    return None if not math.isfinite(v) else v


@dataclass
class Result:
    """``per_trial[field]`` has shape (trials done, L); ``theory[field]`` shape (L,)."""
    config: dict
    engine: str
    seed: int
    elapsed_s: float
    per_trial: dict
    theory: dict
    interrupted: bool = False
    histograms: dict | None = None       # {"act": (L, bins), "grad": (L, bins)} counts summed over trials
    hist_edges: dict | None = None       # {"act": (L, bins + 1), "grad": (L, bins + 1)} edges, per layer
    memory_estimate: int = 0
    overflow: dict | None = None         # {"layer", "quantity", "trials"}: the shallowest overflow, if any
    extra: dict = field(default_factory=dict)

    @property
    def trials(self) -> int:
        return int(next(iter(self.per_trial.values())).shape[0]) if self.per_trial else 0

    @property
    def depth(self) -> int:
        return int(next(iter(self.per_trial.values())).shape[1]) if self.per_trial else 0

    def mean(self, name: str) -> np.ndarray:
        a = self.per_trial[name]
        if np.all(np.isnan(a)):
            return np.full(a.shape[1], np.nan)
        return a.mean(axis=0)

    def se(self, name: str) -> np.ndarray:
        a = self.per_trial[name]
        if a.shape[0] < 2 or np.all(np.isnan(a)):
            return np.full(a.shape[1], np.nan)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging network's huge values give inf
            return a.std(axis=0, ddof=1) / math.sqrt(a.shape[0])

    @property
    def layers(self) -> list[dict]:
        """One dict per weight layer (``layer`` 1 = the first), JSON-ready (NaN -> None)."""
        rows = []
        means = {f: self.mean(f) for f, _ in LAYER_FIELDS}
        ses = {f: self.se(f) for f, has in LAYER_FIELDS if has}
        for i in range(self.depth):
            row = {"layer": i + 1}
            for f, has in LAYER_FIELDS:
                row[f] = _num(means[f][i])
                if has:
                    row[f + "_se"] = _num(ses[f][i])
                if f in self.theory:
                    row["theory_" + f] = _num(self.theory[f][i])
            rows.append(row)
        return rows

    def overflow_message(self) -> str | None:
        """One line saying where the simulation overflowed (None when it did not)."""
        o = self.overflow
        if o is None:
            return None
        dtype = self.config.get("dtype", "float64")
        lost = "that norm is null" if o["quantity"] == "weight-gradient norm" else "no statistics from there on"
        return (f"overflow in {o['trials']} of {self.trials} trials, first: the {o['quantity']} of layer "
                f"{o['layer']} exceed {dtype}; {lost} (the weights or inputs are too large)")

    def to_dict(self) -> dict:
        out = {"config": self.config, "engine": self.engine, "seed": self.seed,
               "elapsed_s": round(self.elapsed_s, 6), "trials_done": self.trials,
               "interrupted": self.interrupted, "memory_estimate_bytes": int(self.memory_estimate),
               "overflow": self.overflow, "layers": self.layers}
        if self.histograms is not None:
            out["histograms"] = {k: {"edges": [[_num(e) for e in row] for row in self.hist_edges[k]],
                                     "counts": v.tolist()} for k, v in self.histograms.items()}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def to_csv(self) -> str:
        rows = self.layers
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else repr(v) if isinstance(v, float) else v for k, v in r.items()})
        return buf.getvalue()

    def table(self) -> str:
        """The per-layer table: layer, activation mean, std +- se, theory std, gradient std +- se, theory."""
        lines = [f"{'layer':>5}  {'act mean':>10}  {'act std +- se':>19}  {'theory':>9}  {'grad std +- se':>19}  "
                 f"{'theory':>9}  {'saturated':>9}  {'dead':>5}"]
        for r in self.layers:
            lines.append(f"{r['layer']:>5}  {_g(r['act_mean'], '+.3e'):>10}  {_pm(r['act_std'], r['act_std_se']):>19}  "
                         f"{_g(r.get('theory_act_std')):>9}  {_pm(r['grad_std'], r['grad_std_se']):>19}  "
                         f"{_g(r.get('theory_grad_std')):>9}  {_g(r['saturated'], '.4f'):>9}  "
                         f"{_g(r['dead'], '.3f'):>5}")
        status = " (interrupted)" if self.interrupted else ""
        if self.overflow is not None:
            lines.append(self.overflow_message())
        lines.append(f"{self.trials} trials{status}, engine {self.engine}, seed {self.seed}, "
                     f"{self.elapsed_s:.2f} s")
        return "\n".join(lines)


def _g(v, spec=".4g"):
    return "-" if v is None else format(v, spec)


def _pm(v, se):
    return "-" if v is None else f"{_g(v)} +- {_g(se, '.1e')}"

"""Claims and verdicts: the rows of the report's summary table, and the Monte Carlo comparison they rest on.

A simulated statistic s (a trial mean with standard error se) agrees with its theory t when
|s - t| <= K se for every layer, K = 5: a fixed seed makes this deterministic, and five standard errors
make a wrong variance fail (a gain off by a few percent is rejected at the widths used; see
tests/test_simulate_theory.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["K", "Claim", "agreement", "fmt", "fmt_pm", "md_table"]

K = 5.0


@dataclass
class Claim:
    """One row of the summary: what is claimed, the derived value, the simulated value, the training outcome."""
    section: str
    claim: str
    derived: str
    simulated: str = ""
    training: str = ""
    verified: bool = False
    link: str = ""
    notes: list = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "verified" if self.verified else "refuted"


def agreement(sim: np.ndarray, se: np.ndarray, theory: np.ndarray) -> tuple[bool, float]:
    """(every layer within K standard errors, the largest |z|) over the layers where all three are finite."""
    sim, se, theory = (np.asarray(a, dtype=float) for a in (sim, se, theory))
    ok = np.isfinite(sim) & np.isfinite(theory) & np.isfinite(se)
    if not ok.any():
        return False, math.nan
    diff = np.abs(sim[ok] - theory[ok])
    # a statistic that is exactly its theory with zero spread (e.g. a zero-initialized branch) agrees
    z = np.where(se[ok] > 0, diff / np.where(se[ok] > 0, se[ok], 1.0), np.where(diff == 0, 0.0, np.inf))
    zmax = float(np.max(z))
    return bool(zmax <= K), zmax


def fmt(v, digits: int = 4) -> str:
    """A number to ``digits`` significant digits (fixed rounding keeps regenerated reports identical)."""
    if v is None:
        return "-"
    v = float(v)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v == 0:
        return "0"
    return f"{v:.{digits}g}"


def fmt_pm(v, se, digits: int = 4) -> str:
    return f"{fmt(v, digits)} ± {fmt(se, 2)}"


def md_table(header: list[str], rows: list[list]) -> str:
    def cell(x):
        return str(x).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)

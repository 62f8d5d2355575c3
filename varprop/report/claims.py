"""Claims and their verdicts: what each claim measures, in which direction, by which test; and the tests.

Every claim states beforehand its quantity (what is measured), its direction (what the claim says of it) and
its test (the rule that decides), and gets one of three verdicts:

- ``verified``: the test supports the claim at the stated level;
- ``refuted``: the test supports the opposite at that level;
- ``inconclusive``: neither (a difference within its noise, too few networks or seeds, a contrast the test
  cannot tell apart).

Two kinds of test:

- simulation against theory (:func:`judge_theory`): the simulated statistic s (a mean over networks with
  standard error se) agrees with its theory t at every layer when |s - t| <= K se + b |t|, where K = 5 and b
  is the finite-width (or finite-batch) bias the claim allows, named in its test; it disagrees when some layer
  is outside that band. A contrast (the value a wrong claim would give, e.g. 3^L for 2^L) must lie outside
  the band for a verdict of verified: otherwise the test could not have failed and the claim is inconclusive.
- a paired comparison over seeds (:func:`judge_paired`): the t interval (95%) of the paired differences of a
  training metric between the claimed setting and its contrast at the same budget; verified when the whole
  interval lies on the claimed side of the margin, refuted when it lies on the other side, inconclusive when
  it straddles it.

>>> judge_paired([0.9, 0.92, 0.91, 0.93, 0.9], [0.1, 0.1, 0.12, 0.1, 0.11], margin=0.5).verdict
'verified'
>>> judge_paired([0.5, 0.52, 0.49, 0.5, 0.51], [0.5, 0.5, 0.51, 0.49, 0.5]).verdict
'inconclusive'
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["K", "LEVEL", "MIN_NETWORKS", "VERDICTS", "Claim", "Judgement", "agreement", "judge_theory",
           "judge_paired", "paired_interval", "counts", "fmt", "fmt_pm", "md_table"]

K = 5.0
LEVEL = 0.95
MIN_NETWORKS = 100       # for a skewed statistic (a second moment, a gradient), the standard error is trusted
VERDICTS = ("verified", "refuted", "inconclusive")


@dataclass
class Claim:
    """One row of the summary: the claim, what it measures and how it is judged, the evidence, the verdict."""
    section: str
    claim: str
    derived: str = ""
    simulated: str = ""
    training: str = ""
    verdict: str = "inconclusive"
    link: str = ""
    quantity: str = ""           # what is measured
    direction: str = ""          # what the claim says of it
    test: str = ""               # the rule that decides, with its level and allowed bias
    evidence: str = ""           # networks, seeds, the interval
    notes: list = field(default_factory=list)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {self.verdict!r}")

    @property
    def verified(self) -> bool:
        return self.verdict == "verified"


@dataclass
class Judgement:
    verdict: str
    evidence: str
    detail: dict = field(default_factory=dict)


def counts(claims) -> dict:
    """{verdict: number of claims} for the three verdicts, in order."""
    out = {v: 0 for v in VERDICTS}
    for c in claims:
        out[c.verdict] += 1
    return out


def agreement(sim: np.ndarray, se: np.ndarray, theory: np.ndarray, bias: float = 0.0) -> tuple[bool, float]:
    """(every layer within K standard errors plus the allowed relative bias, the largest |z|) over the layers
    where all three are finite; z = (|s - t| - bias |t|)_+ / se."""
    sim, se, theory = (np.asarray(a, dtype=float) for a in (sim, se, theory))
    ok = np.isfinite(sim) & np.isfinite(theory) & np.isfinite(se)
    if not ok.any():
        return False, math.nan
    diff = np.maximum(np.abs(sim[ok] - theory[ok]) - bias * np.abs(theory[ok]), 0.0)
    # a statistic that is exactly its theory with zero spread (e.g. a zero-initialized branch) agrees
    z = np.where(se[ok] > 0, diff / np.where(se[ok] > 0, se[ok], 1.0), np.where(diff == 0, 0.0, np.inf))
    zmax = float(np.max(z))
    return bool(zmax <= K), zmax


def judge_theory(sim, se, theory, networks: int, bias: float = 0.0, contrast=None,
                 min_networks: int = MIN_NETWORKS) -> Judgement:
    """Simulation against theory (see the module docstring). ``contrast``: per-layer values a wrong claim
    would give; the band around the theory must exclude them for the claim to be verified."""
    sim, se, theory = (np.asarray(a, dtype=float) for a in (sim, se, theory))
    ok, z = agreement(sim, se, theory, bias)
    _, raw = agreement(sim, se, theory)
    ev = f"{networks} networks, max |s - t|/se = {fmt(raw, 3)}" + (
        f" ({fmt(z, 3)} after the {fmt(bias * 100)}% bias allowance; K = {fmt(K)})" if bias else f" (K = {fmt(K)})")
    separated = True
    if contrast is not None:
        contrast = np.asarray(contrast, dtype=float)
        band = K * se + bias * np.abs(theory)
        separated = bool(np.any(np.abs(contrast - sim) > band))
        ev += "; contrast " + ("excluded" if separated else "NOT excluded")
    if not math.isfinite(z):
        return Judgement("inconclusive", ev + "; no finite layer", {"z": z})
    if not ok:
        return Judgement("refuted", ev, {"z": z})
    if networks < min_networks or not separated:
        why = f"; fewer than {min_networks} networks" if networks < min_networks else ""
        return Judgement("inconclusive", ev + why, {"z": z})
    return Judgement("verified", ev, {"z": z})


def paired_interval(a, b, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): the t interval of the paired differences a - b over seeds."""
    from scipy import stats
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size < 2:
        return float(d.mean()) if d.size else math.nan, -math.inf, math.inf
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    if se == 0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, d.size - 1)) * se
    return mean, mean - half, mean + half


def judge_paired(a, b, margin: float = 0.0, level: float = LEVEL) -> Judgement:
    """The claim "a exceeds b by more than ``margin``" over paired seeds (see the module docstring)."""
    mean, lo, hi = paired_interval(a, b, level)
    n = len(np.atleast_1d(a))
    ev = f"{n} seeds, paired difference {fmt(mean, 3)}, {int(level * 100)}% CI [{fmt(lo, 3)}, {fmt(hi, 3)}]"
    if margin:
        ev += f" against margin {fmt(margin, 3)}"
    if lo > margin:
        v = "verified"
    elif hi < margin:
        v = "refuted"
    else:
        v = "inconclusive"
    return Judgement(v, ev, {"mean": mean, "low": lo, "high": hi, "seeds": n})


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

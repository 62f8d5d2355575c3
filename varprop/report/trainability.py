"""The report's trainability section: Schoenholz et al. 2017's phase diagram, measured and fitted.

:func:`section` runs :func:`varprop.sweep.trainability` (a LocalCluster with one worker per core when Dask
is installed, else the same cells one after another: each cell's result is the same bits either way) in
a temporary folder, and writes into the report folder only what is deterministic for a seed:

    trainability.md     the claim, the grid and budget, the fit (c with its bootstrap interval beside the
                        paper's 6), the depth-only null model, the verdict and the per-cell table
    trainability.png    training accuracy over (depth, sigma_w2) with 6 xi_c and the fitted c xi_c
    trainability.json   the same numbers (rounded to 6 significant digits)

Timings and worker names stay in the sweep folder, which is removed.
"""
from __future__ import annotations

import json
import os
import tempfile

from .claims import Claim, fmt, md_table, stated

__all__ = ["section"]


def _round(x):
    if isinstance(x, float):
        return float(f"{x:.6g}") if x == x and abs(x) != float("inf") else str(x)
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_round(v) for v in x]
    return x


def _client():
    try:
        import distributed  # noqa: F401
    except ImportError:
        return "serial"
    return None


def section(out: str, mode: str = "quick", seed: int = 0, bar=None, client=None) -> tuple[list, str]:
    """Run the trainability sweep for ``mode`` (quick, full or smoke) and write the section's files into
    ``out``; returns (claims, the Markdown for the report's index). ``client``: as in
    :func:`varprop.sweep.run` (default: a LocalCluster when Dask is installed, else ``"serial"``)."""
    from varprop.io import atomic_write_text
    from varprop.sweep.trainability import PAPER_C, TOLERANCE, trainability

    with tempfile.TemporaryDirectory(prefix="varprop-trainability-") as tmp:
        t = trainability(os.path.join(tmp, "sweep"), mode, _client() if client is None else client, seed=seed,
                         figure=os.path.join(out, "trainability.png"), resume=False, progress=False)
    if bar is not None:
        bar.update(info="trainability sweep")
    d = _round(t.to_dict())
    atomic_write_text(os.path.join(out, "trainability.json"), json.dumps(d, indent=1, sort_keys=True) + "\n")
    f = t.sweep.manifest["fixed"]
    budget = (f"{f['data']}, width {f['width']}, {f['optimizer']} lr {f['lr']:g}, batch {f['batch_size']}, "
              f"{f['epochs']} epochs, weights N(0, sigma_w^2/fan_in), biases N(0, {f['sigma_b2']:g})")
    c_text = "-" if t.c != t.c else f"{fmt(t.c, 3)} [{fmt(t.c_low, 3)}, {fmt(t.c_high, 3)}]"
    rows = [[r["sigma_w2"], r["depth"], fmt(r[t.metric], 3), fmt(r["test_acc"], 3), fmt(r["xi_c"], 4),
             fmt(r["depth"] / r["xi_c"], 3) if isinstance(r["xi_c"], float) and r["xi_c"] not in (0.0,) else "0",
             "yes" if r["trainable"] else "no"] for r in d["rows"]]
    md = [
        "# Trainability at the edge of chaos", "",
        "Claim (Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, Figs. 5-6): random tanh networks with "
        "sigma_b^2 = 0.05 train within a fixed budget only where their depth L is below a few xi_c = "
        "-1/log(chi_c) (from `varprop.derive.mean_field.depth_scales`), the boundary following about 6 xi_c, "
        "which diverges at the critical sigma_w^2.", "",
        f"Sweep: `varprop.sweep.trainability(mode={mode!r}, seed={seed})`, a `train` sweep over "
        f"sigma_w2 = {', '.join(f'{v:g}' for v in t.sweep.axes['sigma_w2'])} and depth = "
        f"{', '.join(str(v) for v in t.sweep.axes['depth'])} ({t.n} cells); {budget}. Each cell's seed comes "
        "from the sweep seed and its coordinates.", "",
        f"A cell is trainable when its {t.metric} (training split, test mode, after the budget) exceeds "
        f"chance + (best - chance)/2 = {fmt(t.threshold, 3)}. The boundary L = c xi_c is fitted as the threshold "
        "on L/xi_c with the fewest misclassified cells; its interval is the 2.5-97.5 percentile range over "
        "1000 bootstrap resamples of the cells. The null model is a boundary at a fixed depth.", "",
        md_table(["quantity", "value"], [
            ["fitted c (95% interval)", c_text], ["paper's c", f"{PAPER_C:g} (accepted within a factor {TOLERANCE:g})"],
            ["cells misclassified by c xi_c", f"{t.errors} of {t.n}"],
            ["cells misclassified by a fixed depth", f"{t.errors_depth_only} of {t.n}"
             + ("" if t.depth_boundary != t.depth_boundary else f" (depth {fmt(t.depth_boundary, 3)})")],
            ["verdict", f"**{t.verdict}**: {t.reason}"]]), "",
        "![training accuracy over depth and sigma_w2, with 6 xi_c and the fitted c xi_c](trainability.png)", "",
        md_table(["sigma_w2", "depth", t.metric, "test_acc", "xi_c", "L / xi_c", "trainable"], rows), ""]
    claim = Claim("trainability", "depth boundary of trainability = c xi_c, c about 6 (Schoenholz et al. 2017)",
                  derived=f"xi_c from mean field; paper c = {PAPER_C:g}", training=f"c = {c_text}",
                  verdict=t.verdict, link="trainability.md", notes=[t.reason],
                  quantity=f"the depth boundary of the trainable cells ({t.metric} above chance + (best - chance)/2) "
                           f"over {t.n} cells of sigma_w^2 x depth, as a multiple c of xi_c",
                  direction=f"c within a factor {TOLERANCE:g} of the paper's {PAPER_C:g}, and c xi_c explaining the "
                            "cells better than a fixed depth (the contrast)",
                  test="the fitted c's 95% bootstrap interval (1000 resamples of the cells) against the paper's "
                       "value, misclassified cells against the fixed-depth null model (module docstring of "
                       "varprop.sweep.trainability)",
                  evidence=f"{t.n} cells; c = {c_text}; {t.errors} cells misclassified vs {t.errors_depth_only} by a "
                           "fixed depth")
    atomic_write_text(os.path.join(out, "trainability.md"), "\n".join(md + [stated([claim])]))
    index = "\n".join(["## Trainability at the edge of chaos", "",
                       "Details, table and figure: [trainability.md](trainability.md).", "",
                       md_table(["claim", "fitted c (95%)", "verdict"], [[f"[{claim.claim}]({claim.link})", c_text,
                                                                          claim.verdict]]), ""])
    return [claim], index

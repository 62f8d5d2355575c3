"""``varprop report``: every condition derived, simulated and trained end to end, written to a folder.

The report is built in a temporary folder beside the target and swapped in only when complete, so an
interrupted run leaves the previous report as it was. It is deterministic for a seed: numbers are rounded
to a fixed number of significant digits, no timing, date or path is written, and figures carry no
software-version metadata, so regenerating it changes files only when a result changed.

Layout of the output folder::

    README.md            the index: summary table of every claim with its verdict, then links
    derivations/         every derivation in Markdown (index.md) and LaTeX (all.tex; PDFs with a TeX engine)
    simulations.md       theory against simulation for each scheme and activation pair (+ PNG and JSON each)
    training.md          the training experiments (+ PNG each, training.json)

>>> from varprop.report import SECTIONS
>>> SECTIONS
('derivations', 'simulations', 'training')
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from .claims import Claim, md_table

__all__ = ["build", "SECTIONS", "MODES"]

SECTIONS = ("derivations", "simulations", "training")
MODES = ("quick", "full")
_ALL_MODES = MODES + ("smoke",)   # smoke: the whole pipeline at toy sizes, for tests (not on the command line)


def _derivation_names() -> list[str]:
    from varprop.derive import derivations
    return derivations.names()


def _derivations(out: str, mode: str, seed: int, bar) -> tuple[list[Claim], str]:
    from varprop.derive import derivations, render
    ds, claims = [], []
    for name in _derivation_names():
        d = derivations.build(name)
        ds.append(d.to_dict(30 if mode == "full" else 15))
        bar.update(info=f"derive {name}")
    folder = os.path.join(out, "derivations")
    render.write(ds, "md", folder, index=True)
    render.write(ds, "tex", folder, index=True, pdf=True)
    rows = []
    for d in ds:
        rows.append([f"[{d['title']}](derivations/{d['name']}.md)", len(d["steps"]),
                     "verified" if d["verified"] else "NOT VERIFIED"])
        claims.append(Claim("derivation", d["title"], derived=f"{len(d['steps'])} machine-checked steps",
                            verified=bool(d["verified"]), link=f"derivations/{d['name']}.md"))
    md = "\n".join(["## Derivations", "",
                    "Each derivation states its assumptions, and every step is checked by SymPy (exactly, with "
                    "numeric spot checks on top). All of them: [derivations/index.md](derivations/index.md); "
                    "one LaTeX document: [derivations/all.tex](derivations/all.tex).", "",
                    md_table(["derivation", "steps", "status"], rows), ""])
    return claims, md


def _simulations(out: str, mode: str, seed: int, bar) -> tuple[list[Claim], str]:
    from varprop.io import atomic_write_text

    from . import simulations as sims
    claims, parts = [], []
    for p in sims.pairs():
        c, md = sims.run_pair(p, out, mode, seed)
        claims.append(c)
        parts.append(md)
        bar.update(info=f"simulate {p.key}")
    c, md = sims.residual_blocks(out, mode, seed)
    claims += c
    parts.append(md)
    bar.update(info="simulate residual blocks")
    head = ["# Theory against simulation", "",
            "Per-layer statistics of many random networks at initialization (`varprop simulate`), mean ± "
            "standard error over networks, beside the mean-field prediction of `varprop.derive.mean_field` "
            "(`varprop derive activation-stats`). A pair is verified when every layer's simulated statistic is "
            "within 5 standard errors of the theory and the lecture's qualitative claim holds.", ""]
    atomic_write_text(os.path.join(out, "simulations.md"), "\n".join(head + parts))
    rows = [[f"[{c.claim}]({c.link})", c.verdict] for c in claims]
    md = "\n".join(["## Theory against simulation", "", "Details, tables and figures: "
                    "[simulations.md](simulations.md).", "", md_table(["claim", "verdict"], rows), ""])
    return claims, md


def _training(out: str, mode: str, seed: int, bar) -> tuple[list[Claim], str]:
    from varprop.io import atomic_write_text

    from . import training as tr
    data = tr.load_data(mode, seed)
    claims, parts, blob = [], [], {"data": data.name, "seed": seed, "mode": mode}
    for exp in tr.EXPERIMENTS:
        c, md, j = exp(data, out, mode, seed)
        claims += c
        parts.append(md)
        blob.update(j)
        bar.update(info=f"train {exp.__name__}")
    tr.write_json(out, blob)
    head = ["# Training", "", f"Small MLPs trained with `varprop.nn` on {data.name} (standardized with the "
            f"training split's statistics), seed {seed}.", ""]
    atomic_write_text(os.path.join(out, "training.md"), "\n".join(head + parts))
    rows = [[f"[{c.claim}]({c.link})", c.training, c.verdict] for c in claims]
    md = "\n".join(["## Training", "", "Details, tables and figures: [training.md](training.md).", "",
                    md_table(["claim", "outcome", "verdict"], rows), ""])
    return claims, md


def _index(claims: list[Claim], sections: list[str], mode: str, seed: int) -> str:
    verified = sum(c.verified for c in claims)
    rows = [[c.section, f"[{c.claim}]({c.link})" if c.link else c.claim, c.derived or "-", c.simulated or "-",
             c.training or "-", c.verdict] for c in claims]
    return "\n".join([
        "# varprop report", "",
        f"Generated by `varprop report --{mode} --seed {seed}`; regenerating it with the same command gives the "
        "same files. Every number below links to where it comes from.", "",
        f"**{verified} of {len(claims)} claims verified.**", "",
        "## Summary", "",
        md_table(["part", "claim", "derived", "simulated", "training", "verdict"], rows), "",
        *sections])


def _steps(mode: str) -> int:
    from . import simulations, training
    return len(_derivation_names()) + len(simulations.pairs()) + 1 + len(training.EXPERIMENTS)


_SECTIONS = [_derivations, _simulations, _training]


def build(out: str = "reports", mode: str = "quick", seed: int = 0, progress=None) -> list[Claim]:
    """Write the report to ``out`` (replacing it only once the new one is complete); return its claims."""
    from varprop.io import Progress, atomic_write_text
    if mode not in _ALL_MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out = os.path.abspath(os.fspath(out))
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".new-", dir=parent)
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would otherwise become the report folder's mode
    try:
        with Progress(_steps(mode), "report", enabled=progress) as bar:
            claims, sections = [], []
            for section in _SECTIONS:
                c, md = section(tmp, mode, seed, bar)
                claims += c
                sections.append(md)
        atomic_write_text(os.path.join(tmp, "README.md"), _index(claims, sections, mode, seed))
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return claims


def _swap(new: str, out: str) -> None:
    """Put the complete folder ``new`` at ``out``; the old one is moved aside first and removed last."""
    old = None
    if os.path.exists(out):
        old = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".old-", dir=os.path.dirname(out))
        os.rmdir(old)
        os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)

"""``varprop report``: every condition derived, simulated and trained end to end, written to a folder.

The report is built in a temporary folder beside the target and swapped in only when complete, so an
interrupted run leaves the previous report as it was. It is deterministic for a seed: numbers are rounded
to a fixed number of significant digits, no timing, date or path is written, and figures carry no
software-version metadata, so regenerating it changes files only when a result changed.

``--out`` never removes a user's files: the target must be absent, an empty folder, or a folder that a
previous ``varprop report`` wrote and that holds nothing it did not write (its manifest lists every file).
Anything else (a file, the current folder with work in it, a report folder a user added files to) is
refused by :func:`check_out` before any work starts.

Layout of the output folder::

    .varprop-report      the manifest: every file this report wrote (what marks the folder as a report)
    README.md            the index: summary table of every claim with its verdict, then links
    derivations/         every derivation in Markdown (index.md) and LaTeX (all.tex; PDFs with a TeX engine)
    simulations.md       theory against simulation for each scheme and activation pair (+ PNG and JSON each)
    training.md          the training experiments (+ PNG each, training.json)
    signal.md            correlations, Jacobian spectra, finite width, LSUV, orthogonal init (+ PNG, signal.json)
    trainability.md      Schoenholz et al.'s trainability sweep on Dask (+ PNG, trainability.json)

>>> from varprop.report import SECTIONS
>>> SECTIONS
('derivations', 'simulations', 'training', 'signal', 'trainability')
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from .claims import Claim, counts, md_table, stated

__all__ = ["build", "check_out", "SECTIONS", "MODES", "MANIFEST"]

SECTIONS = ("derivations", "simulations", "training", "signal", "trainability")
MANIFEST = ".varprop-report"
_MANIFEST_HEAD = "varprop report manifest: the files below were written by `varprop report`"
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
                            verdict="verified" if d["verified"] else "inconclusive",
                            quantity="each step's identity", direction="holds exactly",
                            test="SymPy proves every step, spot checks agree, every assumption is used "
                                 "(else inconclusive)",
                            evidence=f"{len(d['steps'])} steps", link=f"derivations/{d['name']}.md"))
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
        parts.append(md + "\n" + stated([c]))
        bar.update(info=f"simulate {p.key}")
    for extra in sims.EXTRA_SECTIONS:
        c, md = extra(out, mode, seed)
        claims += c
        parts.append(md + "\n" + stated(c))
        bar.update(info=f"simulate {extra.__name__}")
    head = ["# Theory against simulation", "",
            "Per-layer statistics of many random networks at initialization (`varprop simulate`), mean ± "
            "standard error over networks, beside the mean-field prediction of `varprop.derive.mean_field` "
            "(`varprop derive activation-stats`). Each claim is judged against its theory and a contrast (the "
            "curve a wrong claim would give): *verified* when every layer is within 5 standard errors plus the "
            "finite-width bias the claim names, the contrast lies outside that band and at least 100 networks "
            "back the standard error; *refuted* when a layer is outside the band (or the lecture's qualitative "
            "claim fails); *inconclusive* otherwise.", ""]
    atomic_write_text(os.path.join(out, "simulations.md"), "\n".join(head + parts))
    rows = [[f"[{c.claim}]({c.link})", c.evidence, c.verdict] for c in claims]
    md = "\n".join(["## Theory against simulation", "", "Details, tables and figures: "
                    "[simulations.md](simulations.md).", "", md_table(["claim", "evidence", "verdict"], rows), ""])
    return claims, md


def _training(out: str, mode: str, seed: int, bar) -> tuple[list[Claim], str]:
    from varprop.io import atomic_write_text

    from . import training as tr
    data = tr.load_data(mode, seed)
    claims, parts, blob = [], [], {"data": data.name, "seed": seed, "mode": mode}
    for exp in _training_experiments():
        c, md, j = exp(data, out, mode, seed)
        claims += c
        parts.append(md + "\n" + stated(c))
        blob.update(j)
        bar.update(info=f"train {exp.__name__}")
    tr.write_json(out, blob)
    head = ["# Training", "", f"Small MLPs trained with `varprop.nn` on {data.name} (standardized with the "
            f"training split's statistics), seeds from {seed}. Every claim is judged over seeds against a contrast "
            "trained at the same budget, by the 95% t interval of the paired differences; the validation split "
            "only selects (early stopping), the test split judges.", ""]
    atomic_write_text(os.path.join(out, "training.md"), "\n".join(head + parts))
    rows = [[f"[{c.claim}]({c.link})", c.training, c.evidence, c.verdict] for c in claims]
    md = "\n".join(["## Training", "", "Details, tables and figures: [training.md](training.md).", "",
                    md_table(["claim", "outcome", "evidence", "verdict"], rows), ""])
    return claims, md


# the lecture notes' training practice beyond initialization, each module an EXPERIMENTS tuple like training's
_PRACTICE = ("practice_learning", "practice_augment", "practice_diagnostics")


def _training_experiments() -> tuple:
    import importlib

    from . import training
    extra = tuple(e for name in _PRACTICE for e in importlib.import_module(f"{__name__}.{name}").EXPERIMENTS)
    return tuple(training.EXPERIMENTS) + extra


def _signal(out: str, mode: str, seed: int, bar) -> tuple[list[Claim], str]:
    from . import signal
    return signal.write(out, mode, seed, bar)


def _trainability(out: str, mode: str, seed: int, bar) -> tuple[list[Claim], str]:
    from . import trainability
    # the smoke report (tests) runs its few cells in-process; the others on a Dask LocalCluster when installed
    return trainability.section(out, mode, seed, bar, client="serial" if mode == "smoke" else None)


def _index(claims: list[Claim], sections: list[str], mode: str, seed: int) -> str:
    n = counts(claims)
    rows = [[c.section, f"[{c.claim}]({c.link})" if c.link else c.claim,
             f"{c.quantity}: {c.direction}" if c.quantity else "-", c.test or "-",
             c.derived or "-", c.simulated or c.training or "-", c.evidence or "-", c.verdict] for c in claims]
    return "\n".join([
        "# varprop report", "",
        f"Generated by `varprop report --{mode} --seed {seed}`; regenerating it with the same command gives the "
        "same files. Every number below links to where it comes from.", "",
        f"**{len(claims)} claims: " + ", ".join(f"{v} {k}" for k, v in n.items()) + ".**", "",
        "Each claim states beforehand the quantity it measures and the test that decides it. A claim is "
        "*verified* when the test supports it at the stated level, *refuted* when the test supports the "
        "opposite, and *inconclusive* otherwise (a difference within its noise, a contrast the test cannot "
        "tell apart). Simulations are judged against the theory within 5 standard errors plus the "
        "finite-width bias they name; training claims by a 95% t interval of paired differences over seeds, "
        "against a contrast trained at the same budget, selected on the validation split and judged on the "
        "test split.", "",
        "## Summary", "",
        md_table(["part", "claim", "quantity: claimed direction", "test", "derived", "measured", "evidence",
                  "verdict"], rows), "",
        *sections])


def _steps(mode: str) -> int:
    from . import signal, simulations
    return (len(_derivation_names()) + len(simulations.pairs()) + len(simulations.EXTRA_SECTIONS)
            + len(_training_experiments()) + len(signal.EXPERIMENTS) + 1)


_SECTIONS = [_derivations, _simulations, _training, _signal, _trainability]


def _manifest_files(folder: str) -> list[str]:
    """Every file under ``folder`` as a sorted list of '/'-separated relative paths."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for n in names:
            files.append(os.path.relpath(os.path.join(root, n), folder).replace(os.sep, "/"))
    return sorted(f for f in files if f != MANIFEST)


def _write_manifest(folder: str) -> None:
    from varprop.io import atomic_write_text
    atomic_write_text(os.path.join(folder, MANIFEST), "\n".join([_MANIFEST_HEAD, *_manifest_files(folder)]) + "\n")


def _read_manifest(folder: str) -> set[str] | None:
    path = os.path.join(folder, MANIFEST)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0] != _MANIFEST_HEAD:
        return None
    return set(lines[1:])


def check_out(out) -> str:
    """The absolute report folder for ``out``, or ValueError saying why writing there could lose a user's files.

    Allowed: a path that does not exist yet (its parent must be creatable and writable), an empty folder, or
    a folder a previous report wrote, holding only the files its manifest lists.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> check_out(os.path.join(d, "new")) == os.path.join(os.path.realpath(d), "new")
    True
    >>> _ = open(os.path.join(d, "keep.txt"), "w").write("x")
    >>> check_out(d)
    Traceback (most recent call last):
    ...
    ValueError: --out ... is a folder that is not a varprop report (it holds keep.txt); refusing to replace it: name a new or empty folder
    """
    out = os.fspath(out)
    if out.strip() == "":
        raise ValueError("--out is empty: name the report folder, e.g. --out reports")
    real = os.path.realpath(out)   # a symlinked report folder is replaced where it really is
    if os.path.lexists(real) and not os.path.isdir(real):
        raise ValueError(f"--out {out} exists and is not a folder; refusing to replace it: name a new or empty folder")
    if os.path.isdir(real):
        if os.path.ismount(real) or real == os.path.realpath(os.path.expanduser("~")):
            raise ValueError(f"--out {out} is a mount point or the home folder; name a folder inside it")
        try:
            entries = os.listdir(real)
        except OSError as exc:
            raise ValueError(f"--out {out} cannot be read: {exc.strerror}") from None
        if entries:
            listed = _read_manifest(real)
            present = set(_manifest_files(real))
            if listed is None:
                shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
                raise ValueError(f"--out {out} is a folder that is not a varprop report (it holds {shown}); "
                                 "refusing to replace it: name a new or empty folder")
            extra = sorted(present - listed)
            if extra:
                shown = ", ".join(extra[:3]) + (", ..." if len(extra) > 3 else "")
                raise ValueError(f"--out {out} is a varprop report holding files the report did not write "
                                 f"({shown}); move them out first")
        if os.path.samefile(real, os.getcwd()) or os.path.realpath(os.getcwd()).startswith(real + os.sep):
            raise ValueError(f"--out {out} is the current folder or contains it; name a folder beside it")
    from varprop.io import check_folder
    check_folder(os.path.dirname(real), f"--out {out}: the folder it goes in,")   # exists or creatable, writable
    return real


def _sweep_stale(parent: str, base: str) -> None:
    """Remove the temporary folders a killed report left beside its target (they hold only report files)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for n in names:
        if n.startswith(f".{base}.new-") or n.startswith(f".{base}.old-"):
            path = os.path.join(parent, n)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)


def build(out: str = "reports", mode: str = "quick", seed: int = 0, progress=None) -> list[Claim]:
    """Write the report to ``out`` (replacing it only once the new one is complete); return its claims.

    ``out`` is checked first (:func:`check_out`): a folder that is not a varprop report is never replaced.
    """
    from varprop.io import Progress, atomic_write_text
    if mode not in _ALL_MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0 or seed >= 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    out = check_out(out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    _sweep_stale(parent, os.path.basename(out))
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
        _write_manifest(tmp)
        check_out(out)   # the target may have changed during the run: check again just before the swap
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

"""Render derivations as Markdown (GitHub math), a standalone LaTeX document, or JSON.

Every renderer reads the JSON form ``Derivation.to_dict(digits)`` and nothing else, so the three formats
say the same thing; none writes a date, a path or anything else that changes between runs, so rendering
the same derivations twice gives byte-identical files. Files are written atomically (:mod:`varprop.io`).

Markdown puts inline math between ``$...$`` and display math in ``$$`` blocks, which GitHub renders.
LaTeX is one ``article`` document (amsmath, amssymb) with a section per derivation; it compiles with
pdflatex, and :func:`write` makes the PDF too when a TeX engine is installed. The preamble needs only what
Debian's ``texlive-latex-base`` ships; with ``lmodern`` installed the PDF gets Latin Modern's vector fonts
instead of bitmap EC fonts (the .tex is the same either way).

>>> import sympy as sp
>>> from varprop.derive.derivation import Derivation
>>> d = Derivation("toy", "Toy", "Twice x.")
>>> _ = d.step("double", sp.Symbol("x") + sp.Symbol("x"), 2 * sp.Symbol("x"))
>>> print(markdown(d.to_dict()).splitlines()[0])
# Toy
>>> tex([d.to_dict()]).startswith("\\\\documentclass")
True
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from varprop.io import atomic_write_bytes, atomic_write_text

__all__ = ["FORMATS", "markdown", "tex", "to_json", "render", "index_markdown", "write", "md_to_tex",
           "pdflatex"]

FORMATS = {"md": ".md", "tex": ".tex", "json": ".json"}


# -- JSON ---------------------------------------------------------------------------------------------------
def to_json(data) -> str:
    """One derivation's dict, or a list of them, as JSON with sorted keys."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# -- Markdown -----------------------------------------------------------------------------------------------
def _status(ok: bool) -> str:
    return "verified" if ok else "NOT VERIFIED"


def markdown(d: dict) -> str:
    """One derivation as a Markdown document with GitHub math."""
    out = [f"# {d['title']}", "", d["summary"], "",
           f"`varprop derive {d['name']}`: {_status(d['verified'])}, {len(d['steps'])} steps, "
           f"numbers to {d['digits']} significant digits.", ""]
    if d["assumptions"]:
        out += ["## Assumptions", ""]
        for a in d["assumptions"]:
            used = ", ".join(str(i) for i in a["used_in"]) or "none"
            out.append(f"- **{a['key']}**: {a['text']} (used in step {used})")
        out.append("")
    out += ["## Derivation", ""]
    for i, s in enumerate(d["steps"], 1):
        for p in s["prose"]:
            out += [p, ""]
        uses = f" Uses: {', '.join(s['uses'])}." if s["uses"] else ""
        out += [f"**Step {i}. {s['title']}.**{uses}", "", "$$", s["latex"], "$$", ""]
        if s["because"]:
            out += ["*Why:* " + s["because"], ""]
        out += [f"*Check: {_status(s['verified'])} ({s['method']}"
                + _spots(s["spot_checks"]) + ").*", ""]
    for p in d["epilogue"]:
        out += [p, ""]
    out += _markdown_results(d)
    if d["comparisons"]:
        out += ["## Comparison with published values", "",
                "| quantity | derived | published | relative difference | source |",
                "|---|---|---|---|---|"]
        for c in d["comparisons"]:
            rel = "n/a" if c["relative_difference"] is None else c["relative_difference"]
            out.append(f"| {c['name']} | {c['derived']} | {c['published']} | {rel} | {c['source']} |")
        out.append("")
    if d["problems"]:
        out += ["## Problems", ""] + [f"- {p}" for p in d["problems"]] + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def _markdown_results(d: dict) -> list[str]:
    res = d["result"]
    names = [k for k in res if k != "latex"]
    if not names:
        return []
    out = ["## Result", "", "| name | value | expression |", "|---|---|---|"]
    for k in sorted(names):
        lx = res["latex"].get(k, "")
        lx = "" if lx == res[k] else lx          # a plain number needs no second column
        out.append(f"| `{k}` | {_md_cell(res[k])} | ${_md_math_cell(lx)}$ |" if lx
                   else f"| `{k}` | {_md_cell(res[k])} | |")
    return out + [""]


def _spots(k: int) -> str:
    return "" if not k else "; 1 numeric spot check" if k == 1 else f"; {k} numeric spot checks"


def _md_math_cell(latex: str) -> str:
    # a bare | would end the table cell: write norms and bars as \Vert and \vert
    return latex.replace("\\|", "\\Vert ").replace("|", "\\vert ")


def _md_cell(text: str) -> str:
    # a symbolic value (SymPy's string form, with ** and _) goes in code so Markdown leaves it alone
    if re.fullmatch(r"[-+0-9.eE]+", text):
        return text
    return "`" + text.replace("|", "\\|") + "`"


def index_markdown(ds: list[dict], ext: str = ".md") -> str:
    """A table of the derivations with links to their files."""
    out = ["# Derivations", "",
           "Each derivation states its assumptions, and every step is checked exactly by SymPy "
           "(numeric spot checks on top). Regenerate with `varprop derive all --format md --out DIR`.", "",
           "| derivation | title | steps | status |", "|---|---|---|---|"]
    for d in ds:
        out.append(f"| [{d['name']}]({d['name']}{ext}) | {d['title']} | {len(d['steps'])} | "
                   f"{_status(d['verified'])} |")
    return "\n".join(out) + "\n"


# -- LaTeX --------------------------------------------------------------------------------------------------
_TEX_SPECIAL = {"&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}
_MATH = re.compile(r"(\$\$.+?\$\$|\$[^$]+?\$)", re.S)


def _escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(c, c) for c in text)


def md_to_tex(text: str) -> str:
    """The small Markdown subset the derivations write (math, **bold**, *italic*, `code`) as LaTeX."""
    out = []
    for part in _MATH.split(text):
        if part.startswith("$$"):
            out.append("\\[" + part[2:-2] + "\\]")
        elif part.startswith("$") and part.endswith("$") and len(part) > 1:
            out.append(part)
        else:
            out.append(_inline_tex(part))
    return "".join(out)


def _inline_tex(text: str) -> str:
    pieces = re.split(r"(`[^`]+`)", text)
    out = []
    for p in pieces:
        if p.startswith("`") and p.endswith("`") and len(p) > 1:
            out.append(r"\texttt{" + _escape(p[1:-1]) + "}")
            continue
        e = _escape(p)
        e = re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", e)
        e = re.sub(r"\*(.+?)\*", r"\\emph{\1}", e)
        out.append(e)
    return "".join(out)


_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[T1]{fontenc}
\usepackage[utf8]{inputenc}
\IfFileExists{lmodern.sty}{\usepackage{lmodern}}{}
\usepackage{amsmath,amssymb}
\usepackage[margin=2cm]{geometry}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5em}
\emergencystretch=3em
"""


def tex(ds: list[dict], title: str | None = None) -> str:
    """A standalone LaTeX document with one section per derivation."""
    if title is None:
        title = ds[0]["title"] if len(ds) == 1 else "Variance-preservation derivations"
    out = [_PREAMBLE.rstrip("\n"), r"\title{" + _escape(title) + "}", r"\date{}", r"\begin{document}",
           r"\maketitle"]
    for d in ds:
        out += _tex_section(d)
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


def _tex_section(d: dict) -> list[str]:
    out = ["", r"\section{" + _escape(d["title"]) + "}", md_to_tex(d["summary"]), "",
           r"\texttt{varprop derive " + _escape(d["name"]) + "}: " + _escape(_status(d["verified"]))
           + f", {len(d['steps'])} steps."]
    if d["assumptions"]:
        out += ["", r"\subsection*{Assumptions}", r"\begin{itemize}"]
        for a in d["assumptions"]:
            used = ", ".join(str(i) for i in a["used_in"]) or "none"
            out.append(r"\item \textbf{" + _escape(a["key"]) + "}: " + md_to_tex(a["text"])
                       + f" (used in step {used})")
        out.append(r"\end{itemize}")
    out += ["", r"\subsection*{Derivation}"]
    for i, s in enumerate(d["steps"], 1):
        for p in s["prose"]:
            out += [md_to_tex(p), ""]
        uses = f" Uses: {_escape(', '.join(s['uses']))}." if s["uses"] else ""
        out += [r"\textbf{Step " + str(i) + ". " + md_to_tex(s["title"]) + ".}" + uses,
                r"\begin{equation*}", _tex_display(s["latex"]), r"\end{equation*}"]
        if s["because"]:
            out += [r"\emph{Why:} " + md_to_tex(s["because"]), ""]
        spots = _spots(s["spot_checks"])
        out += [r"{\small\emph{Check: " + _escape(_status(s["verified"])) + " (" + _escape(s["method"])
                + spots + ").}}", ""]
    for p in d["epilogue"]:
        out += [md_to_tex(p), ""]
    res = d["result"]
    names = sorted(k for k in res if k != "latex")
    if names:
        out += [r"\subsection*{Result}", r"\begin{itemize}"]
        for k in names:
            lx = res["latex"].get(k)
            expr = f": ${lx}$" if lx and lx != res[k] else ""
            out.append(r"\item \texttt{" + _escape(k) + "}" + expr + r" \quad (" + _escape(res[k]) + ")")
        out.append(r"\end{itemize}")
    if d["comparisons"]:
        out += [r"\subsection*{Comparison with published values}", r"\begin{itemize}"]
        for c in d["comparisons"]:
            rel = "n/a" if c["relative_difference"] is None else c["relative_difference"]
            out.append(r"\item " + _escape(f"{c['name']}: derived {c['derived']}, published {c['published']} "
                                           f"({c['source']}), relative difference {rel}"))
        out.append(r"\end{itemize}")
    if d["problems"]:
        out += [r"\subsection*{Problems}", r"\begin{itemize}"]
        out += [r"\item " + _escape(p) for p in d["problems"]]
        out.append(r"\end{itemize}")
    return out


def _tex_display(latex: str) -> str:
    # long chains of equalities break at their top-level "=" signs so they fit the page
    if len(latex) < 110 or r"\begin" in latex:
        return latex
    parts = _split_top_level(latex, " = ")
    if len(parts) < 2:
        return latex
    return r"\begin{split}" + parts[0] + " &= " + r" \\ &= ".join(parts[1:]) + r"\end{split}"


def _split_top_level(s: str, sep: str) -> list[str]:
    out, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0 and s.startswith(sep, i) and not _inside_left_right(s[start:i]):
            out.append(s[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    out.append(s[start:])
    return out


def _inside_left_right(prefix: str) -> bool:
    return prefix.count(r"\left") != prefix.count(r"\right")


# -- dispatch and files -------------------------------------------------------------------------------------
def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return fmt


def render(ds: list[dict], fmt: str) -> str:
    """Everything in one text: Markdown documents one after another, one LaTeX document, or JSON (an
    object for one derivation, a list for several)."""
    _check_format(fmt)
    if fmt == "md":
        return "\n".join(markdown(d) for d in ds)
    if fmt == "tex":
        return tex(ds)
    return to_json(ds[0] if len(ds) == 1 else ds)


def pdflatex() -> str | None:
    """The pdflatex executable, or None when no TeX engine is installed."""
    return shutil.which("pdflatex")


def _compile_pdf(source: str, engine: str) -> bytes | None:
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "doc.tex")
        with open(src, "w", encoding="utf-8") as f:
            f.write(source)
        # a fixed date and trailer id keep the PDF byte-identical between runs
        env = dict(os.environ, SOURCE_DATE_EPOCH="0", FORCE_SOURCE_DATE="1")
        for _ in range(2):  # twice, so that references settle
            r = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, env=env)
            if r.returncode != 0:
                tail = r.stdout.decode(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError("pdflatex failed: " + " | ".join(tail))
        with open(os.path.join(tmp, "doc.pdf"), "rb") as f:
            return f.read()


def _write_pdf(path, source: str, engine: str) -> list[str]:
    """The PDF beside its .tex, or a one-line warning when the TeX engine fails (the .tex stays)."""
    try:
        return [atomic_write_bytes(path, _compile_pdf(source, engine))]
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"varprop: warning: no PDF for {os.path.basename(path)}: {exc}", file=sys.stderr)
        return []


def write(ds: list[dict], fmt: str, out_dir, index: bool = False, pdf: bool = True) -> list[str]:
    """One file per derivation (NAME.md / NAME.tex / NAME.json) and, with ``index``, an index file
    (index.md, all.tex or index.json). With a TeX engine installed, LaTeX files get their PDF beside them."""
    _check_format(fmt)
    ext = FORMATS[fmt]
    paths = []
    engine = pdflatex() if (fmt == "tex" and pdf) else None
    for d in ds:
        path = os.path.join(out_dir, d["name"] + ext)
        text = markdown(d) if fmt == "md" else tex([d]) if fmt == "tex" else to_json(d)
        paths.append(atomic_write_text(path, text))
        if engine:
            paths += _write_pdf(os.path.join(out_dir, d["name"] + ".pdf"), text, engine)
    if index:
        if fmt == "md":
            paths.append(atomic_write_text(os.path.join(out_dir, "index.md"), index_markdown(ds, ext)))
        elif fmt == "tex":
            text = tex(ds)
            paths.append(atomic_write_text(os.path.join(out_dir, "all.tex"), text))
            if engine:
                paths += _write_pdf(os.path.join(out_dir, "all.pdf"), text, engine)
        else:
            summary = [{"name": d["name"], "title": d["title"], "verified": d["verified"],
                        "file": d["name"] + ext} for d in ds]
            paths.append(atomic_write_text(os.path.join(out_dir, "index.json"), to_json(summary)))
    return paths

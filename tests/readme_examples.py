"""The README's examples, run: each ```console block's ``$ varprop ...`` commands and the output shown.

A console block holds one or more commands, each a line starting with ``$ `` (continued by a trailing
backslash), followed by the output the program prints. The examples cannot drift: ``tests/test_readme.py``
runs every command and compares its output with the block's (whitespace normalized; numbers exactly, as
seeds are fixed; only a run's elapsed seconds are masked), and

    python tests/readme_examples.py --update

rewrites every block's output from the program and writes the figures its ``--plot`` options name (paths
relative to the repository root), so the README shows the figure its command makes.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = "```console"


@dataclass
class Example:
    start: int             # index of the first command line in the README's lines
    end: int               # index one past the last output line
    command: list[str]     # argv after "varprop"
    shown: list[str]       # the output lines in the README
    source: list[str]      # the command's README lines, as written


def examples(text: str) -> list[Example]:
    """Every ``$ varprop`` command of every console block, with the output shown under it."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() != FENCE:
            i += 1
            continue
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            if not lines[i].startswith("$ "):
                raise ValueError(f"README line {i + 1}: a console block must start with a '$ ' command")
            start, source = i, [lines[i]]
            cmd = lines[i][2:]
            while cmd.endswith("\\"):
                i += 1
                source.append(lines[i])
                cmd = cmd[:-1] + " " + lines[i].strip()
            i += 1
            shown = []
            while i < len(lines) and lines[i].strip() != "```" and not lines[i].startswith("$ "):
                shown.append(lines[i])
                i += 1
            argv = shlex.split(cmd)
            if not argv or argv[0] != "varprop":
                raise ValueError(f"README line {start + 1}: examples run varprop, got {cmd!r}")
            out.append(Example(start, i, argv[1:], shown, source))
        i += 1
    return out


def plot_path(argv: list[str]) -> str | None:
    for j, a in enumerate(argv):
        if a == "--plot" and j + 1 < len(argv):
            return argv[j + 1]
        if a.startswith("--plot="):
            return a.split("=", 1)[1]
    return None


def with_plot(argv: list[str], path: str) -> list[str]:
    out = list(argv)
    for j, a in enumerate(out):
        if a == "--plot":
            out[j + 1] = path
        elif a.startswith("--plot="):
            out[j] = "--plot=" + path
    return out


def run(argv: list[str]) -> list[str]:
    """The stdout lines of ``varprop ARGV`` run in this process (exit status 0 required)."""
    from varprop.cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(list(argv))
    if code != 0:
        raise RuntimeError(f"varprop {' '.join(argv)} exited with {code}")
    return buf.getvalue().rstrip("\n").splitlines()


_ELAPSED = re.compile(r"(, )\d+(?:\.\d+)? s$")   # "20 trials, engine gaussian, seed 0, 4.62 s"


def normalize(lines: list[str]) -> list[str]:
    """Whitespace runs as one space, no blank edges, elapsed seconds masked."""
    out = [_ELAPSED.sub(r"\1<elapsed> s", " ".join(line.split())) for line in lines]
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return out


def update(path: Path = README) -> int:
    """Rewrite every example's output from the program; write the figures the commands name."""
    lines = path.read_text(encoding="utf-8").splitlines()
    exs = examples("\n".join(lines))
    cwd = os.getcwd()
    os.chdir(ROOT)           # --plot paths are relative to the repository root
    try:
        for ex in reversed(exs):
            got = run(ex.command)
            lines[ex.start:ex.end] = ex.source + got
    finally:
        os.chdir(cwd)
    from varprop.io import atomic_write_text
    atomic_write_text(path, "\n".join(lines) + "\n")
    return len(exs)


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Regenerate the README's console examples from the program.")
    ap.add_argument("--update", action="store_true", help="rewrite README.md's example outputs and figures")
    args = ap.parse_args(argv)
    if not args.update:
        ap.error("nothing to do: pass --update (tests/test_readme.py checks the examples)")
    n = update()
    print(f"updated {n} examples in {README.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

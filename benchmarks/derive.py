"""Time `varprop derive all` in every format (the issue asks for under 30 s on 2 cores).

Each run is a fresh process, as a user runs it: `varprop derive all --format FMT --out DIR`. After one
warm-up run (byte-compiled files, SymPy's own caches on disk are none), the script reports the median wall
and CPU time per format over --repeat runs, the process start-up (Python + SymPy + varprop imports)
measured side by side as the floor, and an in-process breakdown per derivation (build, then render).
Nothing here is JIT-compiled, so there is no compile time to exclude.

    python benchmarks/derive.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

FORMATS = ("md", "tex", "json")
BUDGET = 30.0


def _run(argv) -> tuple[float, float]:
    """(wall, cpu) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _cli(fmt, out):
    return [sys.executable, "-m", "varprop", "derive", "all", "--format", fmt, "--out", out]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per format (default 3)")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the in-process per-derivation timing")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        _run(_cli("md", os.path.join(tmp, "warm")))
        start = [_run([sys.executable, "-c", "import sympy, mpmath, scipy.integrate, varprop.derive.derivations"])
                 for _ in range(args.repeat)]
        print(f"{'start-up (imports)':<22} wall {statistics.median(w for w, _ in start):6.2f} s   "
              f"cpu {statistics.median(c for _, c in start):6.2f} s")
        for fmt in FORMATS:
            runs = [_run(_cli(fmt, os.path.join(tmp, f"{fmt}{i}"))) for i in range(args.repeat)]
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(f"{'derive all --format ' + fmt:<22} wall {wall:6.2f} s   cpu {cpu:6.2f} s   "
                  f"wall/budget {wall / BUDGET:5.2f}   runs {len(runs)}")
    if not args.no_breakdown:
        _breakdown()
    return 0


def _breakdown() -> None:
    from varprop.derive import derivations, render
    print("in-process, one run each (build = SymPy derivation and checks; render = all three formats):")
    total = 0.0
    for name in derivations.names():
        t = time.process_time()
        d = derivations.build(name).to_dict(15)
        build = time.process_time() - t
        t = time.process_time()
        for fmt in FORMATS:
            render.render([d], fmt)
        rend = time.process_time() - t
        total += build + rend
        print(f"  {name:<18} build {build:6.2f} s cpu   render {rend * 1e3:7.1f} ms cpu   "
              f"{'verified' if d['verified'] else 'NOT VERIFIED'}")
    print(f"  {'total':<18} {total:6.2f} s cpu")


if __name__ == "__main__":
    raise SystemExit(main())

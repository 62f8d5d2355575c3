"""Time the whole gain table (every registered activation, forward and backward) at 15 and 30 digits.

Run: python benchmarks/gains.py [--repeats N]

A cold run pays for SymPy's closed-form integrations (cached in-process afterwards); a warm run is
what a second table in the same process costs. Both are reported, as medians over fresh processes for
the cold figure and over repeats for the warm one. There is no peer: no library computes these gains.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

_CHILD = """
import time, json
t0 = time.perf_counter()
from varprop.derive.gains import gain_table
t1 = time.perf_counter()
rows = gain_table(digits={digits})
t2 = time.perf_counter()
rows = gain_table(digits={digits})
t3 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "cold_s": t2 - t1, "warm_s": t3 - t2, "n": len(rows),
                   "closed": sum(r.second.method == "closed form" for r in rows)}}))
"""


def measure(digits: int, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _CHILD.format(digits=digits)], capture_output=True, text=True,
                             check=True)
        runs.append(json.loads(out.stdout))
    return {
        "digits": digits,
        "activations": runs[0]["n"],
        "closed_second_moments": runs[0]["closed"],
        "import_s": statistics.median(r["import_s"] for r in runs),
        "cold_s": statistics.median(r["cold_s"] for r in runs),
        "warm_s": statistics.median(r["warm_s"] for r in runs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'digits':>6} {'activations':>11} {'cold (s)':>9} {'warm (s)':>9} {'import (s)':>10}")
    for digits in (15, 30):
        r = measure(digits, args.repeats)
        print(f"{r['digits']:>6} {r['activations']:>11} {r['cold_s']:>9.2f} {r['warm_s']:>9.2f} {r['import_s']:>10.3f}")


if __name__ == "__main__":
    main()

"""``varprop report``: derive, simulate and train every claim of the lecture notes; write reports/."""
from __future__ import annotations

HELP = "derive, simulate and train every condition end to end; write the report folder"
DESCRIPTION = ("Writes OUT/README.md (a summary table of every claim with its verdict) and, linked from it, the "
               "derivations (Markdown and LaTeX), theory against simulation, and the training experiments. "
               "Deterministic for a seed; the previous report is replaced only when the new one is complete.")


def add_arguments(p):
    p.add_argument("--out", default="reports",
                   help="output folder (default: reports); it must be new, empty, or an earlier report")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="the default: embedded data (digits), fewer trials; a few minutes on 2 cores")
    g.add_argument("--full", dest="mode", action="store_const", const="full",
                   help="Fashion-MNIST when installed, more trials and epochs")
    p.set_defaults(mode="quick")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")


def run(args) -> int:
    import sys

    from varprop.report import build, check_out
    if not 0 <= args.seed < 2**63:
        raise ValueError(f"--seed must be an integer in [0, 2**63), got {args.seed}")
    check_out(args.out)   # refused before any work: a folder of the user's is never replaced
    claims = build(args.out, args.mode, args.seed)
    from varprop.report.claims import counts
    n = counts(claims)
    print(f"{args.out}/README.md: {len(claims)} claims: " + ", ".join(f"{k} {v}" for k, v in n.items()),
          file=sys.stdout)
    for c in claims:
        if not c.verified:
            print(f"  {c.verdict}: {c.claim}", file=sys.stdout)
    return 0

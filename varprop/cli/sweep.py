"""``varprop sweep``: grids of simulate, train or phase cells on Dask distributed, and their heat maps."""
from __future__ import annotations

import sys

HELP = "run a grid of simulations, trainings or mean-field cells on Dask (a LocalCluster or a scheduler)"
DESCRIPTION = (
    "varprop sweep simulate|train|phase --grid KEY=SPEC ... [--fixed KEY=VALUE ...] --out DIR runs every cell "
    "of the grid as one Dask task and writes each finished cell to DIR/cells/ (atomically, once), the manifest "
    "to DIR/sweep.json and the table to DIR/results.csv. SPEC is a:b:n (linear), log:a:b:n or a list 1,2,4; any "
    "option of the underlying command is a key (sigma_b2 or sigma-b2), plus depth, width and sigma_w2. Without "
    "--scheduler a LocalCluster of --workers processes (default one per core, one thread each) runs the cells; "
    "with --scheduler tcp://HOST:PORT an existing cluster does (its workers need varprop installed). --resume "
    "computes only the cells without a file. varprop sweep plot DIR --x depth --y sigma_w2 --z test_acc draws "
    "a heat map. Needs the sweep extra: pip install \"varprop[sweep]\"."
)


def add_arguments(p):
    sub = p.add_subparsers(dest="sweep_kind", metavar="KIND", parser_class=p.__class__)
    for kind, text in (("simulate", "cells of `varprop simulate` (random networks at initialization)"),
                       ("train", "cells of `varprop train` (MLP trainings)"),
                       ("phase", "mean-field cells: q*, chi_1, xi_q, xi_c at (activation, sigma_w2, sigma_b2)")):
        s = sub.add_parser(kind, help=text, description=text)
        s.add_argument("--grid", action="append", default=[], metavar="KEY=SPEC",
                       help="a grid axis: KEY=a:b:n, KEY=log:a:b:n or KEY=v1,v2,... (repeatable)")
        s.add_argument("--fixed", action="append", default=[], metavar="KEY=VALUE",
                       help="an option every cell shares, e.g. --fixed activation=tanh (repeatable)")
        s.add_argument("--out", required=True, metavar="DIR", help="the sweep's folder")
        s.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="a running Dask scheduler (default: start a LocalCluster)")
        s.add_argument("--workers", type=int, default=None,
                       help="LocalCluster workers (default one per core); with --scheduler, wait for this many")
        s.add_argument("--serial", action="store_true", help="run the cells one by one in this process (no Dask)")
        s.add_argument("--resume", action="store_true", help="compute only the cells DIR does not have yet")
        s.add_argument("--seed", type=int, default=None,
                       help="the sweep seed; each cell's is derived from it (default 0, or the resumed sweep's)")
        s.add_argument("--max-cells", type=int, default=10000, help="refuse grids of more cells (10000)")
        s.add_argument("--timeout", type=float, default=10.0, help="seconds to reach the scheduler (10)")
        s.set_defaults(_sweep=_run_sweep)
    tr = sub.add_parser("trainability", help="Schoenholz et al. 2017's trainability sweep and its c xi_c fit",
                        description="trains tanh MLPs (sigma_b^2 = 0.05) over sigma_w2 and depth for a fixed budget, "
                                    "fits the trainable region's boundary depth = c xi_c (c with a bootstrap "
                                    "interval) and gives a verdict on the paper's c = 6")
    tr.add_argument("--mode", default="quick", choices=("quick", "full", "smoke"),
                    help="quick: digits, 32 cells, a few minutes on 2 cores; full: MNIST-1D, 143 cells, "
                         "about 17 minutes (default quick)")
    tr.add_argument("--out", required=True, metavar="DIR", help="the sweep's folder (rerun to finish it)")
    tr.add_argument("--figure", metavar="FILE.png", help="the heat map with 6 xi_c and the fitted c xi_c")
    tr.add_argument("--json", metavar="FILE", help="write the fit and the cells as JSON")
    tr.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="a running Dask scheduler")
    tr.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default one per core)")
    tr.add_argument("--serial", action="store_true", help="run the cells one by one in this process (no Dask)")
    tr.add_argument("--seed", type=int, default=0, help="the sweep seed (0)")
    tr.set_defaults(_sweep=_run_trainability)
    pl = sub.add_parser("plot", help="a heat map of one metric over two axes of a sweep",
                        description="a heat map of one metric (--z) over two grid axes (--x, --y) of the sweep in "
                                    "DIR; other axes are averaged over. --overlay 6xi_c draws 6 xi_c(sigma_w2) "
                                    "from derive/mean_field.")
    pl.add_argument("dir", metavar="DIR")
    pl.add_argument("--x", required=True, help="the grid axis along x (e.g. depth)")
    pl.add_argument("--y", required=True, help="the grid axis along y (e.g. sigma_w2)")
    pl.add_argument("--z", required=True, help="the metric drawn (e.g. test_acc)")
    pl.add_argument("--overlay", action="append", default=[], metavar="CXI",
                    help="a depth-scale curve: xi_c, 6xi_c, 3xi_q ... (needs depth and sigma_w2 axes; repeatable)")
    pl.add_argument("--out", required=True, metavar="FILE.png", help="the PNG to write")
    pl.add_argument("--dpi", type=int, default=200, help="resolution (>= 200; default 200)")
    pl.set_defaults(_sweep=_run_plot)


def _run_sweep(args) -> int:
    from varprop.sweep import SweepError, run
    if args.serial and args.scheduler:
        raise ValueError("--serial and --scheduler exclude each other")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if not args.grid and not args.resume:
        raise ValueError("a sweep needs at least one --grid KEY=SPEC")
    client = "serial" if args.serial else args.scheduler
    try:
        r = run(args.sweep_kind, args.grid or None, args.fixed if (args.fixed or not args.resume) else None,
                args.out, client, seed=args.seed, workers=args.workers, resume=args.resume,
                max_cells=args.max_cells, timeout=args.timeout)
    except SweepError as exc:
        print(exc.result.summary(), file=sys.stderr)
        print(f"varprop: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"varprop: interrupted; the finished cells are in {args.out}; finish with --resume", file=sys.stderr)
        return 130
    print(r.summary())
    return 0


def _run_trainability(args) -> int:
    from varprop.io import atomic_write_text
    from varprop.sweep import trainability
    if args.serial and args.scheduler:
        raise ValueError("--serial and --scheduler exclude each other")
    if args.figure and not args.figure.lower().endswith(".png"):
        raise ValueError(f"--figure must name a .png file, got {args.figure!r}")
    t = trainability(args.out, args.mode, "serial" if args.serial else args.scheduler, seed=args.seed,
                     figure=args.figure, workers=args.workers)
    print(t.sweep.summary())
    c = "-" if t.c != t.c else f"{t.c:.3g} (95% interval {t.c_low:.3g} to {t.c_high:.3g}; the paper's 6)"
    print(f"boundary depth = c xi_c: c = {c}; misclassified {t.errors} of {t.n} cells "
          f"(a fixed depth: {t.errors_depth_only})")
    print(f"verdict: {t.verdict}: {t.reason}")
    if args.json:
        from varprop.sweep.store import dumps
        atomic_write_text(args.json, dumps(t.to_dict()))
    return 0


def _run_plot(args) -> int:
    from varprop.sweep.plot import heatmap
    path = heatmap(args.dir, x=args.x, y=args.y, z=args.z, overlay=args.overlay, out=args.out, dpi=args.dpi)
    print(f"wrote {path}")
    return 0


def run(args) -> int:
    from varprop.cli import UsageError
    if not getattr(args, "_sweep", None):
        raise UsageError("sweep: name a kind: simulate, train, phase or plot (varprop sweep --help)")
    try:
        return args._sweep(args)
    except ImportError as exc:
        if "varprop[sweep]" in str(exc):
            raise UsageError(str(exc)) from None
        raise

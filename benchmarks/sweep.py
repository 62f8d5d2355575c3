"""Sweep throughput on Dask: one worker against two on the trainability grid, and the per-cell overhead.

The grid is :data:`varprop.sweep.trainability.PRESETS` ``[--grid]`` (quick: 40 training cells of digits,
tanh, depth 4-64). For each worker count a LocalCluster (processes, one thread each) is started and warmed
up (every worker compiles or loads the Numba kernels on a two-cell sweep, not timed), then the whole grid is
run into a fresh folder. The worker counts take turns (1, 2, 1, 2, ...: ``--repeat`` rounds, with a pause
between turns) so that a change in the machine's load hits both; medians are reported.

* throughput: cells per second, and the ratio of the two-worker rate to the one-worker rate;
* scheduling overhead per cell, on one worker: (wall time - the sum of the cells' own elapsed times) /
  cells, as a fraction of the mean cell time. It counts submission, transfer of the description and the
  result, and the client's atomic write of each cell;
* the machine's own ceiling for that ratio: the same fixed piece of work (float32 matrix products of a
  cell's shapes on one BLAS thread, no varprop code, no Dask in the timing) run once on one worker, then
  once on each of two workers at the same time, in the same rounds: ``2 t_one / t_two``. Two vCPUs that
  are hyper-threads of one core give far less than 2; a sweep cannot scale past what this measures.

Usage: ``python benchmarks/sweep.py [--grid quick|smoke] [--repeat N] [--json FILE]``.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time


def _cluster(n):
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    return cluster, Client(cluster)


def _sweep(client, grid, fixed, out):
    from varprop.sweep import run
    t0 = time.perf_counter()
    r = run("train", grid, fixed, out, client, progress=False)
    wall = time.perf_counter() - t0
    busy = sum(row["elapsed_s"] for row in r.rows)
    return {"cells": len(r.rows), "wall_s": wall, "cell_s_sum": busy, "cells_per_s": len(r.rows) / wall,
            "workers_used": len({row["worker"] for row in r.rows})}


def _probe(iterations: int) -> float:
    """Seconds of ``iterations`` float32 products (256 x 256 by 256 x 64, a trainability cell's shapes) on one
    BLAS thread: pure compute, the same work wherever it runs."""
    import numpy as np
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        rng = np.random.default_rng(0)
        a = rng.standard_normal((256, 256), dtype=np.float32)
        b = rng.standard_normal((256, 64), dtype=np.float32)
        out = np.empty((256, 64), np.float32)
        for _ in range(20):
            np.matmul(a, b, out=out)
        t = time.perf_counter()
        for _ in range(iterations):
            np.matmul(a, b, out=out)
        return time.perf_counter() - t


def _capacity(clusters, iterations) -> dict:
    """One probe on the one-worker cluster, then one on each worker of the two-worker cluster at once."""
    one = clusters[1][1].submit(_probe, iterations, pure=False).result()
    client = clusters[2][1]
    workers = list(client.scheduler_info()["workers"])
    futs = [client.submit(_probe, iterations, workers=[w], pure=False) for w in workers[:2]]
    two = max(f.result() for f in futs)      # each probe times itself: the pair's span is the slower one
    return {"one_s": one, "two_s": two, "ratio": 2 * one / two}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", default="quick", choices=("quick", "smoke", "full"))
    p.add_argument("--repeat", type=int, default=2, help="rounds of (1 worker, 2 workers) (default 2)")
    p.add_argument("--pause", type=float, default=2.0, help="seconds between turns (default 2)")
    p.add_argument("--json", default=None, help="also write the results as JSON (atomically)")
    p.add_argument("--probe-iterations", type=int, default=20000,
                   help="matrix products per capacity probe (default 20000, about 2 s)")
    args = p.parse_args(argv)
    try:
        import distributed  # noqa: F401
    except ImportError:
        print('needs Dask distributed: pip install "varprop[sweep]"', file=sys.stderr)
        return 2
    from varprop.sweep.trainability import _SHARED, PRESETS
    grid, fixed = PRESETS[args.grid]
    fixed = {**_SHARED, **fixed}
    warm = {"sigma_w2": "1.5,2", "depth": "4"}
    results = {1: [], 2: []}
    probes = []
    clusters = {n: _cluster(n) for n in (1, 2)}
    try:
        for n, (_, client) in clusters.items():
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as d:
                client.run(lambda: None)
                from varprop.sweep import run
                run("train", warm, fixed, f"{d}/warm", client, progress=False)
            print(f"{n} worker(s): warm-up (start, compile or cache load) {time.perf_counter() - t0:.1f} s",
                  flush=True)
        for k in range(args.repeat):
            for n, (_, client) in clusters.items():
                with tempfile.TemporaryDirectory() as d:
                    res = _sweep(client, grid, fixed, f"{d}/s")
                results[n].append(res)
                print(f"round {k + 1}, {n} worker(s): {res['cells']} cells in {res['wall_s']:.2f} s, "
                      f"{res['cells_per_s']:.3f} cells/s", flush=True)
                time.sleep(args.pause)
            probes.append(_capacity(clusters, args.probe_iterations))
            print(f"round {k + 1}, capacity probe: one worker {probes[-1]['one_s']:.2f} s, two at once "
                  f"{probes[-1]['two_s']:.2f} s -> {probes[-1]['ratio']:.2f}x", flush=True)
            time.sleep(args.pause)
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
    med = {n: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "cell_s_sum", "cells_per_s")}
           for n, rs in results.items()}
    cells = results[1][0]["cells"]
    overhead = (med[1]["wall_s"] - med[1]["cell_s_sum"]) / cells
    mean_cell = med[1]["cell_s_sum"] / cells
    speedup = med[2]["cells_per_s"] / med[1]["cells_per_s"]
    print(f"grid {args.grid}: {cells} cells")
    print(f"  1 worker : {med[1]['cells_per_s']:.3f} cells/s (median of {args.repeat})")
    print(f"  2 workers: {med[2]['cells_per_s']:.3f} cells/s, {speedup:.2f}x one worker")
    print(f"  scheduling overhead per cell (1 worker): {overhead * 1e3:.1f} ms = {100 * overhead / mean_cell:.2f}% "
          f"of the mean cell time ({mean_cell:.3f} s)")
    ceiling = statistics.median(p["ratio"] for p in probes)
    print(f"  the machine's ceiling (capacity probe, median of {len(probes)}): {ceiling:.2f}x; "
          f"the sweep reaches {speedup / ceiling:.0%} of it")
    if args.json:
        from varprop.io import atomic_write_text
        atomic_write_text(args.json, json.dumps({"grid": args.grid, "cells": cells, "runs": results,
                                                 "median": med, "speedup_2_over_1": speedup,
                                                 "capacity_probes": probes, "capacity_ratio": ceiling,
                                                 "overhead_s_per_cell": overhead, "mean_cell_s": mean_cell},
                                                indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

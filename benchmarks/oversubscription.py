"""A training epoch beside a competing CPU-bound process: varprop's thread choice against the defaults.

The workload of ``benchmarks/train.py`` (MLP n_in-256-256-10, ReLU, He-normal, Adam, batch 128, float32):
Fashion-MNIST when its IDX files are installed, else random data of the same shape (784 features, 10
classes, ``--samples`` rows). Each measurement is a fresh process that trains one warm-up epoch (compile and
cache loads) and then times ``--epochs`` epochs; the settings are interleaved, turn by turn:

* ``unloaded``           nothing else running, varprop's choice (varprop.threads)
* ``unloaded 1 thread``  nothing else running, ``OPENBLAS_NUM_THREADS=1``
* ``loaded all``         beside one busy process, every pool at every core (``VARPROP_THREADS=<cores>``,
                         what a run did before varprop chose its thread counts)
* ``loaded 1 thread``    beside one busy process, ``OPENBLAS_NUM_THREADS=1``
* ``loaded auto``        beside one busy process, varprop's choice

The competitor is a Python busy loop in its own process (``yes > /dev/null`` in effect). On c cores it
takes one core's share, so a run that loses no more than that share takes at most c/(c-1) times its
unloaded time; the last column says whether each loaded setting stays within it.

Usage: ``python benchmarks/oversubscription.py [--samples N] [--epochs N] [--repeats N] [--json FILE]``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

_CHILD = r"""
import json, sys, time
import numpy as np
from varprop import threads
from varprop.nn import Trainer, build_mlp, data
samples, epochs, seed = int(sys.argv[1]), int(sys.argv[2]), 0
if data.fashion_mnist_available():
    ds = data.load("fashion-mnist", seed=seed)
    X, y, name = ds.X_train, ds.y_train, "fashion-mnist"
else:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, 784)).astype(np.float32)
    y = rng.integers(0, 10, samples)
    name = f"random {samples} x 784"
net = build_mlp(X.shape[1], [256, 256], 10, activation="relu", init="he_normal", seed=seed)
seen = []
t = Trainer(net, "cross_entropy", "adam", batch_size=128, epochs=1 + epochs, progress=False,
            callback=lambda rec: seen.append((time.perf_counter(), threads.current())))
t.fit(X, y, X[:1000], y[:1000], max_epochs=1)            # warm-up: compile, cache loads, first touches
start = time.perf_counter()
t.fit(X, y, X[:1000], y[:1000])
stamps = [start] + [s for s, _ in seen[1:]]
per_epoch = [b - a for a, b in zip(stamps[:-1], stamps[1:])]
print(json.dumps({"data": name, "epoch_s": sorted(per_epoch)[len(per_epoch) // 2],
                  "threads": seen[-1][1], "plan": list(threads.plan("blas"))}))
"""

SETTINGS = [
    ("unloaded", False, {}),
    ("unloaded 1 thread", False, {"OPENBLAS_NUM_THREADS": "1"}),
    ("loaded all", True, {"VARPROP_THREADS": "{cores}"}),
    ("loaded 1 thread", True, {"OPENBLAS_NUM_THREADS": "1"}),
    ("loaded auto", True, {}),
]


def _spin(stop):
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def run_one(samples: int, epochs: int, loaded: bool, extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "VARPROP_THREADS",
                        "MKL_NUM_THREADS")}
    env.update({k: v.format(cores=_cores()) for k, v in extra.items()})
    stop = mp.Event()
    comp = mp.Process(target=_spin, args=(stop,), daemon=True) if loaded else None
    if comp is not None:
        comp.start()
        time.sleep(0.5)          # let it take its core before the run measures the load
    try:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(samples), str(epochs)], env=env,
                             capture_output=True, text=True, check=True)
    finally:
        if comp is not None:
            stop.set()
            comp.join(5)
            if comp.is_alive():
                comp.terminate()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=60000, help="rows of random data when Fashion-MNIST is absent")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per measurement (median reported)")
    ap.add_argument("--repeats", type=int, default=3, help="turns over all settings (median reported)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if min(args.samples, args.epochs, args.repeats) < 1:
        ap.error("--samples, --epochs and --repeats must be >= 1")
    cores = _cores()
    runs = {name: [] for name, _, _ in SETTINGS}
    info = {}
    for _ in range(args.repeats):
        for name, loaded, extra in SETTINGS:
            r = run_one(args.samples, args.epochs, loaded, extra)
            runs[name].append(r["epoch_s"])
            info[name] = r
    med = {k: statistics.median(v) for k, v in runs.items()}
    share = cores / (cores - 1) if cores > 1 else float("inf")
    base = med["unloaded"]
    print(f"{info['unloaded']['data']}, {cores} cores; one competing busy process; "
          f"its share allows {share:.2f}x the unloaded epoch")
    print(f"{'setting':<20} {'s/epoch':>8} {'x unloaded':>10} {'threads (blas, numba)':>22}  within share")
    for name, loaded, _ in SETTINGS:
        ratio = med[name] / base
        ok = ("yes" if ratio <= share else "no") if loaded else ""
        print(f"{name:<20} {med[name]:>8.3f} {ratio:>10.2f} {str(tuple(info[name]['threads'])):>22}  {ok}")
    if args.json:
        from varprop.io import atomic_write_text
        atomic_write_text(args.json, json.dumps({"cores": cores, "share_bound": share, "median_s": med,
                                                 "runs": runs, "info": info}, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()

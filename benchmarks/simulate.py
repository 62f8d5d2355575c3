"""Benchmark of varprop.simulate against a plain NumPy loop and PyTorch CPU, measured side by side.

Workloads (all timings are medians over interleaved repetitions after a warm-up; the warm-up, which
includes loading or compiling the Numba kernels, is reported separately):

1. the lecture's: widths 4096 x 7 (six layers), batch 16, tanh, W = 0.01 randn, per trial, forward only
   (the lecture's loop) and forward + backward (upstream gradient N(0, 1)); each turn of a contender runs
   trials back to back for at least 0.2 s (one trial for the slow ones) and counts the mean per trial;
2. normals per second: the engines' fill (float32 Box-Muller, vectorized), the initializers' ziggurat,
   the float64 Box-Muller stream of varprop.streams, numpy's Generator and torch.randn, each filling a
   4096 x 4096 float32 array;
3. the sweep: widths 256 x 101 (100 layers), batch 64, forward + backward, 200 trials, against PyTorch
   looping the same trials;
4. peak RSS of one lecture trial per engine, each in a fresh process (baseline after imports beside it);
5. the engines' crossover: microseconds per layer (forward and backward) of each engine over widths and
   batches, beside the engine ``--engine auto`` picks (simulate/config.py's cost model is fitted to it);
6. how trials side by side scale: the dense engine's sweep trials (3.) on one thread, then two at once as two
   threads of one process (as ``varprop simulate`` runs a shorter run's trials) and as two processes (as it runs
   a long one's, :mod:`varprop.simulate.pool`), each on one BLAS and Numba thread; the ratios are 2 x one
   trial's time / the pair's time.

Run: ``python benchmarks/simulate.py [--quick] [--sections 1,2,3,4]`` (--quick: fewer repetitions and 20
sweep trials).
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # let OpenBLAS pick its kernel for this CPU
    os.environ.pop(_var, None)

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

LECTURE = dict(widths="4096x7", batch=16, activation="tanh", init="normal(0, 0.01)")
PAUSE = 0.3   # seconds between turns: longer than OpenBLAS's and libgomp's busy-wait before their threads sleep
SWEEP = dict(widths="256x101", batch=64, activation="tanh", init="xavier_normal")


def _interleaved(contenders: dict, reps: int, turn: float = 0.2) -> dict:
    """Median seconds per call of each contender, run round-robin so that load from elsewhere hits all
    alike. A turn repeats a contender's call until ``turn`` seconds have passed (once for a slow one) and
    counts the mean: a fast contender is timed over a run of calls, as it is used (``varprop simulate``
    runs its trials back to back). Each turn starts after a pause of ``PAUSE`` seconds, in which the
    thread pools of the contender before it (OpenBLAS's, PyTorch's OpenMP team) stop spinning and go to
    sleep: otherwise a turn begins with another library's threads busy-waiting on the two cores."""
    times = {k: [] for k in contenders}
    for _ in range(reps):
        for k, fn in contenders.items():
            time.sleep(PAUSE)
            calls, start = 0, time.perf_counter()
            while True:
                fn()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= turn:
                    break
            times[k].append(elapsed / calls)
    return {k: statistics.median(v) for k, v in times.items()}


def _numpy_lecture(backward: bool):
    rng = np.random.default_rng(0)
    dims = [4096] * 7

    def trial():
        x = rng.standard_normal((16, dims[0]))
        ws, xs = [], [x]
        for din, dout in zip(dims[:-1], dims[1:]):
            w = 0.01 * rng.standard_normal((din, dout))
            x = np.tanh(x.dot(w))
            ws.append(w)
            xs.append(x)
        if backward:
            g = rng.standard_normal(x.shape)
            for w, y in zip(reversed(ws), reversed(xs[1:])):
                g = (g * (1 - y * y)).dot(w.T)
    return trial


def _torch_lecture(torch, backward: bool, widths=(4096,) * 7, batch=16, std=None):
    dims = list(widths)

    def trial():
        with torch.set_grad_enabled(backward):
            x = torch.randn(batch, dims[0])
            ws = []
            for din, dout in zip(dims[:-1], dims[1:]):
                s = std if std is not None else (2.0 / (din + dout)) ** 0.5
                w = (torch.randn(din, dout) * s).requires_grad_(backward)
                ws.append(w)
                x = torch.tanh(x @ w)
            if backward:
                x.backward(torch.randn_like(x))
    return trial


def _engine_trial(cfg, keep):
    from varprop.simulate.engines import Workspace, simulate_trial
    counter = iter(range(10 ** 9))
    ws = Workspace()  # as varprop.simulate.run does across its trials
    return lambda: simulate_trial(cfg, next(counter), keep, ws)


def _rss_child(engine: str) -> dict:
    # VmHWM (the peak resident set of this process image): unlike getrusage's ru_maxrss it is not
    # inherited from the parent across fork and exec
    code = f"""
import json
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from varprop.simulate import run
run(widths="8x3", trials=1, engine={engine!r}, init="normal(0, 0.3)")
base = hwm()
run(**{LECTURE!r}, trials=1, engine={engine!r})
print(json.dumps({{"baseline_kib": base, "peak_kib": hwm()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sections", default="1,2,3,4,5,6", help="which workloads to run, e.g. 1,2 (default all)")
    args = ap.parse_args(argv)
    sections = {int(x) for x in args.sections.split(",")}
    reps = 3 if args.quick else 7
    sweep_trials = 20 if args.quick else 100

    import numba
    from threadpoolctl import threadpool_info

    try:
        import torch
    except ImportError:
        torch = None

    blas = [(i.get("internal_api"), i.get("version"), i.get("architecture"), i.get("num_threads"))
            for i in threadpool_info() if i.get("user_api") == "blas"]
    print(f"numpy {np.__version__}, numba {numba.__version__} ({numba.get_num_threads()} threads), "
          f"torch {torch.__version__ if torch else 'absent'}; BLAS {blas}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} (other processes share the machine: ratios are side by side)")

    if 1 in sections:
        _lecture(reps, torch)
    if 2 in sections:
        _normals(reps, torch)
    if 3 in sections:
        _sweep(sweep_trials, torch, reps)
    if 4 in sections:
        _memory()
    if 5 in sections:
        _crossover(reps)
    if 6 in sections:
        _side_by_side(3 if args.quick else 5, 10 if args.quick else 30)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


_PAIR = """
import os, sys, time
for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(v, None)
from threadpoolctl import threadpool_limits
threadpool_limits(1)
from varprop.simulate.config import Config
from varprop.simulate.engines import Workspace, simulate_trial
cfg = Config.build([256] * 101, batch=64, activation="tanh", init="xavier_normal", trials=1000, engine="dense")
ws = Workspace()
simulate_trial(cfg, 0, True, workspace=ws, one_thread=True)
first, n = int(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()          # the go, once both processes are warm
t = time.perf_counter()
for k in range(first, first + n):
    simulate_trial(cfg, k, True, workspace=ws, one_thread=True)
print(time.perf_counter() - t)
"""


def _side_by_side(reps, n):
    # 6. trials side by side: threads of one process against processes -----------------------------------
    import threading

    from threadpoolctl import threadpool_limits

    from varprop.simulate.config import Config
    from varprop.simulate.engines import Workspace, simulate_trial
    print(f"\n6. trials side by side: the sweep's dense trials (3.), {n} per worker, one BLAS and Numba thread each; "
          f"median of {reps} interleaved rounds")
    cfg = Config.build([256] * 101, batch=64, activation="tanh", init="xavier_normal", trials=1000, engine="dense")

    def trials(first):
        ws = Workspace()
        for k in range(first, first + n):
            simulate_trial(cfg, k, True, workspace=ws, one_thread=True)

    def processes():
        # one thread for every pool of the process from its start, as a Dask nanny sets its workers up
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
        procs = [subprocess.Popen([sys.executable, "-c", _PAIR, str(1 + k * n), str(n)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env) for k in range(2)]
        for p in procs:              # both imported and warmed up before either starts
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a benchmark process failed to start")
        time.sleep(PAUSE)
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        return max(float(p.communicate()[0]) for p in procs)   # each times its own trials

    one, thr, proc = [], [], []
    with threadpool_limits(1):
        trials(0)
        for _ in range(reps):
            time.sleep(PAUSE)
            t = time.perf_counter()
            trials(1)
            one.append(time.perf_counter() - t)
            time.sleep(PAUSE)
            pair = [threading.Thread(target=trials, args=(1 + k * n,)) for k in range(2)]
            t = time.perf_counter()
            for th in pair:
                th.start()
            for th in pair:
                th.join()
            thr.append(time.perf_counter() - t)
            time.sleep(PAUSE)
            proc.append(processes())
    o, a, b = (statistics.median(v) for v in (one, thr, proc))
    print(f"    one trial at a time   {o / n * 1e3:8.2f} ms per trial")
    print(f"    two threads           {a / n / 2 * 1e3:8.2f} ms per trial   {2 * o / a:.2f}x one")
    print(f"    two processes         {b / n / 2 * 1e3:8.2f} ms per trial   {2 * o / b:.2f}x one")


def _lecture(reps, torch):
    from varprop.simulate.config import Config, memory_estimate
    # 1. the lecture's workload --------------------------------------------------------------------------
    print("\n1. lecture workload: widths 4096x7, batch 16, tanh, W = 0.01 randn; seconds per trial (median)")
    for backward in (False, True):
        contenders = {}
        warm = {}
        for engine in ("gaussian", "dense"):
            cfg = Config.build(**LECTURE, trials=1, engine=engine, backward=backward)
            fn = _engine_trial(cfg, memory_estimate(cfg)[1])
            t = time.perf_counter()
            fn()
            warm[engine] = time.perf_counter() - t
            contenders[f"varprop {engine}"] = fn
        contenders["numpy loop"] = _numpy_lecture(backward)
        if torch is not None:
            contenders["pytorch cpu"] = _torch_lecture(torch, backward, std=0.01)
        for fn in contenders.values():
            fn()
        med = _interleaved(contenders, reps)
        label = "forward + backward" if backward else "forward only (the lecture's loop)"
        print(f"  {label}; first call (loads the cached kernels): " +
              ", ".join(f"{k} {v:.3f} s" for k, v in warm.items()))
        for k, v in med.items():
            ratios = ", ".join(f"{v2 / v:.1f}x faster than {k2}" for k2, v2 in med.items()
                               if k2 in ("numpy loop", "pytorch cpu") and k2 != k)
            print(f"    {k:18s} {v * 1e3:9.2f} ms   {ratios}")



def _normals(reps, torch):
    from varprop.nn.init.ziggurat import TABLE_R, TABLE_X
    from varprop.nn.init.ziggurat import fill_normal as zig_fill
    from varprop.simulate.rng import fill_normal as engine_fill
    from varprop.streams import fill_normal as bm_fill
    from varprop.streams import key
    # 2. normals per second --------------------------------------------------------------------------------
    print("\n2. normals per second, filling a 4096 x 4096 float32 array (median)")
    out = np.empty((4096, 4096), dtype=np.float32)
    rng = np.random.default_rng(0)
    k = key(1, 2, 3)
    fills = {"varprop engines (float32 B-M)": lambda: engine_fill(k, out, 0.0, 0.01),
             "varprop.nn.init ziggurat": lambda: zig_fill(k, out, 0.0, 0.01, TABLE_X, TABLE_R),
             "varprop.streams Box-Muller": lambda: bm_fill(k, out, 0.0, 0.01),
             "numpy Generator float32": lambda: rng.standard_normal(out.shape, dtype=np.float32, out=out),
             "numpy Generator float64": lambda: rng.standard_normal(out.shape)}
    if torch is not None:
        tout = torch.empty(4096, 4096)
        fills["torch.randn"] = lambda: torch.randn(4096, 4096, out=tout)
    for fn in fills.values():
        fn()
    med = _interleaved(fills, reps)
    ours = med["varprop engines (float32 B-M)"]
    for name, v in med.items():
        print(f"    {name:32s} {out.size / v / 1e6:8.1f} M normals/s   (the engines' fill is {v / ours:.2f}x this)")



def _sweep(sweep_trials, torch, reps):
    # 3. the sweep -----------------------------------------------------------------------------------------
    print(f"\n3. sweep: widths 256x101, batch 64, tanh, Xavier normal, forward + backward; milliseconds per trial, "
          f"median of {reps} interleaved runs of {sweep_trials} trials each")
    from varprop.simulate import run
    contenders, warm = {}, {}
    for engine in ("gaussian", "dense"):
        t = time.perf_counter()
        # warm-up: loads the cached kernels and, for a run this long, starts the worker processes that later
        # runs reuse (varprop.simulate.pool)
        run(**SWEEP, trials=sweep_trials, engine=engine, seed=1, progress=False)
        warm[engine] = time.perf_counter() - t
        contenders[f"varprop {engine}"] = (lambda e=engine: run(**SWEEP, trials=sweep_trials, engine=e, seed=0,
                                                                 progress=False))
    if torch is not None:
        fn = _torch_lecture(torch, True, widths=(256,) * 101, batch=64)
        fn()

        def torch_run():
            for _ in range(sweep_trials):
                fn()
        contenders["pytorch cpu loop"] = torch_run
    print(f"  warm-up ({sweep_trials} trials: loads the kernels, starts the worker processes): " +
          ", ".join(f"{k} {v:.2f} s" for k, v in warm.items()))
    med = _interleaved(contenders, reps, turn=0.0)
    for name, v in med.items():
        ratio = f"   {med['pytorch cpu loop'] / v:.2f}x the speed of PyTorch" if "pytorch cpu loop" in med else ""
        print(f"    {name:18s} {v / sweep_trials * 1e3:8.2f} ms per trial{ratio}")



def _crossover(reps):
    # 5. which engine is faster where ------------------------------------------------------------------------
    from varprop.simulate import run
    from varprop.simulate.config import gaussian_is_cheaper
    print("\n5. engine crossover: tanh, Xavier normal, microseconds per layer forward + backward (median)")
    print(f"    {'width':>6s} {'batch':>5s} {'layers':>6s} {'dense':>9s} {'gaussian':>9s}  faster    auto picks")
    for n, b, layers in [(64, 8, 21), (256, 16, 51), (256, 64, 51), (512, 16, 21), (512, 64, 21), (1024, 64, 11),
                         (1024, 128, 11), (1024, 256, 11), (4096, 16, 5), (4096, 64, 5)]:
        spec = dict(widths=f"{n}x{layers}", batch=b, activation="tanh", init="xavier_normal", progress=False)
        fns = {}
        for engine in ("dense", "gaussian"):
            run(**spec, engine=engine, trials=2)
            fns[engine] = (lambda e=engine, sp=spec: run(**sp, engine=e, trials=10))
        med = _interleaved(fns, reps, turn=0.0)
        us = {k: v / 10 / (layers - 1) * 1e6 for k, v in med.items()}
        faster = min(us, key=us.get)
        auto = "gaussian" if gaussian_is_cheaper([n] * layers, b) else "dense"
        print(f"    {n:6d} {b:5d} {layers:6d} {us['dense']:9.0f} {us['gaussian']:9.0f}  {faster:9s} {auto}"
              f"{'' if auto == faster else '  (differs)'}")


def _memory():
    from varprop.simulate.config import Config, memory_estimate
    # 4. memory --------------------------------------------------------------------------------------------
    print("\n4. peak RSS of one lecture trial (forward + backward), fresh process each")
    for engine in ("gaussian", "dense"):
        r = _rss_child(engine)
        cfg = Config.build(**LECTURE, trials=1, engine=engine)
        print(f"    varprop {engine:9s} peak {r['peak_kib'] / 1024:8.1f} MiB  (after imports and a tiny run "
              f"{r['baseline_kib'] / 1024:.1f} MiB: the lecture trial adds "
              f"{(r['peak_kib'] - r['baseline_kib']) / 1024:.1f} MiB; estimate {memory_estimate(cfg)[0] / 2**20:.1f} MiB)")


if __name__ == "__main__":
    sys.exit(main())

"""``run(...)``: many independent random networks, aggregated, with the theory beside every curve.

Trial t uses only the streams keyed ``(seed, t, layer, purpose)``, so a seed reproduces bit for bit on any
number of threads, and a run of T trials is the first T trials of any longer run with the same seed.
Ctrl-C (KeyboardInterrupt) between trials returns the trials that finished, marked ``interrupted``.

>>> r = run(widths=[32, 32, 32], batch=4, activation="relu", init="he_normal", trials=3, seed=1)
>>> r.trials, len(r.layers), r.layers[0]["layer"]
(3, 2, 1)
"""
from __future__ import annotations

import contextlib
import sys
import time

import numpy as np

from varprop import threads as core_threads
from varprop.io import Progress

from . import histograms, pool
from . import threads as sim_threads
from .config import Config, available_memory, check_memory, check_work, time_estimate
from .engines import OVERFLOW, STAT_FIELDS, Workspace, simulate_trial
from .result import Result
from .theory import theory

__all__ = ["run"]


def run(widths, batch=16, activation="relu", init="he_normal", trials=20, seed=0, engine="auto",
        sigma_b2=0.0, dropout=0.0, batchnorm=False, residual=False, inputs=None, params=None,
        histograms=False, bins=60, hist_range=None, dtype="float32", backward=True, init_params=None,
        progress=None) -> Result:
    """Simulate ``trials`` random MLPs at initialization and aggregate their per-layer statistics.

    ``widths``: ``"4096x7"``, ``"784,256,10"`` or a list (the input width first); ``init``: an
    initializer name (keyword arguments for it in ``init_params``) or a distribution expression;
    ``dropout``: the drop probability; ``engine``: ``"auto"`` (gaussian for Gaussian weights where it is the
    faster one, :func:`~varprop.simulate.config.gaussian_is_cheaper`, else dense), ``"dense"`` or
    ``"gaussian"``; ``inputs``: a
    (batch, widths[0]) array used by every trial (standard normal per trial when None); ``progress``: show a
    progress bar (None: only on a terminal). Raises ValueError/TypeError for a bad configuration, including
    one whose memory estimate exceeds the memory available.
    """
    cfg = Config.build(widths, batch=batch, activation=activation, init=init, trials=trials, seed=seed,
                       engine=engine, sigma_b2=sigma_b2, dropout=dropout, batchnorm=batchnorm, residual=residual,
                       inputs=inputs, params=params, histograms=histograms, bins=bins, hist_range=hist_range,
                       dtype=dtype, backward=backward, init_params=init_params)
    return run_config(cfg, progress=progress)


def run_config(cfg: Config, progress=None) -> Result:
    """Run a validated :class:`Config` (see :func:`run`)."""
    need, keep_weights = check_memory(cfg)
    estimate = check_work(cfg)
    pred = theory(cfg)
    start = time.perf_counter()
    rows = {f: [] for f in STAT_FIELDS}
    overflows = []
    hist = None
    interrupted = False
    ws = Workspace()  # one set of arrays for all trials; freed when the run returns
    cap = _thread_cap()   # measured before the limit below lowers the counts for this run
    show = sys.stderr.isatty() if progress is None else bool(progress)
    if show and estimate > LONG_S:      # said before the bar starts drawing
        sys.stderr.write(f"simulate: {cfg.trials} trials of {cfg.depth} layers, at least {_duration(estimate)} "
                         "(a lower bound; Ctrl-C keeps the finished trials)\n")
        sys.stderr.flush()
    with Progress(cfg.trials, "simulate", enabled=show) as bar, \
            core_threads.limit("numba" if cfg.engine == "gaussian" else "blas", max_age=PLAN_AGE_S) as plan:
        try:
            # trial 0 alone first: it loads the kernels, and its histogram bins are every later trial's
            stats, h = simulate_trial(cfg, 0, keep_weights, workspace=ws)
            if h is not None:
                first, cfg = h, histograms.with_edges(cfg, h)
                hist = {k: v.copy() for k, v in histograms.counts(h).items()}
            _append(rows, overflows, stats)
            bar.update()
            trials = _trials(cfg, keep_weights, ws, _workers(cfg, min(plan.free, cap), need), need)
            try:
                for stats, h in trials:
                    if h is not None:
                        hist = {k: hist[k] + h[k] for k in hist}
                    _append(rows, overflows, stats)
                    bar.update()
            finally:
                trials.close()   # interrupted: the running trials finish, the queued ones are dropped
        except KeyboardInterrupt:
            if not rows[STAT_FIELDS[0]]:
                raise
            interrupted = True
    n = min(len(v) for v in rows.values())
    per_trial = {f: np.array(rows[f][:n]).reshape(n, cfg.depth) for f in STAT_FIELDS}
    edges = None
    if cfg.histograms:
        edges = {k: first[k + "_edges"] for k in histograms.KINDS}
    return Result(cfg.summary(), cfg.engine, cfg.seed, time.perf_counter() - start, per_trial, pred,
                  interrupted=interrupted, histograms=hist, hist_edges=edges, memory_estimate=need,
                  overflow=_overflow(overflows[:n]))


def _append(rows: dict, overflows: list, stats: dict) -> None:
    for f in STAT_FIELDS:  # appended together, so an interrupt never leaves a partial trial
        rows[f].append(stats[f])
    overflows.append(stats["overflow"])


def _workers(cfg: Config, free: int, need: int) -> int:
    """How many trials run at once: one per free core when every layer is small enough for one thread
    (:func:`threads.serial`: a trial then runs on one BLAS thread anyway, so a second core is better used
    by a second trial than by a team that forks and joins a few hundred times a trial), within the memory
    available for that many workspaces."""
    if cfg.trials < 3 or free < 2 or not sim_threads.serial(cfg) or \
            time_estimate(cfg) / cfg.trials < PARALLEL_TRIAL_S:
        return 1
    n = min(free, cfg.trials - 1)
    avail = available_memory()
    if avail is not None and need > 0:
        n = min(n, max(1, int(avail // need)))
    return n


def _thread_cap() -> int:
    """The most threads the caller allows this process: its BLAS and Numba thread counts as they stand (a
    Dask worker's cell, a user's ``OMP_NUM_THREADS=1`` or an enclosing limit make it 1), else its cores."""
    # the process's kept controller: a run does not rescan the loaded libraries
    counts = [c for c in core_threads.current(sim_threads._controller()) if c]
    return max(1, min(counts)) if counts else core_threads.cores()


def _threading_layer() -> str | None:
    import numba
    try:
        return numba.threading_layer()
    except ValueError:    # no parallel kernel has run yet
        return None


def _trials(cfg: Config, keep_weights: bool, ws: Workspace, workers: int, need: int = 0):
    """``simulate_trial(cfg, t)`` for t = 1 .. trials - 1, in trial order.

    With ``workers`` > 1 they run on that many threads, each trial on one thread
    with a workspace of its own thread, BLAS held to one thread for the process. Trial t depends only on
    its streams, so the results are the serial run's bit for bit; a bounded window of trials in flight
    keeps the memory at ``workers`` workspaces and an interrupt loses only the trials then running.
    A run long enough for it (:func:`_use_pool`) runs them in worker processes instead, see
    :mod:`varprop.simulate.pool`: the same bits again."""
    if workers >= 2 and _use_pool(cfg, workers, need):
        yield from _pooled(cfg, keep_weights, ws, workers)
        return
    yield from _threaded(cfg, keep_weights, ws, workers)


def _use_pool(cfg: Config, workers: int = 2, need: int = 0) -> bool:
    """Whether the trials after the first go to ``workers`` worker processes: the run is estimated at
    :data:`pool.MIN_S` seconds or more on one core (the workers' start, about 0.8 s, is then paid back;
    later runs find them started), the memory holds each worker's interpreter and workspace (``need``
    bytes), and its configuration can be sent to them."""
    if cfg.spec is None or not pool.available() or time_estimate(cfg) < pool.MIN_S:
        return False
    avail = available_memory()
    if avail is not None and workers * (need + pool.PROCESS_BYTES) > avail:
        return False
    import pickle
    try:
        pickle.dumps(cfg.spec)
    except Exception:   # noqa: BLE001 - an activation or law given as an object: the threads run it
        return False
    return True


def _pooled(cfg: Config, keep_weights: bool, ws: Workspace, workers: int):
    """The trials after the first on ``workers`` processes, in trial order; a lost worker's trials and the
    rest are computed here, and a trial that raised in a worker is computed here to raise its error."""
    try:
        p = pool.get(workers)
    except OSError:        # no process could start (limits, memory): the threads run them
        p = None
    if p is None:          # or another thread of this process is using the pool
        yield from _threaded(cfg, keep_weights, ws, workers)
        return
    broken, lost, first = True, False, 1
    try:
        try:
            for t, status, *out in p.map(cfg.spec, cfg.hist_edges, keep_weights, range(1, cfg.trials)):
                if status != "ok":
                    out = simulate_trial(cfg, t, keep_weights, workspace=ws)
                first = t + 1
                yield tuple(out)
            broken = False
        except pool.Lost:
            lost = True
    finally:
        pool.release(broken)
    if lost:
        for t in range(first, cfg.trials):
            yield simulate_trial(cfg, t, keep_weights, workspace=ws)


def _threaded(cfg: Config, keep_weights: bool, ws: Workspace, workers: int):
    if workers < 2 or _threading_layer() in (None, "workqueue"):   # workqueue: not safe from two threads
        for t in range(1, cfg.trials):
            yield simulate_trial(cfg, t, keep_weights, workspace=ws)
        return
    import threading
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    local = threading.local()

    def one(t):
        w = getattr(local, "ws", None)
        if w is None:
            w = local.ws = Workspace()
        return simulate_trial(cfg, t, keep_weights, workspace=w, one_thread=True)

    with contextlib.ExitStack() as stack:
        ctl = sim_threads._controller()
        if ctl is not None:
            stack.enter_context(ctl.limit(limits=1, user_api="blas"))
        pool = stack.enter_context(ThreadPoolExecutor(workers, thread_name_prefix="varprop-trial"))
        stack.callback(pool.shutdown, wait=True, cancel_futures=True)  # on an interrupt: finish the running
        pending = deque()
        todo = iter(range(1, cfg.trials))
        for t in todo:
            pending.append((t, pool.submit(one, t)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            t, fut = pending.popleft()
            out = fut.result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(one, nxt)))
            yield out


PARALLEL_TRIAL_S = 1e-3   # trials estimated shorter than this on one core run one after another
PLAN_AGE_S = 5.0   # a run re-measures the free cores when the process's plan is older than this (0.05 s)
LONG_S = 10.0   # runs estimated longer than this announce their estimate on a terminal before starting


def _duration(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _overflow(per_trial) -> dict | None:
    """The first overflow in the order of the computation (forward from layer 1, then backward from layer
    L) over the trials: ``{"layer", "quantity", "trials"}`` (how many trials overflowed somewhere), or None."""
    hit = [(int(layer), int(code)) for layer, code in per_trial if layer > 0]
    if not hit:
        return None
    forward = (0, 1)
    layer, code = min(hit, key=lambda h: (0, h[0]) if h[1] in forward else (1, -h[0]))
    return {"layer": layer, "quantity": OVERFLOW[code], "trials": len(hit)}


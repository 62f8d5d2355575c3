"""A seed gives bit-identical results whatever the number of Numba threads (run in subprocesses)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from varprop.simulate import run

SCRIPT = r"""
import hashlib, json, sys
import numpy as np
import pytest
import varprop.simulate.kernels as K
import varprop.simulate.threads as T
K.PARALLEL_MIN = 0          # force the parallel kernels and fills even for these small arrays
T.SERIAL_MAX = 0
from varprop.simulate import run
out = {}
for name, kw in json.loads(sys.argv[1]).items():
    r = run(**kw)
    h = hashlib.sha256()
    for f in sorted(r.per_trial):
        h.update(np.ascontiguousarray(r.per_trial[f]).tobytes())
    for f in sorted(r.histograms or {}):
        h.update(np.ascontiguousarray(r.histograms[f]).tobytes())
    out[name] = h.hexdigest()
print(json.dumps(out))
"""

CONFIGS = {
    "dense": dict(widths=[300, 520, 300, 260], batch=6, activation="tanh", init="he_uniform", trials=2, seed=7,
                  dropout=0.2, sigma_b2=0.1, histograms=True),
    "gaussian": dict(widths="400x4", batch=7, activation="relu", init="he_normal", trials=2, seed=7,
                     dropout=0.1, residual=True),
    "orthogonal": dict(widths="64x3", batch=4, activation="selu", init="orthogonal", trials=2, seed=7),
}


def _digests(threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(CONFIGS)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bit_identical_across_thread_counts():
    assert _digests(1) == _digests(2)


def test_same_seed_same_bits_and_prefix_property():
    kw = dict(widths="50x4", batch=3, activation="tanh", init="xavier_normal", seed=3)
    a, b = run(trials=3, **kw), run(trials=5, **kw)
    for f in a.per_trial:
        np.testing.assert_array_equal(a.per_trial[f], b.per_trial[f][:3])
    c = run(trials=3, **{**kw, "seed": 4})
    assert not np.array_equal(a.per_trial["act_std"], c.per_trial["act_std"])


def test_reused_workspace_gives_the_same_bits():
    """Trials writing into one Workspace (as run() does) match trials with fresh arrays, whatever ran before."""
    from varprop.simulate.config import Config
    from varprop.simulate.engines import Workspace, simulate_trial
    configs = [
        dict(widths="40x4", batch=5, activation="tanh", init="normal(0.05, 0.2)", engine="gaussian", sigma_b2=0.1),
        dict(widths="40x4", batch=5, activation="relu", init="he_normal", engine="gaussian", dropout=0.2,
             residual=True),
        dict(widths=[30, 40, 20], batch=6, activation="maxout", params={"k": 2}, init="he_uniform", engine="dense",
             batchnorm=True, histograms=True),
    ]
    ws = Workspace()
    for kw in configs + configs[::-1]:   # shapes change between configs: arrays are reallocated or reused
        cfg = Config.build(trials=3, seed=11, **kw)
        for t in range(3):
            (a, ha), (b, hb) = simulate_trial(cfg, t, workspace=ws), simulate_trial(cfg, t)
            for f in a:
                np.testing.assert_array_equal(a[f], b[f])
            for f in (ha or {}):
                np.testing.assert_array_equal(ha[f], hb[f])


def test_team_choice_changes_no_bits(monkeypatch):
    """Trials with and without Numba's thread team (the choice threads.Team makes by timing) agree bit for
    bit, for a configuration large enough that the choice is made."""
    import varprop.simulate.threads as T
    from varprop.simulate.config import Config
    from varprop.simulate.engines import Workspace, simulate_trial
    cfg = Config.build(widths=[T.TEAM_MIN // 8, T.TEAM_MIN // 8, 300], batch=8, activation="tanh",
                       init="normal(0, 0.01)", trials=2, seed=5, engine="gaussian")
    assert T.serial(cfg) and T.numba_team(cfg)
    runs = {}
    for choice in (True, False):
        def fixed(self, c=choice):
            self._pending = c
            return c
        monkeypatch.setattr(T.Team, "next", fixed)
        ws = Workspace()
        runs[choice] = [simulate_trial(cfg, t, workspace=ws)[0] for t in range(2)]
    for a, b in zip(runs[True], runs[False]):
        for f in a:
            np.testing.assert_array_equal(a[f], b[f])


def test_team_probes_then_keeps_the_faster():
    import varprop.simulate.threads as T
    t = T.Team()
    seen = []
    for i in range(T.Team.WINDOW + T.Team.PROBE):
        team = t.next()
        seen.append(team)
        t.record(0.010 if team else 0.004)     # one thread is faster
    probe = T.Team.PROBE
    assert seen[:probe] == [True, False] * (probe // 2)                 # the probes alternate
    assert not any(seen[probe:T.Team.WINDOW])                           # then one thread for the window
    assert seen[T.Team.WINDOW:] == [True, False] * (probe // 2)         # and the next window probes again


SIDE_BY_SIDE = {
    "dense": dict(widths="48x6", batch=5, activation="tanh", init="xavier_uniform", dropout=0.2, sigma_b2=0.1,
                  histograms=True, engine="dense"),
    "gaussian": dict(widths="48x6", batch=5, activation="relu", init="he_normal", residual=True,
                     engine="gaussian"),
}


@pytest.mark.parametrize("name", sorted(SIDE_BY_SIDE))
def test_trials_run_side_by_side_give_the_serial_bits(name, monkeypatch):
    """Trials on two threads at once (one per free core) are the serial run's, bit for bit, in order."""
    import varprop.simulate.runner as runner
    kw = dict(SIDE_BY_SIDE[name], trials=9, seed=5, progress=False)
    monkeypatch.setattr(runner, "_workers", lambda cfg, free, need: 1)
    serial = run(**kw)
    seen = []
    real = runner.simulate_trial

    def spy(cfg, trial, keep_weights=True, workspace=None, one_thread=False):
        seen.append((trial, one_thread))
        return real(cfg, trial, keep_weights, workspace, one_thread)

    monkeypatch.setattr(runner, "_workers", lambda cfg, free, need: 2)
    monkeypatch.setattr(runner, "simulate_trial", spy)
    both = run(**kw)
    assert sorted(seen) == [(0, False)] + [(t, True) for t in range(1, 9)]   # trial 0 alone, the rest threaded
    for f in serial.per_trial:
        np.testing.assert_array_equal(serial.per_trial[f], both.per_trial[f])
    for f in serial.histograms or {}:
        np.testing.assert_array_equal(serial.histograms[f], both.histograms[f])


def test_interrupt_while_trials_run_side_by_side_keeps_the_finished_prefix(monkeypatch):
    import varprop.simulate.runner as runner
    real = runner.simulate_trial

    def interrupted(cfg, trial, keep_weights=True, workspace=None, one_thread=False):
        if trial == 4:
            raise KeyboardInterrupt
        return real(cfg, trial, keep_weights, workspace, one_thread)

    monkeypatch.setattr(runner, "_workers", lambda cfg, free, need: 2)
    monkeypatch.setattr(runner, "simulate_trial", interrupted)
    kw = dict(widths="32x4", batch=4, activation="tanh", init="xavier_normal", seed=2, progress=False)
    r = run(trials=10, **kw)
    assert r.interrupted and r.trials == 4
    ref = run(trials=4, **kw)
    for f in ref.per_trial:
        np.testing.assert_array_equal(ref.per_trial[f], r.per_trial[f])


def test_side_by_side_only_where_a_trial_is_long_enough():
    from varprop.simulate.config import Config
    from varprop.simulate.runner import _workers
    sweep = Config.build(widths="256x101", batch=64, activation="tanh", init="xavier_normal", trials=50)
    tiny = Config.build(widths="8x3", batch=4, activation="tanh", init="xavier_normal", trials=50)
    big = Config.build(widths="2048x3", batch=1024, activation="tanh", init="xavier_normal", trials=50)
    assert _workers(sweep, 2, 1 << 20) == 2 and _workers(sweep, 1, 1 << 20) == 1
    assert _workers(tiny, 2, 1 << 20) == 1          # thread hand-offs would cost more than the trial
    assert _workers(big, 2, 1 << 20) == 1           # its products already use every core


@pytest.fixture
def processes(monkeypatch):
    """Runs whose trials go to two worker processes however short they are; the workers stopped after."""
    import varprop.simulate.pool as pool
    import varprop.simulate.runner as runner
    monkeypatch.setattr(runner, "_workers", lambda cfg, free, need: 2)
    monkeypatch.setattr(pool, "MIN_S", 0.0)
    yield pool
    pool.shutdown()


def _serial(monkeypatch, kw):
    import varprop.simulate.runner as runner
    with monkeypatch.context() as m:
        m.setattr(runner, "_workers", lambda cfg, free, need: 1)
        return run(**kw)


def _same(a, b):
    assert a.trials == b.trials
    for f in a.per_trial:
        np.testing.assert_array_equal(a.per_trial[f], b.per_trial[f])
    for f in a.histograms or {}:
        np.testing.assert_array_equal(a.histograms[f], b.histograms[f])


@pytest.mark.parametrize("name", sorted(SIDE_BY_SIDE))
def test_trials_in_worker_processes_give_the_serial_bits(name, processes, monkeypatch):
    kw = dict(SIDE_BY_SIDE[name], trials=9, seed=5, progress=False)
    serial = _serial(monkeypatch, kw)
    both = run(**kw)
    assert processes._POOL is not None and len(processes._POOL.workers) == 2   # the workers ran them
    pids = {w.proc.pid for w in processes._POOL.workers}
    _same(serial, both)
    again = run(**dict(kw, seed=6))          # a later run reuses the started workers
    assert {w.proc.pid for w in processes._POOL.workers} == pids
    _same(_serial(monkeypatch, dict(kw, seed=6)), again)


def test_worker_processes_run_on_one_thread_each(processes):
    run(widths="16x3", batch=4, activation="tanh", init="xavier_normal", trials=4, progress=False)
    for w in processes._POOL.workers:
        with open(f"/proc/{w.proc.pid}/environ", "rb") as fh:
            env = dict(kv.split(b"=", 1) for kv in fh.read().split(b"\0") if b"=" in kv)
        assert env[b"NUMBA_NUM_THREADS"] == b"1" and env[b"OPENBLAS_NUM_THREADS"] == b"1"


def test_a_killed_worker_loses_no_trial(processes, monkeypatch):
    import varprop.simulate.runner as runner
    kw = dict(widths="64x8", batch=8, activation="tanh", init="xavier_normal", dropout=0.1, trials=40, seed=3,
              progress=False)
    serial = _serial(monkeypatch, kw)
    real, calls = runner._append, []

    def kill_after_three(rows, overflows, stats):
        calls.append(1)
        if len(calls) == 3:
            processes._POOL.workers[0].proc.kill()
            processes._POOL.workers[0].proc.wait()
        real(rows, overflows, stats)

    monkeypatch.setattr(runner, "_append", kill_after_three)
    r = run(**kw)
    assert processes._POOL is None            # closed once a worker was lost; the caller computed the rest
    _same(serial, r)


def test_ctrl_c_with_worker_processes_keeps_the_finished_prefix(processes, monkeypatch):
    import varprop.simulate.runner as runner
    kw = dict(widths="32x4", batch=4, activation="tanh", init="xavier_normal", seed=2, progress=False)
    real, calls = runner._append, []

    def interrupt_at_five(rows, overflows, stats):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real(rows, overflows, stats)

    monkeypatch.setattr(runner, "_append", interrupt_at_five)
    r = run(trials=30, **kw)
    assert r.interrupted and r.trials == 4
    assert processes._POOL is None            # the workers computing for it were stopped
    monkeypatch.setattr(runner, "_append", real)
    _same(_serial(monkeypatch, dict(kw, trials=4)), r)


def test_no_second_thread_or_process_where_the_caller_allows_one_thread():
    """A Dask worker's cell (BLAS and Numba on one thread) runs its trials one after another; either limit
    alone is enough."""
    import numba
    from threadpoolctl import threadpool_limits

    from varprop.simulate.config import Config
    from varprop.simulate.runner import _thread_cap, _workers
    sweep = Config.build(widths="256x101", batch=64, activation="tanh", init="xavier_normal", trials=200)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert _thread_cap() == 1
        with threadpool_limits(limits=1):
            assert _thread_cap() == 1
            assert _workers(sweep, min(2, _thread_cap()), 1 << 20) == 1
    finally:
        numba.set_num_threads(before)
    with threadpool_limits(limits=1, user_api="blas"):
        assert _thread_cap() == 1


def test_runs_long_enough_use_the_processes():
    from varprop.simulate.config import Config
    from varprop.simulate.runner import _use_pool
    long = Config.build(widths="256x101", batch=64, activation="tanh", init="xavier_normal", trials=200)
    short = Config.build(widths="256x101", batch=64, activation="tanh", init="xavier_normal", trials=20)
    assert _use_pool(long) and not _use_pool(short)
    from varprop.activations import get         # as the command line passes it: a bound registry activation
    bound = Config.build(widths="256x101", batch=64, activation=get("leaky_relu", negative_slope="0.2"),
                         init="he_normal", trials=200)
    assert _use_pool(bound) and Config.build(**bound.spec).act.label() == bound.act.label()


def test_workers_answer_a_config_they_cannot_build_with_errors_in_trial_order(processes):
    p = processes.get(2)
    try:
        out = list(p.map({"widths": "bad widths"}, None, True, range(1, 6)))
    finally:
        processes.release()
    assert [o[0] for o in out] == [1, 2, 3, 4, 5] and {o[1] for o in out} == {"error"}
    assert "widths" in out[0][2]                     # the worker's own error text
    assert processes._POOL is not None and processes._POOL.alive()   # and the workers serve the next run


def test_a_trial_that_failed_in_a_worker_is_computed_by_the_caller(processes, monkeypatch):
    kw = dict(widths="32x4", batch=4, activation="tanh", init="xavier_normal", seed=2, trials=8, progress=False)
    serial = _serial(monkeypatch, kw)
    real = processes.Pool.map

    def third_fails(self, *a):
        for t, status, *out in real(self, *a):
            yield (t, "error", "injected") if t == 3 else (t, status, *out)

    monkeypatch.setattr(processes.Pool, "map", third_fails)
    _same(serial, run(**kw))


_FORK = r"""
import os, sys
import varprop.simulate.pool as pool
p = pool.get(1)
pool.release()
pid = os.fork()
if pid == 0:                     # the child: no pool of its own yet, and the parent's not reachable
    os._exit(0 if pool._POOL is None and pool.available() else 1)
_, status = os.waitpid(pid, 0)
ok = os.waitstatus_to_exitcode(status) == 0 and pool._POOL is p and p.alive()
pool.shutdown()
sys.exit(0 if ok else 1)
"""


def test_a_forked_child_leaves_its_parents_workers_alone():
    # in a process of its own: the test process has JAX loaded, which warns against forking it
    r = subprocess.run([sys.executable, "-c", _FORK], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

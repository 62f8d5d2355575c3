"""varprop.threads: thread counts from the free cores, applied inside the context and restored after."""
import json
import os
import subprocess
import sys

import pytest

from varprop import threads
from varprop.threads import Plan, choose


@pytest.mark.parametrize("cores, busy, work, expected", [
    (2, 0.0, "blas", Plan(2, 2, 1)),       # idle: the working team gets every core, the other one thread
    (2, 0.0, "numba", Plan(2, 1, 2)),
    (2, 1.0, "blas", Plan(1, 1, 1)),       # beside one CPU-bound process: one core is left
    (2, 0.2, "blas", Plan(2, 2, 1)),       # a core 80% idle counts as free
    (2, 0.3, "blas", Plan(1, 1, 1)),       # one 70% idle does not
    (8, 2.6, "numba", Plan(5, 1, 5)),
    (4, 9.0, "blas", Plan(1, 1, 1)),       # overloaded: still one thread, never zero
    (4, float("nan"), "blas", Plan(1, 1, 1)),
    (1, 0.0, "numba", Plan(1, 1, 1)),
])
def test_choose_never_more_busy_threads_than_free_cores(cores, busy, work, expected):
    p = choose(cores, busy, work)
    assert p == expected
    # both teams share the calling thread: at most blas + numba - 1 threads are busy at once
    assert p.blas + p.numba - 1 <= p.free <= cores


def test_a_fixed_count_replaces_the_measurement_and_is_capped_at_the_cores():
    assert choose(4, 3.9, "blas", fixed=3) == Plan(3, 3, 1)
    assert choose(2, 0.0, "numba", fixed=16) == Plan(2, 1, 2)
    with pytest.raises(ValueError, match="work must be"):
        choose(2, 0.0, "gpu")


def _stat(rows):
    return {cpu: (busy, total) for cpu, (busy, total) in rows.items()}


def test_busy_cores_reads_the_idle_share_of_this_process_cores(monkeypatch):
    snaps = iter([_stat({0: (100, 1000), 1: (50, 1000), 2: (0, 1000)}),
                  _stat({0: (200, 1100), 1: (50, 1100), 2: (75, 1100)})])   # cpu0 all busy, cpu1 idle, cpu2 3/4
    monkeypatch.setattr(threads, "_proc_stat", lambda: next(snaps))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    monkeypatch.setattr(threads, "_affinity", lambda: {0, 1, 2})
    assert threads.busy_cores() == pytest.approx(1.75)
    snaps = iter([_stat({0: (100, 1000), 1: (50, 1000)}), _stat({0: (200, 1100), 1: (50, 1100)})])
    monkeypatch.setattr(threads, "_affinity", lambda: {1})         # pinned to the idle core: others do not count
    assert threads.busy_cores() == 0.0


def test_without_proc_stat_the_load_average_counts(monkeypatch):
    monkeypatch.setattr(threads, "_proc_stat", lambda: None)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.4, 0.5, 0.2))
    assert threads.busy_cores() == 1.4


def test_plan_is_measured_once_per_process_and_follows_the_environment(monkeypatch):
    monkeypatch.setattr(threads, "_PLAN", {})
    monkeypatch.setattr(threads, "cores", lambda: 2)
    calls = []
    monkeypatch.setattr(threads, "busy_cores", lambda: calls.append(1) or 1.0)
    monkeypatch.delenv("VARPROP_THREADS", raising=False)
    assert threads.plan("blas") == Plan(1, 1, 1)
    assert threads.plan("blas") == Plan(1, 1, 1) and len(calls) == 1     # kept: a resume uses the same BLAS setting
    threads.plan("blas", refresh=True)
    assert len(calls) == 2
    # an old plan is measured again for a caller that asks (the simulator): a busy core that went idle counts
    busy = [1.0]
    monkeypatch.setattr(threads, "busy_cores", lambda: calls.append(1) or busy[0])
    clock = [100.0]
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock[0])
    threads.plan("blas", refresh=True)
    busy[0] = 0.0
    clock[0] += 4.0
    assert threads.plan("blas", max_age=5.0) == Plan(1, 1, 1) and len(calls) == 3     # young: kept
    clock[0] += 2.0
    assert threads.plan("blas", max_age=5.0) == Plan(2, 2, 1) and len(calls) == 4     # old: measured again
    assert threads.plan("blas") == Plan(2, 2, 1) and len(calls) == 4                  # and kept for the rest
    monkeypatch.setenv("VARPROP_THREADS", "2")
    assert threads.plan("numba") == Plan(2, 1, 2) and len(calls) == 4   # fixed: nothing measured
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("VARPROP_THREADS", bad)
        with pytest.raises(ValueError, match="VARPROP_THREADS must be a positive integer"):
            threads.plan("blas")


_CHILD = """
import json, numpy as np
from varprop import threads
out = {"before": threads.current()}
with threads.limit("blas") as p:
    out["plan"] = list(p)
    out["inside"] = threads.current()
out["after"] = threads.current()
from varprop.nn import Trainer, build_mlp
X = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32); y = (X[:, 0] > 0).astype(np.int64)
seen = []
Trainer(build_mlp(4, [8], 2, seed=0), "cross_entropy", "adam", batch_size=16, epochs=1, progress=False,
        callback=lambda rec: seen.append(threads.current())).fit(X, y)
out["fit"] = seen[0]
out["after_fit"] = threads.current()
print(json.dumps(out))
"""


def _child(blas: int, numba: int, fixed: str):
    pytest.importorskip("threadpoolctl")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(blas), OMP_NUM_THREADS=str(blas), MKL_NUM_THREADS=str(blas),
               NUMBA_NUM_THREADS=str(numba), VARPROP_THREADS=fixed)
    r = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if out["before"][0] is None:
        pytest.skip("no BLAS pool visible to threadpoolctl")
    return out


@pytest.mark.skipif(threads.cores() < 2, reason="needs two usable cores to start two-thread pools")
def test_limit_applies_inside_and_restores_after_also_around_fit():
    out = _child(2, 2, "1")
    assert out["before"] == [2, 2]
    assert out["plan"] == [1, 1, 1] and out["inside"] == [1, 1] and out["after"] == [2, 2]
    assert out["fit"] == [1, 1] and out["after_fit"] == [2, 2]


def test_limit_never_raises_a_count_the_process_already_lowered():
    out = _child(1, 1, "2")          # OPENBLAS_NUM_THREADS=1 stays an upper bound whatever the plan
    assert out["before"] == [1, 1] and out["inside"] == [1, 1] and out["after"] == [1, 1]

"""varprop.sweep on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1.

Every cell once; one worker killed mid-sweep and the sweep still completes with every cell once; the client
killed mid-sweep and ``--resume`` computes only the missing cells; every cell's result equal, bit for bit,
to the same cell run serially in this process.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("distributed")

from varprop.sweep import execute, plan, run, store  # noqa: E402

pytestmark = pytest.mark.slow

GRID = ["sigma_w2=1:2.5:4", "depth=2,4,6,8"]          # 16 cells of a few tenths of a second each
FIXED = {"width": 96, "trials": 12, "batch": 8, "activation": "tanh", "sigma_b2": 0.05, "engine": "dense"}
TIMEOUT = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def _stop(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


@pytest.fixture
def cluster(tmp_path):
    """(address, [worker processes]): a scheduler and two single-thread workers without nannies (a killed
    worker stays dead), all stopped at the end."""
    from distributed import Client
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path / "cluster.log", "w")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], stdout=log, stderr=log, env=_env())]
    try:
        for i in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", addr, "--nthreads",
                                           "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                           "--name", f"w{i}"], stdout=log, stderr=log, env=_env()))
        with Client(addr, timeout=60) as c:
            c.wait_for_workers(2, timeout=60)
        yield addr, procs[1:]
    finally:
        _stop(procs)
        log.close()


def _serial(out):
    """cell id -> metrics of every cell of the grid, computed serially in this process."""
    _, cells = plan("simulate", GRID, FIXED)
    return {d["cell_id"]: store.dumps(execute(d)["metrics"]) for d in cells}


def _check_complete(out, serial):
    rows = store.read_cells(out)
    assert set(rows) == set(serial)                                  # every cell, once (one file each)
    for cid, row in rows.items():
        assert store.dumps(row["metrics"]) == serial[cid], cid       # bit for bit, wherever it ran
    csv_lines = open(os.path.join(out, store.CSV)).read().splitlines()
    assert len(csv_lines) == 1 + len(serial)
    assert len({line.split(",")[1] for line in csv_lines[1:]}) == len(serial)


def _wait_for_cells(out, n, proc=None):
    t0 = time.monotonic()
    folder = os.path.join(out, store.CELLS)
    while time.monotonic() - t0 < TIMEOUT:
        if os.path.isdir(folder) and len([f for f in os.listdir(folder) if f.endswith(".json")]) >= n:
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the client exited early ({proc.returncode})")
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} cells after {TIMEOUT} s")


def test_sweep_on_two_workers_every_cell_once_and_as_serial(cluster, tmp_path):
    addr, _ = cluster
    out = str(tmp_path / "s")
    r = run("simulate", GRID, FIXED, out, addr, timeout=30)
    assert r.complete and sorted(r.computed) == sorted(row["cell_id"] for row in r.rows) and not r.duplicates
    assert len({row["worker"] for row in r.rows}) == 2               # both workers took cells
    assert all(row["worker"].startswith("tcp://127.0.0.1:") for row in r.rows)
    _check_complete(out, _serial(out))


def test_a_worker_killed_mid_sweep_loses_no_cell(cluster, tmp_path):
    addr, workers = cluster
    out = str(tmp_path / "s")
    done = {}

    def client():
        try:
            done["result"] = run("simulate", GRID, FIXED, out, addr, timeout=30)
        except BaseException as exc:   # noqa: BLE001 - reported by the assertion below
            done["error"] = exc

    t = threading.Thread(target=client, daemon=True)
    t.start()
    _wait_for_cells(out, 3)
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(10)
    t.join(TIMEOUT)
    assert not t.is_alive() and "error" not in done, done.get("error")
    r = done["result"]
    assert r.complete and len(r.computed) == 16 and not r.duplicates and not r.failed
    assert len(r.computed) == len(set(r.computed))
    _check_complete(out, _serial(out))


def test_a_killed_client_resumes_with_only_the_missing_cells(cluster, tmp_path):
    addr, _ = cluster
    out = str(tmp_path / "s")
    argv = [sys.executable, "-m", "varprop", "sweep", "simulate", *sum((["--grid", g] for g in GRID), []),
            *sum((["--fixed", f"{k}={v}"] for k, v in FIXED.items()), []), "--out", out, "--scheduler", addr]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    try:
        _wait_for_cells(out, 3, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        _stop([proc])
    before = {cid: open(store.cell_path(out, cid)).read() for cid in store.read_cells(out)}
    assert 3 <= len(before) < 16, len(before)                        # killed mid-sweep
    r = run("simulate", GRID, FIXED, out, addr, resume=True, timeout=30)
    assert sorted(r.skipped) == sorted(before)
    assert set(r.computed) == set(_serial(out)) - set(before) and not r.duplicates
    assert {cid: open(store.cell_path(out, cid)).read() for cid in before} == before   # not rewritten
    _check_complete(out, _serial(out))


def test_local_cluster_default(tmp_path):
    out = str(tmp_path / "s")
    r = run("phase", ["sigma_w2=1,2,3"], {"activation": "tanh", "sigma_b2": 0.05}, out, workers=2)
    assert r.complete and len({row["worker"] for row in r.rows}) >= 1
    serial = run("phase", ["sigma_w2=1,2,3"], {"activation": "tanh", "sigma_b2": 0.05}, str(tmp_path / "t"),
                 "serial")
    assert [row["metrics"] for row in r.rows] == [row["metrics"] for row in serial.rows]


def test_train_cells_on_workers_equal_serial_bits(cluster, tmp_path):
    addr, _ = cluster
    grid = ["sigma_w2=1,2", "depth=2,3"]
    fixed = {"width": 24, "epochs": 1, "activation": "tanh", "sigma_b2": 0.05, "batch_size": 64}
    r = run("train", grid, fixed, str(tmp_path / "s"), addr, timeout=30)
    _, cells = plan("train", grid, fixed)
    serial = {d["cell_id"]: store.dumps(execute(d)["metrics"]) for d in cells}
    assert r.complete and {row["cell_id"]: store.dumps(row["metrics"]) for row in r.rows} == serial

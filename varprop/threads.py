"""Thread counts for BLAS and Numba, chosen together: never more busy threads than free cores.

OpenBLAS's and Numba's thread teams busy-wait between their parallel regions. On a machine where another
process keeps a core busy, a team sized to every core spins against that process and against the other
team, and a run slows by an order of magnitude instead of by the other process's share (beside one
``yes > /dev/null`` on two cores, a Fashion-MNIST epoch took 3.0 s with OpenBLAS's default two threads and
0.95 s with one). So a trainer's fit and a simulator's run enter :func:`limit`, which

1. counts the cores this process may run on (``os.sched_getaffinity``) and how many of them are free: the
   idle share of those cores over a short sample of ``/proc/stat`` (steal time counts as busy), or, where
   there is no ``/proc/stat``, the cores less the one-minute load average;
2. gives the team that does the work (``"blas"`` for the trainer's matrix products, ``"numba"`` for the
   Gaussian engine's kernels) one thread per free core, and the other team one thread. Both teams share
   the calling thread, so at most ``n_work + n_other - 1 = n_free`` threads are ever busy;
3. never raises a count above what the process already has (``OPENBLAS_NUM_THREADS``,
   ``NUMBA_NUM_THREADS`` or an enclosing limit stay upper bounds), and restores every count on exit.

The trainer's choice is made once per process and kept (:func:`plan`), so a checkpoint resumed in the same
process uses the BLAS setting of the run it continues (OpenBLAS rounds its products differently with
another thread count; Numba's kernels give the same bits on any). The simulator, whose bits do not depend
on the counts, measures again when its plan is older than a few seconds: a plan measured once while
another pool's threads were still spinning would otherwise keep its trials serial for the whole process.
``VARPROP_THREADS=N`` fixes the count instead of measuring it, which also makes training runs comparable bit
for bit across processes and loads.

>>> choose(cores=2, busy=1.0)                 # beside one CPU-bound process on two cores
Plan(free=1, blas=1, numba=1)
>>> choose(cores=2, busy=0.05, work="blas")   # an idle machine: the products get both cores
Plan(free=2, blas=2, numba=1)
>>> choose(cores=8, busy=2.6, work="numba")   # 5.4 cores free: 5 (a core counts when 3/4 idle)
Plan(free=5, blas=1, numba=5)
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from typing import NamedTuple

__all__ = ["Plan", "choose", "cores", "busy_cores", "plan", "limit", "current"]

FREE_SHARE = 0.75   # a core counts as free when it was idle at least this share of the sample
SAMPLE_S = 0.05     # length of the /proc/stat sample


class Plan(NamedTuple):
    free: int       # cores judged free for this process's threads
    blas: int       # threads for BLAS (and OpenMP) pools
    numba: int      # threads for Numba's parallel regions


def choose(cores: int, busy: float, work: str = "blas", fixed: int | None = None) -> Plan:
    """The thread counts for ``cores`` usable cores of which ``busy`` (a float) are busy with other work.

    ``work`` names the team that does the heavy lifting; the other gets one thread. ``fixed`` replaces the
    measurement by a count (capped at ``cores``).
    """
    if work not in ("blas", "numba"):
        raise ValueError(f"work must be 'blas' or 'numba', got {work!r}")
    cores = max(int(cores), 1)
    if fixed is not None:
        free = min(max(int(fixed), 1), cores)
    else:
        busy = min(max(float(busy), 0.0), float(cores)) if math.isfinite(busy) else float(cores)
        free = min(cores, max(1, math.floor(cores - busy + (1 - FREE_SHARE))))
    return Plan(free, free if work == "blas" else 1, free if work == "numba" else 1)


def cores() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _proc_stat() -> dict[int, tuple[int, int]] | None:
    """{cpu: (busy jiffies, total jiffies)} from /proc/stat, or None where it cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            lines = fh.readlines()
    except OSError:
        return None
    out = {}
    for line in lines:
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        try:
            cpu = int(name[3:])
            v = [int(f) for f in fields[:8]]
        except ValueError:
            continue
        v += [0] * (8 - len(v))
        idle = v[3] + v[4]                 # idle + iowait
        total = sum(v)                     # user nice system idle iowait irq softirq steal
        out[cpu] = (total - idle, total)
    return out or None


def busy_cores(sample: float = SAMPLE_S) -> float:
    """How many of this process's cores other work keeps busy, as a float.

    From the idle share of those cores over ``sample`` seconds of /proc/stat (this process sleeps during the
    sample, so it counts only others); else the one-minute load average; else 0.
    """
    mine = _affinity()
    a = _proc_stat()
    if a is not None:
        time.sleep(sample)
        b = _proc_stat()
        if b is not None:
            busy = 0.0
            for cpu in (mine if mine is not None else set(a)):
                if cpu in a and cpu in b:
                    d_busy, d_total = b[cpu][0] - a[cpu][0], b[cpu][1] - a[cpu][1]
                    busy += d_busy / d_total if d_total > 0 else 0.0
            return busy
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def _fixed() -> int | None:
    text = os.environ.get("VARPROP_THREADS", "").strip().lower()
    if text in ("", "auto"):
        return None
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"VARPROP_THREADS must be a positive integer or 'auto', got {text!r}") from None
    if n < 1:
        raise ValueError(f"VARPROP_THREADS must be a positive integer or 'auto', got {text!r}")
    return n


_PLAN: dict = {}   # (work, fixed) -> (Plan, time.monotonic() of its measurement)


def plan(work: str = "blas", refresh: bool = False, max_age: float | None = None) -> Plan:
    """This process's thread counts for ``work``: measured once, then kept; ``refresh`` measures again, and
    so does a kept plan older than ``max_age`` seconds (for work whose bits do not depend on the counts).

    >>> plan("blas", max_age=0.0).free >= 1
    True
    """
    fixed = _fixed()
    key = (work, fixed)
    kept = _PLAN.get(key)
    if refresh or kept is None or (max_age is not None and time.monotonic() - kept[1] > max_age):
        kept = _PLAN[key] = (choose(cores(), 0.0 if fixed is not None else busy_cores(), work, fixed),
                             time.monotonic())
    return kept[0]


def _controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def current(controller=None) -> tuple[int | None, int | None]:
    """(BLAS threads, Numba threads) as they are now; None for a pool that is not loaded. ``controller``: a
    threadpoolctl ``ThreadpoolController`` the caller keeps (a new one rescans the loaded libraries, about
    a millisecond)."""
    ctl = _controller() if controller is None else controller
    blas = None
    if ctl is not None:
        counts = [lib.num_threads for lib in ctl.lib_controllers if lib.user_api == "blas"]
        blas = min(counts) if counts else None
    try:
        import numba
        nb = numba.get_num_threads()
    except ImportError:
        nb = None
    return blas, nb


@contextlib.contextmanager
def limit(work: str = "blas", threads: int | None = None, max_age: float | None = None):
    """Run the body with :func:`plan`'s thread counts (or ``threads`` for the working team), restored after;
    ``max_age`` goes to :func:`plan`.

    Counts only go down: a pool already limited to fewer threads keeps its limit.

    >>> with limit("blas") as p:
    ...     p.blas >= 1 and p.numba >= 1
    True
    """
    p = plan(work, max_age=max_age) if threads is None else choose(cores(), 0.0, work, threads)
    ctl = _controller()
    with contextlib.ExitStack() as stack:
        if ctl is not None:
            for lib in ctl.lib_controllers:
                if lib.user_api in ("blas", "openmp") and lib.num_threads > p.blas:
                    before_lib = lib.num_threads
                    lib.set_num_threads(p.blas)
                    stack.callback(lib.set_num_threads, before_lib)
        try:
            import numba
        except ImportError:
            numba = None
        if numba is not None:
            before = numba.get_num_threads()
            if before > p.numba:
                numba.set_num_threads(p.numba)
                stack.callback(numba.set_num_threads, before)
        yield p

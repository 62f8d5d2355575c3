"""How many threads a trial uses: one for small layers, the defaults for large ones.

A small layer (a Gaussian-engine layer is O(n B) numbers; a dense one O(n^2)) is cheaper to compute on one
BLAS thread than to hand to a team: Numba's and OpenBLAS's thread teams busy-wait, and on a shared machine
two teams on two cores slow each other down by an order of magnitude. So below ``SERIAL_MAX`` OpenBLAS
gets one thread, and Numba keeps its team only when a layer has at least ``TEAM_MIN`` numbers (its fills
of normals, Gram products and layer kernels then run up to twice as fast on two cores, and with one BLAS
thread only one team is ever awake).
Where the team would run, :class:`Team` decides by timing: on a dedicated machine the team wins, but on a
shared one whose second core comes and goes (a virtual machine's vCPU descheduled by its host), every fork
and join waits for that core, and one thread is faster (the lecture's trial: about 5.8 ms with the team in
good spells, 10 ms in bad ones, 7.5 ms on one thread throughout).
Results do not depend on this choice: every reduction and random number is thread-count independent, so
only the speed changes.
"""
from __future__ import annotations

import contextlib
import functools
import math

__all__ = ["SERIAL_MAX", "TEAM_MIN", "serial", "numba_team", "limit", "Team"]

SERIAL_MAX = 1 << 20  # numbers per layer below which a trial runs on one BLAS thread
TEAM_MIN = 1 << 16    # numbers per layer from which Numba's team still runs the fills


def _work(cfg) -> int:
    rows = max(cfg.shape(layer)[0] for layer in range(1, cfg.depth + 1))
    work = cfg.batch * max(max(cfg.widths), rows)
    if cfg.engine == "dense":
        work = max(work, max(r * c for r, c in map(cfg.shape, range(1, cfg.depth + 1))))
    return work


def serial(cfg) -> bool:
    """True when every layer of ``cfg`` is small enough to run on one BLAS thread."""
    return _work(cfg) < SERIAL_MAX


def numba_team(cfg) -> bool:
    """True when the largest layer of ``cfg`` is large enough for Numba's thread team to pay."""
    return _work(cfg) >= TEAM_MIN


@functools.lru_cache(maxsize=1)
def _controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: only the speed depends on it
        return None
    return ThreadpoolController()


class Team:
    """Whether the trials of a run use Numba's thread team, chosen by timing them both ways.

    The first ``PROBE`` trials of every ``WINDOW`` alternate between the team and one thread; the rest of
    the window uses whichever ran its fastest probe trial faster (the minimum: a trial is only ever slowed
    by other work, and the first one also loads the compiled kernels). Re-probing each window follows a
    machine whose load changes. Same bits either way.

    >>> t = Team()
    >>> for seconds in (0.9, 0.5, 0.8, 0.6):     # the probes: team, one thread, team, one thread
    ...     _ = t.next(); t.record(seconds)
    >>> t.next()                                   # one thread ran its fastest probe faster
    False
    """
    PROBE = 4
    WINDOW = 64

    def __init__(self):
        self.count = 0
        self.best = {True: math.inf, False: math.inf}
        self.choice = True
        self._pending = None

    def next(self) -> bool:
        """The setting for the next trial (True: the team); report its time with :meth:`record`."""
        pos = self.count % self.WINDOW
        if pos == 0:
            self.best = {True: math.inf, False: math.inf}
        self._pending = (pos % 2 == 0) if pos < self.PROBE else self.choice
        return self._pending

    def record(self, seconds: float) -> None:
        """The time of the trial that :meth:`next` set up."""
        pos = self.count % self.WINDOW
        self.count += 1
        if pos < self.PROBE:
            self.best[self._pending] = min(self.best[self._pending], seconds)
            if pos == self.PROBE - 1:
                self.choice = self.best[True] <= self.best[False]


@contextlib.contextmanager
def limit(cfg, team: bool | None = None):
    """Run the body on one BLAS thread when :func:`serial` says so, and then on one Numba thread too
    unless :func:`numba_team` says otherwise or ``team`` (a :class:`Team` choice) is False."""
    if not serial(cfg):
        yield
        return
    import numba
    before = numba.get_num_threads()
    if not numba_team(cfg) or team is False:
        numba.set_num_threads(1)
    try:
        ctl = _controller()
        with (ctl.limit(limits=1, user_api="blas") if ctl is not None else contextlib.nullcontext()):
            yield
    finally:
        numba.set_num_threads(before)

"""How many threads a trial uses: one for small layers, the defaults for large ones.

A small layer (a Gaussian-engine layer is O(n B) numbers; a dense one O(n^2)) is cheaper to compute on one
BLAS thread than to hand to a team: Numba's and OpenBLAS's thread teams busy-wait, and on a shared machine
two teams on two cores slow each other down by an order of magnitude. So below ``SERIAL_MAX`` OpenBLAS
gets one thread, and Numba keeps its team only when a layer has at least ``TEAM_MIN`` numbers (its fills
of normals then run about twice as fast on two cores, and with one BLAS thread only one team is ever
awake: the lecture's Gaussian trial, 4096 x 7 at batch 16, went from about 9.6 to 8.7 ms).
Results do not depend on this choice: every reduction and random number is thread-count independent, so
only the speed changes.
"""
from __future__ import annotations

import contextlib
import functools

__all__ = ["SERIAL_MAX", "TEAM_MIN", "serial", "numba_team", "limit"]

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


@contextlib.contextmanager
def limit(cfg):
    """Run the body on one BLAS thread when :func:`serial` says so, and then on one Numba thread too
    unless :func:`numba_team` says otherwise."""
    if not serial(cfg):
        yield
        return
    import numba
    before = numba.get_num_threads()
    if not numba_team(cfg):
        numba.set_num_threads(1)
    try:
        ctl = _controller()
        with (ctl.limit(limits=1, user_api="blas") if ctl is not None else contextlib.nullcontext()):
            yield
    finally:
        numba.set_num_threads(before)

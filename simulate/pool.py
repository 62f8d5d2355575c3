"""A long simulation's trials in worker processes: trials side by side without sharing a GIL.

Two trials of the sweep's shape (widths 256 x 101, batch 64) as two threads of one process run 1.4x one
trial's speed on two cores; as two processes 1.8x (``python benchmarks/simulate.py --sections 6``). The
compiled parts (products, fills, Gram and layer kernels) release the GIL, but a trial also spends about a
fifth of its time in per-layer Python, which two threads take turns on. So a run that is long enough
(:data:`MIN_S`) sends trials 1, 2, ... to a pool of worker processes, one per free core.

* Each worker is a fresh interpreter (``python -c``, never a fork of the caller and never a re-import of the
  caller's ``__main__``), started with ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and
  ``NUMBA_NUM_THREADS`` set to 1, so that no thread team exists in it to spin against its twin: limiting the
  counts after import instead was measured 4x slower beside a twin.
* It receives the configuration's :meth:`~varprop.simulate.config.Config.build` arguments (never code) and
  trial numbers, over a pipe, and sends back each trial's ``(stats, hist)``. Trial t depends only on its
  streams, so the results are the serial run's bit for bit, and they are handed on in trial order.
* Workers outlive a run, so that successive runs do not pay their start (about 0.8 s each, most of it
  imports), and exit by themselves after :data:`IDLE_S` seconds without work or when the caller exits.
* A forked copy of the caller starts workers of its own (it never writes to its parent's).
* A worker that dies (killed, out of memory) loses nothing: the pool is closed and the trials it had not
  returned are computed in the calling process, with the same bits. An error inside a trial is raised
  again by computing that trial in the calling process. Ctrl-C reaches only the caller (the workers ignore
  SIGINT); the pool is then closed with the trials in flight.
"""
from __future__ import annotations

import atexit
import os
import pickle
import selectors
import struct
import subprocess
import sys
import threading
import time

__all__ = ["MIN_S", "IDLE_S", "PROCESS_BYTES", "Lost", "Pool", "available", "get", "release", "shutdown"]

MIN_S = 2.0        # a run uses the pool when its trials would take at least this long on one core
IDLE_S = 120.0     # a worker exits after this many seconds without a message
PROCESS_BYTES = 300 << 20   # a worker's interpreter with NumPy, Numba and the kernels loaded (270 MB measured)
IN_FLIGHT = 2      # trials queued per worker: one computing, one waiting, so no worker idles between them
_HEADER = struct.Struct("<Q")
_ONE_THREAD = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
               "VARPROP_THREADS")
# the worker: SIGINT ignored before anything is imported, then the serving loop
_BOOT = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
         "from varprop.simulate.pool import _serve; _serve()")


class Lost(RuntimeError):
    """A worker process stopped answering (it exited, or its pipe broke)."""


def _write(fd: int, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes:
    parts, left = [], n
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise EOFError
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _read(fd: int):
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    return pickle.loads(_read_exact(fd, size))


def _serve() -> None:
    """The worker's loop: ``("config", token, spec, edges, keep_weights)`` sets the configuration,
    ``("trial", token, t)`` runs trial t and answers ``("ok", token, t, stats, hist)`` (or ``("error",
    token, t, text)``); end of input or :data:`IDLE_S` seconds without a message ends it."""
    import dataclasses
    import traceback

    inp, out = 0, os.dup(1)
    os.dup2(2, 1)                       # a stray print goes to stderr, never into the answers
    from .config import Config
    from .engines import Workspace, simulate_trial
    cfg, token, keep, ws = None, None, True, Workspace()
    sel = selectors.DefaultSelector()
    sel.register(inp, selectors.EVENT_READ)
    while True:
        if not sel.select(IDLE_S):
            return
        try:
            msg = _read(inp)
        except EOFError:
            return
        if msg[0] == "config":
            _, token, spec, edges, keep = msg
            try:
                cfg = Config.build(**spec)
                if edges is not None:
                    cfg = dataclasses.replace(cfg, hist_edges=edges)
            except Exception:                # noqa: BLE001 - reported with the next trial
                cfg = traceback.format_exc()
            ws = Workspace()
            continue
        _, tok, t = msg
        if isinstance(cfg, str) or tok != token:
            _write(out, ("error", tok, t, cfg if isinstance(cfg, str) else "no configuration for this run"))
            continue
        try:
            stats, hist = simulate_trial(cfg, t, keep, workspace=ws, one_thread=True)
        except Exception:                    # noqa: BLE001 - the caller computes it again and raises
            _write(out, ("error", tok, t, traceback.format_exc()))
            continue
        _write(out, ("ok", tok, t, stats, hist))


class _Worker:
    def __init__(self):
        env = dict(os.environ, **{k: "1" for k in _ONE_THREAD})
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, close_fds=True)
        self.win, self.rout = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self.queued = []                     # trial numbers sent and not yet answered, in order
        self.last = time.monotonic()

    def alive(self) -> bool:
        # a worker about to time out is as good as gone: replace it rather than race its exit
        return self.proc.poll() is None and time.monotonic() - self.last < IDLE_S - 5.0

    def send(self, obj) -> None:
        try:
            _write(self.win, obj)
        except OSError as e:                 # BrokenPipeError: it exited
            raise Lost(f"a simulation worker process exited (code {self.proc.poll()})") from e
        self.last = time.monotonic()

    def receive(self):
        try:
            msg = _read(self.rout)
        except (EOFError, OSError) as e:
            raise Lost(f"a simulation worker process exited (code {self.proc.poll()})") from e
        self.last = time.monotonic()
        return msg

    def close(self, kill: bool = False) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        if kill:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Pool:
    """``n`` worker processes; :meth:`map` runs trials on them and yields the answers in trial order."""

    def __init__(self, n: int):
        self.workers = [_Worker() for _ in range(n)]
        self._tokens = iter(range(1, 1 << 62))

    def alive(self) -> bool:
        return all(w.alive() for w in self.workers)

    def close(self, kill: bool = False) -> None:
        for w in self.workers:
            w.close(kill)
        self.workers = []

    def map(self, spec: dict, edges, keep_weights: bool, trials):
        """``(t, stats, hist)`` for every t of ``trials`` (an iterable of ints), in that order. Raises
        :class:`Lost` when a worker stops answering, after yielding every trial before the first unanswered
        one; ``("error", t, text)`` replaces a trial whose computation raised in the worker."""
        token = next(self._tokens)
        for w in self.workers:
            w.queued = []
            w.send(("config", token, spec, edges, keep_weights))
        todo = iter(trials)
        order = []                           # trials sent, in trial order
        done = {}
        sel = selectors.DefaultSelector()
        for w in self.workers:
            sel.register(w.rout, selectors.EVENT_READ, w)

        def feed(w):
            t = next(todo, None)
            if t is not None:
                w.send(("trial", token, t))
                w.queued.append(t)
                order.append(t)
        try:
            for _ in range(IN_FLIGHT):
                for w in self.workers:
                    feed(w)
            head = 0
            while head < len(order):
                while order[head] not in done:
                    for key, _ in sel.select():
                        w = key.data
                        msg = w.receive()
                        t = msg[2]
                        if msg[1] != token or not w.queued or w.queued[0] != t:
                            raise Lost("a simulation worker answered out of turn")
                        w.queued.pop(0)
                        done[t] = ("ok", msg[3], msg[4]) if msg[0] == "ok" else ("error", msg[3])
                        feed(w)
                t = order[head]
                head += 1
                yield (t, *done.pop(t))
        finally:
            sel.close()


_LOCK = threading.Lock()
_POOL: Pool | None = None
_BUSY = False


def available() -> bool:
    """True when a worker could start here (an interpreter to run, pipes that ``selectors`` can wait on: not
    on Windows) and the pool is not in use by another thread."""
    return bool(sys.executable) and os.name == "posix" and not _BUSY


def get(n: int) -> Pool | None:
    """The process's pool of ``n`` workers (started, or kept from an earlier run), marked busy until
    :func:`release`; None when another thread of the process holds it."""
    global _POOL, _BUSY
    with _LOCK:
        if _BUSY:
            return None
        _BUSY = True
        try:
            if _POOL is not None and (len(_POOL.workers) != n or not _POOL.alive()):
                _POOL.close(kill=True)
                _POOL = None
            if _POOL is None:
                _POOL = Pool(n)
        except BaseException:
            _BUSY = False
            raise
        return _POOL


def release(broken: bool = False) -> None:
    """Hand the pool back after :func:`get`; ``broken``: a run ended inside it (a lost worker, Ctrl-C),
    so its workers may still be computing for that run and are stopped."""
    global _POOL, _BUSY
    with _LOCK:
        if broken and _POOL is not None:
            _POOL.close(kill=True)
            _POOL = None
        _BUSY = False


def shutdown() -> None:
    """Stop the workers (at exit; a later run starts new ones)."""
    global _POOL
    with _LOCK:
        if _POOL is not None:
            _POOL.close()
            _POOL = None


def _forget_after_fork() -> None:
    """In a forked child: the workers are the parent's, so the child never writes to them."""
    global _POOL, _BUSY, _LOCK
    _POOL, _BUSY, _LOCK = None, False, threading.Lock()


atexit.register(shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)

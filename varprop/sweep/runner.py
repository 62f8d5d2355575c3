"""``run(kind, grid, fixed, out, client=None)``: every cell of a grid as one Dask task, written as it finishes.

The client describes each cell (kind, fixed options, coordinates, seed: a small dict) and submits
:func:`varprop.sweep.kinds.execute` with it under a key made of the sweep's token and the cell id; Dask
does the scheduling, and a worker lost mid-task has its task rerun elsewhere (Dask's own rescheduling).
The client writes each result as it arrives, atomically and once (:mod:`varprop.sweep.store`), so a killed
client loses only cells in flight and ``resume=True`` computes exactly the cells without a file.

``client``: None starts a ``dask.distributed.LocalCluster`` (processes, ``workers`` of them, default one
per core, one thread each) and closes it at the end; a ``"tcp://HOST:PORT"`` address connects to a
running scheduler (``dask scheduler`` + ``dask worker``, or any deployment); a ``distributed.Client`` is
used as given; ``"serial"`` runs the cells one after another in this process (no Dask needed): each
cell's result is the same bits as on any worker.

Everything that can be checked is checked before the first task is submitted: the kind, every grid key
and value, every cell's options (each cell's configuration is built), the number of cells against
``max_cells``, the output folder, and the scheduler's reachability.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field

from varprop.io import Progress

from . import store
from .grid import Grid, canonical, cell_id, cell_seed, normalize_key, parse_value
from .kinds import KINDS, cell_options, cost, execute, types, validate

__all__ = ["run", "load", "SweepResult", "SweepError", "INSTALL", "parse_fixed", "plan"]

INSTALL = 'the sweep runs on Dask distributed, which is not installed: pip install "varprop[sweep]"'
MAX_CELLS = 10000


class SweepError(RuntimeError):
    """Some cells failed; the others were written. ``result`` holds what was done."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


@dataclass
class SweepResult:
    """A sweep folder's content: ``rows`` (one dict per finished cell, by index), and for a run, what it did."""
    out: str
    manifest: dict
    rows: list
    computed: list = field(default_factory=list)     # cell ids computed by this run
    skipped: list = field(default_factory=list)      # cell ids already done (resume)
    failed: dict = field(default_factory=dict)       # cell id -> error message
    duplicates: list = field(default_factory=list)   # results that arrived for a cell already written
    elapsed_s: float = 0.0

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def axes(self) -> dict:
        return self.manifest["grid"]["axes"]

    @property
    def total(self) -> int:
        return int(self.manifest["cells"])

    @property
    def complete(self) -> bool:
        return len(self.rows) == self.total

    def column(self, name: str) -> list:
        """A coordinate or metric of every finished cell, in grid order."""
        return [r["coords"][name] if name in r["coords"] else r["metrics"].get(name) for r in self.rows]

    def summary(self) -> str:
        rate = len(self.computed) / self.elapsed_s if self.elapsed_s > 0 else 0.0
        parts = [f"{len(self.rows)}/{self.total} cells done", f"{len(self.computed)} computed"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} already done")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        parts.append(f"{self.elapsed_s:.1f} s ({rate:.3g} cells/s)")
        return ", ".join(parts) + f"; results in {os.path.join(self.out, store.CSV)}"


def _require_dask():
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ImportError(INSTALL) from None


def parse_fixed(kind: str, fixed) -> dict:
    """``fixed`` as a dict of typed option values: from ``["KEY=VALUE", ...]`` or a dict (strings are parsed)."""
    if fixed is None:
        return {}
    items = fixed.items() if isinstance(fixed, dict) else [_split(f) for f in ([fixed] if isinstance(fixed, str) else fixed)]
    items = [(normalize_key(k), v) for k, v in items]
    known = types(kind, [k for k, _ in items])
    out = {}
    for k, v in items:
        if k == "seed":
            raise ValueError("seed is the sweep's own (--seed): every cell gets a seed derived from it")
        if k not in known:
            raise ValueError(f"unknown option {k!r} for a {kind} sweep; known: {', '.join(sorted(known))}")
        if k in out:
            raise ValueError(f"option {k!r} fixed twice")
        typ = known[k]
        if isinstance(v, str):
            v = parse_value(v, typ, k)
        elif typ is float and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = float(v)
        elif typ is not type(v) and not (v is None):
            raise TypeError(f"{k} takes a {typ.__name__}, got {v!r}")
        out[k] = v
    return out


def _split(item: str):
    if not isinstance(item, str) or "=" not in item:
        raise ValueError(f"a fixed option is KEY=VALUE (e.g. activation=tanh), got {item!r}")
    k, v = item.split("=", 1)
    return k, v


def plan(kind: str, grid, fixed=None, seed: int = 0, max_cells: int = MAX_CELLS) -> tuple[dict, list]:
    """(manifest, cell descriptions) for a sweep, every cell validated; nothing is run or written."""
    if kind not in KINDS:
        raise ValueError(f"unknown sweep kind {kind!r}; known: {', '.join(KINDS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"the sweep seed must be an integer >= 0, got {seed!r}")
    if not isinstance(grid, Grid):
        keys = list(grid) if isinstance(grid, dict) else [s.split("=", 1)[0] for s in ([grid] if isinstance(grid, str) else grid or [])
                                                          if isinstance(s, str)]
        grid = Grid.parse(grid, types(kind, keys))
    if "seed" in grid.axes:
        raise ValueError("seed is the sweep's own (--seed): every cell gets a seed derived from it")
    n = len(grid)
    if n > max_cells:
        raise ValueError(f"the grid has {n} cells, more than --max-cells {max_cells}")
    fixed = parse_fixed(kind, fixed)
    from varprop import __version__
    manifest = {"format": store.FORMAT, "kind": kind, "grid": grid.to_dict(), "fixed": fixed, "seed": int(seed),
                "cells": n, "varprop_version": __version__}
    manifest["token"] = hashlib.sha256(canonical({"kind": kind, "grid": grid.axes, "fixed": fixed,
                                                  "seed": int(seed)}).encode()).hexdigest()[:12]
    descs = []
    for i, coords in enumerate(grid.cells()):
        opts = cell_options(kind, fixed, coords)
        try:
            validate(kind, opts)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"cell {_coords_text(coords)}: {exc}") from None
        descs.append({"kind": kind, "fixed": fixed, "coords": coords, "seed": cell_seed(seed, coords),
                      "sweep_seed": int(seed), "cell_id": cell_id(coords), "index": i})
    return manifest, descs


def _coords_text(coords: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in coords.items())


def _same(a: dict, b: dict) -> bool:
    keys = ("kind", "fixed", "seed")
    return all(json.dumps(store._plain(a[k]), sort_keys=True) == json.dumps(store._plain(b[k]), sort_keys=True)
               for k in keys) and a["grid"]["axes"] == b["grid"]["axes"]


def _check_out(out: str, manifest: dict, resume: bool) -> None:
    out = os.fspath(out)
    if out.strip() == "":
        raise ValueError("the output folder is empty: name one, e.g. --out sweep1")
    if os.path.lexists(out) and not os.path.isdir(out):
        raise ValueError(f"{out} exists and is not a folder")
    old = store.read_manifest(out) if os.path.isdir(out) else None
    if old is None:
        if os.path.isdir(out) and [e for e in os.listdir(out) if e != ".lock"]:
            raise ValueError(f"{out} is not empty and holds no sweep; name a new or empty folder")
        return       # a new sweep (resuming one that never started starts it)
    if not resume:
        raise ValueError(f"{out} already holds a sweep; pass --resume to finish it, or name a new folder")
    if not _same(old, manifest):
        raise ValueError(f"{out} holds a different sweep (kind, grid, fixed options or seed differ); "
                         "resume it with its own arguments or name a new folder")


def _from_manifest(out: str):
    m = store.read_manifest(out)
    if m is None:
        raise ValueError(f"{out} holds no sweep to resume (no {store.MANIFEST})")
    return m


def _connect(client, workers, timeout):
    """(client, cluster or None, owned): the Dask client to use."""
    _require_dask()
    from distributed import Client
    if isinstance(client, Client):
        return client, None, False
    if client is None:
        from distributed import LocalCluster
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        return Client(cluster), cluster, True
    if not isinstance(client, str):
        raise TypeError(f"client must be None, 'serial', a scheduler address or a distributed.Client, got {client!r}")
    addr = client.strip()
    if "://" not in addr:
        addr = "tcp://" + addr
    try:
        c = Client(addr, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {client}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if workers:
        try:
            c.wait_for_workers(int(workers), timeout=timeout)
        except (OSError, TimeoutError) as exc:
            c.close()
            raise ValueError(f"the scheduler at {client} has fewer than {workers} workers after {timeout} s") from exc
    return c, None, True


def run(kind=None, grid=None, fixed=None, out=None, client=None, *, seed: int | None = None, workers: int | None = None,
        resume: bool = False, max_cells: int = MAX_CELLS, progress=None, timeout: float = 10.0) -> SweepResult:
    """Run every cell of ``grid`` (see the module docstring) and return the folder's :class:`SweepResult`.

    ``grid``: ``["sigma_w2=1:4:31", "depth=10:300:30"]`` or a dict (axis -> spec text or values);
    ``fixed``: ``["activation=tanh", ...]`` or a dict. With ``resume=True`` the kind, grid, fixed options
    and seed may be omitted (they are read from the folder's manifest); given, they must match it. ``seed``
    defaults to 0 for a new sweep.
    Raises ValueError/TypeError before any work for a bad request, ImportError when Dask is needed and
    missing, and :class:`SweepError` at the end when some cells failed (the rest are written).

    >>> import tempfile
    >>> r = run("phase", ["sigma_w2=1,2"], ["activation=tanh", "sigma_b2=0.05"], tempfile.mkdtemp(), "serial")
    >>> r.complete, [round(x, 4) for x in r.column("xi_c")]
    (True, [3.627, 25.2134])
    """
    if out is None:
        raise ValueError("a sweep needs an output folder (out=..., --out DIR)")
    out = os.fspath(out)
    if resume and (kind is None or grid is None):
        m = _from_manifest(out)
        kind = m["kind"] if kind is None else kind
        grid = Grid.from_dict(m["grid"]) if grid is None else grid
        fixed = m["fixed"] if fixed is None else fixed
        seed = m["seed"] if seed is None else seed
    if kind is None or grid is None:
        raise ValueError("a sweep needs a kind (simulate, train, phase) and a grid")
    if seed is None:
        old = store.read_manifest(out) if resume and os.path.isdir(out) else None
        seed = old["seed"] if old else 0
    manifest, descs = plan(kind, grid, fixed, seed, max_cells)
    _check_out(out, manifest, resume)
    serial = isinstance(client, str) and client == "serial"
    if not serial and client is not None and not isinstance(client, str):
        _require_dask()
    c = cluster = None
    owned = False
    ids = {d["cell_id"] for d in descs}
    if not serial and ids - set(store.read_cells(out) if os.path.isdir(out) else {}):
        c, cluster, owned = _connect(client, workers, timeout)   # unreachable: ValueError, nothing written
    try:
        os.makedirs(out, exist_ok=True)
        lock = store.Lock(out).__enter__()
    except BaseException:
        _close(c, cluster, owned)
        raise
    try:
        done = store.read_cells(out)
        todo = [d for d in descs if d["cell_id"] not in done]
        result = SweepResult(out, manifest, [], skipped=[d["cell_id"] for d in descs if d["cell_id"] in done])
        store.write_manifest(out, manifest)
        start = time.perf_counter()
        try:
            if todo:
                _compute(todo, out, c, serial, result, progress)
        finally:
            result.elapsed_s = time.perf_counter() - start
            rows = store.read_cells(out)
            result.rows = sorted(rows.values(), key=lambda r: r["index"])
            store.write_csv(out, result.rows, list(manifest["grid"]["axes"]))
    finally:
        _close(c, cluster, owned)
        lock.__exit__(None, None, None)
    if result.failed:
        first = next(iter(result.failed.items()))
        raise SweepError(f"{len(result.failed)} of {len(todo)} cells failed (the others are written; fix and "
                         f"--resume): first, cell {first[0]}: {first[1]}", result)
    return result


def _close(client, cluster, owned):
    if owned and client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def _cost(d) -> float:
    try:
        return cost(d["kind"], cell_options(d["kind"], d["fixed"], d["coords"]))
    except (ValueError, TypeError, KeyError):    # the cell fails on its worker, with its own message
        return 0.0


def submission_order(todo: list) -> list:
    """The cells longest first (by :func:`varprop.sweep.kinds.cost`; ties in grid order), as a cluster
    gets them with their rank as Dask's priority: the last cells to finish are short ones, so no worker
    idles while another ends on a long cell. Which worker runs a cell, and when, never changes its result."""
    return sorted(todo, key=lambda d: (-_cost(d), d["index"]))


def _compute(todo, out, client, serial, result, progress):
    with Progress(len(todo), "sweep", enabled=progress) as bar:
        t0 = time.perf_counter()

        def record(row):
            if store.write_cell(out, row):
                result.computed.append(row["cell_id"])
            else:
                result.duplicates.append(row["cell_id"])
            n = len(result.computed) + len(result.failed)
            rate = n / max(time.perf_counter() - t0, 1e-9)
            bar.update(info=f"{rate:.3g} cells/s")

        if serial:
            for d in todo:
                try:
                    row = execute(d)
                except (ValueError, TypeError, ArithmeticError) as exc:
                    result.failed[d["cell_id"]] = f"{type(exc).__name__}: {exc}"
                    bar.update()
                    continue
                record(row)
            return
        from distributed import as_completed
        token = result.manifest["token"]
        todo = submission_order(todo)
        futures = [client.submit(execute, d, key=f"varprop-cell-{token}-{d['cell_id']}", pure=False,
                                 priority=len(todo) - i) for i, d in enumerate(todo)]
        by_key = {f.key: d for f, d in zip(futures, todo)}
        try:
            for fut in as_completed(futures):
                d = by_key[fut.key]
                try:
                    row = fut.result()
                except Exception as exc:     # a cell's own error, or Dask giving up on it (KilledWorker)
                    result.failed[d["cell_id"]] = f"{type(exc).__name__}: {exc}"
                    bar.update()
                    continue
                finally:
                    fut.release()
                record(row)
        except BaseException:
            client.cancel(futures)
            raise


def load(out) -> SweepResult:
    """The sweep in folder ``out``: its manifest and every finished cell (by grid index)."""
    out = os.fspath(out)
    m = store.read_manifest(out)
    if m is None:
        raise ValueError(f"{out} holds no sweep (no {store.MANIFEST})")
    rows = store.read_cells(out)
    return SweepResult(out, m, sorted(rows.values(), key=lambda r: r["index"]))

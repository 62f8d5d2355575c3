"""A sweep's folder: the manifest, one JSON file per finished cell, the tidy CSV assembled from them.

Layout of ``DIR``::

    sweep.json         the manifest: kind, grid (axes, their specs), fixed options, sweep seed, varprop version
    cells/<id>.json    one finished cell (written atomically, once): coordinates, metrics, seed, elapsed, worker
    results.csv        every finished cell, one row each, sorted by the cell's index in the grid

A cell file exists only once its cell is complete, so the folder after any interruption lists exactly the
cells done, and ``--resume`` computes the others. Non-finite numbers (an infinite depth scale at the
critical point) are stored as the strings "inf", "-inf" and "nan" (JSON has no such numbers) and read
back as floats.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os

from varprop.io import atomic_write_text

__all__ = ["MANIFEST", "CELLS", "CSV", "FORMAT", "write_manifest", "read_manifest", "cell_path", "write_cell",
           "read_cells", "to_csv", "write_csv", "dumps", "Lock"]

MANIFEST = "sweep.json"
CELLS = "cells"
CSV = "results.csv"
FORMAT = "varprop-sweep/1"


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _back(x):
    if isinstance(x, dict):
        return {k: _back(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_back(v) for v in x]
    if isinstance(x, str) and x in _SPECIAL:
        return _SPECIAL[x]
    return x


def dumps(obj) -> str:
    return json.dumps(_plain(obj), indent=1, sort_keys=True, allow_nan=False) + "\n"


def write_manifest(out: str, manifest: dict) -> str:
    return atomic_write_text(os.path.join(out, MANIFEST), dumps(manifest))


def read_manifest(out: str) -> dict | None:
    path = os.path.join(out, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            m = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable sweep manifest ({exc})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ValueError(f"{path}: not a varprop sweep manifest")
    return _back(m)


def cell_path(out: str, cid: str) -> str:
    return os.path.join(out, CELLS, f"{cid}.json")


def write_cell(out: str, row: dict) -> bool:
    """Write a finished cell once; False (and nothing written) when its file already exists."""
    path = cell_path(out, row["cell_id"])
    if os.path.exists(path):
        return False
    atomic_write_text(path, dumps(row))
    return True


def read_cells(out: str) -> dict:
    """cell id -> row of every finished cell in ``out`` (an unreadable file is an error, not a skip)."""
    folder = os.path.join(out, CELLS)
    rows = {}
    if not os.path.isdir(folder):
        return rows
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as fh:
                row = _back(json.load(fh))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable cell ({exc})") from None
        if not isinstance(row, dict) or row.get("cell_id") != name[:-5]:
            raise ValueError(f"{path}: not a cell of this sweep")
        rows[row["cell_id"]] = row
    return rows


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def to_csv(rows: list, axes: list) -> str:
    """One line per cell: index, cell_id, the coordinates, the metrics (sorted), seed, elapsed_s, worker."""
    metrics = sorted({k for r in rows for k in r["metrics"]})
    header = ["index", "cell_id", *axes, *metrics, "seed", "elapsed_s", "worker"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in sorted(rows, key=lambda r: r["index"]):
        w.writerow([r["index"], r["cell_id"], *(_csv_value(r["coords"].get(a)) for a in axes),
                    *(_csv_value(r["metrics"].get(m)) for m in metrics), r["seed"], _csv_value(r["elapsed_s"]),
                    r["worker"]])
    return buf.getvalue()


def write_csv(out: str, rows: list, axes: list) -> str:
    return atomic_write_text(os.path.join(out, CSV), to_csv(rows, axes))


class Lock:
    """One client per sweep folder: ``DIR/.lock`` holds the owner's host and pid; a lock whose process is
    gone (a killed client) is taken over."""

    def __init__(self, out: str):
        self.path = os.path.join(out, ".lock")
        self.held = False

    def __enter__(self):
        import socket
        me = f"{socket.gethostname()} {os.getpid()}\n"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale():
                    try:
                        os.unlink(self.path)
                    except FileNotFoundError:
                        pass
                    continue
                raise ValueError(f"{os.path.dirname(self.path)} is in use by another sweep client "
                                 f"({self._owner()}); wait for it or stop it") from None
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
            self.held = True
            return self
        raise ValueError(f"cannot take the lock {self.path}")

    def _owner(self) -> str:
        try:
            with open(self.path, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError:
            return "unknown"

    def _stale(self) -> bool:
        import socket
        parts = self._owner().split()
        if len(parts) != 2 or not parts[1].isdigit():
            return True
        if parts[0] != socket.gethostname():
            return False
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __exit__(self, *exc):
        if self.held:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.held = False
        return False

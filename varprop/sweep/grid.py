"""Grids of cells: axis specifications, canonical coordinates, cell ids and per-cell seeds.

An axis is ``NAME=SPEC`` with SPEC one of

* ``a:b:n``      n values spaced linearly from a to b (both included);
* ``log:a:b:n``  n values spaced geometrically from a to b (a, b > 0);
* ``v1,v2,...``  a list (a single value is a one-value axis).

Values are typed by the option they set (:mod:`varprop.sweep.kinds`): range values of a float option are
rounded to 12 significant digits (so ``1:4:31`` gives 1.1, not 1.1000000000000001), those of an integer
option to the nearest integer (two equal values after rounding are an error, not a silent merge).

A cell is one point of the Cartesian product (the first axis varies slowest). Its canonical coordinates
are the JSON text of ``{axis: value}`` with sorted keys; the cell id is the first 16 hex digits of its
SHA-256, and its seed is drawn from ``numpy.random.SeedSequence(sweep_seed, spawn_key=...)`` with the
digest's first four 32-bit words as the spawn key. A cell's seed therefore depends only on the sweep
seed and on where the cell is in the grid's coordinates, never on the order, the worker or the time it
ran, and adding an axis value leaves every other cell's seed as it was.

>>> g = Grid.parse(["sigma_w2=1:2:3", "depth=8,16"], {"sigma_w2": float, "depth": int})
>>> g.axes
{'sigma_w2': [1.0, 1.5, 2.0], 'depth': [8, 16]}
>>> len(g), g.cells()[1]
(6, {'sigma_w2': 1.0, 'depth': 16})
>>> cell_id({"depth": 16, "sigma_w2": 1.0}) == cell_id({"sigma_w2": 1.0, "depth": 16})
True
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math

import numpy as np

from varprop.expr import parse_finite

__all__ = ["Grid", "parse_axis", "parse_value", "canonical", "cell_id", "cell_seed", "normalize_key"]

_SEED_BITS = 63


def normalize_key(key: str) -> str:
    """``sigma-b2`` and ``sigma_b2`` name the same option (the CLI's spelling and the library's)."""
    return key.strip().replace("-", "_")


def parse_value(text: str, typ, key: str):
    """One value of option ``key`` of type ``typ`` (int, float, bool or str) from its text; never evaluated."""
    text = text.strip()
    if text == "":
        raise ValueError(f"{key}: an empty value")
    if typ is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key} takes true or false, got {text!r}")
    if typ is int:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"{key} takes integers, got {text!r}") from None
        if not v.is_integer():
            raise ValueError(f"{key} takes integers, got {text!r}")
        return int(v)
    if typ is float:
        return parse_finite(text, key)
    return text


def _number(text: str, key: str) -> float:
    return parse_finite(text, f"{key}: a range end (a:b:n)")


def _count(text: str, key: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"{key}: the number of values in a range must be an integer, got {text!r}") from None
    if n < 1:
        raise ValueError(f"{key}: the range {text!r} is empty (it needs at least one value)")
    return n


def parse_axis(spec: str, types: dict) -> tuple[str, list, str]:
    """``"NAME=SPEC"`` -> (name, values, kind of axis: "linear", "log" or "list"); ValueError when bad."""
    if not isinstance(spec, str) or "=" not in spec:
        raise ValueError(f"a grid axis is NAME=SPEC (e.g. sigma_w2=1:4:31), got {spec!r}")
    key, body = spec.split("=", 1)
    key = normalize_key(key)
    if key not in types:
        raise ValueError(f"unknown grid key {key!r}; known: {', '.join(sorted(types))}")
    typ = types[key]
    body = body.strip()
    if body == "":
        raise ValueError(f"{key}: the axis has no values")
    parts = body.split(":")
    if len(parts) in (3, 4) and (len(parts) == 3 or parts[0].strip().lower() == "log"):
        if typ not in (int, float):
            raise ValueError(f"{key} takes {typ.__name__} values: give a list (a,b,c), not a range")
        log = len(parts) == 4
        a, b = (_number(t, key) for t in parts[-3:-1])
        n = _count(parts[-1], key)
        if log:
            if a <= 0 or b <= 0:
                raise ValueError(f"{key}: a log range needs positive ends, got {a:g} and {b:g}")
            raw = np.geomspace(a, b, n) if n > 1 else np.array([a])
        else:
            raw = np.linspace(a, b, n) if n > 1 else np.array([a])
        if typ is int:
            values = [int(round(float(v))) for v in raw]
        else:
            values = [float(f"{float(v):.12g}") for v in raw]
        kind = "log" if log else "linear"
    elif ":" in body:
        raise ValueError(f"{key}: a range is a:b:n or log:a:b:n, got {body!r}")
    else:
        values = [parse_value(t, typ, key) for t in body.split(",")]
        kind = "list"
    if len(set(values)) != len(values):
        dup = sorted({v for v in values if values.count(v) > 1}, key=str)
        raise ValueError(f"{key}: the axis {body!r} repeats {', '.join(map(str, dup))}"
                         + (" (integer option: range values are rounded)" if typ is int and kind != "list" else ""))
    return key, values, kind


def canonical(coords: dict) -> str:
    """The canonical text of a cell's coordinates: JSON with sorted keys, floats by their shortest repr."""
    return json.dumps(coords, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _digest(coords: dict) -> bytes:
    return hashlib.sha256(canonical(coords).encode("utf-8")).digest()


def cell_id(coords: dict) -> str:
    """The first 16 hex digits of the SHA-256 of the canonical coordinates."""
    return _digest(coords).hex()[:16]


def cell_seed(sweep_seed: int, coords: dict) -> int:
    """A 63-bit seed from the sweep seed and the cell's coordinates (module docstring).

    >>> cell_seed(0, {"depth": 8}) == cell_seed(0, {"depth": 8}) != cell_seed(1, {"depth": 8})
    True
    """
    d = _digest(coords)
    key = tuple(int.from_bytes(d[4 * i:4 * i + 4], "little") for i in range(4))
    ss = np.random.SeedSequence(int(sweep_seed), spawn_key=key)
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(64 - _SEED_BITS))


class Grid:
    """Named axes of values; ``cells()`` lists the Cartesian product as coordinate dicts."""

    def __init__(self, axes: dict, kinds: dict | None = None, specs: dict | None = None):
        if not axes:
            raise ValueError("a sweep needs at least one grid axis, e.g. --grid sigma_w2=1:4:31")
        self.axes = {k: list(v) for k, v in axes.items()}
        for k, v in self.axes.items():
            if not v:
                raise ValueError(f"{k}: the axis has no values")
        self.kinds = dict(kinds or {k: "list" for k in axes})
        self.specs = dict(specs or {})

    @classmethod
    def parse(cls, specs, types: dict) -> "Grid":
        """A grid from ``["NAME=SPEC", ...]`` (or a dict NAME -> SPEC text or list of values)."""
        axes, kinds, texts = {}, {}, {}
        if isinstance(specs, dict):
            items = []
            for k, v in specs.items():
                if isinstance(v, str):
                    items.append(f"{k}={v}")
                elif isinstance(v, (list, tuple, np.ndarray)):
                    items.append(f"{k}=" + ",".join(_text(x) for x in v))
                else:
                    items.append(f"{k}={_text(v)}")
        elif isinstance(specs, str):
            items = [specs]
        else:
            items = list(specs or [])
        for spec in items:
            key, values, kind = parse_axis(spec, types)
            if key in axes:
                raise ValueError(f"grid key {key!r} given twice")
            axes[key], kinds[key], texts[key] = values, kind, spec.split("=", 1)[1].strip()
        return cls(axes, kinds, texts)

    def __len__(self) -> int:
        return math.prod(len(v) for v in self.axes.values())

    def cells(self) -> list[dict]:
        names = list(self.axes)
        return [dict(zip(names, combo)) for combo in itertools.product(*self.axes.values())]

    def to_dict(self) -> dict:
        return {"axes": self.axes, "kinds": self.kinds, "specs": self.specs}

    @classmethod
    def from_dict(cls, d: dict) -> "Grid":
        return cls(d["axes"], d.get("kinds"), d.get("specs"))


def _text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)

"""Looking up a user-given name in a table of named things (activations, losses, optimizers, schedules).

One rule everywhere: surrounding space is ignored, case does not matter, ``-`` reads as ``_``, aliases
resolve, and an unknown name is a ValueError that lists the known ones.

>>> key_of("Cross-Entropy", {"cross_entropy": 1}, "loss")
'cross_entropy'
>>> key_of("adamm", {"adam": 1, "sgd": 2}, "optimizer")
Traceback (most recent call last):
...
ValueError: unknown optimizer 'adamm'; known: adam, sgd
"""
from __future__ import annotations

__all__ = ["key_of", "is_init_name", "parse_init_params"]


def key_of(name, table, what: str, aliases=None) -> str:
    """The key of ``table`` that ``name`` names, or TypeError/ValueError naming the problem."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a name, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = (aliases or {}).get(key, key)
    if key not in table:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(table)}")
    return key


def is_init_name(text: str) -> bool:
    """An initializer name (``he_normal``) rather than an expression (``normal(0, sqrt(2/fan_in))``, ``2/fan_in``):
    the one rule every ``--init`` option follows.

    >>> is_init_name("xavier_uniform"), is_init_name("2/fan_in"), is_init_name("normal(0, 1)")
    (True, False, False)
    """
    t = text.strip()
    return "(" not in t and t.replace("_", "").isalnum() and not t[:1].isdigit()


def parse_init_params(items) -> dict:
    """``["mode=fan_out", "scale=2"]`` -> ``{"mode": "fan_out", "scale": 2}``: integers become ints, other
    numbers floats, anything else stays a string (never evaluated). The ``--init-param`` of every command."""
    from varprop.activations import parse_params
    out = {}
    for k, v in parse_params(items).items():
        for conv in (int, float):
            try:
                out[k] = conv(v)
                break
            except ValueError:
                continue
        else:
            out[k] = v
    return out

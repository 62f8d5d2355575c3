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

__all__ = ["key_of"]


def key_of(name, table, what: str, aliases=None) -> str:
    """The key of ``table`` that ``name`` names, or TypeError/ValueError naming the problem."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a name, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = (aliases or {}).get(key, key)
    if key not in table:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(table)}")
    return key

"""The NumPy front end: one array function per preset, ``name(shape, rng=None, dtype=np.float32, **options)``.

Each function is ``get(name, **options)(shape, rng, dtype)``; it is generated from the preset so that the
options, their defaults and the docstring live in one place (:mod:`.presets`).

>>> from varprop.nn.init import he_normal
>>> w = he_normal((256, 784), rng=0)
>>> w.dtype.name, w.shape
('float32', (256, 784))
>>> bool((he_normal((256, 784), rng=0) == w).all())           # same seed, same array
True
"""
from __future__ import annotations

import inspect

import numpy as np

from .presets import ALIASES, PRESETS, get

__all__ = ["FACTORIES", "array_functions"]

# names whose public object is a factory returning an Initializer, not an array function
FACTORIES = ("variance_scaling", "for_activation", "fixup")


def _array_function(name: str):
    target = ALIASES.get(name, name)
    builder = PRESETS[target]

    def fill(shape, rng=None, dtype=np.float32, **options):
        return get(target, **options)(shape, rng, dtype)

    head = [inspect.Parameter("shape", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("rng", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
            inspect.Parameter("dtype", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=np.float32)]
    options = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
               for p in inspect.signature(builder).parameters.values() if p.name != "name"]
    fill.__signature__ = inspect.Signature(head + options)
    fill.__name__ = fill.__qualname__ = name
    what = f"the {target!r} preset" + (f", which {name!r} aliases" if target != name else "")
    fill.__doc__ = (f"An array of ``shape`` drawn from {what}; ``rng`` an int seed or a numpy Generator.\n\n"
                    f"Equivalent to ``get({target!r}, **options)(shape, rng, dtype)``.\n\n"
                    + (builder.__doc__ or ""))
    return fill


def array_functions() -> dict:
    """{name: array function} for every preset and alias except the factories."""
    return {n: _array_function(n) for n in sorted({*PRESETS, *ALIASES}) if n not in FACTORIES}

"""varprop.derive: the variance-preservation conditions, derived by SymPy, verified and rendered.

moments -> gains -> derivations -> rendering. Importing this package imports nothing heavy: SymPy is
loaded only by the modules that need it, when they are used (``varprop.nn.init`` imports
``varprop.derive.gains`` and must stay light).

Public API (imported lazily on first use):

* ``Derivation`` (derive/derivation.py): assumptions, machine-checked steps, results, comparisons.
* ``names()``, ``build(name, **options)`` (derive/catalog.py): the derivations by CLI name.
* ``render`` (derive/render.py): Markdown, LaTeX and JSON renderers and ``write``.
* ``moments``, ``gains``, ``meanfield`` (``meanfield_batch``: batch norm at a finite batch): the numeric building blocks.
* ``check``, ``CheckResult`` (derive/check.py): audit a proposed initialization.

>>> import varprop.derive as vd
>>> vd.names()[:2]
['symmetry', 'linear-variance']
"""
from __future__ import annotations

import importlib

__all__ = ["Derivation", "names", "build", "check", "CheckResult", "render", "catalog", "derivation", "moments",
           "gains", "meanfield", "meanfield_batch"]

_ATTRS = {"Derivation": ("derivation", "Derivation"), "names": ("catalog", "names"),
          "build": ("catalog", "build"), "check": ("check", "check"), "CheckResult": ("check", "CheckResult")}
_MODULES = {"render", "catalog", "derivation", "moments", "gains", "meanfield", "meanfield_batch"}


def __getattr__(name):
    if name in _ATTRS:
        mod, attr = _ATTRS[name]
        return getattr(importlib.import_module(f"{__name__}.{mod}"), attr)
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

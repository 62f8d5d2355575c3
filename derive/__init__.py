"""varprop.derive: the variance-preservation conditions, derived by SymPy, verified and rendered.

Two kinds of module, in two places:

* the theory other parts import, in this folder: ``moments`` (exact Gaussian moments) -> ``gains`` ->
  ``mean_field`` (length map, fixed points, depth scales, per-layer predictions) with ``finite_batch`` (batch
  norm at a finite batch), and ``check`` (audit a proposed initialization);
* the documents ``varprop derive`` renders, one module per CLI name in ``derivations/`` (``mean-field`` is
  ``derivations/mean_field.py``), whose ``__init__`` is their registry; the ``Derivation`` framework
  (``derivation.py``) and the renderers (``render.py``) they share sit beside the theory.

Importing this package imports nothing heavy: SymPy is
loaded only by the modules that need it, when they are used (``varprop.nn.init`` imports
``varprop.derive.gains`` and must stay light).

Public API (imported lazily on first use):

* ``Derivation`` (derive/derivation.py): assumptions, machine-checked steps, results, comparisons.
* ``names()``, ``build(name, **options)`` (derive/derivations/__init__.py): the derivations by CLI name.
* ``render`` (derive/render.py): Markdown, LaTeX and JSON renderers and ``write``.
* ``moments``, ``gains``, ``mean_field`` (``finite_batch``: batch norm at a finite batch): the numeric building blocks.
* ``check``, ``CheckResult`` (derive/check.py): audit a proposed initialization.

>>> import varprop.derive as vd
>>> vd.names()[:2]
['symmetry', 'linear-variance']
"""
from __future__ import annotations

import importlib

__all__ = ["Derivation", "names", "build", "check", "CheckResult", "render", "derivations", "derivation",
           "moments", "gains", "mean_field", "finite_batch"]

_ATTRS = {"Derivation": ("derivation", "Derivation"), "names": ("derivations", "names"),
          "build": ("derivations", "build"), "check": ("check", "check"), "CheckResult": ("check", "CheckResult")}
_MODULES = {"render", "derivations", "derivation", "moments", "gains", "mean_field", "finite_batch"}


def __getattr__(name):
    if name in _ATTRS:
        mod, attr = _ATTRS[name]
        return getattr(importlib.import_module(f"{__name__}.{mod}"), attr)
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

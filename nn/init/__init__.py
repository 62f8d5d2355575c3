"""Verified weight initializers for NumPy, PyTorch and JAX-style code.

One core, :func:`variance_scaling` (scale, mode, distribution), with every fan-based scheme a preset whose
scale comes from :mod:`varprop.derive.gains`; :func:`for_activation` gives the exact variance-preserving
initializer of any registered activation. Three front ends:

* NumPy: ``he_normal(shape, rng=None, dtype=np.float32, **options) -> array`` and the same for every preset
  (``rng`` an int seed, a ``numpy.random.Generator`` or None); ``get(name, **options) -> Initializer``.
* PyTorch: :mod:`varprop.nn.init.torch`, a drop-in for ``torch.nn.init`` (imported only on request).
* JAX style: :mod:`varprop.nn.init.jax`, factories returning ``init(key, shape, dtype)`` (no JAX needed).

:mod:`varprop.nn.init.differences` computes where PyTorch's and Keras's defaults differ from the exact ones.

An :class:`Initializer` is ``init(shape, rng=None, dtype=np.float32) -> array`` with ``.variance(shape)``,
``.mean(shape)``, ``.params(shape)``, ``.distribution`` and ``.name``. Importing this package imports
neither SymPy nor PyTorch and compiles nothing; Numba compiles a fill on its first use (cached on disk).

>>> import numpy as np
>>> from varprop.nn import init
>>> w = init.he_normal((512, 256), rng=0)
>>> bool(abs(w.var() / init.get("he_normal").variance(w.shape) - 1) < 0.02)
True
>>> init.for_activation("silu").name
'for_activation(silu)'
"""
from __future__ import annotations

import importlib

from .arrays import array_functions
from .core import (DISTRIBUTIONS, LAYOUTS, MODES, Constant, Initializer, Normal, TruncatedNormal, Uniform,
                   VarianceScaling, fan, fans, fans_from_axes, variance_scaling)
from .presets import (activation_scale, dropout_he, fixup, fixup_branch, fixup_scale, for_activation, get,
                      names)
from .structured import Dirac, Eye, Orthogonal, Sparse

_ARRAYS = array_functions()
globals().update(_ARRAYS)

__all__ = ["Initializer", "VarianceScaling", "Normal", "Uniform", "TruncatedNormal", "Constant",
           "Orthogonal", "Sparse", "Eye", "Dirac", "MODES", "DISTRIBUTIONS", "LAYOUTS",
           "variance_scaling", "fans", "fans_from_axes", "fan", "get", "names", "for_activation",
           "activation_scale", "dropout_he", "fixup", "fixup_branch", "fixup_scale", *sorted(_ARRAYS)]

_SUBMODULES = ("torch", "jax", "differences")


def __getattr__(name):
    # the PyTorch front end imports torch: load it (and the JAX-style one) only when asked for
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

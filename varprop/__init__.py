"""varprop: derive, simulate and apply the variance-preservation conditions behind initialization.

The package is four parts around one core:

* :mod:`varprop.activations` - the one registry of activations (SymPy, NumPy, mpmath, Numba forms);
* :mod:`varprop.derive` - exact Gaussian moments, gains and the derivations of every condition;
* :mod:`varprop.nn` - verified initializers and a compact MLP trainer;
* :mod:`varprop.simulate` - a Monte Carlo simulator of deep networks at initialization.

Importing ``varprop`` loads nothing heavy: no SymPy, no Numba compilation.
"""
__version__ = "0.1.0"

from varprop.activations import get as activation, names as activation_names  # noqa: E402

__all__ = ["__version__", "activation", "activation_names"]

"""PyTorch front end: a drop-in for ``torch.nn.init`` over the same variance_scaling core.

Same names, arguments, defaults and in-place semantics as ``torch.nn.init`` (each function fills the tensor
under ``torch.no_grad()`` and returns it, drawing from ``generator`` where PyTorch takes one), with
PyTorch's gain table as the default so that existing code keeps its numbers. Two additions:

* ``gain="exact"`` on ``kaiming_*_`` (and ``calculate_gain(..., exact=True)``) uses the derived gain of
  :mod:`varprop.derive.gains`: forward (mode fan_in) or backward (mode fan_out), for every registered
  activation, gelu, silu and mish included, where PyTorch raises;
* the extras as in-place functions: ``for_activation_``, ``lecun_normal_``/``lecun_uniform_``,
  ``dropout_kaiming_normal_``/``_uniform_``, ``fixup_``, ``zero_branch_``, ``variance_scaling_`` and
  ``init_(tensor, name, **options)`` for any preset of :func:`varprop.nn.init.get`.

One deliberate difference: ``sparse_`` draws its zero positions from ``generator`` too (PyTorch's uses the
global generator for them), so a seeded generator reproduces the whole tensor.

>>> import torch
>>> from varprop.nn.init import torch as vinit
>>> w = vinit.kaiming_normal_(torch.empty(256, 128), nonlinearity="gelu", gain="exact")
>>> round(vinit.calculate_gain("gelu", exact=True), 4)
1.5335
"""
from __future__ import annotations

import math
import warnings

import torch

from .core import Constant, Initializer, Normal, TruncatedNormal, Uniform, VarianceScaling
from .presets import (TORCH_NONLINEARITIES, activation_scale, dropout_he, fixup, for_activation, get, he,
                      lecun, xavier)
from .structured import Dirac, Eye, Orthogonal, Sparse

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
           "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "orthogonal_", "sparse_", "lecun_normal_", "lecun_uniform_", "for_activation_",
           "dropout_kaiming_normal_", "dropout_kaiming_uniform_", "fixup_", "zero_branch_",
           "variance_scaling_", "init_", "apply_"]


def _check_tensor(tensor):
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor, got {type(tensor).__name__}")
    return tensor


def apply_(tensor, initializer: Initializer, generator=None):
    """Fill ``tensor`` in place from an :class:`Initializer` of the core, drawing from ``generator``."""
    _check_tensor(tensor)
    if tensor.numel() == 0:
        if isinstance(initializer, VarianceScaling):     # as PyTorch's kaiming_*_: a fan of 0 is a no-op
            warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return tensor
    shape = tuple(tensor.shape)
    law = initializer.law(shape) if isinstance(initializer, VarianceScaling) else initializer
    law.check_shape(shape)
    with torch.no_grad():
        if isinstance(law, Normal):
            return tensor.normal_(law.mean_, law.std_, generator=generator)
        if isinstance(law, Uniform):
            return tensor.uniform_(law.low, law.high, generator=generator)
        if isinstance(law, TruncatedNormal):
            return _truncated_(tensor, law.loc, law.sigma, law.low, law.high, generator)
        if isinstance(law, Constant):
            return tensor.fill_(law.value)
        if isinstance(law, Orthogonal):
            return _orthogonal_(tensor, law.gain, generator)
        if isinstance(law, Sparse):
            return _sparse_(tensor, law.zeros_per_column(shape[0]), law.std_, generator)
        if isinstance(law, (Eye, Dirac)):
            return tensor.copy_(torch.from_numpy(law(shape, dtype="float64")))
    raise ValueError(f"the PyTorch front end cannot apply {initializer!r}")


def _truncated_(tensor, loc, sigma, low, high, generator):
    """loc + sigma Z, Z ~ N(0, 1) cut to [low, high]: by PyTorch's sampler, bounds made absolute."""
    return torch.nn.init.trunc_normal_(tensor, loc, sigma, loc + low * sigma, loc + high * sigma,
                                       generator=generator)


def _orthogonal_(tensor, gain, generator):
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    # drawn as (rows, cols) then transposed, as PyTorch does, so a seeded generator gives PyTorch's tensor
    flat = tensor.new_empty((rows, cols)).normal_(0, 1, generator=generator)
    if rows < cols:
        flat = flat.t()
    q, r = torch.linalg.qr(flat)
    q *= torch.diag(r, 0).sign()          # Haar measure (Mezzadri 2007)
    if rows < cols:
        q = q.t()
    tensor.view_as(q).copy_(q)
    return tensor.mul_(gain)


def _sparse_(tensor, zeros, std, generator):
    rows, cols = tensor.shape
    tensor.normal_(0, std, generator=generator)
    for c in range(cols):
        tensor[torch.randperm(rows, generator=generator)[:zeros], c] = 0
    return tensor


# -- PyTorch's names ---------------------------------------------------------------------------------

def calculate_gain(nonlinearity, param=None, *, exact: bool = False) -> float:
    """PyTorch's gain for ``nonlinearity`` (its table), or with ``exact=True`` the derived forward gain.

    ``param`` is leaky_relu's negative slope (0.01 when None), as in PyTorch.
    """
    slope = None
    if nonlinearity == "leaky_relu" and param is not None:
        if isinstance(param, bool) or not isinstance(param, (int, float)):
            raise ValueError(f"negative_slope {param} not a valid number")
        slope = param
    if not exact and nonlinearity not in (*TORCH_NONLINEARITIES, "sigmoid", "tanh", "relu", "leaky_relu",
                                          "selu"):
        raise ValueError(f"Unsupported nonlinearity {nonlinearity}")
    return math.sqrt(activation_scale(nonlinearity, "fan_in", "exact" if exact else "torch",
                                      negative_slope=slope))


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    return apply_(tensor, Uniform(a, b), generator)


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std^2)."""
    return apply_(tensor, Normal(std, mean), generator)


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None):
    """PyTorch's semantics: N(mean, std^2) cut to the absolute bounds [a, b].

    The std obtained is std times the std of N(0, 1) cut to [(a - mean)/std, (b - mean)/std]: 0.8796 std
    with the defaults. For the std asked for, use ``init_(tensor, "truncated_normal", std=...)``.
    """
    _check_tensor(tensor)
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    law = TruncatedNormal(1.0, (a - mean) / std, (b - mean) / std, mean)
    with torch.no_grad():
        return _truncated_(tensor, mean, std, law.low, law.high, generator)


def constant_(tensor, val: float):
    """Fill with ``val``."""
    return apply_(tensor, Constant(val))


def ones_(tensor):
    return apply_(tensor, Constant(1.0))


def zeros_(tensor):
    return apply_(tensor, Constant(0.0))


def eye_(tensor):
    """The identity (2-D tensors)."""
    return apply_(tensor, Eye())


def dirac_(tensor, groups: int = 1):
    """The identity convolution (3-, 4-, 5-D tensors), per group."""
    return apply_(tensor, Dirac(groups))


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """U(-l, l), l = gain sqrt(6 / (fan_in + fan_out))."""
    return apply_(tensor, xavier("uniform", gain), generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """N(0, 2 gain^2 / (fan_in + fan_out))."""
    return apply_(tensor, xavier("normal", gain), generator)


def _kaiming(distribution, a, mode, nonlinearity, gain):
    if gain is None:
        gain = "torch"
    slope = a if nonlinearity == "leaky_relu" else None
    return he(distribution, mode, nonlinearity, slope, gain)


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None, *, gain=None):
    """U(-b, b), b = gain sqrt(3 / fan(mode)); gain from PyTorch's table, or "exact", or a number."""
    return apply_(tensor, _kaiming("uniform", a, mode, nonlinearity, gain), generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None, *, gain=None):
    """N(0, gain^2 / fan(mode)); gain from PyTorch's table, or "exact", or a number."""
    return apply_(tensor, _kaiming("normal", a, mode, nonlinearity, gain), generator)


def orthogonal_(tensor, gain: float = 1, generator=None):
    """``gain`` times a Haar-random (semi-)orthogonal matrix, trailing dimensions flattened."""
    return apply_(tensor, Orthogonal(gain), generator)


def sparse_(tensor, sparsity: float, std: float = 0.01, generator=None):
    """N(0, std^2) with ceil(sparsity * rows) zeros in every column (2-D tensors)."""
    return apply_(tensor, Sparse(sparsity, std), generator)


# -- extras --------------------------------------------------------------------------------------------

def lecun_normal_(tensor, generator=None):
    """N(0, 1 / fan_in)."""
    return apply_(tensor, lecun("normal"), generator)


def lecun_uniform_(tensor, generator=None):
    """U(-l, l), l = sqrt(3 / fan_in)."""
    return apply_(tensor, lecun("uniform"), generator)


def for_activation_(tensor, nonlinearity: str, mode: str = "fan_in", distribution: str = "normal", q=1,
                    generator=None, **params):
    """The exact variance-preserving initializer of any registered activation (gelu, silu, mish, ...)."""
    return apply_(tensor, for_activation(nonlinearity, mode, distribution, q, **params), generator)


def dropout_kaiming_normal_(tensor, keep_prob: float, mode: str = "fan_in", nonlinearity: str = "relu",
                            generator=None, *, gain="exact"):
    """He times the keep probability p of the inverted dropout before the layer: N(0, 2p / fan_in)."""
    return apply_(tensor, dropout_he("normal", keep_prob, mode, nonlinearity, None, gain), generator)


def dropout_kaiming_uniform_(tensor, keep_prob: float, mode: str = "fan_in", nonlinearity: str = "relu",
                             generator=None, *, gain="exact"):
    """Uniform with variance 2p / fan_in."""
    return apply_(tensor, dropout_he("uniform", keep_prob, mode, nonlinearity, None, gain), generator)


def fixup_(tensor, num_blocks: int, layers_per_block: int, distribution: str = "normal",
           nonlinearity: str = "relu", generator=None):
    """He times L^(-1/(2m-2)) in std, for a layer inside one of L residual branches of m layers."""
    return apply_(tensor, fixup(num_blocks, layers_per_block, distribution, nonlinearity), generator)


def zero_branch_(tensor):
    """Zeros: the last layer of a residual branch (Fixup; "zero-init residual")."""
    return zeros_(tensor)


def variance_scaling_(tensor, scale: float, mode: str = "fan_in", distribution: str = "truncated_normal",
                      generator=None):
    """Entries of variance scale / fan(mode) (torch layout), as :func:`varprop.nn.init.variance_scaling`."""
    return apply_(tensor, VarianceScaling(scale, mode, distribution), generator)


def init_(tensor, name: str, generator=None, **options):
    """Fill with the preset ``name`` of :func:`varprop.nn.init.get`."""
    return apply_(tensor, get(name, **options), generator)

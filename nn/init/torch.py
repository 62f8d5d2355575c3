"""PyTorch front end: a drop-in for ``torch.nn.init`` over the same variance_scaling core.

Same names, arguments, defaults and in-place semantics as ``torch.nn.init`` (each function fills the tensor
under ``torch.no_grad()`` and returns it, drawing from ``generator`` where PyTorch takes one), with
PyTorch's gain table as the default so that existing code keeps its numbers. PyTorch's deprecated names
(``normal``, ``xavier_uniform``, ...) warn with its FutureWarning; ``_calculate_fan_in_and_fan_out`` and
``_calculate_correct_fan``, which ``torch.nn`` modules call, are here too. So this module can replace
``torch.nn.init`` in an import, or its functions can be patched into ``torch.nn.init``: PyTorch's own
``test/nn/test_init.py`` passes both ways (tests/test_peer_torch_init.py).

Two additions:

* ``gain="exact"`` on ``kaiming_*_`` (and ``calculate_gain(..., exact=True)``) uses the derived gain of
  :mod:`varprop.derive.gains`: forward (mode fan_in) or backward (mode fan_out), for every registered
  activation, gelu, silu and mish included, where PyTorch raises;
* the extras as in-place functions: ``for_activation_``, ``lecun_normal_``/``lecun_uniform_``,
  ``dropout_kaiming_normal_``/``_uniform_``, ``fixup_``, ``zero_branch_``, ``variance_scaling_`` and
  ``init_(tensor, name, **options)`` for any preset of :func:`varprop.nn.init.get`.

Deliberate differences:

* ``sparse_`` draws its zero positions from ``generator`` too (PyTorch's uses the global generator for them),
  so a seeded generator reproduces the whole tensor;
* bad input is refused where PyTorch would fill something meaningless: a non-finite mean or bound, a negative
  std or gain, a sparsity outside [0, 1], a truncation with std <= 0 or a >= b;
* every refusal is a ValueError, as everywhere in varprop, and also the exception PyTorch raises for the same
  mistake: :class:`InitError` is a ValueError and a RuntimeError (torch's samplers raise RuntimeError for a
  bad range), :class:`InitTypeError` a ValueError and a TypeError (an argument that is not a number, or a
  tensor argument that is not a tensor).

Scalars may be given as 0-dim tensors, as PyTorch allows; ``constant_`` fills any value ``Tensor.fill_``
takes (``-inf`` for a mask included).

>>> import torch
>>> from varprop.nn.init import torch as vinit
>>> w = vinit.kaiming_normal_(torch.empty(256, 128), nonlinearity="gelu", gain="exact")
>>> round(vinit.calculate_gain("gelu", exact=True), 4)
1.5335
"""
from __future__ import annotations

import functools
import math
import numbers
import sys
import warnings


class TorchNotInstalled(ModuleNotFoundError):
    """PyTorch, the optional dependency of this front end, is not installed."""


try:
    import torch
except ModuleNotFoundError as exc:
    if exc.name != "torch":
        raise
    raise TorchNotInstalled(
        'varprop.nn.init.torch is the PyTorch front end and needs PyTorch, an optional extra: '
        'pip install "varprop[torch]" (or the CPU-only build alone: '
        'pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)', name="torch") from None

# Captured once: a call through torch.nn.init.trunc_normal_ would recurse forever once torch.nn.init is
# patched with this module's functions.
from torch.nn.init import trunc_normal_ as _torch_trunc_normal_

from .core import Constant, Initializer, Normal, TruncatedNormal, Uniform, VarianceScaling, fans
from .presets import (TORCH_NONLINEARITIES, activation_scale, dropout_he, fixup, for_activation, get, he,
                      lecun, xavier)
from .structured import Dirac, Eye, Orthogonal, Sparse

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
           "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "orthogonal_", "sparse_",
           "uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
           "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse",
           "lecun_normal_", "lecun_uniform_", "for_activation_",
           "dropout_kaiming_normal_", "dropout_kaiming_uniform_", "fixup_", "zero_branch_",
           "variance_scaling_", "init_", "apply_", "lsuv_", "InitError", "InitTypeError", "TorchNotInstalled"]


class InitError(ValueError, RuntimeError):
    """Bad input: a ValueError, as varprop raises, and the RuntimeError PyTorch raises for a bad range."""


class InitTypeError(ValueError, TypeError):
    """An argument of the wrong type: a ValueError, as varprop raises, and the TypeError PyTorch raises."""


def _torch_errors(fn):
    """Re-raise the core's ValueErrors as :class:`InitError`, message kept."""
    @functools.wraps(fn)
    def checked(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InitError, InitTypeError):
            raise
        except ValueError as e:
            raise InitError(str(e)) from None
    return checked


def _warn(message: str, category=UserWarning):
    """Warn at the first caller outside this module (as ``skip_file_prefixes`` does from Python 3.12)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _check_tensor(tensor):
    if not isinstance(tensor, torch.Tensor):
        raise InitTypeError(f"expected a torch.Tensor, got {type(tensor).__name__}")
    return tensor


def _scalar(value, what: str):
    """A real number, or the value of a 0-dim tensor (PyTorch takes both); the core checks its range."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            raise InitTypeError(f"{what} must be a number or a 0-dim tensor, got a tensor of shape "
                                f"{tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InitTypeError(f"{what} must be a real number, got {value!r}")
    return value


def _mode(mode):
    return mode.lower() if isinstance(mode, str) else mode       # PyTorch's modes are case-blind


@_torch_errors
def apply_(tensor, initializer: Initializer, generator=None):
    """Fill ``tensor`` in place from an :class:`Initializer` of the core, drawing from ``generator``."""
    _check_tensor(tensor)
    if tensor.numel() == 0:
        if isinstance(initializer, VarianceScaling):     # as PyTorch's kaiming_*_: a fan of 0 is a no-op
            _warn("Initializing zero-element tensors is a no-op")
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
    return _torch_trunc_normal_(tensor, loc, sigma, loc + low * sigma, loc + high * sigma, generator=generator)


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

@_torch_errors
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


@_torch_errors
def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight in the torch layout (out, in, *kernel): :func:`varprop.nn.init.fans`."""
    _check_tensor(tensor)
    if tensor.dim() < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    shape = tuple(tensor.shape)
    if 0 in shape:            # core.fans takes positive sizes; an empty weight has the fans of its sizes
        r = math.prod(shape[2:])
        return shape[1] * r, shape[0] * r
    return fans(shape, "torch")


@_torch_errors
def _calculate_correct_fan(tensor, mode) -> int:
    """The fan named by ``mode``, "fan_in" or "fan_out" (any case), as PyTorch's kaiming_*_ use it."""
    mode = _mode(mode)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


@_torch_errors
def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    return apply_(tensor, Uniform(_scalar(a, "a"), _scalar(b, "b")), generator)


@_torch_errors
def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std^2)."""
    return apply_(tensor, Normal(_scalar(std, "std"), _scalar(mean, "mean")), generator)


@_torch_errors
def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None):
    """PyTorch's semantics: N(mean, std^2) cut to the absolute bounds [a, b].

    The std obtained is std times the std of N(0, 1) cut to [(a - mean)/std, (b - mean)/std]: 0.8796 std
    with the defaults. For the std asked for, use ``init_(tensor, "truncated_normal", std=...)``.
    """
    _check_tensor(tensor)
    mean, std, a, b = (_scalar(v, w) for v, w in ((mean, "mean"), (std, "std"), (a, "a"), (b, "b")))
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    law = TruncatedNormal(1.0, (a - mean) / std, (b - mean) / std, mean)
    with torch.no_grad():
        return _truncated_(tensor, mean, std, law.low, law.high, generator)


@_torch_errors
def constant_(tensor, val: float):
    """Fill with ``val``: a number or a 0-dim tensor, whatever ``Tensor.fill_`` takes (inf, nan too)."""
    _check_tensor(tensor)
    if not isinstance(val, (numbers.Number, torch.Tensor)):
        raise InitTypeError(f"val must be a number or a 0-dim tensor, got {val!r}")
    with torch.no_grad():
        return tensor.fill_(val)


@_torch_errors
def ones_(tensor):
    return apply_(tensor, Constant(1.0))


@_torch_errors
def zeros_(tensor):
    return apply_(tensor, Constant(0.0))


@_torch_errors
def eye_(tensor):
    """The identity (2-D tensors)."""
    return apply_(tensor, Eye())


@_torch_errors
def dirac_(tensor, groups: int = 1):
    """The identity convolution (3-, 4-, 5-D tensors), per group."""
    return apply_(tensor, Dirac(groups))


@_torch_errors
def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """U(-l, l), l = gain sqrt(6 / (fan_in + fan_out))."""
    return apply_(tensor, xavier("uniform", _scalar(gain, "gain")), generator)


@_torch_errors
def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """N(0, 2 gain^2 / (fan_in + fan_out))."""
    return apply_(tensor, xavier("normal", _scalar(gain, "gain")), generator)


def _kaiming(distribution, a, mode, nonlinearity, gain):
    if gain is None:
        gain = "torch"
    slope = a if nonlinearity == "leaky_relu" else None
    return he(distribution, _mode(mode), nonlinearity, slope, gain)


@_torch_errors
def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None, *, gain=None):
    """U(-b, b), b = gain sqrt(3 / fan(mode)); gain from PyTorch's table, or "exact", or a number."""
    return apply_(tensor, _kaiming("uniform", a, mode, nonlinearity, gain), generator)


@_torch_errors
def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None, *, gain=None):
    """N(0, gain^2 / fan(mode)); gain from PyTorch's table, or "exact", or a number."""
    return apply_(tensor, _kaiming("normal", a, mode, nonlinearity, gain), generator)


@_torch_errors
def orthogonal_(tensor, gain: float = 1, generator=None):
    """``gain`` times a Haar-random (semi-)orthogonal matrix, trailing dimensions flattened."""
    return apply_(tensor, Orthogonal(_scalar(gain, "gain")), generator)


@_torch_errors
def sparse_(tensor, sparsity: float, std: float = 0.01, generator=None):
    """N(0, std^2) with ceil(sparsity * rows) zeros in every column (2-D tensors)."""
    return apply_(tensor, Sparse(_scalar(sparsity, "sparsity"), _scalar(std, "std")), generator)


def _deprecated(new):
    """PyTorch's old name for ``new`` (``normal`` for ``normal_``), warning as PyTorch does."""
    old = new.__name__[:-1]

    @functools.wraps(new)
    def deprecated(*args, **kwargs):
        warnings.warn(f"`nn.init.{old}` is now deprecated in favor of `nn.init.{new.__name__}`.",
                      FutureWarning, stacklevel=2)
        return new(*args, **kwargs)
    deprecated.__name__ = deprecated.__qualname__ = old
    deprecated.__doc__ = f"Deprecated (as in PyTorch): use :func:`{new.__name__}`."
    return deprecated


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)


# -- extras --------------------------------------------------------------------------------------------

@_torch_errors
def lecun_normal_(tensor, generator=None):
    """N(0, 1 / fan_in)."""
    return apply_(tensor, lecun("normal"), generator)


@_torch_errors
def lecun_uniform_(tensor, generator=None):
    """U(-l, l), l = sqrt(3 / fan_in)."""
    return apply_(tensor, lecun("uniform"), generator)


@_torch_errors
def for_activation_(tensor, nonlinearity: str, mode: str = "fan_in", distribution: str = "normal", q=1,
                    generator=None, **params):
    """The exact variance-preserving initializer of any registered activation (gelu, silu, mish, ...)."""
    return apply_(tensor, for_activation(nonlinearity, mode, distribution, q, **params), generator)


@_torch_errors
def dropout_kaiming_normal_(tensor, keep_prob: float, mode: str = "fan_in", nonlinearity: str = "relu",
                            generator=None, *, gain="exact"):
    """He times the keep probability p of the inverted dropout before the layer: N(0, 2p / fan_in)."""
    return apply_(tensor, dropout_he("normal", keep_prob, mode, nonlinearity, None, gain), generator)


@_torch_errors
def dropout_kaiming_uniform_(tensor, keep_prob: float, mode: str = "fan_in", nonlinearity: str = "relu",
                             generator=None, *, gain="exact"):
    """Uniform with variance 2p / fan_in."""
    return apply_(tensor, dropout_he("uniform", keep_prob, mode, nonlinearity, None, gain), generator)


@_torch_errors
def fixup_(tensor, num_blocks: int, layers_per_block: int, distribution: str = "normal",
           nonlinearity: str = "relu", generator=None):
    """He times L^(-1/(2m-2)) in std, for a layer inside one of L residual branches of m layers."""
    return apply_(tensor, fixup(num_blocks, layers_per_block, distribution, nonlinearity), generator)


@_torch_errors
def zero_branch_(tensor):
    """Zeros: the last layer of a residual branch (Fixup; "zero-init residual")."""
    return zeros_(tensor)


@_torch_errors
def variance_scaling_(tensor, scale: float, mode: str = "fan_in", distribution: str = "truncated_normal",
                      generator=None):
    """Entries of variance scale / fan(mode) (torch layout), as :func:`varprop.nn.init.variance_scaling`."""
    return apply_(tensor, VarianceScaling(scale, mode, distribution), generator)


@_torch_errors
def init_(tensor, name: str, generator=None, **options):
    """Fill with the preset ``name`` of :func:`varprop.nn.init.get`."""
    return apply_(tensor, get(name, **options), generator)


_LSUV_TYPES = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def lsuv_(model, batch, tol: float = 0.1, max_iter: int = 10, orthonormal: bool = True, generator=None):
    """LSUV (Mishkin & Matas 2015) on any PyTorch model, in place: returns one report per layer.

    The Linear and Conv layers are found in the order a forward pass of ``batch`` runs them (forward hooks);
    each is first filled by :func:`orthogonal_` (when ``orthonormal``), then, in that order, its weight is
    divided by the standard deviation of its output on ``batch`` until that variance is within ``tol`` of 1
    (:func:`varprop.nn.init.lsuv.sequential_unit_variance`, the loop varprop's own networks use). The model
    is run in eval mode (dropout off, batch norm on its running statistics) and restored to its mode after.
    """
    from .lsuv import sequential_unit_variance
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"lsuv_ takes a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(batch, torch.Tensor) or batch.ndim < 2 or batch.shape[0] < 2:
        raise ValueError("batch must be a tensor of at least 2 examples")
    order = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: order.append(mod) if mod not in order else None)
             for m in model.modules() if isinstance(m, _LSUV_TYPES)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for h in hooks:
            h.remove()
    if not order:
        model.train(was_training)
        raise ValueError("the model runs no Linear or Conv layer on this batch")
    if orthonormal:
        with torch.no_grad():
            for m in order:
                orthogonal_(m.weight, generator=generator)
    names = {m: n for n, m in model.named_modules()}

    def measure(module):
        seen = {}
        hook = module.register_forward_hook(lambda mod, inp, out: seen.setdefault("out", out))
        try:
            with torch.no_grad():
                model(batch)
        finally:
            hook.remove()
        return float(seen["out"].double().var())

    def rescale(module, factor):
        with torch.no_grad():
            module.weight.mul_(factor)

    try:
        return sequential_unit_variance([(names.get(m, type(m).__name__), m) for m in order], measure, rescale,
                                        tol, max_iter)
    finally:
        model.train(was_training)

"""Named initializers: every fan-based scheme is one line over ``variance_scaling``, its scale derived.

Scales come from :mod:`varprop.derive.gains` (float fast paths, no SymPy): the forward scale
q / E[phi(sqrt(q) z)^2] keeps a pre-activation variance through a layer (mode ``fan_in``), the backward
scale 1 / E[phi'(sqrt(q) z)^2] keeps a gradient variance (mode ``fan_out``). So

* LeCun  (LeCun et al. 1998):   Var = s_linear / fan_in = 1 / fan_in
* Xavier (Glorot & Bengio 2010): Var = gain^2 s_linear / fan_avg = 2 gain^2 / (fan_in + fan_out)
* He     (He et al. 2015):      Var = s_relu / fan_in = 2 / fan_in (2 / (1 + a^2) for leaky ReLU)
* dropout-aware He: inverted dropout with keep probability p multiplies E[x^2] by 1/p, so Var = 2p / fan_in
* Fixup (Zhang et al. 2019): He inside each of L residual branches of m layers, times L^(-1/(m-1)) in
  variance (L^(-1/(2m-2)) in std), and the branch's last layer zero.
* ``for_activation(name, **params)``: the exact scale of any registered activation (gelu, silu, mish, ...).
* random walk (Sussillo & Abbott 2014): the variance that makes E[log ||x_l||^2] stay put at the layer's finite
  width, exp(-E[psi(K/2)]) / 2 for ReLU (exp(-psi(n/2)) / 2 linear), from :mod:`varprop.derive.finite_width`.

``gain`` picks where a gain comes from: "exact" (derived, the default here), "torch" (PyTorch's
``calculate_gain`` table: tanh 5/3, selu 3/4) or a number.

>>> get("he_normal").variance((256, 512))              # 2 / 512
0.00390625
>>> round(for_activation("tanh").variance((100, 100)) * 100, 6)   # the exact tanh gain^2 = 1.5925...^2
2.536175
"""
from __future__ import annotations

import inspect

from .checks import distribution_name, positive_int
from .core import (Constant, Initializer, Normal, TruncatedNormal, Uniform, VarianceScaling, check_layout,
                   check_scale, fans)
from .structured import Dirac, Eye, Orthogonal, Sparse

__all__ = ["get", "names", "for_activation", "activation_scale", "dropout_he", "fixup", "fixup_branch",
           "fixup_scale", "RandomWalk", "PRESETS", "ALIASES", "TORCH_NONLINEARITIES"]

# PyTorch's linear-layer names, which calculate_gain maps to gain 1
TORCH_NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d")


def _activation(nonlinearity: str, negative_slope=None, **params):
    """The registry name and parameters for a PyTorch-style nonlinearity argument."""
    if not isinstance(nonlinearity, str):
        raise ValueError(f"nonlinearity must be an activation name, got {nonlinearity!r}")
    name = "linear" if nonlinearity in TORCH_NONLINEARITIES else nonlinearity
    if negative_slope is not None:
        if name != "leaky_relu":
            raise ValueError(f"negative_slope applies to leaky_relu only, not {nonlinearity!r}")
        params["negative_slope"] = negative_slope      # the registry validates it (strings, Fractions too)
    return name, params


def activation_scale(nonlinearity: str = "relu", mode: str = "fan_in", gain="exact", q=1,
                     negative_slope=None, **params) -> float:
    """gain^2 for an activation: the derived forward (fan_in) or backward (fan_out) scale, or PyTorch's.

    >>> activation_scale("relu"), activation_scale("leaky_relu", negative_slope=0.1) == 2 / 1.01
    (2.0, True)
    """
    if not isinstance(gain, str):
        return check_scale(gain, "gain") ** 2
    name, params = _activation(nonlinearity, negative_slope, **params)
    if gain == "torch":
        from varprop.derive.gains import torch_gain
        t = torch_gain(name, **params)
        if t is None:
            raise ValueError(f"PyTorch's calculate_gain has no value for {name!r}; use gain='exact'")
        return t.value ** 2
    if gain != "exact":
        raise ValueError(f"gain must be 'exact', 'torch' or a number, got {gain!r}")
    from varprop.derive.gains import backward_scale_value, forward_scale_value
    if mode == "fan_in":
        return forward_scale_value(name, q, **params)
    if mode == "fan_out":
        return backward_scale_value(name, q, **params)
    raise ValueError(f"an exact activation gain preserves the forward (mode='fan_in') or backward "
                     f"(mode='fan_out') variance, got mode={mode!r}")


def _linear_scale() -> float:
    from varprop.derive.gains import forward_scale_value
    return forward_scale_value("linear")


def _distribution(distribution):
    from .core import DISTRIBUTIONS
    return distribution_name(distribution, DISTRIBUTIONS)


def he(distribution: str, mode: str = "fan_in", nonlinearity: str = "relu", negative_slope=None,
       gain="exact", name: str | None = None) -> VarianceScaling:
    """Var = g^2 / fan(mode), g^2 the activation's scale (2 for relu)."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"he/kaiming mode must be 'fan_in' or 'fan_out', got {mode!r}")
    scale = activation_scale(nonlinearity, mode, gain, negative_slope=negative_slope)
    return VarianceScaling(scale, mode, _distribution(distribution), name=name or f"he_{distribution}")


def xavier(distribution: str, gain: float = 1.0, name: str | None = None) -> VarianceScaling:
    """Var = gain^2 / fan_avg = 2 gain^2 / (fan_in + fan_out)."""
    scale = check_scale(gain, "gain") ** 2 * _linear_scale()
    return VarianceScaling(scale, "fan_avg", distribution, name=name or f"xavier_{distribution}")


def lecun(distribution: str, name: str | None = None) -> VarianceScaling:
    """Var = 1 / fan_in."""
    return VarianceScaling(_linear_scale(), "fan_in", distribution, name=name or f"lecun_{distribution}")


def dropout_he(distribution: str = "normal", keep_prob: float = 0.5, mode: str = "fan_in",
               nonlinearity: str = "relu", negative_slope=None, gain="exact") -> VarianceScaling:
    """He scaled by the keep probability p of the inverted dropout on the layer's input: Var = 2p / fan_in."""
    p = check_scale(keep_prob, "keep_prob", positive=True)
    if p > 1.0:
        raise ValueError(f"keep_prob is a probability in (0, 1], got {keep_prob}")
    base = he(distribution, mode, nonlinearity, negative_slope, gain)
    return VarianceScaling(p * base.scale, mode, base.distribution, name=f"dropout_he_{distribution}")


def fixup_scale(num_blocks: int, layers_per_block: int) -> float:
    """Fixup's std multiplier L^(-1/(2m-2)) for L residual branches of m >= 2 layers."""
    n = positive_int(num_blocks, "num_blocks")
    m = positive_int(layers_per_block, "layers_per_block")
    if m < 2:
        raise ValueError("Fixup rescales branches of at least 2 layers (m >= 2); a 1-layer branch "
                         "starts at zero instead")
    return n ** (-1.0 / (2 * m - 2))


def fixup(num_blocks: int, layers_per_block: int, distribution: str = "normal", nonlinearity: str = "relu",
          negative_slope=None, gain="exact") -> VarianceScaling:
    """He for a layer inside a residual branch, times L^(-1/(m-1)) in variance (Zhang et al. 2019)."""
    base = he(distribution, "fan_in", nonlinearity, negative_slope, gain)
    s = fixup_scale(num_blocks, layers_per_block)
    return VarianceScaling(base.scale * s * s, "fan_in", base.distribution, name=f"fixup_{distribution}")


def fixup_branch(num_blocks: int, layers_per_block: int, **kwargs) -> list[Initializer]:
    """The m initializers of one Fixup residual branch: m - 1 scaled He layers, then zeros."""
    inner = fixup(num_blocks, layers_per_block, **kwargs)
    return [inner] * (layers_per_block - 1) + [Constant(0.0, name="zero_branch")]


def for_activation(name: str, mode: str = "fan_in", distribution: str = "normal", q=1,
                   **params) -> VarianceScaling:
    """The variance-preserving initializer of any registered activation, with its exact (derived) gain.

    Var = q / (E[phi(sqrt(q) z)^2] fan_in) for mode "fan_in" (forward), 1 / (E[phi'(sqrt(q) z)^2] fan_out)
    for "fan_out" (backward).

    >>> round(for_activation("gelu").variance((1, 1)), 6)
    2.351716
    """
    scale = activation_scale(name, mode, "exact", q, **params)
    return VarianceScaling(scale, mode, _distribution(distribution),
                           name=f"for_activation({name})")


class RandomWalk(Initializer):
    """Random-walk initialization (Sussillo & Abbott 2014), with the exact finite-width variance.

    Var(w) = exp(-E[psi(K/2)]) / 2, K ~ Binomial(fan_out, 1/2), for ``nonlinearity="relu"`` and
    exp(-psi(fan_out/2)) / 2 for ``"linear"``: the variance at which E[log R] = 0 for the layer's factor
    R = ||phi(W x)||^2 / ||x||^2, so the typical network's squared norm neither grows nor shrinks with depth.
    It tends to He's 2 / n (LeCun's 1 / n) for wide layers. Exact for dense layers with iid weights.

    >>> rw = RandomWalk("relu")
    >>> round(rw.variance((16, 16)) * 16 / 2, 4)       # (gain / sqrt 2)^2 at width 16: 19% above He
    1.1929
    """
    min_ndim = 2

    def __init__(self, nonlinearity: str = "relu", distribution: str = "normal", layout="torch",
                 name: str = "random_walk"):
        from varprop.derive import finite_width
        if str(nonlinearity).lower() not in finite_width.ACTIVATIONS:
            raise ValueError(f"random_walk is exact for {' and '.join(finite_width.ACTIVATIONS)}, "
                             f"got nonlinearity={nonlinearity!r}")
        self.nonlinearity = str(nonlinearity).lower()
        self.distribution = _distribution(distribution)
        self.layout = check_layout(layout)
        self.name = name

    def _variance(self, dims):
        from varprop.derive import finite_width
        return finite_width.random_walk_variance(self.nonlinearity, fans(dims, self.layout)[1])

    def law(self, shape) -> Initializer:
        dims = self.check_shape(shape)
        scale = self._variance(dims) * fans(dims, self.layout)[1]
        return VarianceScaling(scale, "fan_out", self.distribution, self.layout, self.name).law(dims)

    def _draw(self, dims, src, dt):
        return self.law(dims)._draw(dims, src, dt)

    def _params(self, dims):
        return self.law(dims)._params(dims)


def _distribution_preset(builder, distribution):
    def make(**kwargs):
        return builder(distribution, **kwargs)
    make.__signature__ = inspect.Signature(list(inspect.signature(builder).parameters.values())[1:])
    make.__doc__ = builder.__doc__
    return make


PRESETS = {
    "zeros": lambda: Constant(0.0, name="zeros"),
    "ones": lambda: Constant(1.0, name="ones"),
    "constant": lambda value=0.0: Constant(value),
    "normal": lambda std=1.0, mean=0.0: Normal(std, mean),
    "uniform": lambda low=0.0, high=1.0: Uniform(low, high),
    "truncated_normal": lambda std=1.0, low=-2.0, high=2.0, mean=0.0: TruncatedNormal(std, low, high, mean),
    "orthogonal": lambda gain=1.0: Orthogonal(gain),
    "eye": lambda: Eye(),
    "dirac": lambda groups=1: Dirac(groups),
    "sparse": lambda sparsity, std=0.01: Sparse(sparsity, std),
    "variance_scaling": VarianceScaling,
    "for_activation": for_activation,
    "fixup": fixup,
    "random_walk": RandomWalk,
}
for _d in ("normal", "uniform", "truncated_normal"):
    PRESETS[f"lecun_{_d}"] = _distribution_preset(lecun, _d)
    PRESETS[f"he_{_d}"] = _distribution_preset(he, _d)
    PRESETS[f"xavier_{_d}"] = _distribution_preset(xavier, _d)
    PRESETS[f"dropout_he_{_d}"] = _distribution_preset(dropout_he, _d)

ALIASES = {"identity": "eye", "zero_branch": "zeros"}
for _d in ("normal", "uniform", "truncated_normal"):
    ALIASES[f"kaiming_{_d}"] = f"he_{_d}"
    ALIASES[f"glorot_{_d}"] = f"xavier_{_d}"
    ALIASES[f"dropout_kaiming_{_d}"] = f"dropout_he_{_d}"


def names() -> list[str]:
    """Every name :func:`get` knows, aliases included, sorted."""
    return sorted({*PRESETS, *ALIASES})


def get(name, /, **kwargs) -> Initializer:
    """The initializer called ``name`` with options ``kwargs`` (an Initializer is returned as is).

    >>> get("kaiming_uniform", mode="fan_out").variance((10, 20))    # 2 / fan_out
    0.2
    """
    if isinstance(name, Initializer):
        if kwargs:
            raise ValueError("options cannot be applied to an Initializer instance")
        return name
    if not isinstance(name, str):
        raise ValueError(f"an initializer is named by a string, got {name!r}")
    if "(" in name:      # a distribution written in fan_in and fan_out, as simulate --init takes it
        from .core import Expression
        if kwargs:
            raise ValueError(f"options apply to an initializer name, not to the expression {name!r}")
        return Expression(name)
    key = ALIASES.get(name.lower(), name.lower())
    if key not in PRESETS:
        import difflib
        close = difflib.get_close_matches(name.lower(), names(), n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ValueError(f"unknown initializer {name!r}; {hint}known: {', '.join(names())}")
    builder = PRESETS[key]
    try:
        inspect.signature(builder).bind(**kwargs)
    except TypeError as e:
        opts = ", ".join(inspect.signature(builder).parameters) or "none"
        raise ValueError(f"{name}: {e} (options: {opts})") from None
    return builder(**kwargs)

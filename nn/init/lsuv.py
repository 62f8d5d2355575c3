"""LSUV, layer-sequential unit-variance initialization (Mishkin & Matas 2015), for varprop networks.

Data-dependent: start from orthonormal weights (Saxe et al. 2014), then, layer by layer from the input, run a
batch through the network and divide the layer's weights by the standard deviation of its output (the
pre-activation h = x W^T + b) until that variance is within ``tol`` of 1 or ``max_iter`` rescalings were
made. It needs no formula for the activation: it measures instead of deriving, which is why varprop holds it
beside the derived gains (with a zero bias and a positively homogeneous activation one rescaling is exact;
otherwise the loop converges in a few steps).

The loop itself, :func:`sequential_unit_variance`, is shared with the PyTorch front end
(:func:`varprop.nn.init.torch.lsuv_`, through forward hooks on Linear and Conv layers).

>>> import numpy as np
>>> from varprop.nn import build_mlp
>>> net = build_mlp(16, [32, 32, 32], 4, activation="tanh", init="normal", seed=0)
>>> X = np.random.default_rng(0).standard_normal((256, 16)).astype(np.float32)
>>> report = lsuv(net, X, seed=0)
>>> all(abs(r.var_after - 1) < 0.1 for r in report)
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["LayerReport", "sequential_unit_variance", "lsuv", "check_options"]


@dataclass(frozen=True)
class LayerReport:
    """What LSUV did to one layer: its output variance before and after, and the rescalings it took."""
    name: str
    var_before: float
    var_after: float
    iterations: int


def check_options(tol, max_iter) -> tuple[float, int]:
    try:
        tol = float(tol)
    except (TypeError, ValueError):
        raise TypeError(f"tol must be a number, got {tol!r}") from None
    if not (0 < tol < 1):
        raise ValueError(f"tol must be in (0, 1), got {tol}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or not 1 <= max_iter <= 1000:
        raise ValueError(f"max_iter must be an integer from 1 to 1000, got {max_iter!r}")
    return tol, int(max_iter)


def sequential_unit_variance(layers, measure, rescale, tol: float = 0.1, max_iter: int = 10) -> list[LayerReport]:
    """The LSUV loop over ``layers`` = [(name, handle)...] in input-to-output order.

    ``measure(handle) -> float`` is the variance of the layer's output on the batch with every layer before it
    already rescaled; ``rescale(handle, factor)`` multiplies the layer's weights by ``factor``.
    """
    tol, max_iter = check_options(tol, max_iter)
    out = []
    for name, handle in layers:
        v0 = v = float(measure(handle))
        k = 0
        while abs(v - 1.0) >= tol and k < max_iter:
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"LSUV: layer {name} has output variance {v} on the batch; it cannot be "
                                 "rescaled to 1 (a dead layer, or a batch of identical inputs)")
            rescale(handle, 1.0 / math.sqrt(v))
            v = float(measure(handle))
            k += 1
        out.append(LayerReport(name, v0, v, k))
    return out


def lsuv(network, X, tol: float = 0.1, max_iter: int = 10, orthonormal: bool = True, seed: int = 0
         ) -> list[LayerReport]:
    """LSUV on a :class:`varprop.nn.Network` in place, on the batch ``X``; returns one report per Dense layer.

    Dense layers at the top level of the network are rescaled in order (the weights of residual branches are
    left as they are). ``orthonormal`` first replaces each weight by a Haar-random orthonormal matrix drawn
    from ``seed`` (Mishkin & Matas' first step); the output layer is rescaled too, as in their paper.
    """
    from varprop.nn.layers import Dense
    from varprop.nn.network import Network

    from .draw import Source
    from .structured import orthogonal_matrix
    if not isinstance(network, Network):
        raise TypeError(f"lsuv takes a varprop.nn.Network, got {type(network).__name__}")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != network.n_in or X.shape[0] < 2:
        raise ValueError(f"X must be a batch of at least 2 rows of width {network.n_in}, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity")
    X = X.astype(network.dtype, copy=False)
    dense = [(str(i), i) for i, layer in enumerate(network.layers) if isinstance(layer, Dense)]
    if not dense:
        raise ValueError("the network has no Dense layer to rescale")
    if orthonormal:
        for name, i in dense:
            w = network.layers[i].weight.value
            q = orthogonal_matrix(Source(seed=int(seed)), *w.shape, stream=i)
            w[...] = q.astype(w.dtype)

    def measure(i):
        x = X
        for layer in network.layers[:i]:
            x = layer.forward(x, train=False)
        d = network.layers[i]
        h = x.astype(np.float64) @ d.weight.value.T.astype(np.float64)
        if d.bias is not None:
            h += d.bias.value
        return float(h.var())

    def rescale(i, factor):
        w = network.layers[i].weight.value
        w *= w.dtype.type(factor)

    return sequential_unit_variance(dense, measure, rescale, tol, max_iter)

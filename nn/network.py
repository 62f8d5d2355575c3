"""A network: a sequence of layers with names, a shared random clock, freezing and a config to rebuild it.

:func:`build_mlp` is the usual way in: ``n_in -> hidden... -> n_out`` with the same activation on
every hidden layer (the network of the lectures' loop ``x = phi(x W)``), optional batch norm
(Dense without bias -> BatchNorm -> activation), dropout after each hidden layer (alpha dropout
for SELU, which keeps its self-normalizing fixed point), DropConnect, and residual blocks.

>>> import numpy as np
>>> net = build_mlp(4, [8, 8], 3, activation="tanh", seed=0)
>>> net.forward(np.zeros((2, 4), np.float32), train=False).shape
(2, 3)
>>> [p.name for p in net.parameters()][:2]
['0.weight', '0.bias']
"""
from __future__ import annotations

import numpy as np

from varprop.activations import get as get_activation
from varprop.nn.layers import (Activation, AlphaDropout, BatchNorm, Clock, Dense, Dropout, Layer, Residual,
                               _check_dtype, _check_prob, _check_seed, _check_width, layer_from_config)

__all__ = ["Network", "build_mlp", "mlp_shapes"]


class Network:
    """Layers applied in order. ``forward(X, train)`` returns a fresh array; ``backward(dout)`` fills
    every parameter's ``grad``. Parameters are named ``"<layer>.<name>"`` (nested for residual blocks)."""

    def __init__(self, layers: list, seed: int = 0, dtype=np.float32):
        if not layers or not all(isinstance(l, Layer) for l in layers):
            raise TypeError("a network is a non-empty list of layers")
        self.layers = list(layers)
        self.dtype = _check_dtype(dtype)
        self.clock = Clock(_check_seed(seed))
        self._index()

    def _index(self):
        self._params = []
        counter = [0]

        def visit(layer, prefix):
            counter[0] += 1
            layer.stream_id = counter[0]
            layer.set_clock(self.clock)
            if isinstance(layer, Residual):
                for j, b in enumerate(layer.branch):
                    visit(b, f"{prefix}.{j}")
                return
            for s in layer.sublayers():
                counter[0] += 1
                s.stream_id = counter[0]
            for p in layer.parameters():
                short = p.name.rsplit(".", 1)[-1]
                p.name = f"{prefix}.{short}"
                self._params.append(p)

        for i, layer in enumerate(self.layers):
            visit(layer, str(i))

    @property
    def seed(self) -> int:
        return self.clock.seed

    @property
    def step(self) -> int:
        """Optimizer steps taken: random layers key their streams by it."""
        return self.clock.step

    @step.setter
    def step(self, value: int):
        self.clock.step = int(value)

    @property
    def n_in(self) -> int:
        return _in_width(self.layers)

    @property
    def n_out(self) -> int:
        for layer in reversed(self.layers):
            if isinstance(layer, Dense):
                return layer.n_out
            if isinstance(layer, (Activation, BatchNorm)):
                return layer.width
        raise ValueError("the network has no layer that fixes its output width")

    def parameters(self):
        return list(self._params)

    def buffers(self) -> dict[str, np.ndarray]:
        return {f"{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.buffers().items()}

    def _forward(self, X, train):
        out = X
        for layer in self.layers:
            out = layer.forward(out, train)
        return out

    def forward(self, X, train: bool = False) -> np.ndarray:
        """Outputs for ``X`` (batch, n_in); ``train`` switches dropout and batch statistics on."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"inputs must have shape (batch, {self.n_in}), got {X.shape}")
        X = np.ascontiguousarray(X, dtype=self.dtype)
        return self._forward(X, train).copy()

    def backward(self, dout: np.ndarray, need_input_grad: bool = False):
        """Backpropagate dL/d(out) from the last ``forward``; returns dL/dX when asked for."""
        g = dout
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            g = self.layers[i].backward(g, need_dx=(i > 0 or need_input_grad))
        return g

    # transfer learning -----------------------------------------------------------------------------
    def freeze(self, n_layers: int | None = None, frozen: bool = True) -> None:
        """Freeze (or thaw) the parameters of the first ``n_layers`` layers (all when None)."""
        layers = self.layers if n_layers is None else self.layers[:int(n_layers)]
        for layer in layers:
            for p in layer.parameters():
                p.frozen = frozen

    def replace_head(self, n_out: int, init="he_normal", seed: int = 0) -> None:
        """Swap the last dense layer for a fresh linear one with ``n_out`` outputs (a new task's head)."""
        for i in range(len(self.layers) - 1, -1, -1):
            old = self.layers[i]
            if isinstance(old, Dense):
                self.layers[i] = Dense(old.n_in, n_out, "linear", init=init, seed=seed, dtype=self.dtype)
                del self.layers[i + 1:]
                self._index()
                return
        raise ValueError("the network has no dense layer to replace")

    # state ---------------------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by name (the arrays themselves, not copies)."""
        out = {f"param/{p.name}": p.value for p in self._params}
        out.update({f"buffer/{k}": v for k, v in self.buffers().items()})
        return out

    def load_state_arrays(self, arrays: dict) -> None:
        mine = self.state_arrays()
        missing = sorted(set(mine) - set(arrays))
        if missing:
            raise ValueError(f"state is missing {', '.join(missing[:5])}")
        for k, dst in mine.items():
            src = np.asarray(arrays[k])
            if src.shape != dst.shape:
                raise ValueError(f"{k}: shape {src.shape} does not match the network's {dst.shape}")
            np.copyto(dst, src, casting="same_kind")

    def frozen_names(self) -> list[str]:
        return [p.name for p in self._params if p.frozen]

    def config(self) -> dict:
        return {"layers": [l.config() for l in self.layers], "seed": self.seed, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, cfg: dict) -> "Network":
        dtype = np.dtype(cfg.get("dtype", "float32"))
        return cls([layer_from_config(c, dtype) for c in cfg["layers"]], seed=cfg.get("seed", 0), dtype=dtype)

    def __repr__(self):
        inner = ", ".join(type(l).__name__ for l in self.layers)
        return f"Network([{inner}], params={sum(p.value.size for p in self._params)})"


def _in_width(layers) -> int:
    """The input width fixed by the first layer that fixes one (dropout layers do not)."""
    for layer in layers:
        if isinstance(layer, Dense):
            return layer.n_in
        if isinstance(layer, Activation):
            return layer.in_width
        if isinstance(layer, BatchNorm):
            return layer.width
        if isinstance(layer, Residual):
            return _in_width(layer.branch)
    raise ValueError("no layer of the network fixes its input width")


def build_mlp(n_in: int, hidden, n_out: int, activation="relu", init="he_normal", dropout: float = 0.0,
              batchnorm: bool = False, seed: int = 0, dtype=np.float32, params=None, *, dropconnect: float = 0.0,
              residual: bool = False, zero_init_residual: bool = False, fixup: bool = False,
              output_init=None, init_kwargs=None, stochastic_depth: float = 0.0) -> Network:
    """An MLP ``n_in -> hidden[0] -> ... -> n_out`` with ``activation`` on every hidden layer.

    ``dropout`` is the probability of dropping a hidden unit (alpha dropout when the activation is
    SELU); ``batchnorm`` normalizes each hidden pre-activation (Dense -> BN -> activation; for maxout,
    whose activation lives in the dense layer, Dense(maxout) -> BN); ``residual`` makes each hidden
    layer whose width equals the previous one a block x + phi(W x + b). ``zero_init_residual`` and
    ``fixup`` give each such block a linear output layer, x + V phi(W x + b) + c (with batch norm:
    x + BN(V phi(BN(W x)))), and start V (or the last BN's gamma) at zero, so every block starts as
    the identity and still learns (zeroing W itself would leave a ReLU branch dead: relu'(0) = 0);
    ``fixup`` also scales W by Fixup's L^(-1/2) for L blocks. ``stochastic_depth = p_L`` (with ``residual``)
    skips residual block l of L in training with probability p_l = l / L * p_L (Huang et al.'s linear decay
    rule: the deepest block is dropped most) and scales it by 1 - p_l at test time
    (:class:`~varprop.nn.layers.Residual`). ``output_init`` defaults to ``init``.
    Layer l's weights are drawn with seed (seed, l), so a network is reproducible from its seed.
    """
    n_in = _check_width(n_in, "n_in")
    n_out = _check_width(n_out, "n_out")
    seed = _check_seed(seed)
    if isinstance(hidden, (int, np.integer)):
        hidden = [hidden]
    hidden = [_check_width(h, "hidden width") for h in hidden]
    _check_prob(dropout, "dropout")
    act = get_activation(activation, **(params or {}))
    _check_build_memory(n_in, hidden, n_out, act.arity, residual and (zero_init_residual or fixup), dtype)
    str_params = {k: str(v) for k, v in act.params.items()}
    kw = dict(init=init, dtype=dtype, init_kwargs=init_kwargs, dropconnect=dropconnect)
    n_blocks = sum(1 for a, b in zip([n_in] + hidden, hidden) if residual and a == b)
    p_last = _check_prob(stochastic_depth, "stochastic depth")
    if p_last >= 1.0:
        raise ValueError(f"stochastic_depth must be below 1 (the last block's drop probability), got {stochastic_depth}")
    if p_last and n_blocks == 0:
        raise ValueError("stochastic_depth needs residual blocks: residual=True and consecutive hidden layers of "
                         "equal width")
    block_no = 0
    layers: list[Layer] = []
    prev = n_in
    zero_branch = residual and (zero_init_residual or fixup)
    for l, width in enumerate(hidden):
        s = _layer_seed(seed, l)
        if batchnorm:
            block = [Dense(prev, width, "linear" if act.arity == 1 else act.name, bias=False, seed=s,
                           params=str_params if act.arity > 1 else None, **kw),
                     BatchNorm(width, dtype=dtype)]
            if act.arity == 1:
                block.append(Activation(act.name, width, str_params, dtype=dtype))
        else:
            block = [Dense(prev, width, act.name, params=str_params, seed=s, **kw)]
        if residual and prev == width:
            if zero_branch:    # a linear output to zero: zeroing phi(W x + b) itself would kill a ReLU branch
                block.append(Dense(width, width, "linear", bias=not batchnorm, seed=_layer_seed(seed, l, 1), **kw))
                if batchnorm:
                    block.append(BatchNorm(width, dtype=dtype))
            block_no += 1
            layers.append(Residual(block, zero_init=zero_init_residual, fixup_blocks=n_blocks if fixup else 0,
                                   drop=block_no / n_blocks * p_last if p_last else 0.0))
        else:
            layers.extend(block)
        if dropout > 0:
            layers.append(AlphaDropout(dropout) if act.name == "selu" else Dropout(dropout))
        prev = width
    layers.append(Dense(prev, n_out, "linear", init=init if output_init is None else output_init,
                        seed=_layer_seed(seed, len(hidden)), dtype=dtype, init_kwargs=init_kwargs))
    return Network(layers, seed=seed, dtype=dtype)


def _layer_seed(seed: int, layer: int, sub: int = 0) -> int:
    """A distinct 63-bit seed per layer (and per extra dense layer ``sub`` of a residual branch)."""
    ids = [int(seed), int(layer)] + ([int(sub)] if sub else [])
    return int(np.random.SeedSequence(ids).generate_state(1, np.uint64)[0] >> np.uint64(1))


def mlp_shapes(n_in: int, hidden, n_out: int, arity: int = 1, extra_residual: bool = False) -> list[tuple]:
    """(inputs, outputs) of each of :func:`build_mlp`'s dense layers, whose weights are stored
    (outputs, inputs) (maxout keeps ``arity`` rows per unit; ``extra_residual``: the linear output layer
    of each equal-width residual block).

    >>> mlp_shapes(64, [256, 256], 10)
    [(64, 256), (256, 256), (256, 10)]
    """
    shapes, prev = [], int(n_in)
    for width in hidden:
        shapes.append((prev, int(width) * int(arity)))
        if extra_residual and prev == width:
            shapes.append((int(width), int(width)))
        prev = int(width)
    return shapes + [(prev, int(n_out))]


def _check_build_memory(n_in, hidden, n_out, arity, extra_residual, dtype):
    """Refuse, before drawing anything, a network whose weights (values, gradients and the float64 draw
    of the largest layer) do not fit in the memory available."""
    from varprop.memory import check
    shapes = mlp_shapes(n_in, hidden, n_out, arity, extra_residual)
    n_params = sum(r * c + c for r, c in shapes)
    need = 2 * np.dtype(dtype).itemsize * n_params + 8 * max(r * c for r, c in shapes)
    check(need, f"an MLP {'-'.join(map(str, [n_in, *hidden, n_out]))} ({n_params:.3g} parameters)",
          "use narrower hidden layers")

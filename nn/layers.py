"""Layers of the MLP trainer, each backward pass written right beside its forward pass.

Conventions. Inputs are ``(batch, features)`` arrays. A dense layer computes ``h = x W^T + b`` with
``W`` of shape ``(out, in)`` (PyTorch's layout, the layout of :mod:`varprop.nn.init`), so its
initializer sees the shape the variance conditions are written for. ``forward(x, train)`` returns an
array the layer owns (overwritten by the next call); ``backward(dy, need_dx)`` writes parameter
gradients into ``Parameter.grad`` and returns dL/dx (or ``None`` when ``need_dx`` is false, which
saves the first layer's product). Scratch arrays are kept per batch size, so a training step
allocates nothing.

Random layers (dropout, alpha dropout, DropConnect, RReLU) draw from :mod:`varprop.streams` keyed by
``(seed, step, layer, purpose)``: the same seed gives the same masks whatever the thread count, and a
resumed run draws exactly what the uninterrupted run drew.

>>> import numpy as np
>>> from varprop.nn.layers import Dense
>>> d = Dense(3, 2, activation="relu", init="zeros")
>>> d.forward(np.ones((4, 3), dtype=np.float32), train=False).shape
(4, 2)
"""
from __future__ import annotations

import numpy as np

from varprop import activations as _acts
from varprop import streams
from varprop.nn import kernels as K
from varprop.nn.init.checks import nonneg_int as _check_seed
from varprop.nn.init.checks import positive_int as _check_width
from varprop.nn.init.checks import probability as _check_prob
from varprop.nn.init.checks import real as _check_number

__all__ = ["Parameter", "Clock", "Layer", "Dense", "Activation", "BatchNorm", "Dropout", "AlphaDropout",
           "Residual", "layer_from_config", "make_initializer"]

# stream purposes: one stream per (seed, step, layer, purpose)
_DROPOUT, _RRELU, _DROPCONNECT, _STOCHDEPTH = 1, 2, 3, 4
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Parameter:
    """A trainable array and its gradient.

    ``regularize`` says whether weight penalties apply (weights yes; biases, slopes and batch-norm
    parameters no, as the lectures advise); ``frozen`` parameters keep their value (transfer learning).
    """
    __slots__ = ("value", "grad", "name", "regularize", "frozen")

    def __init__(self, value: np.ndarray, name: str = "", regularize: bool = False):
        value = np.asarray(value)
        # C- or Fortran-contiguous (a dense layer's weights are column-major); the gradient shares the layout
        self.value = value if value.flags.f_contiguous and value.ndim > 1 else np.ascontiguousarray(value)
        self.grad = np.zeros_like(self.value)
        self.name = name
        self.regularize = bool(regularize)
        self.frozen = False

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.value.shape}, regularize={self.regularize}, frozen={self.frozen})"


class Clock:
    """The seed and optimizer step that random layers key their streams by (shared by a network)."""
    __slots__ = ("seed", "step")

    def __init__(self, seed: int = 0, step: int = 0):
        self.seed = int(seed)
        self.step = int(step)

    def key(self, layer: int, purpose: int):
        return streams.key(self.seed, self.step, layer, purpose)


def _check_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in _DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def make_initializer(init, **kwargs):
    """An initializer from :mod:`varprop.nn.init` by name, or ``init`` itself when it is callable."""
    if callable(init):
        return init
    if not isinstance(init, str):
        raise TypeError(f"init must be an initializer name or a callable, got {type(init).__name__}")
    from varprop.nn.init import get
    return get(init, **kwargs)


class Layer:
    """Base class: a layer with no parameters and no state."""
    stream_id = 0

    def __init__(self):
        self._scratch: dict = {}
        self.clock = Clock()

    def _buf(self, name: str, shape, dtype, order: str = "C", fill=None) -> np.ndarray:
        """A kept scratch array; ``fill`` sets its elements when it is made (else they are undefined)."""
        key = (name, shape, dtype, order)   # callers pass tuples and dtypes: this hashes without conversions
        a = self._scratch.get(key)
        if a is None:
            if len(self._scratch) > 48:   # batch sizes come and go (eval chunks): keep the cache small
                self._scratch.clear()
            a = self._scratch[key] = np.empty(shape, dtype=dtype, order=order)
            if fill is not None:
                a[...] = fill
        return a

    def parameters(self) -> list[Parameter]:
        return []

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trained state saved with the weights (batch-norm running statistics)."""
        return {}

    def sublayers(self) -> list["Layer"]:
        return []

    def set_clock(self, clock: Clock) -> None:
        self.clock = clock
        for s in self.sublayers():
            s.set_clock(clock)

    def config(self) -> dict:
        raise NotImplementedError

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, need_dx: bool = True):
        raise NotImplementedError


# -- activation ----------------------------------------------------------------------------------
class Activation(Layer):
    """phi applied elementwise, any activation of the registry, with the bias add fused in.

    Dense layers own one and call :meth:`fused_forward` with their bias; on its own (after batch
    norm) it runs with no bias. PReLU learns one slope per unit (initialized at the registry's ``a``);
    RReLU draws slope ~ U(lower, upper) per element in training and uses the mean slope at test time
    (Xu et al. 2015); maxout takes the max over ``k`` consecutive inputs, so its input is ``k`` times
    wider than its output (Goodfellow et al. 2013).

    >>> import numpy as np
    >>> a = Activation("tanh", 2)
    >>> a.forward(np.zeros((1, 2), np.float32), train=False).tolist()
    [[0.0, 0.0]]
    """

    def __init__(self, activation="relu", width: int = 1, params=None, dtype=np.float32):
        super().__init__()
        self.bound = _acts.get(activation, **(params or {}))
        self.width = _check_width(width, "width")
        self.dtype = _check_dtype(dtype)
        self.code = self.bound.code
        self.p0, self.p1 = self.bound.kernel_params()
        name = self.bound.name
        self.mode = {"linear": "identity", "prelu": "prelu", "rrelu": "rrelu", "maxout": "maxout"}.get(name, "generic")
        self.k = self.bound.arity
        self.in_width = self.width * self.k
        self.slope = None
        if self.mode == "prelu":
            self.slope = Parameter(np.full(self.width, float(self.bound.params["a"]), dtype=self.dtype), "slope")
        if self.mode == "rrelu":
            self.lower = float(self.bound.params["lower"])
            self.upper = float(self.bound.params["upper"])
        self._h = None
        self._key = None

    def parameters(self):
        return [self.slope] if self.slope is not None else []

    def config(self):
        return {"type": "Activation", "activation": self.bound.name, "width": self.width,
                "params": {k: str(v) for k, v in self.bound.params.items()}}

    def fused_forward(self, h: np.ndarray, b: np.ndarray | None, train: bool) -> np.ndarray:
        """h += b in place (kept for backward); return phi(h)."""
        n = h.shape[0]
        self._h = h
        if self.mode == "identity":
            if b is not None:
                np.add(h, b, out=h)
            return h
        if b is None:
            b = self._buf("zero_bias", (h.shape[1],), h.dtype)
            b[...] = 0
        if self.mode == "maxout":
            y = self._buf("y", (n, self.width), h.dtype)
            arg = self._buf("arg", (n, self.width), np.int32)
            K.maxout_forward(h, b, self.k, y, arg)
            self._arg = arg
            return y
        y = self._buf("y", h.shape, h.dtype)
        if self.mode == "prelu":
            K.prelu_forward(h, b, self.slope.value, y)
        elif self.mode == "rrelu" and train:
            self._key = self.clock.key(self.stream_id, _RRELU)
            K.rrelu_forward(h, b, self._key, self.lower, self.upper, y)
        else:
            self._key = None
            K.bias_act_forward(h, b, self.code, self.p0, self.p1, y)
        return y

    def fused_backward(self, dy: np.ndarray) -> np.ndarray:
        """dL/dh from dL/dy (and the PReLU slope's gradient)."""
        h = self._h
        if self.mode == "identity":
            return dy
        dh = self._buf("dh", h.shape, h.dtype)
        if self.mode == "maxout":
            K.maxout_backward(dy, self._arg, self.k, dh)
        elif self.mode == "prelu":
            K.prelu_backward(dy, h, self.slope.value, dh, self.slope.grad)
        elif self.mode == "rrelu" and self._key is not None:
            K.rrelu_backward(dy, h, self._key, self.lower, self.upper, dh)
        else:
            K.act_backward(dy, h, self.code, self.p0, self.p1, dh)
        return dh

    def forward(self, x, train):
        if x.shape[1] != self.in_width:
            raise ValueError(f"activation expects {self.in_width} features, got {x.shape[1]}")
        h = self._buf("h", x.shape, x.dtype)
        np.copyto(h, x)
        return self.fused_forward(h, None, train)

    def backward(self, dy, need_dx=True):
        dh = self.fused_backward(dy)
        return dh if need_dx else None


# -- dense ------------------------------------------------------------------------------------------
class Dense(Layer):
    """h = x W^T + b, then y = phi(h) fused with the bias add.

    ``W`` (shape ``(out * k, in)``, k = maxout's pieces, else 1) comes from ``init`` (a name of
    :mod:`varprop.nn.init` or an initializer); ``b`` starts at ``bias_init`` (0 by default).
    ``dropconnect = p`` drops each weight with probability p in training, scaling the rest by
    1/(1 - p) (inverted DropConnect, so the test-time layer uses W as is).

    Backward: dh = dy * phi'(h); dW = dh^T x; db = sum_rows dh; dx = dh W.

    ``W`` is stored column-major (Fortran order): ``W^T`` is then a row-major ``(in, out)`` matrix,
    so the forward product ``x W^T`` and the gradient ``dW^T = x^T dh`` are plain row-major products,
    which OpenBLAS runs faster than a transposed operand (the input gradient ``dh W``, skipped for
    the first layer, takes the transposed form). Indexing, shapes and checkpoints are unchanged.

    >>> import numpy as np
    >>> d = Dense(2, 1, init="ones", bias_init=0.5)
    >>> d.forward(np.array([[1.0, 2.0]], np.float32), train=False).tolist()
    [[3.5]]
    """

    def __init__(self, n_in: int, n_out: int, activation="linear", init="he_normal", bias: bool = True,
                 bias_init: float = 0.0, params=None, dropconnect: float = 0.0, seed: int = 0,
                 dtype=np.float32, init_kwargs=None):
        super().__init__()
        self.n_in = _check_width(n_in, "n_in")
        self.n_out = _check_width(n_out, "n_out")
        self.dtype = _check_dtype(dtype)
        self.act = Activation(activation, self.n_out, params, dtype=self.dtype)
        self.dropconnect = _check_prob(dropconnect, "dropconnect")
        rows = self.act.in_width
        # a checkpoint records the initializer by name (its weights are saved, so it is only a label)
        self.init_name = init if isinstance(init, str) else str(getattr(init, "name", "custom"))
        self.init_kwargs = dict(init_kwargs or {})
        initializer = make_initializer(init, **self.init_kwargs)
        seed = _check_seed(seed)
        bias_init = _check_number(bias_init, "bias_init")
        w = np.asarray(initializer((rows, self.n_in), rng=np.random.default_rng(seed), dtype=self.dtype),
                       dtype=self.dtype)
        if w.shape != (rows, self.n_in):
            raise ValueError(f"initializer returned shape {w.shape}, expected {(rows, self.n_in)}")
        self.seed = int(seed)
        self.weight = Parameter(np.asfortranarray(w), "weight", regularize=True)
        self.bias_init = float(bias_init)
        self.bias = Parameter(np.full(rows, self.bias_init, dtype=self.dtype), "bias") if bias else None
        self._x = None
        self._mask = None

    def parameters(self):
        ps = [self.weight] + ([self.bias] if self.bias is not None else [])
        return ps + self.act.parameters()

    def sublayers(self):
        return [self.act]

    def config(self):
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out, "activation": self.act.bound.name,
                "params": {k: str(v) for k, v in self.act.bound.params.items()}, "init": str(self.init_name),
                "init_kwargs": self.init_kwargs, "bias": self.bias is not None, "bias_init": self.bias_init,
                "dropconnect": self.dropconnect, "seed": self.seed}

    def forward(self, x, train):
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"dense layer expects inputs of shape (batch, {self.n_in}), got {x.shape}")
        n = x.shape[0]
        rows = self.act.in_width
        w = self.weight.value
        if train and self.dropconnect > 0.0:
            w_eff = self._buf("w_eff", w.shape, w.dtype, order="F")
            self._mask = self._buf("mask", w.shape, w.dtype, order="F")
            K.dropout_forward(w, self.clock.key(self.stream_id, _DROPCONNECT), 1.0 - self.dropconnect, w_eff,
                              self._mask)
            w = w_eff
        else:
            self._mask = None
        self._x = x
        self._w = w
        h = self._buf("h", (n, rows), x.dtype)
        np.matmul(x, w.T, out=h)
        return self.act.fused_forward(h, None if self.bias is None else self.bias.value, train)

    def backward(self, dy, need_dx=True):
        dh = self.act.fused_backward(dy)
        if not self.weight.frozen:
            g = self.weight.grad          # dW^T = x^T dh, written through the transpose of dW's storage
            np.matmul(self._x.T, dh, out=g.T)
            if self._mask is not None:
                np.multiply(self.weight.grad, self._mask, out=self.weight.grad)
        if self.bias is not None and not self.bias.frozen:
            # db = the column sums of dh, as the product ones @ dh: 1.8 us against np.add.reduce's 4.6 us on
            # a 128 x 256 float32 batch (its strided reduction over rows does not vectorize as well)
            np.dot(self._buf("ones", (len(dh),), dh.dtype, fill=1), dh, out=self.bias.grad)
        if not need_dx:
            return None
        dx = self._buf("dx", self._x.shape, dh.dtype)
        np.matmul(dh, self._w, out=dx)
        return dx


# -- batch norm -------------------------------------------------------------------------------------
class BatchNorm(Layer):
    """y = gamma (x - mu) / sqrt(var + eps) + beta per feature (Ioffe & Szegedy 2015).

    Training uses the batch's mean and (biased) variance and updates the running estimates
    ``running = (1 - momentum) running + momentum batch`` (the variance with the unbiased n/(n-1)
    factor, as PyTorch does); test time uses the running estimates. gamma and beta are not
    regularized. Backward (closed form): dx = gamma/(n sigma) (n dy - sum dy - xhat sum(dy xhat)).

    >>> import numpy as np
    >>> bn = BatchNorm(1)
    >>> y = bn.forward(np.array([[1.0], [3.0]], np.float32), train=True)
    >>> [round(float(v), 3) for v in y[:, 0]]
    [-1.0, 1.0]
    """

    def __init__(self, width: int, momentum: float = 0.1, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        self.width = _check_width(width, "width")
        self.dtype = _check_dtype(dtype)
        for v, what in ((momentum, "momentum"), (eps, "eps")):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise TypeError(f"batch-norm {what} must be a number, got {type(v).__name__}")
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"batch-norm momentum must be in (0, 1], got {momentum}")
        if not (eps > 0.0 and np.isfinite(eps)):
            raise ValueError(f"batch-norm eps must be positive and finite, got {eps}")
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.gamma = Parameter(np.ones(self.width, self.dtype), "gamma")
        self.beta = Parameter(np.zeros(self.width, self.dtype), "beta")
        self.running_mean = np.zeros(self.width, self.dtype)
        self.running_var = np.ones(self.width, self.dtype)
        self._mean = np.zeros(self.width, self.dtype)
        self._inv_std = np.zeros(self.width, self.dtype)

    def parameters(self):
        return [self.gamma, self.beta]

    def buffers(self):
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def config(self):
        return {"type": "BatchNorm", "width": self.width, "momentum": self.momentum, "eps": self.eps}

    def forward(self, x, train):
        if x.shape[1] != self.width:
            raise ValueError(f"batch norm expects {self.width} features, got {x.shape[1]}")
        n = x.shape[0]
        y = self._buf("y", x.shape, x.dtype)
        if train:
            if n < 2:
                raise ValueError("batch norm needs at least 2 samples per training batch")
            xhat = self._xhat = self._buf("xhat", x.shape, x.dtype)
            K.batchnorm_train_forward(x, self.gamma.value, self.beta.value, self.eps, xhat, y,
                                      self._mean, self._inv_std, self.running_mean, self.running_var,
                                      self.momentum)
            return y
        scale = self.gamma.value / np.sqrt(self.running_var + self.eps)
        np.subtract(x, self.running_mean, out=y)
        y *= scale
        y += self.beta.value
        return y

    def backward(self, dy, need_dx=True):
        if getattr(self, "_xhat", None) is None or self._xhat.shape != dy.shape:
            raise RuntimeError("batch norm backward needs a training-mode forward pass on a batch of this "
                               "shape first (test mode uses fixed statistics and keeps nothing for backward)")
        dx = self._buf("dx", dy.shape, dy.dtype)
        K.batchnorm_backward(dy, self._xhat, self.gamma.value, self._inv_std, dx, self.gamma.grad, self.beta.grad)
        return dx if need_dx else None


# -- dropout ----------------------------------------------------------------------------------------
class Dropout(Layer):
    """Inverted dropout (Srivastava et al. 2014): in training each unit is zeroed with probability ``p``
    and the rest scaled by 1/(1 - p), so test time is the identity. Backward: dx = dy * mask.

    >>> import numpy as np
    >>> Dropout(0.5).forward(np.ones((1, 3), np.float32), train=False).tolist()
    [[1.0, 1.0, 1.0]]
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = _check_prob(p, "dropout")

    def config(self):
        return {"type": "Dropout", "p": self.p}

    def forward(self, x, train):
        self._active = train and self.p > 0.0
        if not self._active:
            return x
        y = self._buf("y", x.shape, x.dtype)
        self._mask = self._buf("mask", x.shape, x.dtype)
        self._fill(x, self.clock.key(self.stream_id, _DROPOUT), y, self._mask)
        return y

    def _fill(self, x, key, y, mask):
        K.dropout_forward(x, key, 1.0 - self.p, y, mask)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if not self._active:
            return dy
        dx = self._buf("dx", dy.shape, dy.dtype)
        K.mask_multiply(dy, self._mask, dx)
        return dx


class AlphaDropout(Dropout):
    """Alpha dropout for SELU networks (Klambauer et al. 2017, section "New dropout technique").

    A dropped unit is set to SELU's negative saturation alpha' = -lambda alpha, then the affine map
    a (.) + b with a = (q + alpha'^2 q (1 - q))^(-1/2), b = -a alpha' (1 - q), q = 1 - p, restores
    mean 0 and variance 1. Test time is the identity.
    """

    def __init__(self, p: float = 0.05):
        super().__init__(p)
        q = 1.0 - self.p
        self.alpha_p = -_acts.selu_lambda(_acts.MATH) * _acts.selu_alpha(_acts.MATH)
        self.a = (q + self.alpha_p ** 2 * q * (1.0 - q)) ** -0.5

    def config(self):
        return {"type": "AlphaDropout", "p": self.p}

    def _fill(self, x, key, y, mask):
        K.alpha_dropout_forward(x, key, 1.0 - self.p, self.a, self.alpha_p, y, mask)


# -- residual blocks ----------------------------------------------------------------------------------
class Residual(Layer):
    """y = x + F(x) for a branch F of layers mapping width n to width n (He et al. 2016).

    ``zero_init`` makes the block start as the identity by zeroing the branch's last LINEAR output:
    the weights of its last dense layer, or the gamma of its last batch norm when one comes after
    every dense layer (Goyal et al. 2017). The zeroed layer must still learn: its gradient is
    dF/dW = phi'(out) dy x^T, so an activation with phi'(0) = 0 after the zeroed output (ReLU) would
    keep it at zero forever, and is refused. ``fixup_blocks = L`` applies Fixup (Zhang, Dauphin &
    Ma 2019): the branch's other dense layers are scaled by L^(-1/(2m-2)) (m = dense layers in the
    branch, :func:`varprop.nn.init.presets.fixup_scale`) and the last output zeroed as above.
    Backward: dx = dy + dF/dx^T dy.

    ``drop = p`` is stochastic depth (Huang, Sun, Liu, Sedra & Weinberger 2016): in training the whole
    branch is skipped with probability p at each step (one draw per block and optimizer step, from the
    stream (seed, step, block, stochastic depth), so y = x and the branch's gradients are zero), and at
    test time y = x + (1 - p) F(x), the branch scaled by its survival probability.

    >>> import numpy as np
    >>> blk = Residual([Dense(2, 2, "relu", seed=1), Dense(2, 2, "linear", seed=2)], zero_init=True)
    >>> x = np.ones((1, 2), np.float32); bool((blk.forward(x, train=False) == x).all())
    True
    """

    def __init__(self, branch: list, zero_init: bool = False, fixup_blocks: int = 0, drop: float = 0.0):
        super().__init__()
        self.drop = _check_prob(drop, "stochastic depth")
        if self.drop >= 1.0:
            raise ValueError(f"stochastic depth: a block's drop probability must be below 1, got {drop}")
        self._skipped = False
        if isinstance(branch, Layer) or not hasattr(branch, "__iter__"):
            raise TypeError("a residual branch is a list of layers")
        self.branch = list(branch)
        if not self.branch:
            raise ValueError("a residual block needs at least one layer in its branch")
        for b in self.branch:
            if not isinstance(b, Layer):
                raise TypeError(f"a residual branch holds layers, got {type(b).__name__}")
        self.zero_init = bool(zero_init)
        if isinstance(fixup_blocks, bool) or not isinstance(fixup_blocks, (int, np.integer)) or fixup_blocks < 0:
            raise ValueError(f"fixup_blocks must be a non-negative integer, got {fixup_blocks!r}")
        self.fixup_blocks = int(fixup_blocks)
        if self.zero_init or self.fixup_blocks > 0:
            target = _zero_target(self.branch)
            dense = [b for b in self.branch if isinstance(b, Dense)]
            if self.fixup_blocks > 0 and len(dense) >= 2:
                from varprop.nn.init.presets import fixup_scale
                scale = fixup_scale(self.fixup_blocks, len(dense))
                for d in dense:
                    if d is not target:
                        d.weight.value *= d.dtype.type(scale)
            if isinstance(target, Dense):
                target.weight.value[...] = 0
            else:
                target.gamma.value[...] = 0

    def sublayers(self):
        return list(self.branch)

    def parameters(self):
        return [p for b in self.branch for p in b.parameters()]

    def buffers(self):
        return {f"{i}.{k}": v for i, b in enumerate(self.branch) for k, v in b.buffers().items()}

    def config(self):
        cfg = {"type": "Residual", "branch": [b.config() for b in self.branch], "zero_init": self.zero_init,
               "fixup_blocks": self.fixup_blocks}
        if self.drop:
            cfg["drop"] = self.drop
        return cfg

    def skipped(self) -> bool:
        """Whether the training step at the clock's position skips this block (stochastic depth)."""
        if not self.drop:
            return False
        u = streams.uniform(self.clock.seed, (self.clock.step, self.stream_id, _STOCHDEPTH), 1)[0]
        return bool(u < self.drop)

    def forward(self, x, train):
        self._skipped = bool(train and self.skipped())
        if self._skipped:
            self._x_shape = x.shape
            return x
        f = x
        for b in self.branch:
            f = b.forward(f, train)
        if f.shape != x.shape:
            raise ValueError(f"residual branch maps {x.shape[1]} features to {f.shape[1]}; they must match")
        y = self._buf("y", x.shape, x.dtype)
        if self.drop and not train:
            np.multiply(f, f.dtype.type(1.0 - self.drop), out=y)
            np.add(x, y, out=y)
            return y
        np.add(x, f, out=y)
        return y

    def backward(self, dy, need_dx=True):
        if self._skipped:
            for p in self.parameters():
                p.grad[...] = 0
            return dy if need_dx else None
        g = dy
        for i in range(len(self.branch) - 1, -1, -1):
            g = self.branch[i].backward(g, need_dx or i > 0)   # the branch's input gradient only if asked
        if not need_dx:
            return None
        dx = self._buf("dx", dy.shape, dy.dtype)
        np.add(dy, g, out=dx)
        return dx


def _zero_target(branch):
    """The layer whose zeroing makes ``branch`` output a constant and still lets it learn.

    The last Dense or BatchNorm of the branch (its weights, or gamma); only activations and dropout
    may follow it. Every activation after the zeroed output c (the bias, or beta) must have
    phi'(c) != 0, or the zeroed layer would never get a gradient."""
    idx = next((i for i in range(len(branch) - 1, -1, -1) if isinstance(branch[i], (Dense, BatchNorm))), None)
    if idx is None:
        raise ValueError("zero_init/Fixup needs a dense or batch-norm layer in the residual branch to zero")
    target = branch[idx]
    acts = [target.act] if isinstance(target, Dense) else []
    for b in branch[idx + 1:]:
        if isinstance(b, Activation):
            acts.append(b)
        elif not isinstance(b, Dropout):
            raise ValueError(f"zero_init/Fixup zeroes the branch's last dense or batch-norm layer; a "
                             f"{type(b).__name__} after it is not supported")
    if isinstance(target, Dense):
        c = target.bias.value if target.bias is not None else np.zeros(target.act.in_width, target.dtype)
    else:
        c = target.beta.value
    c = np.asarray(c, np.float64)
    for a in acts:
        if a.bound.arity != 1:     # maxout: each piece is the identity; its output lies within c's range
            c = np.array([c.min(), c.max()])
            continue
        if np.any(a.bound.numpy_derivative(c) == 0):
            raise ValueError(f"zero_init/Fixup would zero a layer followed by {a.bound.name}, whose derivative "
                             f"at the zeroed output is 0, so the layer would never learn; end the branch "
                             f"with a linear dense layer (Dense(..., 'linear')) or a batch norm")
        c = a.bound.numpy(c)
    return target


_TYPES = {"Dense": Dense, "Activation": Activation, "BatchNorm": BatchNorm, "Dropout": Dropout,
          "AlphaDropout": AlphaDropout}


def layer_from_config(cfg: dict, dtype=np.float32) -> Layer:
    """Rebuild a layer from :meth:`Layer.config` (weights are then loaded from a checkpoint)."""
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ValueError("a layer config is a dict with a 'type'")
    kind = cfg["type"]
    kw = {k: v for k, v in cfg.items() if k != "type"}
    if kind == "Residual":
        branch = [layer_from_config(c, dtype) for c in kw["branch"]]
        block = Residual(branch)   # the checkpoint holds the weights: the zero/Fixup scaling is not redone
        block.zero_init = bool(kw.get("zero_init", False))
        block.fixup_blocks = int(kw.get("fixup_blocks", 0))
        block.drop = _check_prob(kw.get("drop", 0.0), "stochastic depth")
        return block
    if kind not in _TYPES:
        raise ValueError(f"unknown layer type {kind!r}")
    if kind in ("Dense", "Activation", "BatchNorm"):
        kw["dtype"] = dtype
    if kind != "Dense":
        return _TYPES[kind](**kw)
    name, init_kwargs = kw.pop("init", "he_normal"), kw.pop("init_kwargs", {})
    layer = Dense(init=_no_draw, **kw)   # the checkpoint overwrites the weights: skip drawing them
    layer.init_name, layer.init_kwargs = name, dict(init_kwargs)
    return layer


def _no_draw(shape, rng=None, dtype=np.float32):
    return np.zeros(shape, dtype=dtype)

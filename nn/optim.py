"""Optimizers as presets of two cores, in PyTorch's forms (torch.optim), so a trajectory matches it.

Momentum core (:class:`Momentum`), momentum buffer b, learning rate lr:
    g' = g + wd p;  b <- mu b + g';  p <- p - lr b               (heavy ball; mu = 0 is SGD)
                                     p <- p - lr (g' + mu b)      (Nesterov)
The learning rate multiplies the whole buffer, so a schedule changes the step at once (the lectures'
v <- mu v - lr g form is the same only while lr is constant).

Adaptive core (:class:`Adaptive`), first moment m, second moment v, step t:
    m <- beta1 m + (1 - beta1) g'           (beta1 = 0: m = g')
    v <- v + g'^2 (AdaGrad)  or  v <- beta2 v + (1 - beta2) g'^2 (RMSProp, Adam)
    p <- p - lr (m / c1) / (sqrt(v / c2) + eps),  c1 = 1 - beta1^t, c2 = 1 - beta2^t (Adam), else 1

A momentum buffer or decaying moment that would fall below the dtype's smallest normal number is stored
as 0 (torch.optim keeps the subnormal value): arithmetic on subnormals is slow, and such a value moves
its weight by less than a rounding error unless the weight is itself below about 1e-26.

Presets: sgd, momentum, nesterov (momentum core); adagrad, rmsprop, adam, adamw (adaptive core).
Two decays, two names: ``weight_decay`` is coupled (g' = g + weight_decay p, torch.optim.SGD/Adam's
meaning); ``decoupled_decay`` is p <- p - lr decoupled_decay p (AdamW, Loshchilov & Hutter 2019;
adamw's default 0.01 is torch.optim.AdamW's weight_decay). Both act on parameters with
``regularize`` set (weights, not biases or batch-norm parameters). Frozen parameters are skipped.

>>> import numpy as np
>>> from varprop.nn.layers import Parameter
>>> p = Parameter(np.array([1.0])); p.grad[:] = 0.5
>>> get_optimizer("sgd", lr=0.1).step([p]); round(float(p.value[0]), 6)
0.95
"""
from __future__ import annotations

import numpy as np

from varprop.nn import kernels as K
from varprop.nn.init.checks import nonneg as _nonneg
from varprop.nn.init.checks import positive as _positive

__all__ = ["Optimizer", "Momentum", "Adaptive", "get_optimizer", "OPTIMIZERS"]


def _unit(v, what, closed_low=True):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        raise TypeError(f"{what} must be a number, got {type(v).__name__}")
    v = float(v)
    if not (0.0 <= v < 1.0 if closed_low else 0.0 < v < 1.0):
        raise ValueError(f"{what} must be in {'[0' if closed_low else '(0'}, 1), got {v}")
    return v


class Optimizer:
    """Common state handling: per-parameter slots keyed by parameter name, and the step count t."""
    name = ""
    slots: tuple = ()

    def __init__(self, lr: float, weight_decay: float = 0.0, decoupled_decay: float = 0.0):
        self.lr = _positive(lr, "learning rate")
        self.weight_decay = _nonneg(weight_decay, "weight_decay")
        self.decoupled_decay = _nonneg(decoupled_decay, "decoupled_decay")
        self.t = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._group = None     # the grouped update's flat views, while the parameters and state stay the same

    def _slots(self, p):
        s = self.state.get(p.name)
        if s is None or s[self.slots[0]].shape != p.value.shape:
            s = self.state[p.name] = {k: np.zeros_like(p.value) for k in self.slots}
        if "_old" not in s:        # where the kernels put the values before the step (not saved)
            s["_old"] = np.empty_like(p.value)
        for k, a in s.items():     # loaded state keeps its file's layout: the kernels pair elements by memory
            if a.strides != p.value.strides:
                s[k] = b = np.empty_like(p.value)
                np.copyto(b, a)
        return s

    def step(self, parameters, backups=None, *, weight_decay=None, decoupled_decay=None) -> None:
        """Update every unfrozen parameter from its ``grad``; ``backups`` (arrays like the values)
        receive the values before the step, at no extra pass over memory. ``weight_decay`` and
        ``decoupled_decay``, when given, replace the optimizer's own for this step (a trainer's
        setting, without changing the optimizer it was handed)."""
        wd = self.weight_decay if weight_decay is None else _nonneg(weight_decay, "weight_decay")
        dd = self.decoupled_decay if decoupled_decay is None else _nonneg(decoupled_decay, "decoupled_decay")
        self.t += 1
        if not isinstance(parameters, (list, tuple)):
            parameters = list(parameters)
        g = self._group
        if g is None or not g.serves(parameters, backups, self.state):
            live = [(p, self._slots(p), i) for i, p in enumerate(parameters) if not p.frozen]
            g = self._group = _Group.build(self, parameters, backups, live)
            if g is None:
                for p, s, i in live:
                    backup = s["_old"] if backups is None else backups[i]
                    reg = 1.0 if p.regularize else 0.0
                    self._update(p, s, wd * reg, self.lr * dd * reg, backup, p.value.dtype.type)
                return
        f = g.dtype.type
        self._update_group(g.columns, g.reg, f(wd), f(self.lr * dd), f)

    def _update_group(self, columns, reg, wd, d, f):
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Flat name -> array view of the state (for checkpoints)."""
        return {f"{pname}/{slot}": a for pname, s in self.state.items() for slot, a in s.items()
                if not slot.startswith("_")}

    def load_state_arrays(self, arrays: dict, t: int) -> None:
        self.t = int(t)
        self.state = {}
        for key, a in arrays.items():
            pname, slot = key.rsplit("/", 1)
            self.state.setdefault(pname, {})[slot] = np.array(a)
        for s in self.state.values():
            if set(self.slots) - set(s):
                raise ValueError(f"optimizer state lacks {sorted(set(self.slots) - set(s))} for {self.name}")


class _Group:
    """Every unfrozen parameter of a step updated by one kernel call (``Optimizer._update_group``): the
    same loop per element, so the same bits as a call per parameter, without the Python of one call each.

    It holds the flat views (value, gradient, slots, backup: 1-D, memory order) of each parameter and what
    they were made from; a step checks that nothing was replaced (the parameters, their values, gradients
    and frozen and regularize flags, the backups, the state dict) before it reuses them: a few identity
    tests.
    """
    __slots__ = ("ref", "backups", "backup_items", "state", "columns", "reg", "dtype")

    @classmethod
    def build(cls, opt, parameters, backups, live):
        """The group for these parameters, or None where a call per parameter is needed: an optimizer
        without a group kernel, mixed dtypes, or a parameter large enough for the parallel kernels."""
        if not live or type(opt)._update_group is Optimizer._update_group:
            return None
        dtype = live[0][0].value.dtype
        if dtype not in (np.float32, np.float64) or any(p.value.dtype != dtype or p.value.size >= K.PARALLEL_MIN
                                                         for p, _, _ in live):
            return None
        g = cls()
        g.ref = [(p, p.value, p.grad, p.frozen, p.regularize) for p in parameters]
        g.backups, g.backup_items = backups, None if backups is None else list(backups)
        g.state, g.dtype = opt.state, dtype
        # last parameter first: the next forward pass reads the first layer's weights first, so they are
        # the ones left freshest in the caches (every element is independent: the order changes no bit)
        live = live[::-1]
        rows = [(p.value, p.grad, *(s[k] for k in opt.slots), s["_old"] if backups is None else backups[i])
                for p, s, i in live]
        # the arrays of one parameter share a layout (K.same_layout), so their flat views pair elements
        flats = [tuple(v.reshape(-1) for v in K.same_layout(*row)) for row in rows]
        g.columns = tuple(tuple(row[j] for row in flats) for j in range(len(flats[0])))
        g.reg = np.array([1.0 if p.regularize else 0.0 for p, _, _ in live], dtype=dtype)
        return g

    def serves(self, parameters, backups, state) -> bool:
        if state is not self.state or backups is not self.backups or len(parameters) != len(self.ref):
            return False
        for p, (q, value, grad, frozen, reg) in zip(parameters, self.ref):
            if p is not q or p.value is not value or p.grad is not grad or p.frozen != frozen or p.regularize != reg:
                return False
        if backups is not None:
            for a, b in zip(backups, self.backup_items):
                if a is not b:
                    return False
        return True


class Momentum(Optimizer):
    """The momentum core: SGD (mu = 0), heavy-ball momentum, Nesterov."""
    slots = ("momentum_buffer",)

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, decoupled_decay=0.0, name="sgd"):
        super().__init__(lr, weight_decay, decoupled_decay)
        self.momentum = _unit(momentum, "momentum")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov needs momentum > 0")
        self.name = name

    def _update(self, p, s, wd, d, backup, f):
        K.momentum_step(p.value, p.grad, s["momentum_buffer"], backup, f(self.lr), f(self.momentum),
                        self.nesterov, f(wd), f(d))

    def _update_group(self, columns, reg, wd, d, f):
        K.momentum_step_group(*columns, reg, f(self.lr), f(self.momentum), self.nesterov, wd, d)

    def load_state_arrays(self, arrays: dict, t: int) -> None:
        # an older checkpoint holds the velocity v = -lr b of the v <- mu v - lr g form
        arrays = {(k[:-len("velocity")] + "momentum_buffer" if k.endswith("/velocity") else k):
                  (a * (-1.0 / self.lr) if k.endswith("/velocity") else a) for k, a in arrays.items()}
        super().load_state_arrays(arrays, t)

    def config(self):
        return {"name": self.name, "lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay, "decoupled_decay": self.decoupled_decay}


class Adaptive(Optimizer):
    """The adaptive-rate core: AdaGrad, RMSProp, Adam, AdamW."""
    slots = ("m", "v")

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, accumulate=False, bias_correction=True,
                 weight_decay=0.0, decoupled_decay=0.0, name="adam"):
        super().__init__(lr, weight_decay, decoupled_decay)
        self.beta1 = _unit(beta1, "beta1")
        self.beta2 = _unit(beta2, "beta2")
        self.eps = _positive(eps, "eps")
        self.accumulate = bool(accumulate)
        self.bias_correction = bool(bias_correction)
        self.name = name

    def _rates(self, f):
        """The kernels' scalars ``a, s, eps, b1, b2`` for step t in the dtype ``f`` (see K.adaptive_step)."""
        c1 = 1.0 - self.beta1 ** self.t if self.bias_correction and self.beta1 > 0 else 1.0
        c2 = 1.0 - self.beta2 ** self.t if self.bias_correction and not self.accumulate else 1.0
        return f(self.lr / c1), f(1.0 / np.sqrt(c2)), f(self.eps), f(self.beta1), f(self.beta2)

    def _update(self, p, s, wd, d, backup, f):
        K.adaptive_step(p.value, p.grad, s["m"], s["v"], backup, *self._rates(f), self.accumulate, f(wd), f(d))

    def _update_group(self, columns, reg, wd, d, f):
        K.adaptive_step_group(*columns, reg, *self._rates(f), self.accumulate, wd, d)

    def config(self):
        return {"name": self.name, "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "accumulate": self.accumulate, "bias_correction": self.bias_correction,
                "weight_decay": self.weight_decay, "decoupled_decay": self.decoupled_decay}


def _sgd(lr=0.01, weight_decay=0.0, decoupled_decay=0.0):
    return Momentum(lr, 0.0, False, weight_decay, decoupled_decay, "sgd")


def _momentum(lr=0.01, momentum=0.9, weight_decay=0.0, decoupled_decay=0.0):
    return Momentum(lr, momentum, False, weight_decay, decoupled_decay, "momentum")


def _nesterov(lr=0.01, momentum=0.9, weight_decay=0.0, decoupled_decay=0.0):
    return Momentum(lr, momentum, True, weight_decay, decoupled_decay, "nesterov")


def _adagrad(lr=0.01, eps=1e-8, weight_decay=0.0, decoupled_decay=0.0):
    return Adaptive(lr, 0.0, 0.0, eps, True, False, weight_decay, decoupled_decay, "adagrad")


def _rmsprop(lr=0.001, decay_rate=0.99, eps=1e-8, weight_decay=0.0, decoupled_decay=0.0):
    return Adaptive(lr, 0.0, decay_rate, eps, False, False, weight_decay, decoupled_decay, "rmsprop")


def _adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_decay=0.0):
    return Adaptive(lr, beta1, beta2, eps, False, True, weight_decay, decoupled_decay, "adam")


def _adamw(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_decay=0.01):
    return Adaptive(lr, beta1, beta2, eps, False, True, weight_decay, decoupled_decay, "adamw")


OPTIMIZERS = {"sgd": _sgd, "momentum": _momentum, "nesterov": _nesterov, "adagrad": _adagrad,
              "rmsprop": _rmsprop, "adam": _adam, "adamw": _adamw}


def get_optimizer(name, lr=None, **kwargs) -> Optimizer:
    """An optimizer preset by name (an :class:`Optimizer` is returned unchanged).

    Keyword names: ``lr``; ``momentum`` (momentum, nesterov); ``beta1``, ``beta2``, ``eps`` (adam,
    adamw); ``decay_rate`` (rmsprop); ``weight_decay`` (coupled, default 0); ``decoupled_decay``
    (adamw's default 0.01, others 0).
    """
    from varprop.names import key_of
    if isinstance(name, Optimizer):
        return name
    key = key_of(name, OPTIMIZERS, "optimizer")
    if lr is not None:
        kwargs["lr"] = lr
    try:
        return OPTIMIZERS[key](**kwargs)
    except TypeError as e:
        raise TypeError(f"optimizer {key!r}: {e}") from None


def optimizer_from_config(cfg: dict) -> Optimizer:
    cfg = dict(cfg)
    name = cfg.pop("name")
    if "decay" in cfg:          # older checkpoints: one decoupled ``decay``
        cfg["decoupled_decay"] = cfg.pop("decay")
    if name in ("sgd", "momentum", "nesterov"):
        return Momentum(name=name, **cfg)
    return Adaptive(name=name, **cfg)

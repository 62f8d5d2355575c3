"""Train-time hooks of the trainer: an L1 penalty on hidden activations and Gaussian noise injection.

Sparse representations (the lectures' "penalize the activations, not the weights"). With
``activation_l1 = lam`` the objective of a minibatch of m rows gains

    Omega = lam / m * sum_l sum_{i,j} |a^l_ij|,       dOmega/da^l = lam / m * sign(a^l)

over the hidden layers l (the output of every dense layer with a non-linear activation, every
activation layer and every residual block, the last layer excepted), so the penalty's gradient is
added to dL/da^l as backpropagation passes layer l. ``History`` then records per epoch
``zero_fraction`` (the fraction of exactly zero entries of each hidden layer's output over the epoch's
training batches, in training mode, before any noise) and ``activation_penalty`` (Omega's running
mean); ``record_sparsity`` records them without a penalty (the contrast). :func:`zero_fractions`
measures the same fractions in test mode on any data.

Noise robustness: ``input_noise``, ``hidden_noise`` and ``weight_noise`` add N(0, sigma^2) to the
inputs, to each hidden layer's output, or to every weight matrix (biases and batch-norm parameters
untouched) for the forward and backward pass of a training step; the weights are put back before the
optimizer step, so the update is the gradient at the perturbed point applied to the clean weights.
Evaluation and prediction never see noise. Draws come from :mod:`varprop.streams` keyed by
``(seed, optimizer step, purpose, layer)``, so a run and its resumption are bit-identical.

>>> import numpy as np
>>> from varprop.nn.network import build_mlp
>>> net = build_mlp(3, [4], 2, seed=0)
>>> h = TrainHooks(net, activation_l1=1e-3)
>>> h.hidden
[0]
"""
from __future__ import annotations

import numpy as np

from varprop import streams
from varprop.nn.init.checks import nonneg as _nonneg
from varprop.nn.layers import Activation, Dense, Residual

__all__ = ["TrainHooks", "hidden_layers", "zero_fractions"]

_INPUT, _HIDDEN, _WEIGHT = 11, 12, 13     # stream purposes (distinct from the layers' own 1..3)
_KEYS = ("activation_l1", "input_noise", "hidden_noise", "weight_noise", "record_sparsity")


def hidden_layers(network) -> list[int]:
    """Indices of the network's layers whose outputs are hidden representations (see the module text)."""
    out = []
    for i, layer in enumerate(network.layers[:-1]):
        if isinstance(layer, Residual):
            out.append(i)
        elif isinstance(layer, Dense) and layer.act.mode != "identity":
            out.append(i)
        elif isinstance(layer, Activation) and layer.mode != "identity":
            out.append(i)
    return out


def zero_fractions(network, X, chunk: int = 1024) -> list[float]:
    """Fraction of exactly zero outputs of each hidden layer on ``X`` in test mode (one value per layer)."""
    X = np.ascontiguousarray(X, dtype=network.dtype)
    if X.ndim != 2 or X.shape[1] != network.n_in or len(X) == 0:
        raise ValueError(f"X must be a non-empty array of shape (samples, {network.n_in}), got {X.shape}")
    idx = hidden_layers(network)
    zeros = np.zeros(len(idx))
    total = np.zeros(len(idx))
    for s in range(0, len(X), chunk):
        out = X[s:s + chunk]
        for i, layer in enumerate(network.layers):
            out = layer.forward(out, False)
            if i in idx:
                k = idx.index(i)
                zeros[k] += out.size - np.count_nonzero(out)
                total[k] += out.size
    return [float(z / t) for z, t in zip(zeros, total)]


class TrainHooks:
    """The trainer's forward and backward of a training step with the penalty and noise above.

    With every option off, :meth:`forward` and :meth:`backward` are the network's own (bit for bit).
    """

    def __init__(self, network, activation_l1: float = 0.0, input_noise: float = 0.0, hidden_noise: float = 0.0,
                 weight_noise: float = 0.0, record_sparsity: bool = False):
        self.network = network
        self.activation_l1 = _nonneg(activation_l1, "activation_l1")
        self.input_noise = _nonneg(input_noise, "input_noise")
        self.hidden_noise = _nonneg(hidden_noise, "hidden_noise")
        self.weight_noise = _nonneg(weight_noise, "weight_noise")
        if not isinstance(record_sparsity, (bool, np.bool_)):
            raise TypeError(f"record_sparsity must be True or False, got {record_sparsity!r}")
        self.record_sparsity = bool(record_sparsity)
        self.hidden = hidden_layers(network)
        if (self.activation_l1 or self.hidden_noise) and not self.hidden:
            raise ValueError("activation_l1 and hidden_noise need a hidden layer with a non-linear activation")
        self.records = self.record_sparsity or self.activation_l1 > 0
        self.active = self.records or self.input_noise > 0 or self.hidden_noise > 0 or self.weight_noise > 0
        self._acts: dict = {}
        self._saved = None
        self._zeros = np.zeros(len(self.hidden))
        self._total = np.zeros(len(self.hidden))
        self._pen = [0.0, 0]     # penalty sum (times rows), rows

    # -- a step -----------------------------------------------------------------------------------------
    def forward(self, xb, seed: int, step: int):
        net = self.network
        if not self.active:
            return net._forward(xb, True)
        if self.weight_noise > 0:
            self._perturb_weights(seed, step)
        out = xb
        if self.input_noise > 0:
            out = xb + streams.normal(seed, (step, _INPUT, 0), xb.shape, xb.dtype, std=self.input_noise)
        rows = out.shape[0]
        pen = 0.0
        for i, layer in enumerate(net.layers):
            out = layer.forward(out, True)
            if i in self.hidden:
                a = out
                self._acts[i] = a
                if self.records:
                    k = self.hidden.index(i)
                    nz = np.count_nonzero(a)
                    self._zeros[k] += a.size - nz
                    self._total[k] += a.size
                    if self.activation_l1:
                        pen += self.activation_l1 * float(np.abs(a, dtype=np.float64).sum()) / rows
                if self.hidden_noise > 0:
                    out = a + streams.normal(seed, (step, _HIDDEN, i), a.shape, a.dtype, std=self.hidden_noise)
        if self.records:
            self._pen[0] += pen * rows
            self._pen[1] += rows
        return out

    def backward(self, dout):
        net = self.network
        if self.activation_l1 == 0:
            net.backward(dout)
        else:
            g = dout
            for i in range(len(net.layers) - 1, -1, -1):
                a = self._acts.get(i)
                if a is not None:
                    g = g + a.dtype.type(self.activation_l1 / a.shape[0]) * np.sign(a)
                g = net.layers[i].backward(g, need_dx=i > 0)
        self.restore_weights()

    def _perturb_weights(self, seed, step):
        self._saved = []
        for j, p in enumerate(self.network.parameters()):
            if p.regularize and not p.frozen:
                self._saved.append((p, p.value.copy()))
                p.value += streams.normal(seed, (step, _WEIGHT, j), p.value.shape, p.value.dtype,
                                          std=self.weight_noise)

    def restore_weights(self):
        """Put back the clean weights after a step with weight noise (idempotent)."""
        if self._saved:
            for p, v in self._saved:
                np.copyto(p.value, v)
        self._saved = None

    # -- records and state ------------------------------------------------------------------------------
    def end_epoch(self) -> dict:
        if not self.records:
            return {}
        rec = {"zero_fraction": [float(z / t) if t else None for z, t in zip(self._zeros, self._total)],
               "activation_penalty": self._pen[0] / self._pen[1] if self._pen[1] else None}
        self._zeros[:] = 0
        self._total[:] = 0
        self._pen = [0.0, 0]
        return rec

    def state(self):
        """The epoch's running sums, for checkpoints (None when nothing is recorded)."""
        if not self.records:
            return None
        return {"zeros": self._zeros.tolist(), "total": self._total.tolist(), "penalty": list(self._pen)}

    def load_state(self, st):
        if not st or not self.records:
            return
        self._zeros[:] = st["zeros"]
        self._total[:] = st["total"]
        self._pen = [float(st["penalty"][0]), int(st["penalty"][1])]

    def config(self) -> dict:
        """``{"hooks": {...}}`` when any option is on, else {} (the trainer's config is unchanged)."""
        if not self.active:
            return {}
        return {"hooks": {k: getattr(self, k) for k in _KEYS}}

    @staticmethod
    def kwargs_from_config(trainer_config: dict) -> dict:
        hooks = trainer_config.get("hooks") or {}
        return {k: hooks[k] for k in _KEYS if k in hooks}

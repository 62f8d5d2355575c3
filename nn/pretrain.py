"""Greedy layer-wise unsupervised pretraining (Hinton & Salakhutdinov 2006; Bengio et al. 2007).

Each hidden layer in turn, from the input up, is trained as an autoencoder on the outputs of the layers
below it, which are frozen (their outputs are computed once, in test mode, and never change while the
layer above learns):

    h_l = phi(W_l h_(l-1) + b_l)        (the network's own layer l: the encoder)
    r   = V_l h_l + c_l                 (a fresh linear decoder, discarded afterwards)
    minimize  mean |r - h_(l-1)|^2 / d  over W_l, b_l, V_l, c_l     (mean squared reconstruction error)

Greedy: each layer is optimized on its own, never jointly; unsupervised: no labels are used. The output
layer is left as it was drawn. Afterwards the whole network is fine-tuned with labels by an ordinary
:class:`~varprop.nn.trainer.Trainer`: pretraining only sets the starting weights, the role the lectures
give it before better initializations (He, Xavier) replaced it.

A hidden layer is a block that starts at a dense (or residual) layer and runs up to the next one, so its
batch norm, its separate activation and its dropout belong to the encoder. Layer l's autoencoder is
trained with seed (seed, l) and its decoder is drawn from that seed too, so a pretrained network is a
pure function of its initial weights, the data and ``seed``.

>>> import numpy as np
>>> from varprop.nn.network import build_mlp
>>> X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
>>> net = build_mlp(4, [8, 8], 3, activation="tanh", seed=0)
>>> records = pretrain(net, X, epochs=2, batch_size=16)
>>> [r["layer"] for r in records], len(records[0]["loss"])
([1, 2], 2)
"""
from __future__ import annotations

import numpy as np

from varprop.nn.init.checks import nonneg_int as _nonneg_int
from varprop.nn.init.checks import positive_int as _posint
from varprop.nn.layers import Dense, Residual

__all__ = ["pretrain", "hidden_blocks"]

_EVAL_CHUNK = 1024


def hidden_blocks(network) -> list[list]:
    """The hidden layers of ``network`` as lists of its layer objects: each starts at a dense or residual
    layer and runs up to the next one; the last dense layer (the output) is not one of them."""
    starts = [i for i, layer in enumerate(network.layers) if isinstance(layer, (Dense, Residual))]
    if not starts or not isinstance(network.layers[starts[-1]], Dense):
        raise ValueError("pretraining needs a network whose last dense layer is its output layer")
    bounds = starts + [len(network.layers)]
    return [network.layers[a:b] for a, b in zip(bounds[:-2], bounds[1:-1])]


def _layer_seed(seed: int, layer: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(layer), 7]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _outputs(layers, X, dtype):
    """The test-mode outputs of ``layers`` applied in order to ``X`` (chunked)."""
    out = None
    for s in range(0, len(X), _EVAL_CHUNK):
        h = X[s:s + _EVAL_CHUNK]
        for layer in layers:
            h = layer.forward(h, False)
        if out is None:
            out = np.empty((len(X), h.shape[1]), dtype)
        out[s:s + _EVAL_CHUNK] = h
    return out


def pretrain(network, X, epochs: int, optimizer="adam", lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
             progress=False, callback=None) -> list[dict]:
    """Pretrain the hidden layers of ``network`` in place, greedily, as autoencoders on ``X`` (no labels).

    ``epochs`` per layer (0 does nothing); ``optimizer`` and ``lr`` as :func:`varprop.nn.optim.get_optimizer`
    takes them; ``callback(record)`` after each layer. Returns one record per hidden layer: ``layer``
    (1-based), ``width``, ``loss`` (the mean squared reconstruction error of each epoch, a running mean in
    training mode), ``final_mse`` (test mode, after the last epoch), ``diverged`` and ``message``. A layer
    whose autoencoder diverges keeps its last good weights and pretraining goes on with the next.
    Parameters that were frozen before stay frozen; the network's parameter names are restored afterwards.
    """
    from varprop.nn.network import Network
    from varprop.nn.optim import get_optimizer
    from varprop.nn.trainer import Trainer

    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)):
        raise TypeError(f"epochs must be an integer, got {type(epochs).__name__}")
    epochs = _nonneg_int(epochs, "epochs")
    if not isinstance(network, Network):
        raise TypeError(f"network must be a Network, got {type(network).__name__}")
    batch_size = _posint(batch_size, "batch_size")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != network.n_in:
        raise ValueError(f"X must have shape (samples, {network.n_in}), got {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X is empty")
    if X.dtype.kind not in "fiub":
        raise TypeError(f"X must be numeric, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=network.dtype)
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity")
    get_optimizer(optimizer, lr=lr)          # refuse a bad optimizer or rate before any work
    blocks = hidden_blocks(network)
    if epochs == 0:
        return []
    records = []
    H = X
    try:
        for l, block in enumerate(blocks, start=1):
            width = _outputs(block, H[:1], network.dtype).shape[1]
            s = _layer_seed(seed, l)
            decoder = Dense(width, H.shape[1], "linear", init="lecun_normal", seed=s, dtype=network.dtype)
            auto = Network(list(block) + [decoder], seed=s, dtype=network.dtype)
            trainer = Trainer(auto, "mse", get_optimizer(optimizer, lr=lr), batch_size=batch_size, epochs=epochs,
                              seed=s, progress=progress)
            hist = trainer.fit(H, H)
            mse, _ = trainer._evaluate(H, H)
            rec = {"layer": l, "width": int(width), "loss": [float(e["train_loss"]) for e in hist.epochs],
                   "final_mse": float(mse), "diverged": bool(hist.diverged), "message": hist.message}
            records.append(rec)
            if callback is not None:
                callback(dict(rec))
            H = _outputs(block, H, network.dtype)      # the frozen input of the next layer
    finally:
        network._index()        # the temporary autoencoders renamed and re-clocked the shared layers
    return records

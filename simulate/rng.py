"""Gaussian fills for the engines: the counter-based ziggurat of :mod:`varprop.nn.init.ziggurat`.

Slot i of a fill depends on ``(key, i)`` alone (one hash and one multiply for about 99% of slots), so it
keeps the property of :mod:`varprop.streams` that a seed gives the same bits on any number of threads,
at several times the speed of the Box-Muller stream (the dense engine is bound by this fill).

>>> import numpy as np
>>> a = normal(3, (0, 1, 0), (2, 5)); b = normal(3, (0, 1, 0), (2, 5))
>>> bool(np.array_equal(a, b)), a.dtype.name
(True, 'float64')
"""
from __future__ import annotations

import numpy as np
from numba import njit

from varprop.streams import key as stream_key
from varprop.streams import stream_key as _stream_key

__all__ = ["fill_normal", "normal", "trial_keys"]


def fill_normal(k, out: np.ndarray, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """``out.flat[i] = mean + std * z_i`` with z_i the i-th normal of the stream ``k`` (C-contiguous out)."""
    from varprop.nn.init.ziggurat import TABLE_R, TABLE_X
    from varprop.nn.init.ziggurat import fill_normal as zig
    zig(np.uint64(k), out, float(mean), float(std), TABLE_X, TABLE_R)
    return out


def normal(seed: int, ids: tuple, shape, dtype=np.float64, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """An array of normals from the stream ``(seed, *ids)``."""
    return fill_normal(stream_key(seed, *ids), np.empty(shape, dtype=dtype), mean, std)


def trial_keys(seed: int, trial: int, layers: int, purposes: int) -> np.ndarray:
    """``out[layer, purpose]`` = ``key(seed, trial, layer, purpose)`` for every layer and purpose of a
    trial, in one call (a trial needs a few per layer; one Python call each cost a tenth of a trial).

    >>> int(trial_keys(3, 1, 4, 2)[2, 1]) == int(stream_key(3, 1, 2, 1))
    True
    """
    return _trial_keys(np.uint64(seed), np.uint64(trial), int(layers), int(purposes))


@njit(cache=True, nogil=True)
def _trial_keys(seed, trial, layers, purposes):
    out = np.empty((layers, purposes), dtype=np.uint64)
    for layer in range(layers):
        for p in range(purposes):
            out[layer, p] = _stream_key(seed, trial, np.uint64(layer), np.uint64(p))
    return out

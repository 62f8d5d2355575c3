"""An interim stand-in for :func:`varprop.nn.init.get`: the Gaussian and uniform fan-scaling presets.

Used only while :mod:`varprop.nn.init` is absent from the tree (see ``weights._initializer``).
Delete this file once it lands.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_PRESETS = {  # name: (scale, mode, distribution); Var(w) = scale / fan(mode)
    "he_normal": (2.0, "fan_in", "normal"), "kaiming_normal": (2.0, "fan_in", "normal"),
    "he_uniform": (2.0, "fan_in", "uniform"), "kaiming_uniform": (2.0, "fan_in", "uniform"),
    "xavier_normal": (1.0, "fan_avg", "normal"), "glorot_normal": (1.0, "fan_avg", "normal"),
    "xavier_uniform": (1.0, "fan_avg", "uniform"), "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "lecun_normal": (1.0, "fan_in", "normal"), "lecun_uniform": (1.0, "fan_in", "uniform"),
}


@dataclass(frozen=True)
class _Init:
    name: str
    scale: float
    mode: str
    distribution: str

    def variance(self, shape):
        fan_out, fan_in = shape[0], shape[1]
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        return self.scale / fan

    def mean(self, shape):
        return 0.0

    def __call__(self, shape, rng=None, dtype=np.float32):
        rng = np.random.default_rng(rng)
        sd = math.sqrt(self.variance(shape))
        if self.distribution == "normal":
            return rng.normal(0.0, sd, shape).astype(dtype)
        return rng.uniform(-sd * math.sqrt(3), sd * math.sqrt(3), shape).astype(dtype)


def get_initializer(name: str) -> _Init:
    key = name.strip().lower()
    if key not in _PRESETS:
        raise ValueError(f"unknown initializer {name!r}; known: {', '.join(_PRESETS)}")
    return _Init(key, *_PRESETS[key])

"""Learning-rate schedules: a factor of the base rate as a function of training progress.

``schedule(t, total)`` takes t = training progress in epochs (the trainer passes the middle of each
step, (step + 1/2) / steps_per_epoch, so a warmup never starts at 0) and the total number of epochs,
and returns the factor lr(t) / lr_0:

* step(step_size, gamma): gamma ** floor(t / step_size)            (decay by gamma every step_size epochs)
* cosine(min_factor): m + (1 - m) (1 + cos(pi t / total)) / 2        (Loshchilov & Hutter 2017, one cycle)
* warmup(epochs, then): t / epochs for t < epochs, then ``then`` (linear warmup, Goyal et al. 2017)
* constant: 1

>>> s = get_schedule("cosine")
>>> s(0, 10), round(s(5, 10), 6), round(s(10, 10), 6)
(1.0, 0.5, 0.0)
"""
from __future__ import annotations

import math

__all__ = ["Schedule", "Constant", "StepDecay", "Cosine", "Warmup", "get_schedule", "schedule_from_config"]


class Schedule:
    name = ""

    def __call__(self, t: float, total: float) -> float:
        raise NotImplementedError

    def config(self) -> dict:
        return {"name": self.name}


class Constant(Schedule):
    name = "constant"

    def __call__(self, t, total):
        return 1.0


class StepDecay(Schedule):
    name = "step"

    def __init__(self, step_size: float = 10, gamma: float = 0.1):
        for v, what in ((step_size, "step_size"), (gamma, "gamma")):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise TypeError(f"step schedule: {what} must be a finite number, got {v!r}")
        if not step_size > 0:
            raise ValueError(f"step schedule: step_size must be positive, got {step_size}")
        if not 0 < gamma <= 1:
            raise ValueError(f"step schedule: gamma must be in (0, 1], got {gamma}")
        self.step_size, self.gamma = float(step_size), float(gamma)

    def __call__(self, t, total):
        return self.gamma ** math.floor(t / self.step_size + 1e-9)

    def config(self):
        return {"name": self.name, "step_size": self.step_size, "gamma": self.gamma}


class Cosine(Schedule):
    name = "cosine"

    def __init__(self, min_factor: float = 0.0):
        if not 0 <= min_factor <= 1:
            raise ValueError(f"cosine schedule: min_factor must be in [0, 1], got {min_factor}")
        self.min_factor = float(min_factor)

    def __call__(self, t, total):
        frac = min(max(t / total, 0.0), 1.0) if total > 0 else 1.0
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * frac))

    def config(self):
        return {"name": self.name, "min_factor": self.min_factor}


class Warmup(Schedule):
    """Linear warmup over ``epochs``, then the schedule ``then`` on the remaining time."""
    name = "warmup"

    def __init__(self, epochs: float = 1, then: Schedule | str | dict | None = None):
        if not epochs > 0:
            raise ValueError(f"warmup: epochs must be positive, got {epochs}")
        self.epochs = float(epochs)
        self.then = _coerce(then)

    def __call__(self, t, total):
        if t < self.epochs:
            return t / self.epochs
        return self.then(t - self.epochs, max(total - self.epochs, 0.0))

    def config(self):
        return {"name": self.name, "epochs": self.epochs, "then": self.then.config()}


SCHEDULES = {"constant": Constant, "step": StepDecay, "cosine": Cosine, "warmup": Warmup}


def _coerce(s) -> Schedule:
    if s is None:
        return Constant()
    if isinstance(s, Schedule):
        return s
    if isinstance(s, str):
        return get_schedule(s)
    if isinstance(s, dict):
        return schedule_from_config(s)
    raise TypeError(f"a schedule is a name, a dict or a Schedule, got {type(s).__name__}")


def get_schedule(name, **kwargs) -> Schedule:
    """A schedule by name: "constant", "step", "cosine" or "warmup" (a Schedule is returned unchanged)."""
    from varprop.names import key_of
    if isinstance(name, Schedule):
        return name
    return SCHEDULES[key_of(name, SCHEDULES, "schedule")](**kwargs)


def schedule_from_config(cfg: dict) -> Schedule:
    cfg = dict(cfg)
    return get_schedule(cfg.pop("name"), **cfg)

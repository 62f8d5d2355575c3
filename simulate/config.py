"""A validated simulation configuration, and the memory and work estimates made before anything is allocated.

Every check raises ValueError or TypeError with one line that names the problem, so the command line can
print it and exit 2.

Ceilings (each refused with the option and the number): widths up to ``MAX_WIDTH`` (2^24), at most
``MAX_LAYERS`` (10 000) weight layers, ``MAX_TRIALS`` (10^6) trials, ``MAX_BINS`` (10^6) histogram bins;
the memory of one trial (:func:`memory_estimate`) within the memory available to the process
(:func:`available_memory`); and the work of the whole run (:func:`time_estimate`, a lower bound from the
configuration's multiply-adds, random numbers and per-layer overhead on a fast core) at most
``MAX_HOURS`` (24) hours.

>>> cfg = Config.build(widths="4096x7", batch=16, activation="tanh", init="normal(0, 0.01)", trials=20)
>>> cfg.widths[:2], cfg.depth, cfg.engine
((4096, 4096), 6, 'gaussian')
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from varprop.memory import available_memory

from .weights import WeightLaw, resolve

__all__ = ["Config", "parse_widths", "memory_estimate", "available_memory", "time_estimate", "check_work",
           "gaussian_is_cheaper",
           "ENGINES", "MAX_WIDTH", "MAX_LAYERS", "MAX_TRIALS", "MAX_BINS", "MAX_HOURS"]

ENGINES = ("auto", "dense", "gaussian")
MAX_WIDTH = 1 << 24
MAX_LAYERS = 10_000
MAX_TRIALS = 1_000_000
MAX_BINS = 1_000_000
MAX_HOURS = 24.0


def parse_widths(widths) -> tuple[int, ...]:
    """``"4096x7"`` (seven widths of 4096: six weight layers), ``"784,256,10"`` or a sequence of ints.

    The parsing is the theory's (:func:`varprop.derive.mean_field.parse_widths`); the simulator adds a cap
    on the width so that a typo cannot ask for an absurd allocation.
    """
    from varprop.derive.mean_field import parse_widths as parse
    out = parse(widths, max_layers=MAX_LAYERS)
    for w in out:
        if w > MAX_WIDTH:
            raise ValueError(f"widths {widths!r}: width {w} exceeds {MAX_WIDTH}")
    return out


def _int(name, v, low):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {v!r}")
    if v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    return int(v)


def _float(name, v, low, high=math.inf, high_open=False):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v) or v < low or v > high or (high_open and v == high):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"{name} must be a finite number in {bound}, got {v}")
    return v


@dataclass(frozen=True, eq=False)
class Config:
    """What to simulate. Build it with :meth:`Config.build`, which validates every field."""
    widths: tuple[int, ...]
    batch: int
    act: object                    # a registry Bound
    law: WeightLaw
    trials: int
    seed: int
    engine: str                    # "dense" or "gaussian" (auto already resolved)
    sigma_b2: float = 0.0
    dropout: float = 0.0           # probability of dropping a unit (keep = 1 - dropout)
    batchnorm: bool = False
    residual: bool = False
    inputs: np.ndarray | None = field(default=None, repr=False)
    histograms: bool = False
    bins: int = 60
    hist_range: float | None = None   # activation histograms cover [-R, R]; None: each layer's own data range
    hist_edges: dict | None = field(default=None, repr=False)   # {"act"|"grad": (L, bins + 1)}, see histograms
    dtype: str = "float32"         # the dense engine's weights and products (the Gaussian engine is float64)
    backward: bool = True
    # the arguments of build() that made it (engine resolved): what a worker process rebuilds it from
    spec: dict | None = field(default=None, repr=False)

    @classmethod
    def build(cls, widths, batch=16, activation="relu", init="he_normal", trials=20, seed=0, engine="auto",
              sigma_b2=0.0, dropout=0.0, batchnorm=False, residual=False, inputs=None, params=None,
              histograms=False, bins=60, hist_range=None, dtype="float32", backward=True,
              init_params=None) -> "Config":
        from varprop.activations import get
        widths = parse_widths(widths)
        batch = _int("batch", batch, 1)
        trials = _int("trials", trials, 1)
        if trials > MAX_TRIALS:
            raise ValueError(f"trials must be at most {MAX_TRIALS}, got {trials}")
        seed = _int("seed", seed, 0)
        if seed >= 2 ** 63:
            raise ValueError(f"seed must be < 2**63, got {seed}")
        act = get(activation, **dict(params or {}))
        law = resolve(init, init_params)
        sigma_b2 = _float("sigma_b2", sigma_b2, 0.0)
        dropout = _float("dropout (the drop probability)", dropout, 0.0, 1.0, high_open=True)
        bins = _int("bins", bins, 1)
        if bins > MAX_BINS:
            raise ValueError(f"bins must be at most {MAX_BINS}, got {bins}")
        if hist_range is not None:
            hist_range = _float("hist_range", hist_range, 0.0)
            if hist_range == 0.0:
                raise ValueError("hist_range must be > 0")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if engine == "gaussian" and not law.gaussian:
            raise ValueError(f"the gaussian engine needs Gaussian weights; init {law.text!r} is {law.kind} "
                             "(use --engine dense)")
        if engine == "auto":
            engine = "gaussian" if law.gaussian and gaussian_is_cheaper(widths, batch, act.arity) else "dense"
        if inputs is not None:
            if np.iscomplexobj(inputs):
                raise TypeError("inputs are complex: the network takes real values")
            inputs = np.asarray(inputs, dtype=np.float64)
            if inputs.ndim != 2 or inputs.shape[1] != widths[0]:
                raise ValueError(f"inputs must have shape (batch, {widths[0]}), got {inputs.shape}")
            if inputs.shape[0] != batch:
                raise ValueError(f"inputs have {inputs.shape[0]} rows but batch is {batch}")
            if not np.isfinite(inputs).all():
                raise ValueError("inputs contain NaN or infinity")
            with np.errstate(over="ignore"):
                square = float(np.mean(np.square(inputs))) if inputs.size else 0.0
            top = float(np.max(np.abs(inputs))) if inputs.size else 0.0
            if not math.isfinite(square):
                raise ValueError(f"inputs: their mean square overflows float64 (largest |value| {top:.3g}); "
                                 "rescale them")
            if engine == "dense" and dtype == "float32" and top > float(np.finfo(np.float32).max):
                raise ValueError(f"inputs: values up to {top:.3g} do not fit in float32; rescale them or use "
                                 "--dtype float64")
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            v = law.variance(fan_in, fan_out * act.arity)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"init {law.text!r} gives variance {v} for a {fan_out}x{fan_in} layer")
        spec = dict(widths=widths, batch=batch, **_activation_spec(act), init=init, trials=trials, seed=seed,
                    engine=engine, sigma_b2=sigma_b2, dropout=dropout, batchnorm=bool(batchnorm),
                    residual=bool(residual), inputs=inputs, histograms=bool(histograms),
                    bins=bins, hist_range=hist_range, dtype=dtype, backward=bool(backward),
                    init_params=None if init_params is None else dict(init_params))
        return cls(widths=widths, batch=batch, act=act, law=law, trials=trials, seed=seed, engine=engine,
                   sigma_b2=sigma_b2, dropout=dropout, batchnorm=bool(batchnorm), residual=bool(residual),
                   inputs=inputs, histograms=bool(histograms), bins=bins, hist_range=hist_range, dtype=dtype,
                   backward=bool(backward), spec=spec)

    @property
    def depth(self) -> int:
        """The number of weight layers L (``len(widths) - 1``)."""
        return len(self.widths) - 1

    @property
    def keep(self) -> float:
        return 1.0 - self.dropout

    def shape(self, layer: int) -> tuple[int, int]:
        """The weight matrix of layer ``layer`` (1-based): ``(k n_l, n_{l-1})``, torch layout."""
        return self.act.arity * self.widths[layer], self.widths[layer - 1]

    def weight_variance(self, layer: int) -> float:
        rows, cols = self.shape(layer)
        return self.law.variance(cols, rows)

    def weight_mean(self, layer: int) -> float:
        rows, cols = self.shape(layer)
        return self.law.mean(cols, rows)

    def is_residual(self, layer: int) -> bool:
        return self.residual and layer >= 2 and self.widths[layer] == self.widths[layer - 1]

    def input_second_moment(self) -> float:
        return 1.0 if self.inputs is None else float(np.mean(self.inputs ** 2))

    def summary(self) -> dict:
        """The configuration as JSON-ready values."""
        return {"widths": list(self.widths), "batch": self.batch, "activation": self.act.label(),
                "init": self.law.text, "trials": self.trials, "seed": self.seed, "engine": self.engine,
                "sigma_b2": self.sigma_b2, "dropout": self.dropout, "batchnorm": self.batchnorm,
                "residual": self.residual, "inputs": "standard normal" if self.inputs is None else "given",
                "dtype": self.dtype if self.engine == "dense" else "float64", "backward": self.backward}


def _activation_spec(act) -> dict:
    """``activation`` and ``params`` that rebuild the bound activation ``act``: its registry name and its
    parameters (exact fractions) when it is a registry entry, else the object itself."""
    from varprop.activations import lookup
    try:
        if lookup(act.name) is act.act:
            return {"activation": act.name, "params": dict(act.params)}
    except ValueError:
        pass
    return {"activation": act, "params": None}


def _memory_parts(cfg: Config) -> tuple[dict, bool]:
    """Peak bytes of one trial by what drives them, and whether the dense engine keeps every W."""
    b = cfg.batch
    acts = 0
    for layer in range(1, cfg.depth + 1):
        rows, cols = cfg.shape(layer)
        acts += 8 * b * (cols + 3 * rows)          # the layer input, h, phi'(h) and the output kept for backward
    widest = max(cfg.widths) * cfg.act.arity
    # histograms: a trial's counts, the running sum and its copy (int64), the edges and np.histogram's
    # sorted copy of one layer's values
    hist = 8 * (4 * 2 * cfg.depth * cfg.bins + 2 * (cfg.bins + 1) + 2 * b * widest) if cfg.histograms else 0
    if cfg.engine == "gaussian":
        work = 8 * 4 * b * (widest + 1) + 8 * 4 * b * b
        return {"acts": acts + work, "weights": 0, "hist": hist}, False
    item = np.dtype(cfg.dtype).itemsize
    all_w = item * sum(r * c for r, c in map(cfg.shape, range(1, cfg.depth + 1)))
    one_w = item * max(r * c for r, c in map(cfg.shape, range(1, cfg.depth + 1)))
    avail = available_memory()
    keep = cfg.backward and (avail is None or acts + all_w < avail // 2)
    return {"acts": acts + 8 * 4 * b * widest, "weights": all_w if keep else one_w, "hist": hist}, keep


def memory_estimate(cfg: Config) -> tuple[int, bool]:
    """``(bytes, keep_weights)``: peak bytes of one trial, and whether the dense engine keeps every W for
    the backward pass (else it regenerates each W from its stream, trading time for memory)."""
    parts, keep = _memory_parts(cfg)
    return sum(parts.values()), keep


_WHY = {"acts": ("the activations kept for the backward pass", "use smaller widths or batch"),
        "weights": ("the dense engine's weight matrices", "use smaller widths or the gaussian engine (Gaussian "
                    "weights)"),
        "hist": ("the histograms", "use fewer bins")}


def check_memory(cfg: Config) -> tuple[int, bool]:
    """The estimate, or a ValueError naming what needs the memory when it exceeds the memory available."""
    parts, keep = _memory_parts(cfg)
    need = sum(parts.values())
    avail = available_memory()
    if avail is not None and need > avail:
        top = max(parts, key=parts.get)
        what, advice = _WHY[top]
        size = {"acts": f"widths {_widths_text(cfg.widths)}, batch {cfg.batch}",
                "weights": f"widths {_widths_text(cfg.widths)}", "hist": f"bins {cfg.bins}"}[top]
        raise ValueError(f"this run needs about {_gib(need)} ({size}: {what} take {_gib(parts[top])}) but only "
                         f"{_gib(avail)} is available; {advice}")
    return need, keep


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.3g} GiB"


def _widths_text(ws) -> str:
    return f"{ws[0]}x{len(ws)}" if len(set(ws)) == 1 else ",".join(map(str, ws)) if len(ws) <= 6 else \
        f"{ws[0]},...,{ws[-1]} ({len(ws)} widths)"


# a fast core's rates, so that the estimate is a lower bound and a refusal is certain
_FLOPS = 5e10            # multiply-adds per second
_NORMALS = 2.5e9         # random numbers per second (the engines' fill: 1.1e9 on one core here)
_LAYER_S = 1e-4          # Python, LAPACK and kernel-launch overhead of one layer forward and backward
_TRIAL_S = 1e-4


def time_estimate(cfg: Config) -> float:
    """A lower bound on the run's seconds on one core: its multiply-adds, random numbers and per-layer
    overhead (the dense engine: B n_in n_out twice and n_in n_out normals per layer; the Gaussian one:
    about 3 B^2 (n_in + n_out) and B (n_in + n_out) normals)."""
    b = cfg.batch
    flops = normals = 0.0
    for layer in range(1, cfg.depth + 1):
        rows, cols = cfg.shape(layer)
        if cfg.engine == "gaussian":
            flops += 3.0 * b * b * (rows + cols) + 4.0 * b ** 3
            normals += b * (rows + cols)
        else:
            flops += 2.0 * b * rows * cols + 2.0 * b * b * (rows + cols)
            normals += rows * cols
    per_trial = flops / _FLOPS + normals / _NORMALS + cfg.depth * _LAYER_S + _TRIAL_S
    return cfg.trials * per_trial


# Per-layer costs (forward and backward) of the two engines, fitted to `python benchmarks/simulate.py
# --sections 5` on a 2-core machine: the Gaussian engine pays a fixed ~0.4 ms a layer (its Gram products,
# two Cholesky factors, LAPACK and Python calls) and O(B^2 n); the dense one O(n^2) normals and O(B n^2)
# multiply-adds. Only their ratio matters: the crossover is what the fit reproduces (dense faster at every
# measured batch for n <= 256, Gaussian at n = 512 for B = 16 with a tie at B = 64, and at n = 1024
# between B = 128 and 256; the fill's normals cost 1 ns each on one core).
_DENSE_LAYER_S, _DENSE_NORMAL_S, _DENSE_MAC_S = 8e-5, 1e-9, 2.5e-11
_GAUSS_LAYER_S, _GAUSS_MAC_S, _GAUSS_NORMAL_S = 4e-4, 1.5e-10, 1e-9


def gaussian_is_cheaper(widths, batch: int, arity: int = 1) -> bool:
    """True when the Gaussian engine is expected to run a trial of these widths and batch faster than the
    dense one (both give the same law for Gaussian weights): wide layers and a small batch.

    >>> gaussian_is_cheaper([4096] * 7, 16), gaussian_is_cheaper([256] * 101, 64)
    (True, False)
    """
    b = float(batch)
    dense = gauss = 0.0
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        rows, cols = arity * n_out, n_in
        dense += _DENSE_LAYER_S + rows * cols * _DENSE_NORMAL_S + 2 * b * rows * cols * _DENSE_MAC_S
        gauss += (_GAUSS_LAYER_S + b * b * (rows + cols) * _GAUSS_MAC_S + 4 * b ** 3 * _GAUSS_MAC_S
                  + b * (rows + cols) * _GAUSS_NORMAL_S)
    return gauss < dense


def check_work(cfg: Config) -> float:
    """The time estimate, or a ValueError when even that lower bound exceeds ``MAX_HOURS``."""
    est = time_estimate(cfg)
    if est > MAX_HOURS * 3600:
        raise ValueError(f"this run would take at least {est / 3600:.3g} hours ({cfg.trials} trials of "
                         f"{cfg.depth} layers, widths {_widths_text(cfg.widths)}, batch {cfg.batch}); the "
                         f"ceiling is {MAX_HOURS:g} hours: use fewer trials, layers or a smaller batch")
    return est

"""What the explorer's panels compute, without any web framework: library calls and the checks around them.

Every number the page shows comes from a public library function called here, as a user would call it:
:func:`varprop.simulate.run` (the signal at initialization and its mean-field theory),
:class:`varprop.nn.Trainer` on a :func:`varprop.nn.build_mlp` network (training on a 2-D toy problem),
:func:`varprop.derive.check.check` (``varprop check``) and :func:`varprop.derive.gains.gain_table`
(``varprop gain all``). Inputs go through the same validation as the command line (``Config.build``,
``parse_params``, the expression parser); a bad input raises ValueError or TypeError with one line.

>>> s = SignalSettings(width=64, depth=3, batch=8, trials=2, activation="tanh", init="xavier_normal")
>>> d = signal_data(s)
>>> d["engine"], len(d["act_std"]["layer"])
('gaussian', 3)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["SignalSettings", "signal_config", "signal_work", "signal_data", "LIVE_REFERENCE", "simulate_command",
           "TOY_PROBLEMS", "toy_problem", "TrainSettings", "TrainingSession", "TRAIN_INITS", "train_init_options",
           "check_lines", "gain_rows", "split_params", "MAX_PANELS"]

MAX_PANELS = 8          # layers with a histogram (evenly spaced, the first and the last always among them)
HIST_BINS = 40


# ------------------------------------------------------------------------------------------------------
# 1. the signal at initialization
# ------------------------------------------------------------------------------------------------------

def split_params(text: str) -> dict:
    """``"negative_slope=0.2, alpha=1"`` -> ``{"negative_slope": "0.2", "alpha": "1"}`` (the CLI's
    ``--param`` items, comma separated; values are checked by the activation when it is bound)."""
    from varprop.activations import parse_params
    if not isinstance(text, str):
        raise TypeError(f"activation parameters must be text, got {type(text).__name__}")
    items = [t.strip() for t in text.split(",") if t.strip()]
    return parse_params(items)


@dataclass(frozen=True)
class SignalSettings:
    """The controls of the signal panel: ``depth`` weight layers of ``width`` units (input width included),
    so the simulated widths are ``[width] * (depth + 1)``, as ``varprop simulate --widths WIDTHx(DEPTH+1)``."""
    width: int = 1024
    depth: int = 10
    batch: int = 16
    trials: int = 8
    activation: str = "tanh"
    params: dict = field(default_factory=dict)
    init: str = "xavier_normal"
    sigma_b2: float = 0.0
    dropout: float = 0.0
    batchnorm: bool = False
    residual: bool = False
    seed: int = 0


# The largest request the page recomputes live: the work of this configuration on the same engine. The
# gaussian engine costs O(n B^2) per layer and trial, the dense one O(n^2 B). About half of the time of
# this reference goes to the per-layer histograms (np.histogram with an array of edges sorts the data).
LIVE_REFERENCE = SignalSettings(width=1024, depth=10, batch=16, trials=8)

def signal_config(s: SignalSettings):
    """The validated :class:`varprop.simulate.Config` for these settings (ValueError/TypeError if bad)."""
    from varprop.activations import get
    from varprop.simulate.config import Config
    for name in ("width", "depth"):
        v = getattr(s, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    act = get(s.activation, **dict(s.params))
    return Config.build([int(s.width)] * (int(s.depth) + 1), batch=s.batch, activation=act, init=s.init,
                        trials=s.trials, seed=s.seed, engine="auto", sigma_b2=s.sigma_b2, dropout=s.dropout,
                        batchnorm=s.batchnorm, residual=s.residual, histograms=True, bins=HIST_BINS,
                        hist_range=None)      # each layer's bins span its own values, as `varprop simulate`


def signal_work(cfg) -> float:
    """Multiply-adds of one run, by the engine's cost: trials x sum over layers of n_l B^2 (gaussian) or
    n_l n_(l-1) B (dense)."""
    b = cfg.batch
    total = 0.0
    for layer in range(1, cfg.depth + 1):
        rows, cols = cfg.shape(layer)
        total += rows * b * (b + 1) if cfg.engine == "gaussian" else rows * cols * b
    return cfg.trials * total


def _reference_work(engine: str) -> float:
    ref = LIVE_REFERENCE
    cfg = signal_config(replace(ref, init="he_normal" if engine == "gaussian" else "he_uniform"))
    return signal_work(cfg)


def simulate_command(s: SignalSettings) -> str:
    """The ``varprop simulate`` line that runs these settings from the command line."""
    parts = [f"varprop simulate --widths {s.width}x{s.depth + 1} --batch {s.batch} --trials {s.trials}",
             f"--activation {s.activation}"]
    parts += [f"--param {k}={v}" for k, v in dict(s.params).items()]
    from varprop.names import is_init_name
    parts.append(f"--init {s.init}" if is_init_name(s.init) else f"--init '{s.init}'")
    if s.sigma_b2:
        parts.append(f"--sigma-b2 {s.sigma_b2:g}")
    if s.dropout:
        parts.append(f"--dropout {s.dropout:g}")
    if s.batchnorm:
        parts.append("--batchnorm")
    if s.residual:
        parts.append("--residual")
    parts.append(f"--seed {s.seed} --plot signal.png")
    return " ".join(parts)


def check_live(cfg, s: SignalSettings) -> None:
    """ValueError when the run is more work than the page recomputes live (the command line has no such cap)."""
    work, limit = signal_work(cfg), _reference_work(cfg.engine)
    if work > limit:
        r = LIVE_REFERENCE
        raise ValueError(f"width {s.width} x {s.depth} layers, batch {s.batch}, {s.trials} trials is "
                         f"{work / limit:.1f} times the largest run this page recomputes live (width {r.width} x "
                         f"{r.depth} layers, batch {r.batch}, {r.trials} trials on the {cfg.engine} engine); "
                         f"make it smaller, or run it from the command line: {simulate_command(s)}")


def signal_data(s: SignalSettings) -> dict:
    """Simulate and return the columns the signal panel draws.

    ``act_std`` and ``grad_std``: ``layer``, ``sim`` (trial mean), ``lo``/``hi`` (+-2 standard errors),
    ``theory`` (derive/mean_field, NaN where it is silent); ``hist``: ``{"act"|"grad": [(layer, left,
    right, counts)...]}`` for the layers shown; ``engine``, ``elapsed_s``, ``config``.
    """
    from varprop.simulate import run_config
    from varprop.simulate.plot import _panels
    cfg = signal_config(s)
    check_live(cfg, s)
    with np.errstate(over="ignore", invalid="ignore"):
        r = run_config(cfg, progress=False)
    layer = np.arange(1, r.depth + 1, dtype=float)
    out = {"engine": r.engine, "elapsed_s": r.elapsed_s, "config": r.config, "trials": r.trials}
    for name in ("act_std", "grad_std"):
        mean, se = r.mean(name), np.nan_to_num(r.se(name))
        th = r.theory.get(name, np.full(r.depth, np.nan))
        out[name] = {"layer": layer, "sim": mean, "lo": mean - 2 * se, "hi": mean + 2 * se,
                     "theory": np.asarray(th, dtype=float)}
    out["act_mean"] = r.mean("act_mean")
    hist = {}
    for kind in ("act", "grad"):
        edges = np.asarray(r.hist_edges[kind])          # one row of edges per layer
        hist[kind] = [(i + 1, edges[i][:-1], edges[i][1:], r.histograms[kind][i].astype(float))
                      for i in _panels(r.depth, MAX_PANELS)]
    out["hist"] = hist
    return out


# ------------------------------------------------------------------------------------------------------
# 2. training on a 2-D toy problem
# ------------------------------------------------------------------------------------------------------

TOY_PROBLEMS = ("moons", "circles", "spiral", "xor")


def toy_problem(name: str, n: int = 400, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: n points in the plane (float32) with labels 0/1 from scikit-learn's ``make_moons`` and
    ``make_circles`` (factor 0.5), a two-armed spiral, or XOR (the sign of x1 x2); ``noise`` is the std of
    Gaussian noise added to the points."""
    if name not in TOY_PROBLEMS:
        raise ValueError(f"unknown toy problem {name!r} (choose from {', '.join(TOY_PROBLEMS)})")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 8 <= n <= 100_000:
        raise ValueError(f"the number of points must be an integer in [8, 100000], got {n!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not (0 <= noise <= 2):
        raise ValueError(f"noise must be a number in [0, 2], got {noise!r}")
    from sklearn.datasets import make_circles, make_moons
    rng = np.random.default_rng(seed)
    if name == "moons":
        X, y = make_moons(n, noise=noise, random_state=seed)
        X = (X - [0.5, 0.25]) / [1.0, 0.5]
    elif name == "circles":
        X, y = make_circles(n, noise=noise, factor=0.5, random_state=seed)
    elif name == "spiral":
        y = np.arange(n) % 2
        t = rng.uniform(0.0, 1.0, n)
        angle = 3.5 * math.pi * t + math.pi * y
        X = np.column_stack([t * np.cos(angle), t * np.sin(angle)]) + noise * rng.standard_normal((n, 2))
    else:
        X = rng.uniform(-1.0, 1.0, (n, 2))
        y = (X[:, 0] * X[:, 1] > 0).astype(int)
        X = X + noise * rng.standard_normal((n, 2))
    return np.ascontiguousarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64)


# label -> (nn.init name, keyword arguments); the lecture's cases first, then every other preset
TRAIN_INITS = {
    "zeros": ("zeros", {}),
    "too small: normal(0, 0.01)": ("normal", {"std": 0.01}),
    "too large: normal(0, 1)": ("normal", {"std": 1.0}),
    "xavier_normal": ("xavier_normal", {}),
    "xavier_uniform": ("xavier_uniform", {}),
    "he_normal": ("he_normal", {}),
    "he_uniform": ("he_uniform", {}),
    "exact gain for the activation (for_activation)": ("for_activation", {}),
}
_NOT_STANDALONE = {"constant", "variance_scaling", "for_activation", "zero_branch", "fixup", "dirac", "eye",
                   "identity", "normal", "uniform", "truncated_normal"}


def train_init_options() -> dict:
    """TRAIN_INITS followed by every other nn/init preset that needs no arguments."""
    from varprop.nn import init
    out = dict(TRAIN_INITS)
    for name in init.names():
        if name not in _NOT_STANDALONE and name not in {v[0] for v in out.values()}:
            out[name] = (name, {})
    return out


@dataclass(frozen=True)
class TrainSettings:
    problem: str = "moons"
    noise: float = 0.1
    points: int = 400
    init: str = "he_normal"          # a key of train_init_options()
    activation: str = "relu"
    params: dict = field(default_factory=dict)
    depth: int = 3                   # hidden layers
    width: int = 16
    optimizer: str = "adam"
    lr: float = 0.01
    batch_size: int = 32
    max_epochs: int = 1000
    seed: int = 0


OPTIMIZERS = ("sgd", "momentum", "adam")
GRID = 60          # the decision boundary is drawn on a GRID x GRID grid


class TrainingSession:
    """A network, its trainer and the toy data, advanced one epoch at a time.

    ``step(k)`` trains k more epochs (``Trainer.fit(..., max_epochs=k)``: the run paused and continued is the
    run that never paused); ``losses`` are the per-epoch training losses; ``boundary()`` the probability of
    class 1 on a grid over the data; ``distinct_units()`` how many first-layer units still differ (1 for
    constant weights: the symmetry is never broken).
    """

    def __init__(self, s: TrainSettings):
        from varprop.activations import get
        from varprop.nn import Trainer, build_mlp, get_optimizer
        from varprop.nn import init as nninit
        options = train_init_options()
        if s.init not in options:
            raise ValueError(f"unknown initialization {s.init!r}")
        if s.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {s.optimizer!r}")
        for name, lo, hi in (("depth", 1, 12), ("width", 2, 256), ("max_epochs", 1, 100_000)):
            v = getattr(s, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")
        if isinstance(s.lr, bool) or not isinstance(s.lr, (int, float)) or not (0 < s.lr <= 10):
            raise ValueError(f"the learning rate must be a number in (0, 10], got {s.lr!r}")
        self.settings = s
        act = get(s.activation, **dict(s.params))
        self.X, self.y = toy_problem(s.problem, s.points, s.noise, s.seed)
        name, kwargs = options[s.init]
        init = nninit.for_activation(act.name, **{k: str(v) for k, v in act.params.items()}) \
            if name == "for_activation" else nninit.get(name, **kwargs)
        self.network = build_mlp(2, [s.width] * s.depth, 2, activation=act.name,
                                 params={k: str(v) for k, v in act.params.items()}, init=init, seed=s.seed)
        self.trainer = Trainer(self.network, "cross_entropy", get_optimizer(s.optimizer, lr=s.lr),
                               batch_size=s.batch_size, epochs=s.max_epochs, seed=s.seed, progress=False)
        lo, hi = self.X.min(axis=0) - 0.3, self.X.max(axis=0) + 0.3
        self.extent = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID))
        self._grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)

    @property
    def epoch(self) -> int:
        return self.trainer.epoch

    @property
    def losses(self) -> list[float]:
        return [e["train_loss"] for e in self.trainer.history.epochs]

    @property
    def accuracies(self) -> list[float]:
        return [e["train_acc"] for e in self.trainer.history.epochs]

    @property
    def done(self) -> bool:
        h = self.trainer.history
        return h.diverged or self.trainer.epoch >= self.trainer.epochs

    @property
    def message(self) -> str:
        return self.trainer.history.message

    def step(self, epochs: int = 1) -> None:
        if not self.done:
            self.trainer.fit(self.X, self.y, max_epochs=epochs)

    def initial_loss(self) -> float:
        return float(self.trainer.evaluate(self.X, self.y)[0])

    def boundary(self) -> np.ndarray:
        """P(class 1) on the GRID x GRID grid (rows: y from low to high)."""
        with np.errstate(over="ignore", invalid="ignore"):
            p = self.trainer.predict_output(self._grid)[:, 1]
        return np.nan_to_num(p, nan=0.5).reshape(GRID, GRID)

    def distinct_units(self) -> tuple[int, int]:
        """(distinct rows of the first layer's weights and bias, units): 1 of n means no unit differs."""
        dense = self.network.layers[0]            # build_mlp without batch norm or residual: a Dense
        w = dense.weight.value
        rows = np.column_stack([w, dense.bias.value]) if dense.bias is not None else w
        return int(len(np.unique(rows, axis=0))), int(w.shape[0])


# ------------------------------------------------------------------------------------------------------
# 3. check an initialization; the gain table
# ------------------------------------------------------------------------------------------------------

def check_lines(init: str, activation: str, params_text: str = "", q: str = "1") -> list[str]:
    """What ``varprop check INIT --activation ACT [--param ...] [--q Q]`` prints, line by line."""
    from varprop.derive.check import check
    return check(init, activation, q=q, params=split_params(params_text)).lines()


def gain_rows(q: str = "1", digits: int = 15) -> list[dict]:
    """One row per registered activation, as ``varprop gain all`` prints it: exact forward and backward
    gains, how E[phi^2] was obtained, PyTorch's ``calculate_gain`` and its relative difference."""
    from varprop.derive.gains import gain_table
    from varprop.derive.moments import check_digits, check_q
    check_digits(digits)
    rows = []
    for g in gain_table(check_q(q), digits):
        t = g.torch
        rel = g.torch_relative_difference()
        rows.append({"activation": g.activation.label(), "forward": g.forward_str(),
                     "backward": g.backward_str(), "method": g.second.method,
                     "torch": "raises" if t is None else f"{t.value:.6g} = {t.expression}",
                     "difference": "" if rel is None else f"{rel:+.3%}"})
    return rows

"""What one cell computes, per kind: the options it takes (any of them a grid axis) and its metrics.

* ``simulate`` - :func:`varprop.simulate.run_config` (what ``varprop simulate`` computes): per-layer
  statistics of random networks at initialization beside the mean-field theory. Metrics: the last
  layer's activation std (mean, standard error, theory), the first layer's gradient std (likewise), the
  largest |simulation - theory| / se over the layers of each, and the last layer's saturated fraction.
* ``train`` - a :class:`varprop.nn.Trainer` run (what ``varprop train`` computes, without augmentation,
  checkpoints or transfer). Metrics: test and training accuracy and loss (training split evaluated in test
  mode at the end), the last epoch's validation accuracy, epochs run, diverged.
* ``phase`` - :mod:`varprop.derive.mean_field` at (activation, sigma_w2, sigma_b2): q*, chi_1, xi_q, the
  correlation map's fixed point c* with chi_c there, xi_c = -1/log(chi_c), the critical sigma_w2.

Options are the underlying command's, spelled as its keywords (``sigma_b2`` or ``sigma-b2``), plus:
``depth`` and ``width`` (``widths`` = depth + 1 widths of ``width``; ``hidden`` = depth widths of
``width`` for training), ``sigma_w2`` (weights N(0, sigma_w2 / fan_in), every layer) and, for training,
``sigma_b2`` (biases N(0, sigma_b2)), as in Poole et al. 2016 and Schoenholz et al. 2017; ``param.NAME``
sets an activation parameter and ``init_param.NAME`` a keyword of the initializer named by ``init``.
The seed is never an option: each cell gets its own (:func:`varprop.sweep.grid.cell_seed`); for
training the data split is fixed by ``data_seed`` (default: the sweep seed), so cells share one split.
"""
from __future__ import annotations

import functools
import math
import os
import time

import numpy as np

__all__ = ["KINDS", "types", "resolve", "validate", "execute", "cell_options", "cost"]


# kind -> option -> (type, default); a default None means "not set"
_SIMULATE = {
    "widths": (str, None), "width": (int, 256), "depth": (int, None), "batch": (int, 16),
    "activation": (str, "relu"), "init": (str, "he_normal"), "sigma_w2": (float, None),
    "trials": (int, 20), "engine": (str, "auto"), "sigma_b2": (float, 0.0), "dropout": (float, 0.0),
    "batchnorm": (bool, False), "residual": (bool, False), "dtype": (str, "float32"), "backward": (bool, True),
    "inputs": (str, None),
}
_TRAIN = {
    "data": (str, "digits"), "hidden": (str, "256,256"), "width": (int, None), "depth": (int, None),
    "activation": (str, "relu"), "init": (str, "auto"), "sigma_w2": (float, None), "sigma_b2": (float, None),
    "optimizer": (str, "adam"), "lr": (float, 1e-3), "epochs": (int, 10), "batch_size": (int, 128),
    "loss": (str, "cross_entropy"), "dropout": (float, 0.0), "batchnorm": (bool, False),
    "weight_decay": (float, None), "schedule": (str, "constant"), "clip_norm": (float, None),
    "early_stopping": (bool, False), "patience": (int, 5), "preprocess": (str, "none"),
    "val_fraction": (float, 0.1), "test_fraction": (float, 0.2), "data_seed": (int, None),
}
_PHASE = {"activation": (str, "tanh"), "sigma_w2": (float, None), "sigma_b2": (float, 0.0)}

KINDS = {"simulate": _SIMULATE, "train": _TRAIN, "phase": _PHASE}
_PREFIXES = {"simulate": ("param.", "init_param."), "train": ("param.",), "phase": ("param.",)}


def _check_kind(kind: str) -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown sweep kind {kind!r}; known: {', '.join(KINDS)}")
    return KINDS[kind]


def types(kind: str, keys=()) -> dict:
    """option -> type for ``kind``, with the ``param.NAME``-style keys among ``keys`` added (as numbers)."""
    out = {k: t for k, (t, _) in _check_kind(kind).items()}
    for k in keys:
        k = k.strip().replace("-", "_")
        if any(k.startswith(p) and len(k) > len(p) and k[len(p):].isidentifier() for p in _PREFIXES[kind]):
            out[k] = float
    return out


def _text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def resolve(kind: str, options: dict) -> dict:
    """The defaults of ``kind`` overlaid with ``options`` (unknown keys raise ValueError)."""
    schema = _check_kind(kind)
    out = {k: d for k, (_, d) in schema.items()}
    known = types(kind, options)
    for k, v in options.items():
        if k not in known:
            raise ValueError(f"unknown option {k!r} for a {kind} sweep; known: {', '.join(sorted(known))}")
        out[k] = v
    out["_set"] = sorted(options)   # what the user set (a default and an explicit value can differ in meaning)
    return out


def _prefixed(o: dict, prefix: str) -> dict:
    return {k[len(prefix):]: _text(v) for k, v in o.items() if k.startswith(prefix)}


# --- simulate ------------------------------------------------------------------------------------

def _simulate_config(o: dict, seed: int):
    from varprop.simulate.config import Config
    from varprop.simulate.weights import parse_init_params
    if o["widths"] is not None:
        if o["depth"] is not None or "width" in o["_set"]:
            raise ValueError("give either widths or depth (and width), not both")
        widths = o["widths"]
    elif o["depth"] is not None:
        if o["depth"] < 1 or o["width"] < 1:
            raise ValueError(f"depth and width must be >= 1, got depth {o['depth']}, width {o['width']}")
        widths = [int(o["width"])] * (int(o["depth"]) + 1)
    else:
        raise ValueError("a simulate sweep needs widths, or depth (the number of weight layers) and width")
    init, init_params = o["init"], parse_init_params([f"{k}={v}" for k, v in _prefixed(o, "init_param.").items()])
    if o["sigma_w2"] is not None:
        if "init" in o["_set"] or init_params:
            raise ValueError("sigma_w2 sets the weights (N(0, sigma_w2 / fan_in)); do not give init as well")
        if o["sigma_w2"] < 0:
            raise ValueError(f"sigma_w2 must be >= 0, got {o['sigma_w2']}")
        init, init_params = "variance_scaling", {"scale": float(o["sigma_w2"]), "mode": "fan_in",
                                                 "distribution": "normal"}
    inputs = _load_inputs(o["inputs"]) if o["inputs"] else None
    return Config.build(widths, batch=o["batch"], activation=o["activation"], init=init, trials=o["trials"],
                        seed=seed, engine=o["engine"], sigma_b2=o["sigma_b2"], dropout=o["dropout"],
                        batchnorm=o["batchnorm"], residual=o["residual"], inputs=inputs,
                        params=_prefixed(o, "param."), dtype=o["dtype"], backward=o["backward"],
                        init_params=init_params or None)


@functools.lru_cache(maxsize=4)
def _inputs_cached(path: str):
    arr = np.loadtxt(path, delimiter=",", ndmin=2) if path.endswith(".csv") else np.load(path, allow_pickle=False)
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"inputs {path!r}: expected one array (.npy or .csv)")
    arr.setflags(write=False)
    return arr


def _load_inputs(path: str):
    try:
        return _inputs_cached(os.path.abspath(path))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read inputs {path!r}: {exc}") from None


def _finite_or_none(v):
    v = float(v)
    return v if math.isfinite(v) else None


def _simulate_run(o: dict, seed: int) -> dict:
    from varprop.report.claims import agreement
    from varprop.simulate.runner import run_config
    cfg = _simulate_config(o, seed)
    r = run_config(cfg, progress=False)
    out = {}
    for field, at in (("act_std", -1), ("grad_std", 0)):
        m, se = r.mean(field), r.se(field)
        th = r.theory.get(field)
        name = f"{field}_{'last' if at == -1 else 'first'}"
        out[name] = float(m[at])
        out[name + "_se"] = float(se[at])
        out["theory_" + name] = float(th[at]) if th is not None else math.nan
        out[f"z_{field}_max"] = agreement(m, se, th)[1] if th is not None else math.nan
    out["saturated_last"] = float(r.mean("saturated")[-1])
    out["engine"] = r.engine
    out["trials"] = r.trials
    return out


# --- train ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _dataset(spec: str, seed: int, val_fraction: float, test_fraction: float, prep: str):
    from varprop.nn import data, preprocess
    ds = data.load(spec, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    p = preprocess.get(prep).fit(ds.X_train)
    arrays = tuple(np.ascontiguousarray(p.transform(a) if len(a) else a, dtype=np.float32)
                   for a in (ds.X_train, ds.X_val, ds.X_test))
    for a in arrays:
        a.setflags(write=False)
    return ds, arrays


def _hidden(o: dict) -> list[int]:
    if o["depth"] is not None or o["width"] is not None:
        if "hidden" in o["_set"]:
            raise ValueError("give either hidden or depth and width, not both")
        if o["depth"] is None or o["width"] is None:
            raise ValueError("depth and width go together (hidden = depth layers of width units)")
        if o["depth"] < 0 or o["width"] < 1:
            raise ValueError(f"depth must be >= 0 and width >= 1, got depth {o['depth']}, width {o['width']}")
        return [int(o["width"])] * int(o["depth"])
    text = str(o["hidden"]).strip().lower()
    if text in ("", "none"):
        return []
    try:
        out = [int(t) for t in text.split(",")]
    except ValueError:
        raise ValueError(f"hidden must be positive integers separated by commas, got {o['hidden']!r}") from None
    if any(h < 1 for h in out):
        raise ValueError(f"hidden must be positive integers separated by commas, got {o['hidden']!r}")
    return out


def _train_check(o: dict) -> None:
    for k in ("lr",):
        if not o[k] > 0:
            raise ValueError(f"{k} must be > 0, got {o[k]}")
    if not 0.0 <= o["dropout"] < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {o['dropout']}")
    for k in ("epochs", "batch_size", "patience"):
        if o[k] < 1:
            raise ValueError(f"{k} must be >= 1, got {o[k]}")
    for k in ("sigma_w2", "sigma_b2", "weight_decay"):
        if o[k] is not None and o[k] < 0:
            raise ValueError(f"{k} must be >= 0, got {o[k]}")
    if o["sigma_w2"] is not None and "init" in o["_set"]:
        raise ValueError("sigma_w2 sets the weights (N(0, sigma_w2 / fan_in)); do not give init as well")
    if o["loss"] not in ("cross_entropy", "hinge"):
        raise ValueError(f"loss must be cross_entropy or hinge, got {o['loss']!r}")
    _hidden(o)


def _train_build(o: dict, seed: int, n_features: int, n_classes: int):
    from varprop.activations import get
    from varprop.nn.estimator import auto_init
    from varprop.nn.network import build_mlp
    from varprop.nn.optim import get_optimizer
    from varprop.nn.trainer import Trainer
    act = get(o["activation"], **_prefixed(o, "param."))
    params = {k: str(v) for k, v in act.params.items()}
    kw = {}
    if o["sigma_w2"] is not None:
        init, output_init = "variance_scaling", None
        kw["init_kwargs"] = {"scale": float(o["sigma_w2"]), "mode": "fan_in", "distribution": "normal"}
    elif o["init"] == "auto":
        init, output_init = auto_init(act.name, params)
    else:
        init, output_init = o["init"], None
    net = build_mlp(n_features, _hidden(o), n_classes, activation=act.name, init=init, dropout=o["dropout"],
                    batchnorm=o["batchnorm"], seed=seed, params=params, output_init=output_init, **kw)
    if o["sigma_b2"]:
        # b ~ N(0, sigma_b^2), from a stream of its own so that the weights stay those of the seed
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x62696173,)))
        sd = math.sqrt(float(o["sigma_b2"]))
        for p in net.parameters():
            if p.name.endswith(".bias"):
                p.value[...] = rng.normal(0.0, sd, p.value.shape).astype(p.value.dtype)
    return Trainer(net, o["loss"], get_optimizer(o["optimizer"], lr=o["lr"]), batch_size=o["batch_size"],
                   epochs=o["epochs"], seed=seed, weight_decay=o["weight_decay"], schedule=o["schedule"],
                   clip_norm=o["clip_norm"], early_stopping=o["early_stopping"], patience=o["patience"],
                   progress=False)


def _train_run(o: dict, seed: int, sweep_seed: int) -> dict:
    _train_check(o)
    data_seed = sweep_seed if o["data_seed"] is None else o["data_seed"]
    ds, (X_train, X_val, X_test) = _dataset(o["data"], int(data_seed), float(o["val_fraction"]),
                                            float(o["test_fraction"]), o["preprocess"])
    trainer = _train_build(o, seed, ds.n_features, ds.n_classes)
    has_val = len(ds.y_val) > 0
    hist = trainer.fit(X_train, ds.y_train, X_val if has_val else None, ds.y_val if has_val else None)
    test_loss, test_acc = trainer.evaluate(X_test, ds.y_test)
    train_loss, train_acc = trainer.evaluate(X_train, ds.y_train)
    last = hist.epochs[-1] if hist.epochs else {}
    return {"test_acc": float(test_acc), "test_loss": float(test_loss), "train_acc": float(train_acc),
            "train_loss": float(train_loss), "val_acc": _nan(last.get("val_acc")),
            "epochs_run": len(hist.epochs), "diverged": bool(hist.diverged),
            "chance": float(np.bincount(ds.y_test, minlength=ds.n_classes).max() / max(len(ds.y_test), 1))}


def _nan(v):
    return math.nan if v is None else float(v)


# --- phase ---------------------------------------------------------------------------------------

def _phase_run(o: dict) -> dict:
    from varprop.derive import mean_field as mf
    if o["sigma_w2"] is None:
        raise ValueError("a phase sweep needs sigma_w2 (a grid axis or --fixed sigma_w2=...)")
    params = _prefixed(o, "param.")
    sw, sb = float(o["sigma_w2"]), float(o["sigma_b2"])
    q_star = mf.fixed_point(o["activation"], sw, sb, **params)
    chi_1 = mf.chi1(o["activation"], sw, sb, **params)
    xi_q, xi_c = mf.depth_scales(o["activation"], sw, sb, **params)
    try:
        c_star, chi_c = mf.chi_c(o["activation"], sw, sb, **params)
    except ValueError:          # no correlation map (maxout)
        c_star, chi_c = math.nan, math.nan
    try:
        crit = mf.critical_sigma_w2(o["activation"], sb, **params)
    except ValueError:          # no order-to-chaos line for this activation and bias
        crit = math.nan
    return {"q_star": float(q_star), "chi_1": float(chi_1), "xi_q": float(xi_q), "xi_c": float(xi_c),
            "c_star": float(c_star), "chi_c": float(chi_c), "critical_sigma_w2": float(crit),
            "phase": "chaotic" if chi_1 > 1 else ("critical" if chi_1 == 1 else "ordered")}


# --- one cell ------------------------------------------------------------------------------------

def cell_options(kind: str, fixed: dict, coords: dict) -> dict:
    """The full options of one cell: defaults, then ``fixed``, then the cell's coordinates."""
    both = set(fixed) & set(coords)
    if both:
        raise ValueError(f"{', '.join(sorted(both))} is both a grid axis and a fixed option")
    return resolve(kind, {**fixed, **coords})


def cost(kind: str, options: dict) -> float:
    """A rough relative cost of one cell (multiply-adds of its weight products), used only to hand the
    longest cells out first so that two workers do not end on one long cell; results never depend on it.

    simulate: trials x batch x the sum of w_l w_{l+1} (twice with the backward); train: epochs x the
    hidden layers' weights (the data's widths are not known before loading it); phase: 1."""
    if kind == "simulate":
        cfg = _simulate_config(options, 0)        # the simulator's own reading of widths / depth and width
        macs = sum(r * c for r, c in map(cfg.shape, range(1, cfg.depth + 1)))
        return float(cfg.trials * cfg.batch * macs * (2 if cfg.backward else 1))
    if kind == "train":
        h = _hidden(options)
        macs = sum(a * b for a, b in zip(h[:-1], h[1:])) + 64 * (sum(h) + 1)
        return float(options["epochs"] * macs)
    return 1.0


def validate(kind: str, options: dict) -> None:
    """Raise ValueError/TypeError for a cell that would fail, without running it (cheap)."""
    if kind == "simulate":
        from varprop.simulate.config import check_memory
        check_memory(_simulate_config(options, 0))
    elif kind == "train":
        _train_check(options)
        from varprop.activations import get
        get(options["activation"], **_prefixed(options, "param."))
        from varprop.nn.optim import get_optimizer
        get_optimizer(options["optimizer"], lr=options["lr"])
        from varprop.nn.schedules import get_schedule
        get_schedule(options["schedule"])
        from varprop.nn import preprocess
        preprocess.get(options["preprocess"])
        if options["init"] != "auto" and options["sigma_w2"] is None:
            from varprop.nn.init import get as get_init
            get_init(options["init"])
    elif kind == "phase":
        if options["sigma_w2"] is None:
            raise ValueError("a phase sweep needs sigma_w2 (a grid axis or --fixed sigma_w2=...)")
        from varprop.activations import get
        get(options["activation"], **_prefixed(options, "param."))
        for k in ("sigma_w2", "sigma_b2"):
            if not (math.isfinite(options[k]) and options[k] >= 0):
                raise ValueError(f"{k} must be finite and >= 0, got {options[k]}")


def _worker_name() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        import socket
        return f"local:{socket.gethostname()}:{os.getpid()}"


def execute(description: dict) -> dict:
    """Run one cell from its description (kind, fixed options, coordinates, seed, sweep seed) -> its row.

    This is the function a worker runs: it receives nothing but the description. BLAS and Numba run one
    thread inside it, so a cell gives the same bits in a worker, in a thread or in a serial loop.
    """
    from threadpoolctl import threadpool_limits
    kind, seed = description["kind"], int(description["seed"])
    o = cell_options(kind, description["fixed"], description["coords"])
    start = time.perf_counter()
    numba_threads = None
    try:
        import numba
        numba_threads = numba.get_num_threads()
        numba.set_num_threads(1)
    except (ImportError, ValueError):
        pass
    try:
        with threadpool_limits(limits=1):
            if kind == "simulate":
                metrics = _simulate_run(o, seed)
            elif kind == "train":
                metrics = _train_run(o, seed, int(description["sweep_seed"]))
            else:
                metrics = _phase_run(o)
    finally:
        if numba_threads is not None:
            numba.set_num_threads(numba_threads)
    return {"cell_id": description["cell_id"], "index": int(description["index"]),
            "coords": dict(description["coords"]), "metrics": metrics, "seed": seed,
            "elapsed_s": time.perf_counter() - start, "worker": _worker_name()}

"""``varprop simulate``: Monte Carlo of deep MLPs at initialization, with the mean-field theory beside it."""
from __future__ import annotations

import sys

from varprop.cli import add_param_option

HELP = "simulate random deep MLPs at initialization and compare every layer with the theory"
DESCRIPTION = (
    "Draws TRIALS independent networks with the given widths, initialization and activation, runs a batch of "
    "inputs forward and a standard normal upstream gradient backward, and prints per layer the activation "
    "mean and std and the gradient std (trial mean +- standard error) beside derive/mean_field's prediction. "
    "--widths takes NxK (K widths of N, so K-1 weight layers) or a comma list. The gaussian engine (auto for "
    "Gaussian weights) never forms W; the dense engine materializes every W. Output paths are checked before "
    "any work, and so are the run's memory and time (refused above the memory available or a lower-bound "
    "estimate of 24 hours; at most 10000 layers and 10^6 trials). Exit status 1 when a value overflowed "
    "(the message names the layer and the quantity; the files are written, with nulls from there on)."
)


def add_arguments(p):
    p.add_argument("--widths", required=True, help="NxK (e.g. 4096x7) or a comma list (e.g. 784,256,256,10)")
    p.add_argument("--batch", type=int, default=16, help="inputs per batch (default 16)")
    p.add_argument("--activation", default="relu", help="a registered activation (default relu)")
    add_param_option(p)
    p.add_argument("--init", default="he_normal",
                   help="an initializer name (he_normal, xavier_uniform, ...) or an expression such as "
                        "'normal(0, 0.01)' or 'uniform(-sqrt(6/fan_in), sqrt(6/fan_in))' (default he_normal)")
    p.add_argument("--init-param", action="append", default=[], metavar="NAME=VALUE",
                   help="a keyword of the initializer named by --init, e.g. --init variance_scaling "
                        "--init-param scale=2 --init-param mode=fan_in (repeatable)")
    p.add_argument("--trials", type=int, default=20, help="independent networks (default 20)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--engine", default="auto", choices=("auto", "dense", "gaussian"),
                   help="auto: gaussian for Gaussian weights, else dense (default auto)")
    p.add_argument("--sigma-b2", type=float, default=0.0, help="bias variance sigma_b^2 (default 0)")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="probability of dropping a unit (inverted dropout on layers 1..L-1; default 0)")
    p.add_argument("--batchnorm", action="store_true", help="normalize each unit over the batch before phi")
    p.add_argument("--residual", action="store_true",
                   help="x_l = x_{l-1} + phi(h_l) for every layer l >= 2 whose width equals the previous one")
    p.add_argument("--inputs", metavar="FILE",
                   help="a (batch, n_0) array in .npy or .csv used by every trial (default: standard normal)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="the dense engine's weights and products (default float32; gaussian is float64)")
    p.add_argument("--bins", type=int, default=60, help="histogram bins for --plot (default 60)")
    p.add_argument("--hist-range", type=float, default=None,
                   help="activation histograms cover [-R, R] (default: each layer's bins span its values)")
    p.add_argument("--histograms", action="store_true",
                   help="record per-layer histograms of activations and gradients (in --json; implied by --plot)")
    p.add_argument("--pair-correlation", type=float, default=None, metavar="C0",
                   help="instead of a batch, run two inputs of correlation C0 (and unit second moment) through "
                        "each network and print their correlation per layer beside the mean-field correlation "
                        "map; the weights are Gaussian with the variance --init gives, inverted dropout draws an "
                        "independent mask per input")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON (atomically)")
    p.add_argument("--csv", metavar="FILE", help="write the per-layer rows as CSV (atomically)")
    p.add_argument("--plot", metavar="FILE.png", help="write histograms and std-vs-depth with the theory (PNG)")
    p.add_argument("--quiet", action="store_true", help="do not print the table")


def _check_inputs_size(path):
    """Refuse an inputs file whose array could not fit in memory, from its size or .npy header alone."""
    import os

    import numpy as np
    from varprop.simulate.config import available_memory
    try:
        size = os.path.getsize(path)
        if not os.path.isfile(path):
            raise ValueError(f"inputs {path!r} is not a file")
        need = 16 * size                          # loadtxt's lists of floats, then the float64 array
        if not path.endswith(".csv"):
            shape = None
            with open(path, "rb") as fh:
                magic = fh.read(6)
                if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
                    raise ValueError(f"inputs {path!r} is not a .npy file (nor a .csv by its name)")
                if magic == b"\x93NUMPY":
                    fh.seek(0)
                    version = np.lib.format.read_magic(fh)
                    if version in ((1, 0), (2, 0)):   # the header only: nothing else is read
                        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                            np.lib.format.read_array_header_2_0
                        shape = read(fh, max_header_size=10000)[0]
            if shape is not None:
                need = 8 * int(np.prod(shape, dtype=object))      # as float64
    except OSError as exc:
        raise ValueError(f"cannot read inputs {path!r}: {exc.strerror or exc}") from None
    except ValueError as exc:
        if str(exc).startswith("inputs"):
            raise
        raise ValueError(f"cannot read inputs {path!r}: {exc}") from None
    avail = available_memory()
    if avail is not None and need > avail // 2:
        raise ValueError(f"inputs {path!r} would take about {need / 2 ** 30:.3g} GiB in memory, more than half "
                         f"the {avail / 2 ** 30:.3g} GiB available")


def _load_inputs(path):
    import zipfile

    import numpy as np
    _check_inputs_size(path)
    try:
        if path.endswith(".csv"):
            arr = np.loadtxt(path, delimiter=",", ndmin=2)
        else:
            arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"cannot read inputs {path!r}: {exc}") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"inputs {path!r}: expected one array (.npy or .csv), got an archive")
    return arr


def run(args) -> int:
    from varprop.activations import get, parse_params
    from varprop.io import atomic_write_text, check_distinct, check_writable
    from varprop.simulate.config import Config
    from varprop.simulate.runner import run_config
    from varprop.simulate.weights import parse_init_params

    outputs = {"--json": args.json, "--csv": args.csv, "--plot": args.plot}
    for option, path in outputs.items():
        if path is not None:
            check_writable(path, option)
    check_distinct(outputs)
    params = parse_params(args.param)
    act = get(args.activation, **params)
    hist_range = args.hist_range
    inputs = _load_inputs(args.inputs) if args.inputs else None
    cfg = Config.build(args.widths, batch=args.batch, activation=act, init=args.init, trials=args.trials,
                       seed=args.seed, engine=args.engine, sigma_b2=args.sigma_b2, dropout=args.dropout,
                       batchnorm=args.batchnorm, residual=args.residual, inputs=inputs,
                       histograms=bool(args.plot or args.histograms), bins=args.bins, hist_range=hist_range,
                       dtype=args.dtype, init_params=parse_init_params(args.init_param))
    if args.pair_correlation is not None:
        return _pair(args, cfg, act)
    try:
        result = run_config(cfg)
    except MemoryError:
        from varprop.simulate.config import memory_estimate
        raise ValueError(f"out of memory (the estimate was {memory_estimate(cfg)[0] / 2 ** 30:.3g} GiB per "
                         "trial); use smaller widths, batch or bins") from None
    if not args.quiet:
        print(result.table())
    if args.json:
        atomic_write_text(args.json, result.to_json())
    if args.csv:
        atomic_write_text(args.csv, result.to_csv())
    if args.plot:
        from varprop.simulate.plot import save_plot
        save_plot(result, args.plot)
    if result.interrupted:
        print(f"varprop: interrupted after {result.trials} of {cfg.trials} trials; wrote the finished ones",
              file=sys.stderr)
        return 130
    if result.overflow is not None:
        print(f"varprop: {result.overflow_message()}", file=sys.stderr)
        return 1
    return 0


def _pair(args, cfg, act) -> int:
    """``--pair-correlation C0``: the correlation of two inputs per layer, simulated and from the theory."""
    import json
    import math

    from varprop.io import atomic_write_text
    from varprop.simulate.correlation import pair_correlation
    if cfg.batchnorm or cfg.residual or args.inputs or args.plot or args.csv:
        raise ValueError("--pair-correlation runs plain MLPs on its own two inputs: it takes neither --batchnorm, "
                         "--residual, --inputs, --plot nor --csv")
    widths = list(cfg.widths)
    sw = [cfg.weight_variance(layer) * widths[layer - 1] for layer in range(1, cfg.depth + 1)]
    if max(sw) - min(sw) > 1e-12 * max(sw):
        raise ValueError("--pair-correlation needs one sigma_w^2 = fan_in Var(w) for every layer; this init gives "
                         + ", ".join(f"{v:.4g}" for v in sw))
    r = pair_correlation(widths, act, sw[0], cfg.sigma_b2, c0=args.pair_correlation, keep_prob=cfg.keep,
                         trials=cfg.trials, seed=cfg.seed)
    if not args.quiet:
        print(f"two inputs of correlation {args.pair_correlation:g}, {act.label()}, sigma_w^2 {sw[0]:.6g}, "
              f"sigma_b^2 {cfg.sigma_b2:g}, keep {cfg.keep:g}, {cfg.trials} networks")
        print("layer    correlation +- se       theory")
        for layer, (m, se, t) in enumerate(zip(r.mean, r.se, r.theory), start=1):
            pm = f"{m:.5f} +- {se:.1e}" if math.isfinite(se) else f"{m:.5f}"
            print(f"{layer:>5}  {pm:>21}  {t:>11.5f}")
    if args.json:
        blob = {"config": r.config, "mean": r.mean.tolist(), "se": r.se.tolist(), "theory": r.theory.tolist()}
        atomic_write_text(args.json, json.dumps(blob, indent=1) + "\n")
    return 0

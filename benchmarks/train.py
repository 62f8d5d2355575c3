"""Training speed: varprop's MLP trainer against scikit-learn's MLPClassifier and PyTorch CPU, side by side.

Fashion-MNIST when its IDX files are installed (digits otherwise); MLP n_in-256-256-10, ReLU, He-normal,
Adam (lr 1e-3), batch 128, float32, 5 epochs, no weight decay; the same split for all three. The epochs are
interleaved (epoch e of every framework before epoch e + 1 of any), each one call as a user would make it.
Per framework it reports the median seconds per epoch (varprop's Numba compile / cache-load time is timed
separately on a tiny warm-up run) and the test accuracy.

The GEMM bound: one step of an MLP costs two matrix products per dense layer (forward ``X W``, backward
``X^T dH``) and a third for every layer but the first (``dH W^T``, the gradient of its input; the first
layer's input is the data, whose gradient no trainer computes): ``2 * batch * (3 * sum(n_in * n_out) -
n_0 * n_1)`` flops. We time numpy float32 matmul on exactly those shapes (best of repeats) and add them up
over an epoch's steps: no trainer that does those products through the same BLAS can be faster, so
``epoch seconds / bound`` says how close it gets.
Both ratios are also given round by round (the median over rounds of the two timings of one round, and of
varprop's epoch against the bound measured again right after that round): the machine's speed drifts over
minutes on a shared host, and a ratio of timings taken together is steadier than a ratio of two medians.
CPU seconds (process time) are reported beside wall seconds: with ``--threads 1`` on a machine shared with
other work they measure the work itself, where wall time also counts the waits for a core.

``--estimator`` times instead the public estimators as a user calls them: ``MLPClassifier(...).fit(X, y)``
of varprop and of scikit-learn, the same hyper-parameters (``max_iter`` = the epochs, no early stopping,
scikit-learn's ``tol`` stop disabled), each fit from scratch (its input checks, label encoding and network
construction included), ``--repeat`` fits of each, interleaved; the median seconds per fit are compared.

``--phases`` times varprop alone, epoch after epoch, and splits each epoch's steps into their parts
(gathering, forward, loss, backward, gradient norm, update): where a slow spell of the machine hits.

``--breakdown`` profiles one varprop epoch instead and groups its time by what the code does (the layers with
their products, the update kernel, batch gathering, the small kernels, the gradient norm, the input check, the
rest), beside the GEMM bound.

Usage: ``python benchmarks/train.py [--data SPEC] [--epochs N] [--estimator [--repeat R]] [--breakdown]
[--phases] [--json FILE]``.
"""
from __future__ import annotations

import os

# a benchmark may pick the BLAS kernel for its own process: the machine-wide overrides can force a
# slower core type; this must happen before numpy loads OpenBLAS
for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

HIDDEN = (256, 256)


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    rows = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} "
            f"threads={i.get('num_threads')}" for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(rows) or "none found"


def layer_sizes(n_in, n_out):
    sizes = [n_in, *HIDDEN, n_out]
    return list(zip(sizes[:-1], sizes[1:]))


def step_flops(batch, layers) -> float:
    """Flops of one step's matrix products (no input gradient for the first layer)."""
    return 2.0 * batch * (2 * sum(a * b for a, b in layers) + sum(a * b for a, b in layers[1:]))


def gemm_seconds(shape_a, shape_b, repeats=30) -> float:
    """Best seconds of ``A @ B`` in float32 over ``repeats`` (the output preallocated, as a trainer would).

    The minimum, not the median: the bound is what the machine can do, and on a shared machine the
    slower repeats measure other processes, not the BLAS.
    """
    rng = np.random.default_rng(0)
    A = rng.standard_normal(shape_a, dtype=np.float32)
    B = rng.standard_normal(shape_b, dtype=np.float32)
    out = np.empty((shape_a[0], shape_b[1]), np.float32)
    for _ in range(3):
        np.matmul(A, B, out=out)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.matmul(A, B, out=out)
        times.append(time.perf_counter() - t)
    return min(times)


def gemm_bound(n_train, batch, layers) -> dict:
    """Seconds per epoch of the matrix products alone, at the sizes of the run (the last batch included)."""
    full, rest = divmod(n_train, batch)
    total = 0.0
    for b, count in ((batch, full), (rest, 1 if rest else 0)):
        if not count:
            continue
        step = 0.0
        for i, (n_in, n_out) in enumerate(layers):
            step += gemm_seconds((b, n_in), (n_in, n_out))      # forward  X W
            if i > 0:                                           # the data's gradient is never needed
                step += gemm_seconds((b, n_out), (n_out, n_in))  # backward dH W^T
            step += gemm_seconds((n_in, b), (b, n_out))         # backward X^T dH
        total += count * step
    flops = full * step_flops(batch, layers) + (step_flops(rest, layers) if rest else 0.0)
    return {"seconds": total, "flops": flops, "gflops": flops / total / 1e9}


def paired(a, b) -> float:
    """The median over rounds of a[i] / b[i]: two timings taken in the same round share the machine's spell
    (it drifts over minutes on a shared host), so their ratio is steadier than a ratio of two medians."""
    return statistics.median(x / y for x, y in zip(a, b))


class Contender:
    """One framework's run, advanced an epoch at a time so that the three can be interleaved: epoch e of
    each runs before epoch e + 1 of any, and a slow spell of the machine hits all of them alike."""

    def __init__(self):
        self.times, self.cpu = [], []

    def epoch(self):
        t, c = time.perf_counter(), time.process_time()
        self._epoch()
        self.times.append(time.perf_counter() - t)
        self.cpu.append(time.process_time() - c)

    def result(self) -> dict:
        return {"epoch_seconds": self.times, "epoch_cpu_seconds": self.cpu, "test_acc": self.test_acc(),
                **self.info}


class Varprop(Contender):
    def __init__(self, ds, epochs, batch, lr, seed):
        super().__init__()
        from varprop.nn.losses import get_loss
        from varprop.nn.network import build_mlp
        from varprop.nn.optim import get_optimizer
        from varprop.nn.trainer import Trainer

        def make(epochs_):
            net = build_mlp(ds.n_features, list(HIDDEN), ds.n_classes, activation="relu", init="he_normal",
                            seed=seed, dtype=np.float32)
            return Trainer(net, get_loss("cross_entropy"), get_optimizer("adam", lr=lr), batch_size=batch,
                           epochs=epochs_, seed=seed, progress=False)

        # warm-up on a few batches: Numba compiles (or loads its on-disk cache) here, outside the timings
        t = time.perf_counter()
        make(1).fit(ds.X_train[: 4 * batch], ds.y_train[: 4 * batch])
        self.info = {"compile_seconds": time.perf_counter() - t}
        self.ds, self.trainer = ds, make(epochs)

    def _epoch(self):
        # one call per epoch, as for the peers (each call checks its inputs, as theirs do)
        self.trainer.fit(self.ds.X_train, self.ds.y_train, max_epochs=1)

    def test_acc(self):
        return float(self.trainer.evaluate(self.ds.X_test, self.ds.y_test)[1])


class Sklearn(Contender):
    def __init__(self, ds, epochs, batch, lr, seed):
        super().__init__()
        from sklearn.neural_network import MLPClassifier
        self.ds = ds
        # warm_start + max_iter=1: each fit call is exactly one epoch
        self.clf = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", solver="adam", alpha=0.0,
                                 batch_size=batch, learning_rate_init=lr, max_iter=1, warm_start=True,
                                 shuffle=True, random_state=seed, tol=0.0, n_iter_no_change=10 ** 9)
        self.info = {}

    def _epoch(self):
        from sklearn.exceptions import ConvergenceWarning
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.clf.fit(self.ds.X_train, self.ds.y_train)
        self.info["dtype"] = str(self.clf.coefs_[0].dtype)

    def test_acc(self):
        return float((self.clf.predict(self.ds.X_test) == self.ds.y_test).mean())


class Torch(Contender):
    def __init__(self, ds, epochs, batch, lr, seed):
        super().__init__()
        import torch
        self.torch, self.batch = torch, batch
        torch.manual_seed(seed)
        sizes = [ds.n_features, *HIDDEN, ds.n_classes]
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            lin = torch.nn.Linear(a, b)
            torch.nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
            torch.nn.init.zeros_(lin.bias)
            layers.append(lin)
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.X = torch.from_numpy(np.ascontiguousarray(ds.X_train, np.float32))
        self.y = torch.from_numpy(ds.y_train.astype(np.int64))
        self.gen = torch.Generator().manual_seed(seed)
        self.ds = ds
        self.info = {"threads": torch.get_num_threads()}

    def _epoch(self):
        perm = self.torch.randperm(len(self.y), generator=self.gen)
        for i in range(0, len(self.y), self.batch):
            idx = perm[i:i + self.batch]
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(self.X[idx]), self.y[idx])
            loss.backward()
            self.opt.step()

    def test_acc(self):
        with self.torch.no_grad():
            out = self.model(self.torch.from_numpy(np.ascontiguousarray(self.ds.X_test, np.float32)))
        return float((out.argmax(1).numpy() == self.ds.y_test).mean())


def estimator_fits(ds, epochs, batch, lr, seed, repeat, skip) -> dict:
    """Seconds of ``MLPClassifier.fit`` for varprop and scikit-learn, ``repeat`` fits each, interleaved."""
    from sklearn.exceptions import ConvergenceWarning
    from varprop.nn.estimator import MLPClassifier as Ours

    common = dict(hidden_layer_sizes=HIDDEN, activation="relu", solver="adam", alpha=1e-4, batch_size=batch,
                  learning_rate_init=lr, max_iter=epochs, early_stopping=False, random_state=seed)
    makers = {"varprop": lambda: Ours(**common)}
    if "sklearn" not in skip:
        from sklearn.neural_network import MLPClassifier as Theirs
        makers["sklearn"] = lambda: Theirs(**common, tol=0.0, n_iter_no_change=10 ** 9, shuffle=True)
    t = time.perf_counter()
    Ours(**dict(common, max_iter=1)).fit(ds.X_train[: 4 * batch], ds.y_train[: 4 * batch])   # compile / cache load
    compile_s = time.perf_counter() - t
    out = {name: {"fit_seconds": []} for name in makers}
    for _ in range(repeat):
        for name, make in makers.items():
            clf = make()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                t = time.perf_counter()
                clf.fit(ds.X_train, ds.y_train)
                out[name]["fit_seconds"].append(time.perf_counter() - t)
            out[name]["test_acc"] = float((clf.predict(ds.X_test) == ds.y_test).mean())
    for r in out.values():
        r["median_fit_seconds"] = statistics.median(r["fit_seconds"])
    out["varprop"]["compile_seconds"] = compile_s
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="dataset spec (default: fashion-mnist if installed, else digits)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip", action="append", default=[], choices=["sklearn", "torch"],
                   help="leave a peer out (repeatable)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for BLAS, Numba and PyTorch alike (default: all cores); 1 gives steadier "
                        "timings on a shared machine")
    p.add_argument("--json", default=None, help="also write the results as JSON (atomically)")
    p.add_argument("--estimator", action="store_true",
                   help="time MLPClassifier.fit of varprop and scikit-learn instead of the epoch loop")
    p.add_argument("--repeat", type=int, default=3, help="fits of each estimator with --estimator (default 3)")
    p.add_argument("--phases", action="store_true",
                   help="varprop alone, epoch by epoch: microseconds a step in each part of the step")
    p.add_argument("--breakdown", action="store_true",
                   help="where one varprop epoch goes (a cProfile of it, grouped), beside the GEMM bound")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    limiter = None
    if args.threads is not None:
        if args.threads < 1:
            p.error("--threads must be >= 1")
        import numba
        import sklearn.neural_network  # noqa: F401  (load every BLAS the peers use before limiting them)
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(args.threads)      # BLAS (and OpenMP) pools, for this process
        numba.set_num_threads(args.threads)
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            pass

    from varprop.nn import data as vdata
    spec = args.data
    if spec is None:
        spec = "fashion-mnist" if vdata.fashion_mnist_available() else "digits"
    ds = vdata.load(spec, seed=args.seed, val_fraction=0.0)
    layers = layer_sizes(ds.n_features, ds.n_classes)
    print(f"data      {ds.summary()}")
    print(f"model     {'-'.join(str(a) for a, _ in layers)}-{ds.n_classes}, relu, adam lr={args.lr:g}, "
          f"batch {args.batch_size}, float32, {args.epochs} epochs")
    print(f"BLAS      {blas_info()}")
    if args.threads is not None:
        print(f"threads   {args.threads} for BLAS, Numba and PyTorch")
    if args.estimator:
        return _estimator_main(args, ds, limiter)
    bound = gemm_bound(len(ds.y_train), args.batch_size, layers)
    if args.breakdown:
        return _breakdown_main(args, ds, bound, limiter)
    if args.phases:
        return _phases_main(args, ds, bound, limiter)
    print(f"GEMM      {bound['gflops']:.1f} GFLOP/s float32 on the run's shapes; "
          f"{bound['flops'] / 1e9:.1f} GFLOP per epoch -> bound {bound['seconds']:.3f} s/epoch")
    sys.stdout.flush()

    runners = {"varprop": Varprop, "sklearn": Sklearn, "torch": Torch}
    contenders = {}
    for name, cls in runners.items():
        if name in args.skip:
            continue
        try:
            contenders[name] = cls(ds, args.epochs, args.batch_size, args.lr, args.seed)
        except ImportError as exc:
            print(f"{name:9s} skipped ({exc})")
    round_bounds = []
    for e in range(args.epochs):
        for c in contenders.values():
            c.epoch()
        round_bounds.append(gemm_bound(len(ds.y_train), args.batch_size, layers)["seconds"])
        if sys.stdout.isatty():
            print(f"\repoch {e + 1}/{args.epochs}", end="", flush=True)
    if sys.stdout.isatty():
        print("\r", end="")
    results = {}
    for name, c in contenders.items():
        r = results[name] = c.result()
        r["median_epoch_seconds"] = statistics.median(r["epoch_seconds"])
        r["median_epoch_cpu_seconds"] = statistics.median(r["epoch_cpu_seconds"])
        extra = f", compile/cache load {r['compile_seconds']:.2f} s (excluded)" if "compile_seconds" in r else ""
        print(f"{name:9s} {r['median_epoch_seconds']:.3f} s/epoch (median of {len(r['epoch_seconds'])}; CPU "
              f"{r['median_epoch_cpu_seconds']:.3f} s), test accuracy {r['test_acc']:.4f}, "
              f"{r['median_epoch_seconds'] / bound['seconds']:.2f}x the GEMM bound{extra}")
    if "varprop" in results:
        v = results["varprop"]
        for name in ("sklearn", "torch"):
            if name in results:
                r = results[name]
                r["paired_ratio"] = paired(r["epoch_seconds"], v["epoch_seconds"])
                print(f"ratio     {name} / varprop seconds per epoch: "
                      f"{r['median_epoch_seconds'] / v['median_epoch_seconds']:.2f}x wall, "
                      f"{r['median_epoch_cpu_seconds'] / v['median_epoch_cpu_seconds']:.2f}x CPU; "
                      f"round by round {r['paired_ratio']:.2f}x wall")
        v["bound_ratio_by_round"] = paired(v["epoch_seconds"], round_bounds)
        print(f"ratio     varprop / GEMM bound: {v['median_epoch_seconds'] / bound['seconds']:.2f}x wall, "
              f"{v['median_epoch_cpu_seconds'] / bound['seconds']:.2f}x CPU; against the bound measured after "
              f"each round ({min(round_bounds):.3f}-{max(round_bounds):.3f} s) {v['bound_ratio_by_round']:.2f}x wall")
    if args.json:
        from varprop.io import atomic_write_text
        out = {"data": ds.summary(), "blas": blas_info(), "threads": args.threads, "gemm_bound": bound,
               "round_bounds": round_bounds, "epochs": args.epochs,
               "batch_size": args.batch_size, "results": results}
        atomic_write_text(args.json, json.dumps(out, indent=2, sort_keys=True) + "\n")
    del limiter
    return 0


def _estimator_main(args, ds, limiter) -> int:
    print(f"estimator MLPClassifier.fit, max_iter={args.epochs}, alpha=1e-4, float32 input, "
          f"{args.repeat} fits each, interleaved")
    sys.stdout.flush()
    res = estimator_fits(ds, args.epochs, args.batch_size, args.lr, args.seed, args.repeat, args.skip)
    for name, r in res.items():
        extra = f", compile/cache load {r['compile_seconds']:.2f} s (excluded)" if "compile_seconds" in r else ""
        print(f"{name:9s} {r['median_fit_seconds']:.2f} s per fit (median of {len(r['fit_seconds'])}: "
              f"{', '.join(f'{t:.2f}' for t in r['fit_seconds'])}), test accuracy {r['test_acc']:.4f}{extra}")
    if "sklearn" in res:
        res["sklearn"]["paired_ratio"] = paired(res["sklearn"]["fit_seconds"], res["varprop"]["fit_seconds"])
        print(f"ratio     sklearn / varprop seconds per fit: "
              f"{res['sklearn']['median_fit_seconds'] / res['varprop']['median_fit_seconds']:.2f}x; "
              f"fit by fit {res['sklearn']['paired_ratio']:.2f}x")
    if args.json:
        from varprop.io import atomic_write_text
        out = {"data": ds.summary(), "blas": blas_info(), "threads": args.threads, "epochs": args.epochs,
               "batch_size": args.batch_size, "estimator": res}
        atomic_write_text(args.json, json.dumps(out, indent=2, sort_keys=True) + "\n")
    del limiter
    return 0


# what the functions of an epoch do, by (file suffix, function name); the first match wins
_GROUPS = (
    ("the layers' forward and backward (their matrix products within)", "nn/layers.py", ("forward", "backward")),
    ("the optimizer's update kernel", "nn/kernels.py", ("adaptive_step_group", "momentum_step_group",
                                                        "adaptive_step_serial", "momentum_step_serial")),
    ("batch gathering", "nn/kernels.py", ("gather_rows",)),
    ("activation and loss kernels", "nn/kernels.py", ("bias_act_forward", "act_backward", "softmax_xent")),
    ("gradient norm", "nn/trainer.py", ("_grad_norm",)),
    ("input check (once a fit call)", "nn/kernels.py", ("_top_exponent",)),
    ("weight penalty", "nn/kernels.py", ("add_penalty_serial", "add_penalty_parallel")),
)


_PHASES = ("gather", "forward", "loss", "backward", "norm", "update")


def _timed(fn, totals, key):
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            totals[key] += time.perf_counter() - t
    return wrapper


def _phases_main(args, ds, bound, limiter) -> int:
    """varprop's epochs one after another, each step's parts timed by wrappers around the calls the training
    loop makes (about 0.2 us each): batch gathering, the forward pass, the loss, the backward pass, the
    gradient norm and the optimizer's update. It shows which part a slow spell of the machine hits: the epoch
    times of the main run swing, and this says where."""
    from varprop.nn import kernels as K
    v = Varprop(ds, args.epochs, args.batch_size, args.lr, args.seed)
    t = v.trainer
    totals = dict.fromkeys(_PHASES, 0.0)
    K.gather_rows = _timed(K.gather_rows, totals, "gather")
    t.hooks.forward = _timed(t.hooks.forward, totals, "forward")
    t.loss.forward = _timed(t.loss.forward, totals, "loss")
    t.hooks.backward = _timed(t.hooks.backward, totals, "backward")
    t._clip = _timed(t._clip, totals, "norm")
    t.optimizer.step = _timed(t.optimizer.step, totals, "update")
    steps = -(-len(ds.y_train) // args.batch_size)
    print(f"phases    microseconds a step ({steps} steps an epoch); GEMM bound {bound['seconds']:.3f} s/epoch")
    rows = []
    for e in range(args.epochs):
        for k in totals:
            totals[k] = 0.0
        v.epoch()
        rest = v.times[-1] - sum(totals.values())
        rows.append({"epoch_seconds": v.times[-1], **{k: x / steps * 1e6 for k, x in totals.items()},
                     "rest": rest / steps * 1e6})
        print(f"epoch {e + 1:<3d} {v.times[-1]:.3f} s: " + ", ".join(f"{k} {rows[-1][k]:.0f}"
                                                                  for k in (*_PHASES, "rest")))
    if args.json:
        from varprop.io import atomic_write_text
        out = {"data": ds.summary(), "blas": blas_info(), "threads": args.threads, "gemm_bound": bound,
               "steps_per_epoch": steps, "phases_us_per_step": rows}
        atomic_write_text(args.json, json.dumps(out, indent=2, sort_keys=True) + "\n")
    del limiter
    return 0


def _breakdown_main(args, ds, bound, limiter) -> int:
    """One varprop epoch under cProfile, the functions' own times grouped by what they do.

    A profiled call costs about a microsecond more, so the profiled epoch is slower than a plain one (both
    are printed) and that cost lands in "the rest"; the groups themselves are compiled or BLAS work."""
    import cProfile
    import pstats
    v = Varprop(ds, args.epochs, args.batch_size, args.lr, args.seed)
    v.epoch()                                     # caches, pages and the BLAS buffers warm
    v.epoch()
    plain = v.times[-1]
    prof = cProfile.Profile()
    prof.enable()
    v.epoch()
    prof.disable()
    profiled = v.times[-1]
    own = {g[0]: 0.0 for g in _GROUPS}
    total = 0.0
    for (path, _, name), (_, _, tottime, _, _) in pstats.Stats(prof).stats.items():
        total += tottime
        for label, suffix, names in _GROUPS:
            if path.replace(os.sep, "/").endswith(suffix) and name in names:
                own[label] += tottime
                break
    print(f"epoch     {plain:.3f} s plain, {profiled:.3f} s profiled; GEMM bound {bound['seconds']:.3f} s")
    for label, sec in own.items():
        print(f"  {sec:7.3f} s  {sec / profiled:6.1%}  {label}")
    rest = profiled - sum(own.values())
    print(f"  {rest:7.3f} s  {rest / profiled:6.1%}  the rest: Python and small NumPy calls (with the profiler's own)")
    del limiter
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training experiments: the derived schemes applied end to end with :mod:`varprop.nn`.

Each experiment trains small MLPs on real data (scikit-learn's digits in ``--quick``; Fashion-MNIST in
``--full`` when its IDX files are installed), standardized with statistics of the training split only. Every
claim is judged over seeds (5 in ``--quick``, 10 in ``--full``) against a contrast trained at the same budget,
by the 95% t interval of the paired differences (:func:`varprop.report.claims.judge_paired`). The three
splits have one role each: the training split trains, the validation split selects (early stopping, the
best epoch), the test split judges; nothing is selected on the split that judges it.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from .claims import Claim, fmt, judge_paired, md_table

__all__ = ["Data", "load_data", "EXPERIMENTS"]


@dataclass
class Data:
    name: str
    X: np.ndarray
    y: np.ndarray
    Xv: np.ndarray
    yv: np.ndarray
    Xt: np.ndarray
    yt: np.ndarray
    n_classes: int


def load_data(mode: str, seed: int) -> Data:
    from varprop.nn.data import fashion_mnist_available, load
    from varprop.nn.preprocess import Standardize
    spec = "fashion-mnist" if mode == "full" and fashion_mnist_available() else "digits"
    ds = load(spec, seed=seed)
    prep = Standardize().fit(ds.X_train)
    f32 = (lambda a: np.ascontiguousarray(prep.transform(a), dtype=np.float32))
    return Data(ds.name, f32(ds.X_train), ds.y_train, f32(ds.X_val), ds.y_val, f32(ds.X_test), ds.y_test,
                ds.n_classes)


def _train(data: Data, hidden, activation="relu", init="he_normal", optimizer="adam", lr=1e-3, epochs=10,
           batch=64, seed=0, X=None, y=None, init_kwargs=None, on_epoch=None, **kw):
    """Train one MLP; the validation split is only watched (and selects, with early stopping); the test
    accuracy is of the final (or, with early stopping, the validation-selected) weights."""
    from varprop.nn import Trainer, build_mlp, get_optimizer
    net_kw = {k: kw.pop(k) for k in ("dropout", "batchnorm") if k in kw}
    net = build_mlp(data.X.shape[1], hidden, data.n_classes, activation=activation, init=init, seed=seed,
                    init_kwargs=init_kwargs, **net_kw)
    callback = None if on_epoch is None else (lambda record: on_epoch(net, record))
    trainer = Trainer(net, "cross_entropy", get_optimizer(optimizer, lr=lr), batch_size=batch, epochs=epochs,
                      seed=seed, progress=False, callback=callback, **kw)
    X = data.X if X is None else X
    y = data.y if y is None else y
    hist = trainer.fit(X, y, data.Xv, data.yv)
    _, test_acc = trainer.evaluate(data.Xt, data.yt)
    return trainer, hist, float(test_acc)


def _curves(hist) -> dict:
    keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")
    return {k: [e.get(k) for e in hist.epochs] for k in keys}



_MAX_TRAIN = 5000    # the deep and repeated runs train on at most this many samples (Fashion-MNIST in --full)


def _subset(data: Data) -> Data:
    """The first _MAX_TRAIN training samples (validation and test splits unchanged): a bounded budget per run."""
    if len(data.y) <= _MAX_TRAIN:
        return data
    return Data(data.name + f" (first {_MAX_TRAIN} training samples)", data.X[:_MAX_TRAIN], data.y[:_MAX_TRAIN],
                data.Xv, data.yv, data.Xt, data.yt, data.n_classes)


def _seeds(mode: str, seed: int) -> list[int]:
    n = {"quick": 5, "full": 10, "smoke": 2}[mode]
    return [seed + k for k in range(n)]


def _save(fig, path: str) -> None:
    from .simulations import save_figure
    save_figure(fig, path)


def _epoch_ticks(ax, n: int) -> None:
    """Integer epoch ticks: every epoch when there are few, an integer locator otherwise."""
    from matplotlib.ticker import MaxNLocator
    if n <= 12:
        ax.set_xticks(range(1, max(n, 1) + 1))
        ax.set_xlim(0.5, max(n, 1) + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _plot(path: str, runs: dict, title: str, key: str = "train_loss", diverged: dict | None = None) -> None:
    """Training curves of one seed: ``key`` and the validation accuracy per epoch. A run that diverged is
    drawn up to its last finite epoch and marked with an x labelled "diverged"; a run with no finite epoch
    gets a text note instead of an empty legend entry."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7.2, 3.2), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    bx = fig.add_subplot(1, 2, 2)
    notes = []
    for k, (label, curves) in enumerate(runs.items()):
        color = f"C{k}"
        ep = np.asarray(curves["epoch"], dtype=float)
        y = np.asarray([np.nan if v is None else v for v in curves[key]], dtype=float)
        va = np.asarray([np.nan if v is None else v for v in curves["val_acc"]], dtype=float)
        good = np.isfinite(y)
        if good.any():
            ax.plot(ep[good], y[good], marker="o", ms=3, color=color, label=label)
            bx.plot(ep[good], va[good], marker="o", ms=3, color=color, label=label)
        if diverged and diverged.get(label):
            last = float(ep[good][-1]) if good.any() else 0.0
            yv = float(y[good][-1]) if good.any() else float("nan")
            if good.any():
                ax.plot([last], [yv], marker="x", ms=9, mew=2, color=color, ls="none")
                ax.annotate("diverged", (last, yv), textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)
            else:
                notes.append(f"{label}: diverged in the first epoch (no finite loss to draw)")
    n_epochs = max((len(c["epoch"]) for c in runs.values()), default=1)
    for a, ylabel in ((ax, key.replace("_", " ")), (bx, "validation accuracy")):
        a.set_xlabel("epoch")
        a.set_ylabel(ylabel)
        a.grid(alpha=0.3)
        _epoch_ticks(a, n_epochs)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="outside lower center", ncols=min(len(runs), 4),
               frameon=False)
    fig.suptitle("\n".join([title, *notes]), fontsize=9)
    _save(fig, path)


def _hidden_spread(net) -> float:
    """The largest difference between the incoming weights of two units of one hidden layer (0: symmetric)."""
    from varprop.nn.layers import Dense
    worst = 0.0
    dense = [layer for layer in _walk(net.layers) if isinstance(layer, Dense)]
    for d in dense[:-1]:
        w = d.weight.value
        rows = w if w.shape[0] == d.n_out else w.T        # one row per unit, whatever the storage
        worst = max(worst, float(np.max(np.abs(rows - rows[:1]))))
    return worst


def _walk(layers):
    for layer in layers:
        yield layer
        subs = getattr(layer, "sublayers", None)
        if subs:
            yield from _walk(subs())


def _epochs(mode: str, quick: int, full: int) -> int:
    return {"quick": quick, "full": full, "smoke": 1}[mode]


def _interval_text(j) -> str:
    return j.evidence


# ------------------------------------------------------------------------------------------------------
# the experiments; each returns (claims, markdown, json) and writes its plot
# ------------------------------------------------------------------------------------------------------

def symmetry(data: Data, out: str, mode: str, seed: int):
    data = _subset(data)
    epochs = _epochs(mode, 5, 20)
    seeds = _seeds(mode, seed)
    settings = (("zeros", "zeros", None, 0.0), ("constant 0.1", "constant", {"value": 0.1}, 0.0),
                ("constant 0.1 + dropout 0.5", "constant", {"value": 0.1}, 0.5), ("He normal", "he_normal", None, 0.0))
    spreads = {label: [] for label, *_ in settings}
    traces = {}
    for s in seeds:
        for label, init, kw, drop in settings:
            trace = []
            extra = {"dropout": drop} if drop else {}
            _train(data, [32, 32], "tanh", init, "sgd", 0.1, epochs, 64, s, init_kwargs=kw,
                   on_epoch=lambda net, rec, t=trace: t.append(_hidden_spread(net)), **extra)
            spreads[label].append(trace[-1] if trace else math.nan)
            if s == seeds[0]:
                traces[label] = trace
    const_zero = all(v == 0.0 for k in ("zeros", "constant 0.1") for v in spreads[k])
    broken = all(v > 0 for k in ("constant 0.1 + dropout 0.5", "He normal") for v in spreads[k])
    verdict = "verified" if const_zero and broken else ("refuted" if not const_zero else "inconclusive")
    claims = [Claim("training", "constant initialization never breaks symmetry: hidden units stay identical "
                    "(unless per-unit noise such as dropout breaks it)",
                    derived="units identical at every step (derive symmetry); dropout's per-unit masks break it",
                    training=f"max weight difference between units after {epochs} epochs, over {len(seeds)} seeds: "
                             f"zeros {fmt(max(spreads['zeros']), 3)}, constant {fmt(max(spreads['constant 0.1']), 3)}; "
                             f"constant + dropout {fmt(min(spreads['constant 0.1 + dropout 0.5']), 3)} or more, "
                             f"He {fmt(min(spreads['He normal']), 3)} or more",
                    verdict=verdict, evidence=f"{len(seeds)} seeds, exact equality",
                    quantity="largest difference between the incoming weights of two hidden units of one layer",
                    direction="exactly 0 for zeros and constant inits; > 0 for the contrasts (dropout, He)",
                    test="exact: 0.0 in every seed for the constant inits and > 0 in every seed for both contrasts "
                         "(refuted if a constant init ever gives a non-zero difference)",
                    link="training.md#symmetry")]
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5.6, 3.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    styles = ("--", ":", "-", "-")      # zeros and constant overlap at 0: dashes and dots keep both visible
    for k, (label, trace) in enumerate(traces.items()):
        ep = np.arange(1, len(trace) + 1)
        ax.plot(ep, trace, marker="os^D"[k], ms=4, ls=styles[k], color=f"C{k}", label=label)
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("spread between hidden units")
    ax.set_title(f"largest weight difference between two units, seed {seeds[0]}", fontsize=8)
    _epoch_ticks(ax, max((len(t) for t in traces.values()), default=1))
    ax.grid(alpha=0.3)
    fig.legend(fontsize=7, loc="outside right upper", frameon=False)
    fig.suptitle(f"tanh MLP {data.X.shape[1]}-32-32-{data.n_classes}, SGD lr 0.1", fontsize=9)
    _save(fig, os.path.join(out, "symmetry.png"))
    rows = [[label, fmt(min(v), 3), fmt(max(v), 3)] for label, v in spreads.items()]
    md = ["### (a) Zero and constant initialization: symmetry never breaks, unless per-unit noise breaks it",
          '<a id="symmetry"></a>', "",
          f"MLP {data.X.shape[1]}-32-32-{data.n_classes}, tanh, SGD lr 0.1, batch 64, {epochs} epochs on "
          f"{data.name}, {len(seeds)} seeds. 'spread' is the largest difference between the incoming weights of two "
          "units of one hidden layer: 0 means every hidden unit is a copy of the first. Dropout draws a mask per "
          "unit, which the theorem's no-noise assumption excludes.", "",
          md_table(["init", "smallest spread over seeds", "largest spread over seeds"], rows), "",
          "![spread between hidden units per epoch](symmetry.png)", "",
          f"**Verdict:** {verdict}.", ""]
    return claims, "\n".join(md), {"symmetry": {"spreads": spreads, "traces": traces}}


def depth(data: Data, out: str, mode: str, seed: int):
    data = _subset(data)
    layers = 4 if mode == "smoke" else 30
    epochs = _epochs(mode, 40, 40)
    width, lr, batch = 64, 0.005, 16
    seeds = _seeds(mode, seed)
    inits = (("He (fan_in, 2/n)", "he_normal"), ("Xavier (fan_avg, 1/n)", "xavier_normal"))
    acc = {label: [] for label, _ in inits}
    curves = {}
    for s in seeds:
        for label, init in inits:
            _, hist, a = _train(data, [width] * layers, "relu", init, "sgd", lr, epochs, batch, s)
            acc[label].append(a)
            if s == seeds[0]:
                curves[label] = _curves(hist)
    he, xa = np.array(acc["He (fan_in, 2/n)"]), np.array(acc["Xavier (fan_avg, 1/n)"])
    chance = 1.0 / data.n_classes
    from .claims import paired_interval
    j = judge_paired(he, xa, margin=0.5)
    _, he_lo, he_hi = paired_interval(he, np.zeros_like(he))
    _, xa_lo, xa_hi = paired_interval(xa, np.zeros_like(xa))
    trained, stalled = he_lo > 0.8, xa_hi < chance + 0.05
    if j.verdict == "verified" and trained and stalled:
        verdict = "verified"
    elif j.verdict == "refuted" or he_hi < 0.8 or xa_lo > chance + 0.05:
        verdict = "refuted"
    else:
        verdict = "inconclusive"
    _plot(os.path.join(out, "depth.png"), curves, f"{layers}-layer ReLU MLP, plain SGD lr {lr}: He vs Xavier "
          f"(seed {seeds[0]})")
    claims = [Claim("training", f"a {layers}-layer ReLU MLP trains with He initialization (test accuracy > 80%) "
                    "and stays at chance with Xavier (He et al. 2015)",
                    derived="He keeps E[x^2]; Xavier halves it per layer: 2^-30 after 30",
                    training=f"test accuracy after {epochs} epochs: He {fmt(he.mean(), 3)} (95% CI "
                             f"[{fmt(he_lo, 3)}, {fmt(he_hi, 3)}]), Xavier {fmt(xa.mean(), 3)} (CI [{fmt(xa_lo, 3)}, "
                             f"{fmt(xa_hi, 3)}]; chance {fmt(chance, 3)})",
                    verdict=verdict, evidence=j.evidence,
                    quantity="test accuracy at the last epoch (no selection), He and Xavier at the same budget",
                    direction="He above 80%, Xavier within 5 points of chance, He - Xavier above 50 points",
                    test="95% t intervals over seeds: He's lower bound > 0.8, Xavier's upper bound < chance + "
                         "0.05, the paired difference's lower bound > 0.5",
                    link="training.md#depth")]
    rows = [[s, fmt(a, 3), fmt(b, 3)] for s, a, b in zip(seeds, he, xa)]
    md = ["### (b) He et al. 2015's depth experiment", '<a id="depth"></a>', "",
          f"{layers} hidden ReLU layers of width {width}, plain SGD lr {lr}, batch {batch}, {epochs} epochs on "
          f"{data.name}, {len(seeds)} seeds; test accuracy of the last epoch.", "",
          md_table(["seed", "He test accuracy", "Xavier test accuracy"], rows), "",
          f"{j.evidence}.", "", "![depth](depth.png)", "", f"**Verdict:** {verdict}.", ""]
    return claims, "\n".join(md), {"depth": {"test_acc": {k: list(v) for k, v in acc.items()}, "curves": curves}}


PAIRS = (("tanh", "xavier_normal"), ("relu", "he_normal"), ("selu", "lecun_normal"))
MISMATCHED = "W = 0.01 randn"      # the init "normal" with std 0.01


def pairs(data: Data, out: str, mode: str, seed: int):
    """Each activation with its derived init against the lecture's mismatched W = 0.01 randn, same budget:
    a deep enough MLP (10 hidden layers) that the initialization decides whether it trains."""
    data = _subset(data)
    epochs = _epochs(mode, 10, 30)
    layers = 3 if mode == "smoke" else 10
    width, lr, batch = 64, 0.05, 32
    seeds = _seeds(mode, seed)
    claims, rows, res, curves = [], [], {}, {}
    for act, init in PAIRS:
        acc = {init: [], MISMATCHED: []}
        for s in seeds:
            for key, ini, kw in ((init, init, None), (MISMATCHED, "normal", {"std": 0.01})):
                _, hist, a = _train(data, [width] * layers, act, ini, "sgd", lr, epochs, batch, s, init_kwargs=kw)
                acc[key].append(a)
                if s == seeds[0]:
                    curves[f"{act} + {key}"] = _curves(hist)
        j = judge_paired(acc[init], acc[MISMATCHED], margin=0.1)
        res[f"{act} + {init}"] = {"test_acc": acc[init], "mismatched_test_acc": acc[MISMATCHED], "judgement": j.detail}
        rows.append([f"{act} + {init}", fmt(np.mean(acc[init]), 3), fmt(np.mean(acc[MISMATCHED]), 3), j.evidence,
                     j.verdict])
        claims.append(Claim("training", f"{act} with {init} trains a {layers}-hidden-layer MLP where the mismatched "
                            f"W = 0.01 randn does not", derived="variance-preserving pair",
                            training=f"test accuracy {fmt(np.mean(acc[init]), 3)} vs {fmt(np.mean(acc[MISMATCHED]), 3)}",
                            verdict=j.verdict, evidence=j.evidence,
                            quantity="test accuracy at the last epoch, matched init and W = 0.01 randn, same budget",
                            direction="the matched init is more than 10 points above the mismatched one",
                            test="95% t interval of the paired differences over seeds: lower bound > 0.1 verifies, "
                                 "upper bound < 0.1 refutes",
                            link="training.md#pairs"))
    # the sigmoid against tanh, both with Xavier: the derived sigma' <= 1/4 makes the deep sigmoid net stall
    sig = []
    for s in seeds:
        _, hist, a = _train(data, [width] * layers, "sigmoid", "xavier_normal", "sgd", lr, epochs, batch, s)
        sig.append(a)
        if s == seeds[0]:
            curves["sigmoid + xavier_normal"] = _curves(hist)
    tanh_acc = res["tanh + xavier_normal"]["test_acc"]
    j = judge_paired(tanh_acc, sig, margin=0.1)
    res["sigmoid + xavier_normal"] = {"test_acc": sig, "judgement": j.detail}
    rows.append(["sigmoid + xavier_normal (against tanh + xavier_normal)", fmt(np.mean(sig), 3),
                 fmt(np.mean(tanh_acc), 3) + " (tanh)", j.evidence, j.verdict])
    claims.append(Claim("training", f"sigmoid with Xavier stalls in a {layers}-hidden-layer MLP where tanh with Xavier "
                        "trains (sigma' <= 1/4: the vanishing gradient)", derived="gradient bound (1/4)^L prod ||W_l|| "
                        "(derive sigmoid)", training=f"test accuracy {fmt(np.mean(sig), 3)} vs tanh {fmt(np.mean(tanh_acc), 3)}",
                        verdict=j.verdict, evidence=j.evidence,
                        quantity="test accuracy at the last epoch, sigmoid and tanh with the same Xavier init and budget",
                        direction="tanh more than 10 points above sigmoid",
                        test="95% t interval of the paired differences over seeds: lower bound > 0.1 verifies, "
                             "upper bound < 0.1 refutes", link="training.md#pairs"))
    _plot(os.path.join(out, "pairs.png"), {k: v for k, v in curves.items() if MISMATCHED not in k},
          f"matched activation and initialization pairs, {layers} hidden layers, SGD (seed {seeds[0]})")
    md = ["### (c) Activation and initialization pairs against a mismatched init", '<a id="pairs"></a>', "",
          f"MLP with {layers} hidden layers of width {width}, SGD lr {lr}, batch {batch}, {epochs} epochs on "
          f"{data.name}, {len(seeds)} seeds; each pair against W = 0.01 randn at the same budget.", "",
          md_table(["pair", "test accuracy", "with W = 0.01 randn", "paired difference", "verdict"], rows), "",
          "![pairs](pairs.png)", ""]
    return claims, "\n".join(md), {"pairs": {"runs": res, "curves": curves}}


def regularization(data: Data, out: str, mode: str, seed: int):
    """Train on a small subset; judge on the rest of the training split and the test split, never on the
    validation split, which early stopping uses to select its epoch."""
    n_small = 150
    epochs = _epochs(mode, 80, 200)
    seeds = _seeds(mode, seed)
    Xs, ys = data.X[:n_small], data.y[:n_small]
    Xh = np.concatenate([data.X[n_small:], data.Xt])
    yh = np.concatenate([data.y[n_small:], data.yt])
    settings = [("none", {}), ("L2 (weight decay 1e-2)", {"weight_decay": 1e-2}), ("dropout 0.5", {"dropout": 0.5}),
                ("batch norm", {"batchnorm": True}), ("early stopping", {"early_stopping": True, "patience": 10})]
    held = {label: [] for label, _ in settings}
    held_loss = {label: [] for label, _ in settings}
    gap = {label: [] for label, _ in settings}
    curves, best = {}, []
    for s in seeds:
        for label, kw in settings:
            trainer, hist, _ = _train(data, [256, 256], "relu", "he_normal", "adam", 1e-3, epochs, 16, s,
                                      X=Xs, y=ys, **kw)
            _, train_acc = trainer.evaluate(Xs, ys)
            hl, ha = trainer.evaluate(Xh, yh)
            held[label].append(float(ha))
            held_loss[label].append(float(hl))
            gap[label].append(float(train_acc) - float(ha))
            if label == "early stopping":
                best.append(hist.best_epoch)
            if s == seeds[0]:
                curves[label] = _curves(hist)
    claims, rows = [], []
    for label, _ in settings:
        rows.append([label, fmt(np.mean(gap[label]), 3), fmt(np.mean(held[label]), 3), fmt(np.mean(held_loss[label]), 3)])
    for label, _ in settings[1:-1]:
        j = judge_paired(held[label], held["none"])
        claims.append(Claim("training", f"{label} narrows the train/held-out accuracy gap on a small training set",
                            derived="regularization trades bias for variance",
                            training=f"gap {fmt(np.mean(gap[label]), 3)} vs {fmt(np.mean(gap['none']), 3)} without; "
                                     f"held-out accuracy {fmt(np.mean(held[label]), 3)} vs {fmt(np.mean(held['none']), 3)}",
                            verdict=j.verdict, evidence=j.evidence,
                            quantity=f"held-out accuracy (the {len(yh)} samples of the rest of the training split and "
                                     "the test split) after training on 150 samples; training accuracy is ~1 for all",
                            direction="higher with the regularizer than without (a narrower gap)",
                            test="95% t interval of the paired differences over seeds: above 0 verifies, below 0 "
                                 "refutes, straddling 0 is inconclusive",
                            link="training.md#regularization"))
    j = judge_paired(held_loss["none"], held_loss["early stopping"])
    claims.append(Claim("training", "early stopping (selected on the validation split) ends below the held-out "
                        "loss of training to the end", derived="the validation loss rises once the network overfits",
                        training=f"held-out loss {fmt(np.mean(held_loss['early stopping']), 3)} vs "
                                 f"{fmt(np.mean(held_loss['none']), 3)} after {epochs} epochs (best epochs "
                                 f"{', '.join(str(b) for b in best)})",
                        verdict=j.verdict, evidence=j.evidence,
                        quantity="held-out cross-entropy (rest of the training split + test split; the validation "
                                 "split only selects the epoch)",
                        direction="lower with early stopping",
                        test="95% t interval of the paired differences (no early stopping minus early stopping) "
                             "over seeds: above 0 verifies, below 0 refutes",
                        link="training.md#regularization"))
    _plot(os.path.join(out, "regularization.png"), curves, f"{n_small} training samples: regularizers (seed {seeds[0]})")
    md = ["### (d) Regularization on a small training set", '<a id="regularization"></a>', "",
          f"{n_small} training samples of {data.name}, MLP {data.X.shape[1]}-256-256-{data.n_classes}, ReLU + He, "
          f"Adam lr 1e-3, batch 16, up to {epochs} epochs, {len(seeds)} seeds. Held out (judges): the other "
          f"{len(yh)} samples of the training split and the test split; the validation split only selects "
          "early stopping's epoch. The gap is train minus held-out accuracy (means over seeds).", "",
          md_table(["regularizer", "gap", "held-out acc", "held-out loss"], rows), "",
          "![regularization](regularization.png)", ""]
    return claims, "\n".join(md), {"regularization": {"held_out_acc": held, "held_out_loss": held_loss, "gap": gap,
                                                      "curves": curves}}


def batchnorm_lr(data: Data, out: str, mode: str, seed: int):
    data = _subset(data)
    epochs = _epochs(mode, 8, 20)
    lr = 1.0
    seeds = _seeds(mode, seed)
    acc = {"without batch norm": [], "with batch norm": []}
    diverged = {"without batch norm": [], "with batch norm": []}
    curves, first_div = {}, {}
    for s in seeds:
        for label, bn in (("without batch norm", False), ("with batch norm", True)):
            _, hist, a = _train(data, [128] * 6, "relu", "he_normal", "sgd", lr, epochs, 64, s, batchnorm=bn)
            # a diverged network predicts nothing: scored as chance
            acc[label].append(1.0 / data.n_classes if hist.diverged or not math.isfinite(a) else a)
            diverged[label].append(bool(hist.diverged))
            if s == seeds[0]:
                curves[label] = _curves(hist)
                first_div[label] = bool(hist.diverged)
    j = judge_paired(acc["with batch norm"], acc["without batch norm"], margin=0.1)
    _plot(os.path.join(out, "batchnorm_lr.png"), curves, f"6-layer ReLU MLP, SGD lr {lr} (seed {seeds[0]})",
          diverged=first_div)
    claims = [Claim("training", f"batch norm lets a larger learning rate (SGD lr {lr}) train", derived=
                    "BN is invariant to the scale of the preceding weights (derive batchnorm)",
                    training=f"test accuracy with BN {fmt(np.mean(acc['with batch norm']), 3)}; without "
                             f"{fmt(np.mean(acc['without batch norm']), 3)} ({sum(diverged['without batch norm'])} of "
                             f"{len(seeds)} diverged)",
                    verdict=j.verdict, evidence=j.evidence,
                    quantity="test accuracy at the last epoch (a diverged run scores chance), with and without "
                             "batch norm at the same budget",
                    direction="more than 10 points higher with batch norm",
                    test="95% t interval of the paired differences over seeds: lower bound > 0.1 verifies, upper "
                         "bound < 0.1 refutes", link="training.md#batchnorm_lr")]
    rows = [[s, fmt(a, 3) + (" (diverged)" if da else ""), fmt(b, 3) + (" (diverged)" if db else "")]
            for s, a, b, da, db in zip(seeds, acc["without batch norm"], acc["with batch norm"],
                                       diverged["without batch norm"], diverged["with batch norm"])]
    md = ["### (e) Batch norm and a large learning rate", '<a id="batchnorm_lr"></a>', "",
          f"6 hidden ReLU layers of width 128, He init, plain SGD lr {lr}, batch 64, {epochs} epochs on {data.name}, "
          f"{len(seeds)} seeds.", "", md_table(["seed", "without batch norm", "with batch norm"], rows), "",
          f"{j.evidence}.", "", "![batch norm](batchnorm_lr.png)", ""]
    return claims, "\n".join(md), {"batchnorm_lr": {"test_acc": acc, "diverged": diverged, "curves": curves}}


def differences(data: Data, out: str, mode: str, seed: int):
    """The framework defaults beside the derived values, each with its conditions. No claim is judged here:
    a constant against a constant is not a test; the claim behind the tanh row (PyTorch's 5/3 keeps its own
    q* = 1.178) is simulated in simulations.md#gains."""
    from varprop.nn.init.differences import table
    conditions = {"tanh": "exact at q = 1 only; PyTorch's 5/3 keeps its own fixed point q* = 1.178 (chi_1 = 1.210), "
                          "see simulations.md#gains",
                  "selu": "deliberate in PyTorch: it gives up self-normalization for more stable gradients and "
                          "advises 'linear' (gain 1) for self-normalizing networks"}
    rows = []
    for r in table(measure=False):
        rel = r.relative
        rows.append([r.what, fmt(r.theirs, 6), "-" if r.exact is None else fmt(r.exact, 6),
                     "-" if rel is None else f"{rel:+.2%}", conditions.get(r.key, r.note)])
    md = ["### (f) Where PyTorch's and Keras's defaults differ from the derived values", '<a id="differences"></a>',
          "", "Each derived value holds under its conditions (a gain at the q it is computed at); the table is "
          "context, not a claim.", "",
          md_table(["what", "framework", "derived", "relative", "conditions"], rows), ""]
    return [], "\n".join(md), {"differences": [r.__dict__ for r in table(measure=False)]}


EXPERIMENTS = (symmetry, depth, pairs, regularization, batchnorm_lr, differences)


def write_json(out: str, blob: dict) -> None:
    from varprop.io import atomic_write_text
    atomic_write_text(os.path.join(out, "training.json"),
                      json.dumps(blob, indent=2, sort_keys=True, default=float) + "\n")

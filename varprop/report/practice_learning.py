"""The report's claims on training practice: multi-task heads, sparse activations, noise, semi-supervision.

Each experiment trains a claimed setting and its contrast at the same budget (the same number of
optimizer steps, the same network, the same seeds) on the report's data, judges the paired
differences over seeds with :func:`~varprop.report.claims.judge_paired` on the test split (nothing is
selected on it: no early stopping, a fixed number of epochs), and writes one figure.

``EXPERIMENTS = (multitask, sparse, noise, semisupervised)``, each
``fn(data, out_dir, mode, seed) -> (claims, markdown, json_blob)``.
"""
from __future__ import annotations

import io
import math
import os

import numpy as np

from varprop.report.claims import Claim, fmt, judge_paired, md_table

__all__ = ["EXPERIMENTS", "multitask", "sparse", "noise", "semisupervised", "SEEDS"]

SEEDS = {"smoke": 2, "quick": 5, "full": 10}
_BATCH = 64
_HIDDEN = 64


_MAX_ROWS = 6000    # training rows used in "full" mode (Fashion-MNIST has 60000): a few minutes in all


def _capped(data, mode):
    """``data`` with its training split cut to its first ``_MAX_ROWS`` rows in "full" mode."""
    if mode != "full" or len(data.X) <= _MAX_ROWS:
        return data
    from dataclasses import replace
    return replace(data, X=data.X[:_MAX_ROWS], y=data.y[:_MAX_ROWS])


def _seeds(mode: str, seed: int) -> list[int]:
    if mode not in SEEDS:
        raise ValueError(f"mode must be one of {', '.join(SEEDS)}, got {mode!r}")
    return [int(seed) + i for i in range(SEEDS[mode])]


def _epochs(mode: str, quick: int, full: int) -> int:
    return {"smoke": 1, "quick": quick, "full": full}[mode]


def _steps(n: int, epochs: int) -> int:
    return epochs * math.ceil(n / _BATCH)


def _matched_epochs(n_small: int, steps: int) -> int:
    """Epochs over ``n_small`` rows that take (at least) ``steps`` optimizer steps."""
    return max(1, math.ceil(steps / math.ceil(n_small / _BATCH)))


def _trainer(net, loss, epochs, seed, **kw):
    from varprop.nn import get_optimizer
    from varprop.nn.trainer import Trainer
    return Trainer(net, loss, get_optimizer("adam", lr=1e-3), batch_size=_BATCH, epochs=epochs, seed=seed,
                   progress=False, **kw)


def _mlp(data, seed, hidden=(_HIDDEN,)):
    from varprop.nn.network import build_mlp
    return build_mlp(data.X.shape[1], list(hidden), data.n_classes, seed=seed)


def _acc(trainer, X, y) -> float:
    return float(np.mean(trainer.predict(X) == y))


def _save(fig, path):
    from varprop.io import atomic_write_bytes
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=200, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def _paired_figure(path, seeds, a, b, labels, ylabel, title):
    """Per seed, the claimed setting against its contrast, joined by a line (a slope chart)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5.2, 3.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for s, u, v in zip(seeds, b, a):
        ax.plot([0, 1], [u, v], "-o", color="0.55", ms=4, lw=0.8)
    ax.plot([0, 1], [np.mean(b), np.mean(a)], "-s", color="C3", ms=6, lw=2, label="mean over seeds")
    ax.set_xticks([0, 1], [labels[1], labels[0]])
    ax.set_xlim(-0.3, 1.3)
    lo, hi = min(min(a), min(b)), max(max(a), max(b))
    pad = 0.1 * (hi - lo) if hi > lo else 0.01
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, path)


def _claim(claim, judgement, anchor, quantity, direction, test, training):
    return Claim("training", claim, training=training, verdict=judgement.verdict, link=f"training.md#{anchor}",
                 quantity=quantity, direction=direction, test=test, evidence=judgement.evidence)


def _table(seeds, a, b, labels):
    rows = [[s, fmt(u, 4), fmt(v, 4), fmt(u - v, 3)] for s, u, v in zip(seeds, a, b)]
    return md_table(["seed", labels[0], labels[1], "difference"], rows)


_TEST = ("95% t interval of the paired differences over seeds (test split, fixed epochs, no selection on it); "
         "verified if it lies above 0, refuted if below, else inconclusive")


# ----------------------------------------------------------------------------------------------------
def multitask(data, out_dir, mode, seed):
    """A shared trunk with a digit head and an image-reconstruction head, against the single-task net,
    with 10% of the labels."""
    data = _capped(data, mode)
    from varprop.nn.multitask import MultiTaskLoss, aux_targets, build_multitask, predict_heads
    from varprop.nn.semisupervised import mask_labels, oversample_labelled
    # the setup (pooled-image task, weight 0.3, labelled rows oversampled) was chosen on the validation
    # split with seeds 100-103, apart from the seeds and the split judged here
    seeds, fraction, weight = _seeds(mode, seed), 0.1, 0.3
    epochs = _epochs(mode, 12, 30)
    mt, st = [], []
    steps = None
    for s in seeds:
        ym = mask_labels(data.y, fraction, s)
        lab = ym >= 0
        heads, T = aux_targets("pooled", data.X, ym, weight=weight, n_classes=data.n_classes)
        rows, _ = oversample_labelled(np.arange(len(data.X)), ym)
        steps = _steps(len(rows), epochs)
        t = _trainer(build_multitask(data.X.shape[1], [_HIDDEN], heads, seed=s), MultiTaskLoss(heads), epochs, s)
        t.fit(data.X[rows], T[rows])
        mt.append(float(np.mean(predict_heads(t, data.Xt)[0] == data.yt)))
        t = _trainer(_mlp(data, s), "cross_entropy", _matched_epochs(int(lab.sum()), steps), s)
        t.fit(data.X[lab], data.y[lab])
        st.append(_acc(t, data.Xt, data.yt))
    j = judge_paired(mt, st)
    labels = ("multi-task", "single-task")
    _paired_figure(os.path.join(out_dir, "practice_multitask.png"), seeds, mt, st, labels,
                   "test accuracy (digit class)", f"{data.name}: {int(fraction * 100)}% labels, shared trunk "
                   f"vs single task, {steps} steps")
    claim = _claim("with 10% of the labels, a shared trunk that also regresses the 2x2-pooled image (on every "
                   "training image) classifies better than the single-task net", j, "practice-multitask",
                   "test accuracy of the main (digit) head", "multi-task minus single-task > 0", _TEST,
                   f"mean test accuracy {fmt(np.mean(mt), 3)} (multi-task) vs {fmt(np.mean(st), 3)} (single task)")
    md = ["### Multi-task learning with few labels", '<a id="practice-multitask"></a>', "",
          f"MLP {data.X.shape[1]}-{_HIDDEN}-heads on {data.name}; {int(fraction * 100)}% of the training labels "
          f"(stratified, per seed). Multi-task: the trunk feeds a digit head (cross-entropy on the labelled rows) "
          f"and a regression head for the {data.X.shape[1] // 4} 2x2-pooled pixels (mse on every training row, "
          f"weight {weight:g}); the labelled rows are repeated to make about half of the set, so a batch "
          f"carries both, and {epochs} epochs take {steps} Adam steps (lr 1e-3, batch {_BATCH}). The setup "
          "(auxiliary task, weight, oversampling) was chosen on the validation split with seeds 100-103; "
          "without oversampling the digit head sees few labelled rows per step and the multi-task net "
          f"came out slightly worse there. Single task: the same MLP on the labelled rows alone for the same {steps} "
          "steps.", "",
          _table(seeds, mt, st, labels), "", f"Verdict: **{j.verdict}** ({j.evidence}).", "",
          "![multi-task](practice_multitask.png)", ""]
    return [claim], "\n".join(md), {"multitask": {"seeds": seeds, "multitask": mt, "single_task": st,
                                                  "steps": steps, "fraction": fraction, "aux_weight": weight}}


# ----------------------------------------------------------------------------------------------------
def sparse(data, out_dir, mode, seed):
    """An L1 penalty on the hidden activations against none: the fraction of exactly zero ReLU outputs."""
    data = _capped(data, mode)
    from matplotlib.figure import Figure

    from varprop.nn.hooks import zero_fractions
    # lam: on the validation split (seeds 100-102) 1e-2 took the zero fraction from about 0.45 to 0.58 for
    # half a point of accuracy, 3e-2 to 0.65 for one point
    seeds, lam = _seeds(mode, seed), 1e-2
    epochs = _epochs(mode, 10, 30)
    hidden = (_HIDDEN, _HIDDEN)
    z_pen, z_plain, a_pen, a_plain, curves = [], [], [], [], {}
    for s in seeds:
        for label, l1 in (("penalty", lam), ("plain", 0.0)):
            t = _trainer(_mlp(data, s, hidden), "cross_entropy", epochs, s, activation_l1=l1, record_sparsity=True)
            h = t.fit(data.X, data.y)
            z = float(np.mean(zero_fractions(t.network, data.Xt)))
            acc = _acc(t, data.Xt, data.yt)
            (z_pen if l1 else z_plain).append(z)
            (a_pen if l1 else a_plain).append(acc)
            if s == seeds[0]:
                curves[label] = [e["zero_fraction"] for e in h.epochs]
    j = judge_paired(z_pen, z_plain)
    cost = judge_paired(a_plain, a_pen)
    fig = Figure(figsize=(5.6, 3.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for label, c in curves.items():
        c = np.asarray(c, dtype=float)
        for k in range(c.shape[1]):
            ax.plot(np.arange(1, len(c) + 1), c[:, k], "-o" if label == "penalty" else "--s", ms=3,
                    label=f"{label}, hidden layer {k + 1}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("fraction of zero activations (training batches)")
    ax.set_title(f"{data.name}: ReLU MLP, activation L1 {lam:g} vs none (seed {seeds[0]})", fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, os.path.join(out_dir, "practice_sparse.png"))
    claim = _claim("an L1 penalty on the hidden activations raises the fraction of zero ReLU activations "
                   "against no penalty at the same budget", j, "practice-sparse",
                   "fraction of exactly zero hidden outputs on the test split (test mode, mean over the 2 layers)",
                   "penalty minus plain > 0", _TEST,
                   f"zero fraction {fmt(np.mean(z_pen), 3)} vs {fmt(np.mean(z_plain), 3)}; accuracy cost "
                   f"{fmt(np.mean(a_plain) - np.mean(a_pen), 3)} ({cost.evidence})")
    labels = ("penalty", "plain")
    md = ["### Sparse representations: an L1 penalty on the activations", '<a id="practice-sparse"></a>', "",
          f"MLP {data.X.shape[1]}-{_HIDDEN}-{_HIDDEN}-{data.n_classes}, ReLU, He init, Adam lr 1e-3, batch {_BATCH}, "
          f"{epochs} epochs on {data.name}, with the penalty lam/m sum |a| = {lam:g}/m sum |a| on both hidden "
          "layers' outputs, or without it. Zero fraction on the test split:", "",
          _table(seeds, z_pen, z_plain, labels), "",
          f"Verdict: **{j.verdict}** ({j.evidence}). The price in test accuracy (plain minus penalty): "
          f"{cost.evidence}; mean accuracy {fmt(np.mean(a_pen), 3)} with the penalty, "
          f"{fmt(np.mean(a_plain), 3)} without. The figure shows the per-layer zero fraction that "
          "`History` records every epoch.", "", "![sparse](practice_sparse.png)", ""]
    return [claim], "\n".join(md), {"sparse": {"seeds": seeds, "l1": lam, "zero_penalty": z_pen,
                                               "zero_plain": z_plain, "acc_penalty": a_pen, "acc_plain": a_plain,
                                               "curves_first_seed": curves}}


# ----------------------------------------------------------------------------------------------------
def noise(data, out_dir, mode, seed):
    """Training with Gaussian input noise against the plain net, scored on noisy test inputs."""
    data = _capped(data, mode)
    from varprop import streams
    seeds, sigma = _seeds(mode, seed), 1.0
    epochs = _epochs(mode, 10, 30)
    noisy, plain = [], []
    Xn = (data.Xt + streams.normal(int(seed), (0, 41), data.Xt.shape, np.float64, std=sigma)).astype(data.Xt.dtype)
    for s in seeds:
        for arm, sd in ((noisy, sigma), (plain, 0.0)):
            t = _trainer(_mlp(data, s), "cross_entropy", epochs, s, input_noise=sd)
            t.fit(data.X, data.y)
            arm.append(_acc(t, Xn, data.yt))
    j = judge_paired(noisy, plain)
    labels = ("input-noise training", "plain")
    _paired_figure(os.path.join(out_dir, "practice_noise.png"), seeds, noisy, plain, labels,
                   f"accuracy on test inputs + N(0, {sigma:g}^2)", f"{data.name}: train-time input noise "
                   f"sigma {sigma:g} vs none")
    claim = _claim(f"training with Gaussian input noise (sigma {sigma:g}) raises the accuracy on test inputs with "
                   f"the same noise against the plain net", j, "practice-noise",
                   f"test accuracy on inputs + N(0, {sigma:g}^2) (one fixed draw, standardized units)",
                   "noise-trained minus plain > 0", _TEST,
                   f"noisy-test accuracy {fmt(np.mean(noisy), 3)} vs {fmt(np.mean(plain), 3)}")
    md = ["### Noise robustness: Gaussian noise on the inputs in training", '<a id="practice-noise"></a>', "",
          f"MLP {data.X.shape[1]}-{_HIDDEN}-{data.n_classes}, ReLU, Adam lr 1e-3, batch {_BATCH}, {epochs} epochs "
          f"on {data.name} (standardized), with N(0, {sigma:g}^2) added to every training input afresh at each "
          f"step (`input_noise={sigma:g}`) or not; both scored on the test split with one fixed draw of "
          f"N(0, {sigma:g}^2) added.", "", _table(seeds, noisy, plain, labels), "",
          f"Verdict: **{j.verdict}** ({j.evidence}).", "", "![noise](practice_noise.png)", ""]
    return [claim], "\n".join(md), {"noise": {"seeds": seeds, "sigma": sigma, "noise_trained": noisy,
                                              "plain": plain}}


# ----------------------------------------------------------------------------------------------------
# the semi-supervised settings the report chooses among, on the validation split with seeds of their own
_SSL_CONFIGS = {
    "pseudo-labels above 0.8 + consistency 1": dict(threshold=0.8, pseudo_weight=1.0, consistency=1.0,
                                                     view_noise=0.3, view_shift=0),
    "pseudo-labels above 0.95 + consistency 1": dict(threshold=0.95, pseudo_weight=1.0, consistency=1.0,
                                                      view_noise=0.3, view_shift=0),
    "pseudo-labels above 0.8 + consistency 0.3": dict(threshold=0.8, pseudo_weight=1.0, consistency=0.3,
                                                       view_noise=0.3, view_shift=0),
    "pseudo-labels above 0.9 alone": dict(threshold=0.9, pseudo_weight=1.0, consistency=0.0, view_noise=0.3,
                                          view_shift=0),
}
_SELECTION_OFFSET = 100   # selection seeds are seed + 100, 101, ...: apart from the judged ones


def _ssl_fit(data, cfg, s, epochs, fraction):
    from varprop.nn.semisupervised import SemiSupervisedLoss, mask_labels, oversample_labelled
    ym = mask_labels(data.y, fraction, s)
    Xs, ys = oversample_labelled(data.X, ym)
    t = _trainer(_mlp(data, s), SemiSupervisedLoss(**cfg), epochs, s)
    t.fit(Xs, ys)
    return t, ym >= 0, _steps(len(Xs), epochs)


def semisupervised(data, out_dir, mode, seed):
    """Pseudo-labels and consistency on the unlabelled 90% against the labelled 10% alone; the setting is
    chosen on the validation split with seeds apart from the judged ones."""
    data = _capped(data, mode)
    seeds, fraction = _seeds(mode, seed), 0.1
    epochs = _epochs(mode, 12, 30)
    pick = [int(seed) + _SELECTION_OFFSET + i for i in range(1 if mode == "smoke" else 2)]
    val = {name: float(np.mean([_acc(_ssl_fit(data, c, s, epochs, fraction)[0], data.Xv, data.yv) for s in pick]))
           for name, c in _SSL_CONFIGS.items()}
    chosen = max(_SSL_CONFIGS, key=lambda k: (val[k], -list(_SSL_CONFIGS).index(k)))   # ties: the first
    cfg = _SSL_CONFIGS[chosen]
    ssl, sup = [], []
    steps = None
    for s in seeds:
        t, lab, steps = _ssl_fit(data, cfg, s, epochs, fraction)
        ssl.append(_acc(t, data.Xt, data.yt))
        t = _trainer(_mlp(data, s), "cross_entropy", _matched_epochs(int(lab.sum()), steps), s)
        t.fit(data.X[lab], data.y[lab])
        sup.append(_acc(t, data.Xt, data.yt))
    j = judge_paired(ssl, sup)
    labels = ("semi-supervised", "labelled only")
    _paired_figure(os.path.join(out_dir, "practice_semisupervised.png"), seeds, ssl, sup, labels, "test accuracy",
                   f"{data.name}: {int(fraction * 100)}% labels, {chosen} vs labelled only")
    claim = _claim("with 10% of the labels, pseudo-labels above a confidence threshold plus a consistency term on "
                   "the unlabelled rest beat training on that 10% alone", j, "practice-semisupervised",
                   "test accuracy", "semi-supervised minus labelled-only > 0", _TEST,
                   f"test accuracy {fmt(np.mean(ssl), 3)} vs {fmt(np.mean(sup), 3)} ({chosen}, chosen on the "
                   "validation split)")
    table = ["| setting | validation accuracy (selection seeds) |", "| --- | --- |"]
    table += [f"| {k}{' (chosen)' if k == chosen else ''} | {fmt(v, 3)} |" for k, v in val.items()]
    md = ["### Semi-supervised learning with 10% of the labels", '<a id="practice-semisupervised"></a>', "",
          f"MLP {data.X.shape[1]}-{_HIDDEN}-{data.n_classes}, ReLU, Adam lr 1e-3, batch {_BATCH} on {data.name}. "
          f"{int(fraction * 100)}% of the training labels kept (stratified, per seed); the labelled rows are "
          f"repeated to make about half of the set, then {epochs} epochs = {steps} steps of the two-view "
          f"objective (views: N(0, {cfg['view_noise']:g}^2) input noise; pseudo-labels above confidence "
          f"{cfg['threshold']:g}, weight {cfg['pseudo_weight']:g}; consistency |p1 - p2|^2, weight "
          f"{cfg['consistency']:g}). The setting is chosen among {len(_SSL_CONFIGS)} by the mean validation "
          f"accuracy over selection seeds {', '.join(map(str, pick))} (their own label masks and "
          "initializations), then judged on the test split with the seeds below. Contrast: the same MLP on the "
          "labelled rows alone for the same number of steps.", "", *table, "",
          _table(seeds, ssl, sup, labels), "", f"Verdict: **{j.verdict}** ({j.evidence}).", "",
          "![semi-supervised](practice_semisupervised.png)", ""]
    return [claim], "\n".join(md), {"semisupervised": {"seeds": seeds, "semisupervised": ssl, "labelled_only": sup,
                                                       "steps": steps, "fraction": fraction, "config": cfg,
                                                       "chosen": chosen, "selection_seeds": pick,
                                                       "validation": val}}

EXPERIMENTS = (multitask, sparse, noise, semisupervised)

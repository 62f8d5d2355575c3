"""Training practice of the lecture notes, judged over seeds: image augmentation and test-time augmentation,
stochastic depth, ensembles.

Every experiment trains on a small labelled subset of the training split (few examples, where these
practices are meant to matter), for a fixed number of epochs (nothing stops early, so no selection touches
the test split), and compares the claimed setting with its contrast at the same budget (same epochs, batch
size, optimizer and steps) on the same seeds; :func:`~varprop.report.claims.judge_paired` turns the paired
test-accuracy differences into a three-valued verdict. Where a choice is made (which augmentation set), it is
made on the validation split.

The inputs are the report's (standardized with the training split's statistics): the augmentations act on
those standardized images, whose constant background is 0, the value a warp brings in from outside the frame
and cutout writes.
"""
from __future__ import annotations

import io
import math

import numpy as np

from .claims import Claim, fmt, judge_paired, md_table, paired_interval

__all__ = ["EXPERIMENTS", "augmentation", "stochastic_depth", "ensemble"]

_SEEDS = {"smoke": 2, "quick": 5, "full": 10}
_SECTION = "training"


def _budget(mode: str, data) -> tuple[int, int]:
    """(labelled examples, epochs) of a mode."""
    if mode not in _SEEDS:
        raise ValueError(f"mode must be one of {', '.join(_SEEDS)}, got {mode!r}")
    n, epochs = {"smoke": (40, 2), "quick": (150, 40), "full": (300, 80)}[mode]
    return min(n, len(data.X)), epochs


def _seeds(mode: str, seed: int) -> list[int]:
    return [int(seed) + i for i in range(_SEEDS[mode])]


def _image_shape(data) -> tuple[int, int]:
    side = math.isqrt(data.X.shape[1])
    if side * side != data.X.shape[1]:
        raise ValueError(f"augmentation needs square images; {data.name} has {data.X.shape[1]} features")
    return side, side


def _trainer(data, hidden, seed, epochs, augment=None, **net_kw):
    from varprop.nn import Trainer, build_mlp, get_optimizer
    net = build_mlp(data.X.shape[1], hidden, data.n_classes, seed=seed, **net_kw)
    return Trainer(net, "cross_entropy", get_optimizer("adam", lr=1e-3), batch_size=32, epochs=epochs, seed=seed,
                   progress=False, augment=augment)


def _acc(pred, y) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(y)))


def _save(fig, path: str) -> None:
    from varprop.io import atomic_write_bytes
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=200, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def _strip(ax, columns: dict, ylabel: str) -> None:
    """One column of per-seed points (and their mean as a bar) per setting."""
    for i, (label, vals) in enumerate(columns.items()):
        vals = np.asarray(vals, float)
        ax.bar(i, vals.mean(), width=0.6, alpha=0.3, color=f"C{i}")
        ax.plot(np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals, "o", ms=3, color=f"C{i}")
    ax.set_xticks(range(len(columns)), list(columns), fontsize=6)
    lo = min(min(v) for v in columns.values())
    hi = max(max(v) for v in columns.values())
    pad = 0.1 * (hi - lo) + 1e-3
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")


def _paired_claim(claim, quantity, direction, a, b, link, training_text, margin=0.0) -> Claim:
    j = judge_paired(a, b, margin)
    return Claim(_SECTION, claim, training=training_text, verdict=j.verdict, link=link, quantity=quantity,
                 direction=direction, test=f"95% t interval of the paired differences over {len(a)} seeds; verified "
                 f"when it lies above {fmt(margin, 3)}, refuted when below, else inconclusive", evidence=j.evidence)


# ------------------------------------------------------------------------------------------------------------
# augmentation and test-time augmentation
# ------------------------------------------------------------------------------------------------------------
_AUG_SETS = {
    "geometric": dict(rotate=10.0, zoom=0.1, translate=0.5),
    "lecture list": dict(rotate=10.0, zoom=0.1, shear=10.0, translate=0.5, brightness=0.1, contrast=0.1, cutout=2),
}
_AUG_TEXT = {"geometric": "rotation within ±10°, zoom within ±10%, translation within ±0.5 px",
             "lecture list": "the geometric set plus shear within ±10°, brightness ±0.1, contrast ±10%, 2x2 cutout"}
_TTA_VIEWS = 8


def augmentation(data, out_dir: str, mode: str, seed: int):
    """Augmented training against none on few examples; then test-time augmentation against none."""
    import os

    from matplotlib.figure import Figure

    from varprop.nn.augment import Augment
    n, epochs = _budget(mode, data)
    shape = _image_shape(data)
    seeds = _seeds(mode, seed)
    hidden = [16] if mode == "smoke" else [128]
    X, y = data.X[:n], data.y[:n]
    res = {"none": {"val": [], "test": []}}
    res.update({k: {"val": [], "test": [], "tta": []} for k in _AUG_SETS})
    for s in seeds:
        t = _trainer(data, hidden, s, epochs)
        t.fit(X, y)
        res["none"]["val"].append(_acc(t.predict(data.Xv), data.yv))
        res["none"]["test"].append(_acc(t.predict(data.Xt), data.yt))
        for name, opts in _AUG_SETS.items():
            aug = Augment(shape, seed=s, stream=1, **opts)
            t = _trainer(data, hidden, s, epochs, augment=aug)
            t.fit(X, y)
            res[name]["val"].append(_acc(t.predict(data.Xv), data.yv))
            res[name]["test"].append(_acc(t.predict(data.Xt), data.yt))
            res[name]["tta"].append(_acc(t.predict(data.Xt, tta=aug, tta_views=_TTA_VIEWS), data.yt))
    # the set to judge is chosen on the validation split (ties: the first)
    chosen = max(_AUG_SETS, key=lambda k: (float(np.mean(res[k]["val"])), -list(_AUG_SETS).index(k)))
    budget = (f"MLP {data.X.shape[1]}-{'-'.join(map(str, hidden))}-{data.n_classes}, ReLU, Adam lr 1e-3, batch 32, "
              f"{epochs} epochs on {n} labelled {data.name} images")
    c_aug = _paired_claim(
        f"augmenting every training batch ({chosen}: {_AUG_TEXT[chosen]}) raises the test accuracy with {n} "
        f"training examples, against no augmentation at the same budget",
        "test accuracy with augmentation minus without, per seed (same seed, data, epochs and steps)",
        "greater than 0", res[chosen]["test"], res["none"]["test"], "training.md#practice-augment",
        f"{budget}; test accuracy {fmt(np.mean(res[chosen]['test']), 3)} vs {fmt(np.mean(res['none']['test']), 3)} "
        f"(set chosen on the validation split among {', '.join(_AUG_SETS)})")
    c_tta = _paired_claim(
        f"test-time augmentation (probabilities averaged over {_TTA_VIEWS} fixed views of the training "
        f"augmentation, the first the image itself) raises the test accuracy of the augmented network",
        "test accuracy with test-time augmentation minus without, same trained network per seed",
        "greater than 0", res[chosen]["tta"], res[chosen]["test"], "training.md#practice-augment",
        f"{budget}, {chosen} set; test accuracy {fmt(np.mean(res[chosen]['tta']), 3)} with TTA vs "
        f"{fmt(np.mean(res[chosen]['test']), 3)} without")
    rows = [["none", fmt(np.mean(res["none"]["val"]), 3), fmt(np.mean(res["none"]["test"]), 3), "-", "-"]]
    for name in _AUG_SETS:
        d, lo, hi = paired_interval(res[name]["test"], res["none"]["test"])
        rows.append([f"{name}{' (chosen)' if name == chosen else ''}", fmt(np.mean(res[name]["val"]), 3),
                     fmt(np.mean(res[name]["test"]), 3), f"{fmt(d, 3)} [{fmt(lo, 3)}, {fmt(hi, 3)}]",
                     fmt(np.mean(res[name]["tta"]), 3)])
    fig = Figure(figsize=(7.2, 3.2), layout="constrained")
    ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    _strip(ax, {"none": res["none"]["test"], **{k: res[k]["test"] for k in _AUG_SETS}}, "test accuracy")
    ax.set_xlabel("training augmentation")
    _strip(bx, {"no TTA": res[chosen]["test"], f"TTA ({_TTA_VIEWS} views)": res[chosen]["tta"]}, "test accuracy")
    bx.set_xlabel(f"prediction ({chosen} set)")
    fig.suptitle(f"augmentation on {n} {data.name} images, {len(seeds)} seeds", fontsize=9)
    _save(fig, os.path.join(out_dir, "practice_augment.png"))
    md = ["### Augmentation and test-time augmentation", '<a id="practice-augment"></a>', "",
          f"{budget}; {len(seeds)} seeds, each giving the weights, the batch order and the augmentations. Every "
          "training batch is warped afresh (exact bilinear affine resampling about the image centre, "
          "`varprop.nn.augment`). The set judged is chosen by mean validation accuracy; the claims are judged on "
          f"the test split ({len(data.yt)} images). TTA averages the softmax over {_TTA_VIEWS} fixed views.", "",
          md_table(["training augmentation", "validation accuracy", "test accuracy",
                    "paired test difference vs none [95% CI]", f"test accuracy with TTA ({_TTA_VIEWS} views)"], rows),
          "", "![augmentation](practice_augment.png)", ""]
    blob = {"practice_augment": {"seeds": seeds, "n_train": n, "epochs": epochs, "hidden": hidden, "chosen": chosen,
                                 "sets": {k: dict(v) for k, v in _AUG_SETS.items()}, "tta_views": _TTA_VIEWS,
                                 "results": res}}
    return [c_aug, c_tta], "\n".join(md), blob


# ------------------------------------------------------------------------------------------------------------
# stochastic depth
# ------------------------------------------------------------------------------------------------------------
def stochastic_depth(data, out_dir: str, mode: str, seed: int):
    """A deep residual MLP with stochastic depth (linear decay to p_L) against the same net without it."""
    import os

    from matplotlib.figure import Figure
    n, epochs = _budget(mode, data)
    seeds = _seeds(mode, seed)
    width = 16 if mode == "smoke" else 64
    blocks = 3 if mode == "smoke" else 8
    hidden = [width] * (blocks + (data.X.shape[1] != width))    # a first plain layer when the input is wider
    p_last = 0.5
    X, y = data.X[:n], data.y[:n]
    res = {"plain": {"test": [], "val_curve": []}, "stochastic depth": {"test": [], "val_curve": []}}
    for s in seeds:
        for name, p in (("plain", 0.0), ("stochastic depth", p_last)):
            t = _trainer(data, hidden, s, epochs, residual=True, zero_init_residual=True,
                         stochastic_depth=p)
            h = t.fit(X, y, data.Xv, data.yv)
            res[name]["test"].append(_acc(t.predict(data.Xt), data.yt))
            res[name]["val_curve"].append([e["val_acc"] for e in h.epochs])
    net_text = (f"{blocks} residual blocks x + V relu(W x + b) of width {width} (V starts at 0), Adam lr 1e-3, batch "
                f"32, {epochs} epochs on {n} labelled {data.name} images")
    claim = _paired_claim(
        f"stochastic depth (block l of {blocks} skipped in training with probability l/{blocks} x {p_last}, scaled "
        "by its survival probability at test time) raises the test accuracy of a deep residual MLP at the same budget",
        "test accuracy with stochastic depth minus without, per seed", "greater than 0",
        res["stochastic depth"]["test"], res["plain"]["test"], "training.md#practice-stochastic-depth",
        f"{net_text}; test accuracy {fmt(np.mean(res['stochastic depth']['test']), 3)} vs "
        f"{fmt(np.mean(res['plain']['test']), 3)}")
    fig = Figure(figsize=(7.2, 3.2), layout="constrained")
    ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, name in enumerate(res):
        curve = np.mean(np.asarray(res[name]["val_curve"], float), axis=0)
        ax.plot(np.arange(1, len(curve) + 1), curve, color=f"C{i}", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation accuracy (mean of {len(seeds)} seeds)")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    _strip(bx, {k: v["test"] for k, v in res.items()}, "test accuracy")
    fig.suptitle(f"stochastic depth, p_L = {p_last}, {blocks} blocks", fontsize=9)
    _save(fig, os.path.join(out_dir, "practice_stochastic_depth.png"))
    d, lo, hi = paired_interval(res["stochastic depth"]["test"], res["plain"]["test"])
    md = ["### Stochastic depth", '<a id="practice-stochastic-depth"></a>', "",
          f"{net_text}; {len(seeds)} seeds (Huang et al. 2016's linear decay rule p_l = l/L p_L, p_L = {p_last}).", "",
          md_table(["network", "test accuracy (mean)"], [[k, fmt(np.mean(v["test"]), 3)] for k, v in res.items()]),
          "", f"Paired test difference {fmt(d, 3)}, 95% CI [{fmt(lo, 3)}, {fmt(hi, 3)}].", "",
          "![stochastic depth](practice_stochastic_depth.png)", ""]
    blob = {"practice_stochastic_depth": {"seeds": seeds, "n_train": n, "epochs": epochs, "blocks": blocks,
                                          "width": width, "p_last": p_last, "results": res}}
    return [claim], "\n".join(md), blob


# ------------------------------------------------------------------------------------------------------------
# ensembles
# ------------------------------------------------------------------------------------------------------------
def ensemble(data, out_dir: str, mode: str, seed: int):
    """K networks from different seeds, probabilities averaged, against the mean of their members."""
    import os

    from matplotlib.figure import Figure

    from varprop.nn.ensemble import Ensemble
    n, epochs = _budget(mode, data)
    seeds = _seeds(mode, seed)
    k = 3 if mode == "smoke" else 5
    hidden = [16] if mode == "smoke" else [128]
    X, y = data.X[:n], data.y[:n]
    ens_acc, mean_acc, members = [], [], []
    for s in seeds:
        ens = Ensemble(lambda ms: _trainer(data, hidden, ms, epochs), k, seed=s).fit(X, y)
        sc = ens.scores(data.Xt, data.yt)
        ens_acc.append(sc["ensemble"])
        mean_acc.append(sc["member_mean"])
        members.append(sc["members"])
    net_text = (f"MLP {data.X.shape[1]}-{'-'.join(map(str, hidden))}-{data.n_classes}, ReLU, Adam lr 1e-3, batch 32, "
                f"{epochs} epochs on {n} labelled {data.name} images")
    claim = _paired_claim(
        f"an ensemble of {k} networks from different seeds (softmax probabilities averaged) beats its members on "
        "average",
        "test accuracy of the ensemble minus the mean test accuracy of its members, per ensemble seed",
        "greater than 0", ens_acc, mean_acc, "training.md#practice-ensemble",
        f"{net_text}; ensemble {fmt(np.mean(ens_acc), 3)} vs members {fmt(np.mean(mean_acc), 3)}")
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for i, (m, e) in enumerate(zip(members, ens_acc)):
        ax.plot(np.full(len(m), i), m, "o", ms=3, color="C0", label="members" if i == 0 else None)
        ax.plot(i, e, "*", ms=9, color="C3", label="ensemble" if i == 0 else None)
    ax.set_xticks(range(len(seeds)), [str(s) for s in seeds])
    ax.set_xlabel("ensemble seed")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"ensembles of {k} on {n} {data.name} images", fontsize=9)
    _save(fig, os.path.join(out_dir, "practice_ensemble.png"))
    rows = [[str(s), fmt(e, 3), fmt(m, 3), ", ".join(fmt(a, 3) for a in mem)]
            for s, e, m, mem in zip(seeds, ens_acc, mean_acc, members)]
    md = ["### Ensembles", '<a id="practice-ensemble"></a>', "",
          f"{net_text}. Member j of the ensemble of seed s is trained with seed `member_seed(s, j)` "
          "(`varprop.nn.ensemble`), so the ensembles share no member.", "",
          md_table(["ensemble seed", "ensemble test accuracy", "mean of members", "members"], rows), "",
          "![ensembles](practice_ensemble.png)", ""]
    blob = {"practice_ensemble": {"seeds": seeds, "members": k, "n_train": n, "epochs": epochs, "ensemble_acc": ens_acc,
                                  "member_mean_acc": mean_acc, "member_acc": members}}
    return [claim], "\n".join(md), blob


EXPERIMENTS = (augmentation, stochastic_depth, ensemble)

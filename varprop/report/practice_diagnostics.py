"""Training practice from the lecture notes, judged over seeds: greedy layer-wise pretraining of a deep tanh
MLP, dying ReLUs against the learning rate, and the bias-variance decomposition by Monte Carlo.

Each experiment is ``fn(data, out_dir, mode, seed) -> (claims, markdown, json_blob)``; training claims
are paired over seeds (5 in quick, 10 in full, 2 in smoke) against a contrast trained at the same budget,
and judge on the test split at the last epoch (nothing is selected on it).
"""
from __future__ import annotations

import io
import math
import os

import numpy as np

from .claims import K, Claim, fmt, judge_paired, judge_theory, md_table

__all__ = ["EXPERIMENTS", "pretraining", "dying_relu", "bias_variance"]

_SEEDS = {"smoke": 2, "quick": 5, "full": 10}
SECTION = "training practice"


def _seeds(mode: str, seed: int) -> list[int]:
    if mode not in _SEEDS:
        raise ValueError(f"mode must be one of {', '.join(_SEEDS)}, got {mode!r}")
    return [seed + i for i in range(_SEEDS[mode])]


def _save(fig, out_dir: str, name: str) -> str:
    from varprop.io import atomic_write_bytes
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=200, metadata={"Software": None})
    atomic_write_bytes(os.path.join(out_dir, name), buf.getvalue())
    return name


def _figure(ncols: int, width: float = 9.0, height: float = 3.4):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _claim(claim, quantity, direction, test, j, link, training="", derived="", simulated=""):
    return Claim(SECTION, claim, derived=derived, simulated=simulated, training=training, verdict=j.verdict,
                 link=link, quantity=quantity, direction=direction, test=test, evidence=j.evidence)


# -- greedy layer-wise pretraining ----------------------------------------------------------------------
def pretraining(data, out_dir: str, mode: str, seed: int):
    """A deep tanh MLP from a small random init (N(0, 0.01^2)), the same init pretrained layer by layer as
    autoencoders, and Xavier: fine-tuned with the same SGD budget, test accuracy at the last epoch."""
    from varprop.nn import Trainer, build_mlp, get_optimizer
    from varprop.nn.pretrain import pretrain

    seeds = _seeds(mode, seed)
    depth, width = (2, 16) if mode == "smoke" else (4, 64)
    epochs = {"smoke": 1, "quick": 10, "full": 15}[mode]
    pre_epochs = {"smoke": 1, "quick": 5, "full": 5}[mode]
    setups = (("small random N(0, 0.01²)", "normal", {"std": 0.01}, False),
              ("small random + pretraining", "normal", {"std": 0.01}, True),
              ("Xavier normal", "xavier_normal", None, False))
    acc = {s[0]: [] for s in setups}
    curves = {s[0]: None for s in setups}
    recon = []
    for s in seeds:
        for label, init, kw, pre in setups:
            net = build_mlp(data.X.shape[1], [width] * depth, data.n_classes, activation="tanh", init=init,
                            init_kwargs=kw, seed=s)
            if pre:
                recs = pretrain(net, data.X, pre_epochs, optimizer="adam", lr=1e-2, batch_size=32, seed=s)
                recon.append([r["final_mse"] for r in recs])
            tr = Trainer(net, "cross_entropy", get_optimizer("sgd", lr=0.1), batch_size=32, epochs=epochs, seed=s,
                         progress=False)
            hist = tr.fit(data.X, data.y, data.Xv, data.yv)
            acc[label].append(float(tr.evaluate(data.Xt, data.yt)[1]))
            if s == seeds[0]:
                curves[label] = {"epoch": [e["epoch"] for e in hist.epochs],
                                 "val_acc": [e["val_acc"] for e in hist.epochs],
                                 "train_loss": [e["train_loss"] for e in hist.epochs]}
    small, pre, xavier = (np.array(acc[s[0]]) for s in setups)
    link = "training.md#pretraining"
    j1 = judge_paired(pre, small, 0.0)
    j2 = judge_paired(xavier, pre, -0.02)
    budget = (f"tanh MLP {data.X.shape[1]}-{'-'.join([str(width)] * depth)}-{data.n_classes}, fine-tuning SGD lr "
              f"0.1, batch 32, {epochs} epochs; pretraining {pre_epochs} epochs per layer, Adam lr 1e-2")
    claims = [
        _claim("greedy layer-wise pretraining rescues a deep tanh MLP that a small random init leaves stuck "
               "(Hinton & Salakhutdinov 2006)",
               "test accuracy after fine-tuning, pretrained minus not pretrained (same initial weights, same "
               "fine-tuning budget)", "greater than 0", "95% paired t interval over seeds above 0", j1, link,
               training=f"mean test accuracy {fmt(pre.mean(), 3)} pretrained vs {fmt(small.mean(), 3)}; {budget}"),
        _claim("a variance-preserving init (Xavier) does as well as pretraining with no pretraining at all "
               "(seed 003: pretraining 'now replaced by better weight initialization methods')",
               "test accuracy, Xavier minus pretrained", "greater than -0.02 (not worse by 2 points)",
               "95% paired t interval over seeds above -0.02", j2, link,
               training=f"mean test accuracy {fmt(xavier.mean(), 3)} Xavier vs {fmt(pre.mean(), 3)} pretrained"),
    ]
    fig, (ax, bx) = _figure(2)
    for label, c in curves.items():
        ax.plot(c["epoch"], c["train_loss"], marker="o", ms=3, label=label)
        bx.plot(c["epoch"], c["val_acc"], marker="o", ms=3, label=label)
    ax.set_xlabel("fine-tuning epoch")
    ax.set_ylabel("training loss (running mean)")
    bx.set_xlabel("fine-tuning epoch")
    bx.set_ylabel("validation accuracy")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=7)
    fig.suptitle(f"{data.name}: deep tanh MLP, seed {seeds[0]}", fontsize=9)
    png = _save(fig, out_dir, "pretraining.png")
    rows = [[s[0], fmt(np.mean(acc[s[0]]), 4), fmt(np.std(acc[s[0]], ddof=1) if len(seeds) > 1 else 0, 2)]
            for s in setups]
    md = "\n".join([
        "### Greedy layer-wise pretraining", '<a id="pretraining"></a>', "",
        f"{budget}, on {data.name}, {len(seeds)} seeds. Each hidden layer in turn is trained as an autoencoder "
        "(a fresh linear decoder, mean squared reconstruction error) on the outputs of the frozen layers below, "
        "with no labels; then the whole network is fine-tuned with labels. Test accuracy at the last epoch.", "",
        md_table(["start", "mean test accuracy", "sd over seeds"], rows), "",
        "Mean reconstruction MSE per layer after pretraining: "
        + ", ".join(fmt(v, 3) for v in np.mean(recon, axis=0)) + ".", "", f"![pretraining]({png})", ""])
    blob = {"pretraining": {"seeds": seeds, "test_acc": acc, "reconstruction_mse": recon, "curves": curves}}
    return claims, md, blob


# -- dying ReLU -----------------------------------------------------------------------------------------
def dying_relu(data, out_dir: str, mode: str, seed: int):
    """The fraction of hidden units dead on the whole training set through training, plain SGD, for a grid of
    learning rates; ReLU, leaky ReLU and PReLU."""
    from varprop.nn import Trainer, build_mlp, get_optimizer
    from varprop.nn.diagnostics import DeadUnits, dead_fraction

    seeds = _seeds(mode, seed)
    lrs = (0.01, 0.1, 1.0)
    acts = ("relu", "leaky_relu", "prelu")
    width = 16 if mode == "smoke" else 64
    epochs = {"smoke": 1, "quick": 4, "full": 6}[mode]
    dead = {a: {lr: [] for lr in lrs} for a in acts}
    diverged = {a: {lr: 0 for lr in lrs} for a in acts}
    traces = {a: {} for a in acts}
    for a in acts:
        for lr in lrs:
            for s in seeds:
                net = build_mlp(data.X.shape[1], [width, width], data.n_classes, activation=a, init="he_normal",
                                seed=s)
                mon = DeadUnits(net, data.X)
                tr = Trainer(net, "cross_entropy", get_optimizer("sgd", lr=lr), batch_size=32, epochs=epochs, seed=s,
                             progress=False, callback=mon)
                hist = tr.fit(data.X, data.y)
                if hist.diverged:      # the kept weights are the last good ones: measure them too
                    diverged[a][lr] += 1
                    mon.records.append({"epoch": len(hist.epochs) + 1, **dead_fraction(net, data.X)})
                dead[a][lr].append(mon.records[-1]["dead_total"])
                if s == seeds[0]:
                    traces[a][lr] = [(r["epoch"], r["dead_total"]) for r in mon.records]
    link = "training.md#dying-relu"
    hi, lo = np.array(dead["relu"][lrs[-1]]), np.array(dead["relu"][lrs[0]])
    j = judge_paired(hi, lo, 0.0)
    leaky_max = max(max(v) for v in dead["leaky_relu"].values())
    claims = [
        _claim("with a large learning rate ReLU units die (seed 002: 'half the network may die')",
               f"fraction of hidden units dead on the whole training set after {epochs} epochs of SGD, "
               f"lr {lrs[-1]:g} minus lr {lrs[0]:g}", "greater than 0",
               "95% paired t interval over seeds above 0", j, link,
               training=f"mean dead fraction {fmt(hi.mean(), 3)} at lr {lrs[-1]:g}, {fmt(lo.mean(), 3)} at lr {lrs[0]:g}"),
        Claim(SECTION, "leaky ReLU cannot die: its slope is 0.01 > 0 below zero, so every unit passes a gradient "
                       "on every sample", derived="phi'(h) = 0.01 for h < 0: a dead unit is impossible by construction",
              training=f"largest dead fraction measured over the grid and seeds: {fmt(leaky_max, 3)}",
              verdict="verified" if leaky_max == 0.0 else "refuted", link=link,
              quantity="fraction of leaky-ReLU units dead on the training set, every learning rate and seed",
              direction="exactly 0", test="exact: any dead unit refutes (no noise: the fraction is counted)",
              evidence=f"{len(seeds)} seeds x {len(lrs)} learning rates, max {fmt(leaky_max, 3)}"),
    ]
    fig, axes = _figure(3, 10.0, 3.4)
    for ax, a in zip(axes, acts):
        for lr in lrs:
            e, v = zip(*traces[a][lr])
            ax.plot(e, v, marker="o", ms=3, label=f"lr {lr:g}")
        ax.set_title(a, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("fraction of hidden units dead")
    top = max(max(v for _, v in t) for tr_ in traces.values() for t in tr_.values())
    for ax in axes:
        ax.set_ylim(-0.02, max(0.1, 1.1 * top))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(lrs), fontsize=7)
    png = _save(fig, out_dir, "dying_relu.png")
    rows = [[a] + [f"{fmt(np.mean(dead[a][lr]), 3)} (max {fmt(np.max(dead[a][lr]), 3)}"
                   + (f"; {diverged[a][lr]} diverged)" if diverged[a][lr] else ")") for lr in lrs] for a in acts]
    md = "\n".join([
        "### Dying ReLU against the learning rate", '<a id="dying-relu"></a>', "",
        f"MLP {data.X.shape[1]}-{width}-{width}-{data.n_classes}, He normal init, plain SGD, batch 32, {epochs} "
        f"epochs on {data.name}, {len(seeds)} seeds. A unit is dead when its derivative is 0 on every training "
        "sample (for ReLU: its pre-activation is never positive), so no gradient can revive it. A run stopped by "
        f"the divergence rule is measured on the weights it kept. The curves are seed {seeds[0]}'s (lines at 0 lie on "
        "top of each other); the table gives the mean and largest final fraction over seeds.", "",
        md_table(["activation"] + [f"dead fraction, lr {lr:g}" for lr in lrs], rows), "", f"![dying ReLU]({png})", ""])
    blob = {"dying_relu": {"seeds": seeds, "lrs": list(lrs),
                           "dead": {a: {str(lr): v for lr, v in d.items()} for a, d in dead.items()},
                           "diverged": {a: {str(lr): v for lr, v in d.items()} for a, d in diverged.items()}}}
    return claims, md, blob


# -- bias and variance ----------------------------------------------------------------------------------
def _mlp_fitter(width: int, epochs: int, seed: int):
    """fit(x, Y): one tanh MLP 1-width-1 per column of Y (full batch, Adam), returning predict(x)."""
    from varprop.nn import Trainer, build_mlp, get_optimizer

    def fit(x, Y):
        xs = ((x - math.pi) / math.pi)[:, None]
        nets = []
        for d in range(Y.shape[1]):
            net = build_mlp(1, [width], 1, activation="tanh", init="xavier_normal", seed=seed + d, dtype=np.float64)
            Trainer(net, "mse", get_optimizer("adam", lr=0.02), batch_size=len(x), epochs=epochs, seed=seed + d,
                    progress=False).fit(xs, Y[:, d:d + 1])
            nets.append(net)

        def predict(xe):
            z = ((np.asarray(xe, float) - math.pi) / math.pi)[:, None]
            return np.column_stack([n.forward(z)[:, 0] for n in nets])
        return predict
    return fit


def bias_variance(data, out_dir: str, mode: str, seed: int):
    """y = sin(x) + N(0, 0.3^2) on 50 fixed x in [0, 2 pi]; polynomial least squares of degree 1..25 and
    small tanh MLPs of growing width; bias^2, variance and noise by Monte Carlo over data sets."""
    from varprop.nn.diagnostics import bias_variance as decompose
    from varprop.nn.diagnostics import poly_exact, poly_fitter

    n_sets = {"smoke": 20, "quick": 400, "full": 2000}[mode]
    degrees = (1, 2, 3, 5, 7, 9, 12, 15, 20, 25)
    lo, hi, n_points, noise = 0.0, 2 * math.pi, 50, 0.3
    poly = {}
    for deg in degrees:
        r = decompose(poly_fitter(deg, lo, hi), np.sin, n_sets, n_points, noise, lo, hi, seed=seed)
        r["exact"] = poly_exact(deg, np.linspace(lo, hi, n_points), np.array(r["x"]), np.sin, noise, lo, hi)
        poly[deg] = r
    widths = (1, 2, 8) if mode == "smoke" else (1, 2, 4, 16)
    mlp_sets = {"smoke": 3, "quick": 12, "full": 30}[mode]
    mlp_epochs = {"smoke": 20, "quick": 250, "full": 500}[mode]
    mlp = {w: decompose(_mlp_fitter(w, mlp_epochs, seed), np.sin, mlp_sets, n_points, noise, lo, hi, n_eval=50,
                        seed=seed + 1) for w in widths}
    link = "training.md#bias-variance"

    def z_judge(a, sa, b, sb, what):
        z = (a - b) / math.sqrt(sa ** 2 + sb ** 2) if (sa > 0 or sb > 0) else (math.inf if a > b else -math.inf)
        v = "verified" if z > K else ("refuted" if z < -K else "inconclusive")
        from .claims import Judgement
        return Judgement(v, f"{n_sets} data sets, {what} = {fmt(a, 4)} ± {fmt(sa, 2)} vs {fmt(b, 4)} ± {fmt(sb, 2)}, "
                            f"z = {fmt(z, 3)} (K = {fmt(K)})")

    p1, p25 = poly[degrees[0]], poly[degrees[-1]]
    jb = z_judge(p1["bias2"], p1["bias2_se"], p25["bias2"], p25["bias2_se"], "bias² degree 1 vs 25")
    jv = z_judge(p25["variance"], p25["variance_se"], p1["variance"], p1["variance_se"], "variance degree 25 vs 1")
    test = np.array([poly[d]["test_error"] for d in degrees])
    dec = np.array([poly[d]["decomposed"] for d in degrees])
    ise = np.array([poly[d]["identity_se"] for d in degrees])
    contrast = np.array([poly[d]["bias2"] + poly[d]["noise"] for d in degrees])
    ji = judge_theory(test, ise, dec, n_sets, contrast=contrast)
    sim = np.array([poly[d][k] for k in ("bias2", "variance") for d in degrees])
    se = np.array([poly[d][k + "_se"] for k in ("bias2", "variance") for d in degrees])
    exact = np.array([poly[d]["exact"][k] for k in ("bias2", "variance") for d in degrees])
    je = judge_theory(sim, se, exact, n_sets)
    mw1, mwn = mlp[widths[0]], mlp[widths[-1]]
    jm = z_judge(mw1["bias2"], mw1["bias2_se"], mwn["bias2"], mwn["bias2_se"],
                 f"MLP bias² width {widths[0]} vs {widths[-1]}")
    jm.evidence = jm.evidence.replace(f"{n_sets} data sets", f"{mlp_sets} data sets")
    setting = f"y = sin(x) + N(0, {noise}²) at {n_points} evenly spaced x in [0, 2π]"
    claims = [
        _claim("bias² falls with model complexity: a degree-1 polynomial underfits sin(x), degree 25 does not",
               "Monte-Carlo bias², averaged over x, degree 1 minus degree 25", "greater than 0",
               f"z of the difference over its jackknife standard error > K = {fmt(K)}", jb, link, simulated=setting),
        _claim("variance rises with model complexity: the degree-25 fit follows the noise",
               "Monte-Carlo variance of the fit, averaged over x, degree 25 minus degree 1", "greater than 0",
               f"z of the difference over its jackknife standard error > K = {fmt(K)}", jv, link, simulated=setting),
        _claim("bias² + variance + noise is the expected test error (an independent route: fresh noisy targets)",
               "expected squared error on fresh targets against bias² + variance + noise, every degree",
               "equal within K standard errors",
               f"judge_theory: |s - t| <= K se at every degree, with bias² + noise (no variance) as the contrast",
               ji, link, simulated=setting),
        _claim("the Monte-Carlo bias² and variance agree with their exact values (the fit is a linear smoother: "
               "bias = S f - f, variance = s² |S_x|²)", "Monte-Carlo bias² and variance per degree against exact",
               "equal within K jackknife standard errors", "judge_theory at every degree, both terms", je, link,
               derived="least squares is linear in y", simulated=setting),
        _claim("bias² falls with width for a one-hidden-layer tanh MLP", f"Monte-Carlo bias², width {widths[0]} minus "
               f"width {widths[-1]} ({mlp_epochs} full-batch Adam epochs each)", "greater than 0",
               f"z of the difference over its jackknife standard error > K = {fmt(K)}", jm, link, simulated=setting),
    ]
    fig, (ax, bx, cx) = _figure(3, 11.0, 4.2)
    for deg, style in ((degrees[0], "-"), (degrees[-1], "--")):
        r = poly[deg]
        ax.plot(r["x"], r["bias2_x"], style, label=f"bias², degree {deg}")
        ax.plot(r["x"], r["variance_x"], style, label=f"variance, degree {deg}")
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_xlabel("x")
    ax.set_ylabel("bias² and variance at x")
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
    for key, label in (("bias2", "bias²"), ("variance", "variance"), ("test_error", "test error (fresh targets)"),
                       ("train_error", "training error"), ("decomposed", "bias² + variance + noise")):
        vals = np.array([poly[d][key] for d in degrees])
        bx.plot(degrees, np.maximum(vals, 1e-6), marker="o", ms=3, label=label)
    bx.set_yscale("log")
    bx.set_xlabel("polynomial degree")
    bx.set_ylabel("mean squared error")
    bx.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
    for key, label in (("bias2", "bias²"), ("variance", "variance"), ("test_error", "test error"),
                       ("train_error", "training error")):
        vals = np.array([mlp[w][key] for w in widths])
        cx.plot(widths, np.maximum(vals, 1e-6), marker="o", ms=3, label=label)
    cx.set_xscale("log", base=2)
    cx.set_yscale("log")
    cx.set_xlabel("hidden width (tanh MLP)")
    cx.set_ylabel("mean squared error")
    cx.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
    png = _save(fig, out_dir, "bias_variance.png")

    def row(label, r):
        return [label, f"{fmt(r['bias2'], 3)} ± {fmt(r['bias2_se'], 2)}", f"{fmt(r['variance'], 3)} ± "
                f"{fmt(r['variance_se'], 2)}", fmt(r["noise"], 3), fmt(r["decomposed"], 4),
                f"{fmt(r['test_error'], 4)} ± {fmt(r['test_error_se'], 2)}", fmt(r["train_error"], 4)]
    header = ["model", "bias²", "variance", "noise", "sum", "test error (fresh)", "training error"]
    md = "\n".join([
        "### The bias-variance trade-off by Monte Carlo", '<a id="bias-variance"></a>', "",
        f"{setting}; {n_sets} data sets per polynomial degree (least squares in the Legendre basis), {mlp_sets} per "
        f"MLP width; evaluation at 100 (MLPs: 50) points between the training x, with independent fresh targets for "
        "the test error. ± is one standard error over data sets (jackknife for bias² and variance); bias² is the "
        "unbiased estimate (it can come out slightly below 0 where the true bias is 0; the plots floor it at 1e-6). "
        "The claims' evidence counts data sets where it says networks. For the MLPs of this short full-batch budget "
        "only the fall of bias² with width is claimed: their variance need not rise over this range (the table says "
        "what it did).", "",
        md_table(header, [row(f"degree {d}", poly[d]) for d in degrees] + [row(f"MLP width {w}", mlp[w]) for w in widths]),
        "", f"![bias and variance]({png})", ""])
    slim = lambda r: {k: v for k, v in r.items() if k not in ("x", "exact")}
    blob = {"bias_variance": {"poly": {str(d): slim(r) for d, r in poly.items()},
                              "mlp": {str(w): slim(r) for w, r in mlp.items()}}}
    return claims, md, blob


EXPERIMENTS = (pretraining, dying_relu, bias_variance)

"""Signal propagation past the variance: correlations, Jacobian spectra, finite width, LSUV and orthogonal init.

Each experiment returns ``(claims, markdown, json)`` and writes its figure; every claim states its quantity,
direction and test before it is run (:mod:`varprop.report.claims`). The simulated claims are held against
their theory with a named finite-width allowance and a contrast the test must exclude; the training claims are
judged over seeds with the paired t interval against a contrast at the same budget.
"""
from __future__ import annotations

import io
import math
import os

import numpy as np

from .claims import Claim, fmt, judge_paired, judge_theory, md_table, stated

__all__ = ["EXPERIMENTS", "write"]


def _save(fig, path: str) -> None:
    from varprop.io import atomic_write_bytes
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=200, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def _seeds(mode: str, seed: int) -> list[int]:
    return [seed + k for k in range({"quick": 5, "full": 10, "smoke": 2}[mode])]


def _figure(w=6.4, h=3.2):
    from matplotlib.figure import Figure
    return Figure(figsize=(w, h), layout="constrained")


# ------------------------------------------------------------------------------------------------------
# 1. correlations: ordered and chaotic phases on networks
# ------------------------------------------------------------------------------------------------------

def correlations(out: str, mode: str, seed: int):
    from varprop.derive import mean_field as mf
    from varprop.derive import phase
    from varprop.simulate.correlation import pair_correlation
    width, depth, nets = {"smoke": (32, 6, 8), "quick": (256, 20, 100), "full": (512, 30, 200)}[mode]
    sb, c0 = 0.05, 0.6
    crit = phase.critical_line("tanh", [sb])[0]
    cases = (("ordered", 0.8 * crit), ("chaotic", 2.0 * crit))
    claims, rows, blob = [], [], {}
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for k, (label, sw) in enumerate(cases):
        r = pair_correlation([width] * (depth + 1), "tanh", sw, sb, c0=c0, trials=nets, seed=seed + k)
        c_star = mf.chi_c("tanh", sw, sb)[0]
        contrast = np.full(depth, c0)                    # a wrong claim: the correlation would not move
        j = judge_theory(r.mean, r.se, r.theory, networks=nets, bias=0.03, contrast=contrast,
                         min_networks=min(100, nets))
        layers = np.arange(1, depth + 1)
        ax.errorbar(layers, r.mean, yerr=2 * r.se, fmt="o", ms=3, color=f"C{k}",
                    label=f"{label}: sigma_w^2 = {fmt(sw, 3)} (simulated, ±2 se)")
        ax.plot(layers, r.theory, color=f"C{k}", lw=1.2, label=f"{label}: correlation map")
        ax.axhline(c_star, color=f"C{k}", ls=":", lw=1)
        rows.append([label, fmt(sw, 4), fmt(c_star, 4), f"{fmt(r.mean[-1], 4)} ± {fmt(r.se[-1], 2)}",
                     fmt(r.theory[-1], 4), j.verdict])
        blob[label] = {"sigma_w2": sw, "c_star": c_star, "sim": r.mean.tolist(), "se": r.se.tolist(),
                       "theory": r.theory.tolist()}
        claims.append(Claim(
            "signal", f"tanh, sigma_b^2 = {sb}, {label} phase (sigma_w^2 = {fmt(sw, 3)}): two inputs' correlation "
            f"follows the correlation map to c* = {fmt(c_star, 3)}",
            derived=f"c* = {fmt(c_star, 4)} (derive/mean_field chi_c), critical sigma_w^2 = {fmt(crit, 5)}",
            simulated=f"c_{depth} = {fmt(r.mean[-1], 4)} ± {fmt(r.se[-1], 2)}", verdict=j.verdict,
            link="signal.md#correlations", evidence=j.evidence,
            quantity=f"cosine of two inputs' pre-activations per layer, {nets} networks of width {width}",
            direction="equal to the mean-field correlation map at every layer",
            test="every layer within 5 se + 3% of the theory (the O(1/width) finite-width bias); the contrast "
                 f"(the correlation staying at c0 = {c0}) must lie outside that band"))
    ax.set_xlabel("layer")
    ax.set_ylabel("correlation of two inputs")
    ax.set_ylim(min(0.0, float(np.nanmin(ax.get_ylim()))), 1.02)
    ax.grid(alpha=0.3)
    fig.legend(fontsize=7, loc="outside right upper", frameon=False)
    fig.suptitle(f"tanh, sigma_b^2 = {sb}: two inputs of correlation {c0}; dotted: c*", fontsize=9)
    _save(fig, os.path.join(out, "signal_correlations.png"))

    p = phase.diagram("tanh", (0.5, 4.0, 60 if mode != "smoke" else 8), (0.0, 0.3, 60 if mode != "smoke" else 6))
    p.plot(os.path.join(out, "signal_phase.png"))
    check_sb = np.array([0.0, 0.05, 0.2])
    line = phase.critical_line("tanh", check_sb, sw_range=(0.5, 4.0))
    roots = np.array([mf.critical_sigma_w2("tanh", float(s)) for s in check_sb])
    agree = bool(np.all(np.abs(line - roots) <= 1e-6 * roots))
    claims.append(Claim(
        "signal", "tanh's order-to-chaos line: the vectorized phase diagram agrees with point-by-point root finding",
        derived=", ".join(f"sigma_b^2 {s:g}: {fmt(v, 7)}" for s, v in zip(check_sb, line)),
        verdict="verified" if agree else "refuted", link="signal.md#correlations",
        evidence=f"largest relative difference {fmt(float(np.max(np.abs(line - roots) / roots)), 2)}",
        quantity="the critical sigma_w^2 at sigma_b^2 = 0, 0.05, 0.2",
        direction="the same from derive/phase (splines of certified moments, vectorized bisection) and "
                  "derive/mean_field.critical_sigma_w2 (Brent's method on quadrature)",
        test="relative difference at most 1e-6 at each sigma_b^2"))
    md = ["## Correlations and the phase diagram", '<a id="correlations"></a>', "",
          f"Two inputs of correlation {c0} through {nets} random tanh networks of width {width} "
          f"(`varprop.simulate.correlation`), beside the mean-field correlation map, on each side of the "
          f"order-to-chaos line (critical sigma_w^2 = {fmt(crit, 5)} at sigma_b^2 = {sb}). In the ordered phase "
          "the inputs collapse onto one direction (c -> 1); in the chaotic phase they decorrelate to c* < 1.", "",
          md_table(["phase", "sigma_w^2", "c*", f"simulated c_{depth}", "theory", "verdict"], rows), "",
          "![correlation per layer](signal_correlations.png)", "",
          "The phase diagram (`varprop phase --activation tanh`): the depth scale xi_c over the plane, diverging "
          "on the line chi_1 = 1.", "", "![tanh phase diagram](signal_phase.png)", ""]
    return claims, "\n".join(md), {"correlations": blob}


# ------------------------------------------------------------------------------------------------------
# 2. Jacobian spectra
# ------------------------------------------------------------------------------------------------------

def _critical(act, sb):
    from varprop.derive import jacobian
    if act in ("linear",):
        return 1.0, 0.0
    if act == "relu":
        return 2.0, 0.0
    sw, _ = jacobian.critical_point(act, sb)
    return sw, sb


def spectra(out: str, mode: str, seed: int):
    from varprop.simulate.jacobian import jacobian_spectrum
    width, depth, nets = {"smoke": (32, 4, 4), "quick": (128, 8, 100), "full": (256, 16, 100)}[mode]
    sb = 1e-3
    claims, rows, blob = [], [], {}
    for act, weights, contrast_weights in (("tanh", "orthogonal", "gaussian"), ("tanh", "gaussian", "orthogonal"),
                                           ("relu", "orthogonal", None), ("linear", "gaussian", "orthogonal")):
        sw, b2 = _critical(act, sb)
        r = jacobian_spectrum(width, depth, act, sw, b2, weights=weights, trials=nets, seed=seed)
        per = r.sv2.var(axis=1)
        from varprop.derive import jacobian as jt
        contrast = 0.0 if contrast_weights is None else jt.spectrum_moments(act, sw, b2, depth, contrast_weights)[1]
        j = judge_theory([r.var], [r.se_var()], [r.theory_var], networks=nets, bias=0.15, contrast=[contrast],
                         min_networks=min(100, nets))
        rows.append([act, weights, fmt(sw, 5), f"{fmt(r.var, 4)} ± {fmt(r.se_var(), 2)}", fmt(r.theory_var, 4),
                     fmt(contrast, 4), j.verdict])
        blob[f"{act}_{weights}"] = {"var": r.var, "se": r.se_var(), "theory": r.theory_var,
                                    "per_network": per.tolist()}
        what = {"orthogonal": "orthogonal", "gaussian": "Gaussian"}[weights]
        claims.append(Claim(
            "signal", f"{act} at criticality, {what} weights, depth {depth}: the spectrum of J J^T has the "
            f"free-probability variance {fmt(r.theory_var, 3)}",
            derived=f"L (mu2/mu1^2 - 1 - s1) = {fmt(r.theory_var, 4)} (derive/jacobian)",
            simulated=f"{fmt(r.var, 4)} ± {fmt(r.se_var(), 2)}", verdict=j.verdict, link="signal.md#spectra",
            evidence=j.evidence,
            quantity=f"variance of the squared singular values of the input-output Jacobian, {nets} networks of "
                     f"width {width}",
            direction="equal to the wide-limit prediction",
            test="within 5 se + 15% of the theory (finite-width corrections of relative order depth/width); "
                 + ("the other weight ensemble's prediction" if contrast_weights else "isometry (variance 0)")
                 + f" ({fmt(contrast, 3)}) must lie outside that band"))
    _spectra_figure(os.path.join(out, "signal_spectra.png"), mode, seed)
    md = ["## Jacobian spectra: dynamical isometry", '<a id="spectra"></a>', "",
          f"The squared singular values of J = prod D_l W_l (`varprop spectrum`, {nets} networks of width {width}, "
          f"depth {depth}, at the order-to-chaos point with sigma_b^2 = {sb} for tanh), against the free-probability "
          "variance L (mu2/mu1^2 - 1 - s1) (Pennington, Schoenholz & Ganguli 2017): orthogonal weights bring tanh "
          "close to isometry, Gaussian weights cannot (s1 = -1), and ReLU has no isometric regime.", "",
          md_table(["activation", "weights", "sigma_w^2", "simulated variance", "theory", "contrast", "verdict"],
                   rows), "",
          "![singular value densities against depth](signal_spectra.png)", ""]
    return claims, "\n".join(md), {"spectra": blob}


def _spectra_figure(path: str, mode: str, seed: int) -> None:
    from varprop.simulate.jacobian import jacobian_spectrum
    width = {"smoke": 32, "quick": 128, "full": 256}[mode]
    depths = (2, 8, 32) if mode != "smoke" else (2, 4)
    acts = ("linear", "relu", "tanh", "hardtanh")
    fig = _figure(7.2, 6.4)
    axes = fig.subplots(len(acts), 2, sharex=True)
    values = {}
    for i, act in enumerate(acts):
        sw, sb = _critical(act, 1e-4)
        for jdx, weights in enumerate(("gaussian", "orthogonal")):
            for d in depths:
                r = jacobian_spectrum(width, d, act, sw, sb, weights=weights, trials=1, seed=seed)
                sv2 = r.sv2.ravel()
                floor = 1e-12 * max(float(sv2.max()), 1e-300)    # below: zero to float64 precision (dead units)
                values[(act, weights, d)] = (np.log10(sv2[sv2 > floor]), float(np.mean(sv2 <= floor)))
    allv = np.concatenate([v for v, _ in values.values()])
    lo, hi = float(np.quantile(allv, 0.005)), float(allv.max())
    bins = np.linspace(lo, hi + 1e-9, 50)
    for i, act in enumerate(acts):
        for jdx, weights in enumerate(("gaussian", "orthogonal")):
            ax = axes[i][jdx]
            zeros = []
            for k, d in enumerate(depths):
                v, z = values[(act, weights, d)]
                ax.hist(np.clip(v, lo, hi), bins=bins, histtype="step", density=True, color=f"C{k}",
                        label=f"depth {d}")
                zeros.append(z)
            note = "" if max(zeros) == 0 else ("; below floor: " + ", ".join(f"{z:.0%}" for z in zeros))
            ax.set_title(f"{act}, {weights}{note}", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == len(acts) - 1:
                ax.set_xlabel("log10 squared singular value", fontsize=8)
            if jdx == 0:
                ax.set_ylabel("density", fontsize=8)
    fig.legend(*axes[0][0].get_legend_handles_labels(), fontsize=7, loc="outside lower center",
               ncols=len(depths), frameon=False)
    fig.suptitle(f"squared singular values of J at criticality, width {width} (tanh, hardtanh: sigma_b^2 = 1e-4)\n"
                 "'below floor': the share under 1e-12 of the largest (zero for ReLU's dead units), not drawn",
                 fontsize=8)
    _save(fig, path)


# ------------------------------------------------------------------------------------------------------
# 3. finite width: the random walk, and random-walk initialization
# ------------------------------------------------------------------------------------------------------

def finite_width(out: str, mode: str, seed: int):
    from varprop.derive import finite_width as fw
    from varprop.nn.init import presets
    from varprop.simulate import run
    width, depth, nets = {"smoke": (16, 5, 20), "quick": (16, 40, 200), "full": (16, 60, 400)}[mode]

    def walk(init):
        r = run(widths=[width] * (depth + 1), batch=1, activation="relu", init=init, trials=nets, seed=seed,
                inputs=np.ones((1, width)), dtype="float64", backward=False, progress=False)
        with np.errstate(divide="ignore"):
            w = np.log(r.per_trial["act_second"])
        return w[np.isfinite(w[:, -1])]

    he, rw = walk("he_normal"), walk("random_walk")
    mean_th, var_th = fw.norm_walk([width] * (depth + 1), "relu", 2 / width)
    layers = np.arange(1, depth + 1)
    n_he, n_rw = he.shape[0], rw.shape[0]
    se_mean = he.std(axis=0, ddof=1) / math.sqrt(n_he)
    var_sim = he.var(axis=0, ddof=1)
    # the sample variance's standard error from the fourth moment, per layer
    m4 = np.mean((he - he.mean(axis=0)) ** 4, axis=0)
    se_var = np.sqrt(np.maximum(m4 - var_sim ** 2, 0) / n_he)
    j_drift = judge_theory(he.mean(axis=0), se_mean, mean_th, networks=n_he, contrast=np.zeros(depth))
    j_spread = judge_theory(var_sim, se_var, var_th, networks=n_he, contrast=np.zeros(depth))
    rw_mean = rw.mean(axis=0)
    rw_se = rw.std(axis=0, ddof=1) / math.sqrt(n_rw)
    j_rw = judge_theory(rw_mean, rw_se, np.zeros(depth), networks=n_rw, contrast=mean_th)
    claims = [
        Claim("signal", f"ReLU at He, width {width}: log ||x_l||^2 drifts down by E[log R] = "
              f"{fmt(mean_th[0], 3)} per layer (the wide limit says 0)",
              derived=f"digamma over Binomial({width}, 1/2): {fmt(mean_th[-1], 4)} at layer {depth}",
              simulated=f"{fmt(he[:, -1].mean(), 4)} ± {fmt(se_mean[-1], 2)}", verdict=j_drift.verdict,
              link="signal.md#finite-width", evidence=j_drift.evidence,
              quantity=f"mean over {n_he} networks of log(||x_l||^2 / ||x_0||^2) per layer",
              direction="equal to sum_l E[log R_l] (derive/finite_width)",
              test="every layer within 5 se; the wide limit's 0 must lie outside"),
        Claim("signal", f"ReLU at He, width {width}: networks spread like a random walk, Var grows by about "
              f"5/n = {fmt(5 / width, 3)} per layer",
              derived=f"sum_l Var[log R_l] = {fmt(var_th[-1], 4)} at layer {depth}",
              simulated=f"{fmt(var_sim[-1], 4)} ± {fmt(se_var[-1], 2)}", verdict=j_spread.verdict,
              link="signal.md#finite-width", evidence=j_spread.evidence,
              quantity=f"variance over {n_he} networks of log ||x_l||^2 per layer",
              direction="equal to the random walk's accumulated step variance",
              test="every layer within 5 se of the theory (se of a variance from the fourth moment); the wide "
                   "limit's 0 must lie outside"),
        Claim("signal", f"random-walk initialization (Sussillo & Abbott 2014, exact at width {width}) removes "
              "the drift",
              derived=f"Var(w) = exp(-E psi(K/2))/2 = {fmt(presets.get('random_walk').variance((width, width)) * width / 2, 4)}"
                      " x He's",
              simulated=f"drift at layer {depth}: {fmt(rw_mean[-1], 3)} ± {fmt(rw_se[-1], 2)}",
              verdict=j_rw.verdict, link="signal.md#finite-width", evidence=j_rw.evidence,
              quantity=f"mean over {n_rw} networks of log(||x_l||^2 / ||x_0||^2)",
              direction="0 at every layer",
              test="every layer within 5 se of 0; He's drift (the contrast) must lie outside"),
    ]
    fig = _figure()
    ax = fig.add_subplot(1, 2, 1)
    bx = fig.add_subplot(1, 2, 2)
    ax.errorbar(layers, he.mean(axis=0), yerr=2 * se_mean, fmt="o", ms=2, color="C0", label="He, simulated ±2 se")
    ax.plot(layers, mean_th, color="C0", label="He, random-walk theory")
    ax.errorbar(layers, rw_mean, yerr=2 * rw_se, fmt="s", ms=2, color="C1", label="random walk init, simulated")
    ax.axhline(0, color="C1", lw=1)
    ax.set_xlabel("layer")
    ax.set_ylabel("mean log ||x_l||^2 / ||x_0||^2")
    bx.errorbar(layers, var_sim, yerr=2 * se_var, fmt="o", ms=2, color="C0", label="He, simulated")
    bx.plot(layers, var_th, color="C0", label="sum of Var[log R]")
    bx.plot(layers, 5 * layers / width, color="gray", ls="--", label="5 l / n")
    bx.set_xlabel("layer")
    bx.set_ylabel("variance across networks")
    for a in (ax, bx):
        a.grid(alpha=0.3)
    fig.legend(fontsize=7, loc="outside lower center", ncols=3, frameon=False)
    fig.suptitle(f"ReLU, width {width}, {nets} networks: log ||x||^2 is a random walk", fontsize=9)
    _save(fig, os.path.join(out, "signal_finite_width.png"))
    rows = [[c.claim, c.derived, c.simulated, c.verdict] for c in claims]
    md = ["## Finite width: the random walk", '<a id="finite-width"></a>', "",
          f"At width n a ReLU layer multiplies ||x||^2 by (2/n) times a chi-square with Binomial(n, 1/2) degrees of "
          f"freedom (`varprop derive finite-width`); the simulator's networks (width {width}, one fixed input) are "
          "held against the walk's drift and spread, and against random-walk initialization.", "",
          md_table(["claim", "derived", "simulated", "verdict"], rows), "",
          "![drift and spread of log ||x||^2](signal_finite_width.png)", ""]
    return claims, "\n".join(md), {"finite_width": {"he_mean": he.mean(axis=0).tolist(), "theory": mean_th.tolist(),
                                                    "he_var": var_sim.tolist(), "theory_var": var_th.tolist(),
                                                    "rw_mean": rw_mean.tolist()}}


# ------------------------------------------------------------------------------------------------------
# 4. LSUV and orthogonal initialization of deep linear nets, trained
# ------------------------------------------------------------------------------------------------------

def _digits(seed):
    from varprop.nn.data import load
    from varprop.nn.preprocess import Standardize
    ds = load("digits", seed=seed)
    prep = Standardize().fit(ds.X_train)
    f32 = (lambda a: np.ascontiguousarray(prep.transform(a), dtype=np.float32))
    return ds, f32(ds.X_train), f32(ds.X_val), f32(ds.X_test)


def lsuv_training(out: str, mode: str, seed: int):
    from varprop.nn import Trainer, build_mlp, get_optimizer
    from varprop.nn.init.lsuv import lsuv
    depth, width, epochs = {"smoke": (3, 16, 1), "quick": (10, 64, 8), "full": (20, 128, 20)}[mode]
    seeds = _seeds(mode, seed)
    acc = {"LSUV": [], "N(0, 1) as drawn": []}
    report = None
    for s in seeds:
        ds, X, Xv, Xt = _digits(s)
        for label in acc:
            net = build_mlp(X.shape[1], [width] * depth, ds.n_classes, activation="tanh", init="normal", seed=s)
            if label == "LSUV":
                r = lsuv(net, X[:512], tol=0.05, seed=s)
                report = r if report is None else report       # the first seed's layers, for the figure
            tr = Trainer(net, "cross_entropy", get_optimizer("sgd", lr=0.05), batch_size=64, epochs=epochs, seed=s,
                         progress=False)
            tr.fit(X, ds.y_train, Xv, ds.y_val)
            acc[label].append(float(tr.evaluate(Xt, ds.y_test)[1]))
    j = judge_paired(acc["LSUV"], acc["N(0, 1) as drawn"], margin=0.05)
    claims = [Claim(
        "signal", f"LSUV makes a deep tanh net with badly scaled weights (N(0, 1)) trainable (depth {depth})",
        training=f"test accuracy LSUV {fmt(np.mean(acc['LSUV']), 3)} vs as drawn {fmt(np.mean(acc['N(0, 1) as drawn']), 3)}",
        verdict=j.verdict, link="signal.md#lsuv", evidence=j.evidence,
        quantity=f"test accuracy on digits after {epochs} epochs of SGD (lr 0.05), {len(seeds)} seeds",
        direction="higher with LSUV than with the same N(0, 1) weights unrescaled, by more than 0.05",
        test="95% t interval of the paired differences over seeds entirely above 0.05")]
    rows = [[label, fmt(np.mean(v), 3), fmt(np.min(v), 3), fmt(np.max(v), 3)] for label, v in acc.items()]
    fig = _figure(7.2, 3.0)
    ax = fig.add_subplot(1, 2, 1)
    bx = fig.add_subplot(1, 2, 2)
    layers = np.arange(1, len(report) + 1)
    ax.plot(layers, [r.var_before for r in report], marker="^", color="C2",
            label="LSUV's orthonormal step, before rescaling")
    ax.plot(layers, [r.var_after for r in report], marker="o", color="C0", label="LSUV")
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("output variance on the batch")
    ax.set_title(f"seed {seeds[0]}: each layer's output variance on the batch", fontsize=8)
    bx.plot(np.arange(len(seeds)), acc["N(0, 1) as drawn"], marker="s", ls="none", color="C1",
            label="N(0, 1) as drawn")
    bx.plot(np.arange(len(seeds)), acc["LSUV"], marker="o", ls="none", color="C0")
    bx.axhline(1.0 / 10, color="gray", ls=":", lw=1, label="chance")
    bx.set_xticks(np.arange(len(seeds)), [str(s) for s in seeds])
    bx.set_xlabel("seed")
    bx.set_ylabel("test accuracy")
    for a in (ax, bx):
        a.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    more = bx.get_legend_handles_labels()
    fig.legend(handles + more[0], labels + more[1], fontsize=7, loc="outside lower center", ncols=4, frameon=False)
    fig.suptitle(f"LSUV on a tanh MLP of {depth} hidden layers of {width}", fontsize=9)
    _save(fig, os.path.join(out, "signal_lsuv.png"))
    md = ["## LSUV", '<a id="lsuv"></a>', "",
          f"tanh MLP of {depth} hidden layers of {width}, weights N(0, 1) (far too large: the units saturate); LSUV "
          "(Mishkin & Matas 2015) replaces them by orthonormal matrices and rescales each layer on a batch of 512 "
          "training images until its output variance is within 0.05 of 1.", "",
          md_table(["init", "mean test accuracy", "lowest", "highest"], rows), "",
          "![per-layer output variance before and after LSUV; test accuracy per seed](signal_lsuv.png)", "",
          f"**Verdict:** {j.verdict} "
          f"({j.evidence}).", ""]
    return claims, "\n".join(md), {"lsuv": acc}


def _linear_teacher(seed, n=16, samples=512):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n)) / math.sqrt(n)
    X = rng.standard_normal((samples, n)).astype(np.float32)
    return X, (X @ A.T).astype(np.float32)


def _deep_linear(depth, init, seed, epochs, n=16):
    from varprop.nn import Trainer, build_mlp, get_optimizer
    X, Y = _linear_teacher(seed, n)
    net = build_mlp(n, [n] * (depth - 1), n, activation="linear", init=init, seed=seed)
    tr = Trainer(net, "mse", get_optimizer("sgd", lr=0.01), batch_size=32, epochs=epochs, seed=seed, progress=False)
    hist = tr.fit(X, Y)
    losses = [e["train_loss"] for e in hist.epochs]
    zero = float(np.mean(Y.astype(np.float64) ** 2)) / 2         # the loss of predicting 0, the scale of the task
    reached = next((i + 1 for i, v in enumerate(losses) if v < 0.1 * zero), None)
    return losses, reached


def saxe(out: str, mode: str, seed: int):
    seeds = _seeds(mode, seed)
    deep, epochs = {"smoke": (4, 3), "quick": (32, 30), "full": (64, 60)}[mode]
    inits = (("orthogonal", "orthogonal"), ("Gaussian (LeCun)", "lecun_normal"))
    final = {label: [] for label, _ in inits}
    for s in seeds:
        for label, init in inits:
            losses, _ = _deep_linear(deep, init, s, epochs)
            final[label].append(math.log10(max(losses[-1], 1e-30)))
    j = judge_paired(final["Gaussian (LeCun)"], final["orthogonal"], margin=0.0)
    depths = (2, 4, 8, 16, 32) if mode != "smoke" else (2, 4)
    reach = {label: [] for label, _ in inits}
    for d in depths:
        for label, init in inits:
            _, r = _deep_linear(d, init, seeds[0], epochs)
            reach[label].append(r)
    fig = _figure(5.6, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    for k, (label, _) in enumerate(inits):
        ys = [np.nan if r is None else r for r in reach[label]]
        ax.plot(depths, ys, marker="o", color=f"C{k}", label=label)
        for d, r in zip(depths, reach[label]):
            if r is None:
                ax.annotate("not reached", (d, epochs), fontsize=6, color=f"C{k}", ha="center")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("depth (layers)")
    ax.set_ylabel(f"epochs to 10% of the zero-output loss (budget {epochs})")
    ax.set_ylim(0, epochs * 1.1)
    ax.grid(alpha=0.3)
    fig.legend(fontsize=7, loc="outside right upper", frameon=False)
    fig.suptitle("deep linear nets on a linear teacher, SGD lr 0.01 (seed %d)" % seeds[0], fontsize=9)
    _save(fig, os.path.join(out, "signal_saxe.png"))
    claims = [Claim(
        "signal", f"orthogonal initialization trains a {deep}-layer linear net where Gaussian init stalls (Saxe et al. 2014)",
        training=f"final log10 loss: orthogonal {fmt(np.mean(final['orthogonal']), 3)}, Gaussian "
                 f"{fmt(np.mean(final['Gaussian (LeCun)']), 3)}",
        verdict=j.verdict, link="signal.md#saxe", evidence=j.evidence,
        quantity=f"log10 of the training loss after {epochs} epochs of SGD (lr 0.01) on a 16-dimensional linear "
                 f"teacher, {len(seeds)} seeds",
        direction="lower with orthogonal than with Gaussian (LeCun) weights at the same depth and budget",
        test="95% t interval of the paired differences (Gaussian minus orthogonal) entirely above 0")]
    rows = [[label, fmt(np.mean(v), 3)] + ["-" if r is None else str(r) for r in reach[label]]
            for label, v in final.items()]
    md = ["## Orthogonal initialization of deep linear nets", '<a id="saxe"></a>', "",
          "Saxe, McClelland & Ganguli (2014): with orthogonal weights every singular value of the product is 1, so "
          "learning does not slow down with depth; with Gaussian weights the product's spectrum spreads like the "
          "Fuss-Catalan law (variance = depth) and the small directions learn slowly.", "",
          md_table(["init", f"mean final log10 loss (depth {deep})"] + [f"epochs, depth {d}" for d in depths], rows),
          "", "![epochs to criterion against depth](signal_saxe.png)", "", f"**Verdict:** {j.verdict} ({j.evidence}).",
          ""]
    return claims, "\n".join(md), {"saxe": {"final_log10_loss": final, "epochs_to_criterion": reach}}


EXPERIMENTS = (correlations, spectra, finite_width, lsuv_training, saxe)


def write(out: str, mode: str, seed: int, bar=None) -> tuple[list, str]:
    """Run every experiment, write ``signal.md`` and ``signal.json`` into ``out``; return (claims, summary md)."""
    import json

    from varprop.io import atomic_write_text
    claims, parts, blob = [], [], {"seed": seed, "mode": mode}
    for exp in EXPERIMENTS:
        c, md, j = exp(out, mode, seed)
        claims += c
        parts.append(md + "\n" + stated(c))
        blob.update(j)
        if bar is not None:
            bar.update(info=f"signal {exp.__name__}")
    head = ["# Signal propagation past the variance", "",
            "Correlations and the phase diagram, Jacobian spectra, finite width, LSUV and orthogonal "
            f"initialization: each derived, simulated or trained, with its verdict. Seed {seed}.", ""]
    atomic_write_text(os.path.join(out, "signal.md"), "\n".join(head + parts))
    atomic_write_text(os.path.join(out, "signal.json"),
                      json.dumps(blob, indent=1, sort_keys=True, default=_json_default) + "\n")
    rows = [[f"[{c.claim}]({c.link})", c.evidence, c.verdict] for c in claims]
    summary = "\n".join(["## Signal propagation past the variance", "",
                         "Details, tables and figures: [signal.md](signal.md).", "",
                         md_table(["claim", "evidence", "verdict"], rows), ""])
    return claims, summary


def _json_default(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v).__name__)

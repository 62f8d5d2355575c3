"""Dead units against a direct count, the Monte-Carlo bias-variance decomposition against the exact
smoother and against fresh targets, and the lecture's diagnosis table."""
import json
import math

import numpy as np
import pytest

from varprop.cli import main
from varprop.nn import Trainer, build_mlp, get_optimizer
from varprop.nn.diagnostics import (BIAS_THRESHOLD, GAP_RATIO, VARIANCE_THRESHOLD, DeadUnits, bias_variance,
                                    dead_fraction, diagnose, diagnose_training, poly_exact, poly_fitter)

K = 5.0


# -- dead units -----------------------------------------------------------------------------------------
def test_dead_fraction_matches_a_direct_count():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    net = build_mlp(5, [12, 7], 3, activation="relu", seed=0)
    b = net.layers[0].bias.value
    b[:6] = -50.0                                   # these six units are never positive
    d = dead_fraction(net, X)
    W0, b0 = net.layers[0].weight.value.astype(np.float64), b.astype(np.float64)
    h0 = X @ W0.T + b0
    W1, b1 = net.layers[1].weight.value.astype(np.float64), net.layers[1].bias.value.astype(np.float64)
    h1 = np.maximum(h0, 0) @ W1.T + b1
    expect = [float(np.mean(np.all(h <= 0, axis=0))) for h in (h0, h1)]
    assert d["dead"] == pytest.approx(expect, abs=1e-12) and d["dead"][0] >= 0.5
    assert d["never_positive"] == d["dead"] and d["units"] == [12, 7]
    assert d["dead_total"] == pytest.approx((expect[0] * 12 + expect[1] * 7) / 19)


def test_leaky_relu_cannot_die_and_prelu_dies_only_at_slope_zero():
    X = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    for act in ("leaky_relu", "prelu"):
        net = build_mlp(4, [6], 2, activation=act, seed=0)
        net.layers[0].bias.value[:] = -100.0
        d = dead_fraction(net, X)
        assert d["never_positive"] == [1.0] and d["dead"] == [0.0]
    net.layers[0].act.slope.value[:3] = 0.0
    assert dead_fraction(net, X)["dead"] == [0.5]


def test_dead_units_callback_records_every_epoch_and_bad_input():
    X = np.random.default_rng(2).normal(size=(64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    net = build_mlp(4, [8], 2, seed=0)
    mon = DeadUnits(net, X)
    Trainer(net, "cross_entropy", "sgd", epochs=3, batch_size=16, progress=False, callback=mon).fit(X, y)
    assert [r["epoch"] for r in mon.records] == [0, 1, 2, 3]
    assert mon.records[-1] == {"epoch": 3, **dead_fraction(net, X)}
    with pytest.raises(ValueError):
        dead_fraction(net, np.zeros((3, 5)))
    with pytest.raises(ValueError):
        dead_fraction(net, np.full((3, 4), np.nan))
    with pytest.raises(TypeError):
        dead_fraction("net", X)


def test_a_large_learning_rate_kills_relu_units():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = ((X - X.mean(0)) / (X.std(0) + 1e-8)).astype(np.float32)
    dead = {}
    for lr in (0.01, 1.0):
        net = build_mlp(64, [64, 64], 10, activation="relu", seed=2)
        Trainer(net, "cross_entropy", get_optimizer("sgd", lr=lr), batch_size=32, epochs=3, seed=2,
                progress=False).fit(X, y)
        dead[lr] = dead_fraction(net, X)["dead_total"]
    assert dead[0.01] == 0.0 < 0.02 < dead[1.0]


# -- bias and variance ----------------------------------------------------------------------------------
LO, HI = 0.0, 2 * math.pi


@pytest.mark.parametrize("degree", [1, 3, 9, 25])
def test_monte_carlo_terms_agree_with_the_exact_smoother(degree):
    r = bias_variance(poly_fitter(degree, LO, HI), np.sin, n_sets=300, n_points=50, noise_std=0.3, seed=degree)
    e = poly_exact(degree, np.linspace(LO, HI, 50), np.array(r["x"]), np.sin, 0.3, LO, HI)
    assert abs(r["bias2"] - e["bias2"]) <= K * r["bias2_se"]
    assert abs(r["variance"] - e["variance"]) <= K * r["variance_se"]
    # bias^2 + variance + noise against the error on fresh targets, an independent draw
    assert abs(r["test_error"] - r["decomposed"]) <= K * r["identity_se"]
    # the unbiased bias^2 makes bias^2 + variance the mean squared distance to f exactly
    assert r["bias2"] + r["variance"] + r["noise"] == pytest.approx(r["decomposed"], rel=1e-10)


def test_bias_falls_and_variance_rises_with_the_degree():
    lo_deg, hi_deg = (bias_variance(poly_fitter(d, LO, HI), np.sin, n_sets=200, seed=0) for d in (1, 25))
    assert lo_deg["bias2"] - hi_deg["bias2"] > K * math.hypot(lo_deg["bias2_se"], hi_deg["bias2_se"])
    assert hi_deg["variance"] - lo_deg["variance"] > K * math.hypot(lo_deg["variance_se"], hi_deg["variance_se"])
    assert hi_deg["train_error"] < lo_deg["train_error"]


def test_jackknife_standard_error_matches_the_spread_over_repeats():
    """The jackknife SE of the variance term against the spread of the estimate over independent repeats."""
    fit = poly_fitter(9, LO, HI)
    runs = [bias_variance(fit, np.sin, n_sets=60, n_points=30, seed=s) for s in range(40)]
    spread = np.std([r["variance"] for r in runs], ddof=1)
    se = np.mean([r["variance_se"] for r in runs])
    assert 0.7 < se / spread < 1.4


def test_bias_variance_bad_input():
    fit = poly_fitter(1, LO, HI)
    for kw in ({"n_sets": 1}, {"noise_std": -1.0}, {"noise_std": math.nan}, {"lo": 1.0, "hi": 0.0}, {"n_points": 0}):
        with pytest.raises(ValueError):
            bias_variance(fit, **kw)
    with pytest.raises(TypeError):
        bias_variance("fit")
    with pytest.raises(ValueError, match="non-finite"):
        bias_variance(lambda x, Y: (lambda xe: np.full((len(xe), Y.shape[1]), np.nan)))


# -- diagnosis ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("train, val, verdict", [
    (0.01, 0.02, "done"), (0.5, 0.52, "high bias"), (0.0, 0.2, "high variance"),
    (0.3, 0.7, "high bias and high variance"), (0.2, None, "high bias"), (0.01, None, "low bias"),
    # the gap is large against chance but small against the training error: bias alone
    (0.3, 0.4, "high bias"),
])
def test_diagnosis_table(train, val, verdict):
    d = diagnose(train, val, 0.9)
    assert d["verdict"] == verdict
    assert d["bias_threshold"] == pytest.approx(BIAS_THRESHOLD * 0.9)
    assert d["variance_threshold"] == pytest.approx(VARIANCE_THRESHOLD * 0.9) and d["gap_ratio"] == GAP_RATIO
    if "bias" in verdict and verdict != "low bias":
        assert "capacity" in d["advice"]
    if "variance" in verdict:
        assert "regularize" in d["advice"] and "augmentation" in d["advice"]


def test_diagnosis_thresholds_are_strict_at_the_boundary():
    assert diagnose(BIAS_THRESHOLD * 0.5, BIAS_THRESHOLD * 0.5, 0.5)["high_bias"] is False
    assert diagnose(BIAS_THRESHOLD * 0.5 + 1e-9, 0.05, 0.5)["high_bias"] is True


@pytest.mark.parametrize("args", [(-0.1, 0.1, 0.9), (0.1, math.nan, 0.9), (0.1, 0.1, 0.0), (True, 0.1, 0.9),
                                  (0.1, -1.0, 0.9)])
def test_diagnosis_bad_input(args):
    with pytest.raises(ValueError):
        diagnose(*args)


def test_diagnose_training_measures_errors_in_test_mode():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    t = Trainer(build_mlp(4, [16], 2, seed=0), "cross_entropy", "adam", epochs=5, batch_size=20, progress=False)
    h = t.fit(X[:150], y[:150])
    d = diagnose_training(t, X[:150], y[:150], X[150:], y[150:], h)
    assert d["train_error"] == pytest.approx(1 - np.mean(t.predict(X[:150]) == y[:150]))
    assert d["val_error"] == pytest.approx(1 - np.mean(t.predict(X[150:]) == y[150:]))
    assert d["chance_error"] == pytest.approx(1 - np.bincount(y[:150]).max() / 150)
    assert d["text"].startswith("diagnosis: " + d["verdict"])
    d2 = diagnose_training(t, None, y[:150], None, None, h)
    assert d2["train_error"] == pytest.approx(1 - h.epochs[-1]["train_acc"]) and d2["val_error"] is None
    json.dumps(d)


def test_cli_ends_with_the_diagnosis(tmp_path, capsys):
    rng = np.random.default_rng(0)
    yy = np.arange(120) % 3
    X = rng.normal(size=(3, 6))[yy] * 2 + rng.normal(size=(120, 6))
    np.savez(tmp_path / "d.npz", X=X, y=yy)
    out = tmp_path / "r.json"
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--hidden", "8", "--epochs", "2", "--batch-size",
                 "16", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("diagnosis: ")
    d = json.loads(out.read_text())["diagnosis"]
    assert d["verdict"] in ("high bias", "high variance", "high bias and high variance", "done")
    assert d["text"] == lines[-1]

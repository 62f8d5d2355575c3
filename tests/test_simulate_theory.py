"""Simulation against derive/mean_field, with tolerances from the Monte Carlo standard errors.

The theory is the infinite-width mean field. Where it is exact in expectation at any width (the second
moment of a ReLU or linear layer: E[x_l^2] = n v E[x_{l-1}^2] / 2 exactly, by the tower property) the test
is |sim - theory| < 5 se. Elsewhere the finite-width bias is O(L / n) relative (it grows with the number of
layers the signal crosses; for SELU's gradient through 50 layers it is about 4% at n = 1024 and 0.5% at
n = 2048, measured), so the widths are chosen large enough that it is below one standard error of these
runs, and the same 5 se applies. These use the Gaussian engine, which draws from exactly the law of the
dense one (tests/test_simulate_engines.py), at a small fraction of the cost.
"""
import numpy as np
import pytest

from varprop.simulate import run


def _z(r, f):
    return (r.mean(f) - r.theory[f]) / r.se(f)


def _within(r, f, k=5.0):
    z = _z(r, f)
    assert np.all(np.isfinite(z)), (f, z)
    assert np.all(np.abs(z) < k), (f, np.round(z, 2))


LECTURE_STDS = [0.49, 0.29, 0.18, 0.11, 0.07, 0.05]   # the lecture's printed per-layer stds


def _lecture(engine, trials):
    return run(widths="4096x7", batch=16, activation="tanh", init="normal(0, 0.01)", trials=trials, seed=0,
               engine=engine)


def test_lecture_experiment_gaussian_engine():
    r = _lecture("gaussian", 10)
    std = r.mean("act_std")
    assert np.round(std, 2).tolist() == LECTURE_STDS
    assert np.all(np.diff(std) < 0)                       # the activations collapse toward 0 layer by layer
    _within(r, "act_std")
    _within(r, "act_second")
    _within(r, "grad_std")


@pytest.mark.slow
def test_lecture_experiment_dense_engine():
    r = _lecture("dense", 4)
    assert np.round(r.mean("act_std"), 2).tolist() == LECTURE_STDS
    _within(r, "act_std")
    _within(r, "grad_std")


def test_relu_he_second_moment_exact_in_expectation():
    r = run(widths="1024x11", batch=16, activation="relu", init="he_normal", trials=20, seed=1)
    assert np.allclose(r.theory["act_second"], 1.0)       # He preserves E[x^2] = 1 (q = 2, E relu^2 = q/2)
    _within(r, "act_second")
    _within(r, "pre_second")
    _within(r, "grad_std")


def test_relu_he_small_width_second_moment_still_exact():
    # exact in expectation at any width: a 32-wide network still matches within 5 se
    r = run(widths="32x9", batch=4, activation="relu", init="he_normal", trials=200, seed=2)
    _within(r, "act_second")


def test_tanh_xavier():
    r = run(widths="1024x11", batch=16, activation="tanh", init="xavier_normal", trials=20, seed=1)
    _within(r, "act_std")
    _within(r, "grad_std")


def test_selu_lecun_holds_mean_0_variance_1_over_50_layers():
    r = run(widths="2048x51", batch=8, activation="selu", init="lecun_normal", trials=16, seed=1)
    np.testing.assert_allclose(r.theory["act_mean"], 0.0, atol=1e-9)
    np.testing.assert_allclose(r.theory["act_std"], 1.0, atol=1e-9)
    _within(r, "act_mean")
    _within(r, "act_std")
    _within(r, "grad_std")


def test_he_under_dropout():
    r = run(widths="1024x6", batch=16, activation="relu", init="he_normal", dropout=0.5, trials=20, seed=1)
    assert r.theory["act_second"][0] == pytest.approx(2.0)   # inverted dropout doubles E[x^2] at keep 1/2
    _within(r, "act_second")
    _within(r, "grad_std")


def test_theory_is_checked_for_a_wrong_gain():
    """The same tolerance rejects a theory off by a few percent: the tests above could fail."""
    r = run(widths="1024x6", batch=16, activation="relu", init="normal(0, sqrt(2.1/fan_in))", trials=20,
            seed=1)
    he = run(widths="1024x6", batch=16, activation="relu", init="he_normal", trials=1, seed=1)
    z = (r.mean("act_second") - he.theory["act_second"]) / r.se("act_second")
    assert np.max(np.abs(z)) > 5

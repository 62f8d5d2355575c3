"""The dense and the Gaussian engine draw from the same law: two-sample tests on per-layer statistics.

For a statistic s and layer l each engine gives T iid per-trial values; the difference of the trial means
over its standard error sqrt(se_dense^2 + se_gauss^2) is about N(0, 1) when the laws agree, so |z| < 5 holds
for every layer and statistic (with a dozen or so comparisons a false alarm has probability < 1e-5). A
Kolmogorov-Smirnov test on the pooled per-trial values adds a check of the whole distribution.
"""
import numpy as np
import pytest
from scipy import stats as sps

from varprop.simulate import run

FIELDS = ("act_std", "act_mean", "grad_std", "weight_grad_norm", "pre_second")


def _compare(trials, **kw):
    dense = run(engine="dense", dtype="float64", trials=trials, seed=1, **kw)
    gauss = run(engine="gaussian", trials=trials, seed=2, **kw)
    for f in FIELDS:
        z = (dense.mean(f) - gauss.mean(f)) / np.sqrt(dense.se(f) ** 2 + gauss.se(f) ** 2)
        assert np.all(np.abs(z) < 5), (f, z)
    # the per-trial gradient norms of all layers, standardized per layer, pooled
    a, b = dense.per_trial["weight_grad_norm"], gauss.per_trial["weight_grad_norm"]
    mu, sd = np.concatenate([a, b]).mean(0), np.concatenate([a, b]).std(0)
    p = sps.ks_2samp(((a - mu) / sd).ravel(), ((b - mu) / sd).ravel()).pvalue
    assert p > 1e-4, p
    return dense, gauss


def test_engines_agree_tanh_xavier():
    _compare(60, widths="96x5", batch=8, activation="tanh", init="xavier_normal")


def test_engines_agree_relu_bias_dropout():
    _compare(60, widths=[80, 96, 64, 72], batch=6, activation="relu", init="he_normal", sigma_b2=0.2,
             dropout=0.3)


def test_engines_agree_batch_larger_than_width():
    # B > n: X X^T is singular, so the Gaussian engine works on its range and conditions through the
    # pseudo-inverse; the backward conditioning matters most when n is small
    _compare(300, widths=[5, 6, 4, 6], batch=9, activation="tanh", init="normal(0.0, 0.5)")


def test_engines_agree_nonzero_mean_residual_batchnorm():
    _compare(100, widths=[12, 10, 10, 10], batch=7, activation="selu", init="normal(0.05, 0.3)",
             residual=True, batchnorm=True, sigma_b2=0.1)


def test_engines_agree_maxout():
    _compare(80, widths=[20, 16, 16], batch=5, activation="maxout", params={"k": 3}, init="he_normal")


@pytest.mark.parametrize("widths,batch,init", [([30, 20], 5, "normal(0, 0.2)"), ([4, 6], 9, "normal(0.1, 0.5)")])
def test_gaussian_backward_is_conditioned_on_the_forward(widths, batch, init):
    """W x^T = h^T forces (dh W) x^T = dh h^T for every dh: the backward draw must honour the forward one.

    An engine drawing the backward W independently of the forward would break this exact identity (and
    its gradient statistics would still look plausible for a linear layer), so it is checked to rounding.
    """
    from varprop.simulate.config import Config
    from varprop.simulate.engines import Gaussian
    cfg = Config.build(widths=widths, batch=batch, activation="tanh", init=init, trials=1, seed=5)
    eng = Gaussian(cfg, 0)
    x = np.random.default_rng(0).normal(size=(batch, widths[0]))
    h = eng.forward(1, x)
    dh = np.random.default_rng(1).normal(size=h.shape)
    g = eng.backward(1, dh)
    np.testing.assert_allclose(g @ x.T, dh @ h.T, rtol=1e-9, atol=1e-9 * np.abs(dh @ h.T).max())


def test_gaussian_refuses_non_gaussian_weights():
    with pytest.raises(ValueError, match="gaussian engine needs Gaussian weights"):
        run(widths="8x3", init="he_uniform", engine="gaussian", trials=1)
    assert run(widths="8x3", init="he_uniform", trials=1).engine == "dense"
    assert run(widths="8x3", init="truncated_normal(0.1)", trials=1).engine == "dense"
    assert run(widths="8x3", init="orthogonal", trials=1).engine == "dense"
    # Gaussian weights: auto picks whichever engine the cost model expects to be faster (same law)
    assert run(widths="1024x3", batch=16, init="lecun_normal", trials=1).engine == "gaussian"
    assert run(widths="256x3", batch=64, init="lecun_normal", trials=1).engine == "dense"

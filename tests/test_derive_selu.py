"""SELU's fixed point and alpha-dropout (derive/selu.py) against published digits, Monte Carlo and PyTorch."""
import json

import mpmath as mp
import numpy as np
import pytest

from varprop.activations import MATH, get, selu_alpha, selu_lambda
from varprop.derive.derivations import selu


@pytest.fixture(scope="module")
def derivation():
    return selu.build(digits=40, keep_prob="0.9")


def test_verified_and_published_digits(derivation):
    assert derivation.verified, derivation.problems()
    res = derivation.to_dict(40)["result"]
    # the published constants carry 32 significant digits; the derived ones agree to the last of them
    with mp.workdps(50):
        for key, pub in (("alpha", selu.PUBLISHED_ALPHA), ("lambda", selu.PUBLISHED_LAMBDA)):
            assert len(res[key].replace(".", "")) >= 40
            assert abs(mp.mpf(res[key]) - mp.mpf(pub)) < mp.mpf(10) ** -31


def test_registry_kernels_use_the_same_constants(derivation):
    res = derivation.to_dict(20)["result"]
    assert float(res["alpha"]) == pytest.approx(selu_alpha(MATH), rel=1e-15)
    assert float(res["lambda"]) == pytest.approx(selu_lambda(MATH), rel=1e-15)
    assert get("selu").kernel_params() == pytest.approx((float(res["alpha"]), float(res["lambda"])), rel=1e-15)


def test_fixed_point_by_monte_carlo():
    z = np.random.default_rng(11).standard_normal(2_000_000)
    y = get("selu").numpy(z)
    n = y.size
    assert abs(y.mean()) <= 5 * y.std() / np.sqrt(n)
    v, se_v = np.mean(y ** 2), np.std(y ** 2) / np.sqrt(n)
    assert abs(v - 1) <= 5 * se_v


def test_fixed_point_by_quadrature():
    b = get("selu")
    with mp.workdps(30):
        m1 = mp.quad(lambda t: b.mpmath(t) * mp.npdf(t), [-mp.inf, 0, mp.inf])
        m2 = mp.quad(lambda t: b.mpmath(t) ** 2 * mp.npdf(t), [-mp.inf, 0, mp.inf])
        assert abs(m1) < mp.mpf(10) ** -25 and abs(m2 - 1) < mp.mpf(10) ** -25


def _alpha_dropout(x, q, a, b, ap, rng):
    keep = rng.random(x.shape) < q
    return a * np.where(keep, x, ap) + b


def test_alpha_dropout_keeps_mean_and_variance(derivation):
    res = derivation.to_dict(20)["result"]
    a, b, ap, q = (float(res[k]) for k in ("a", "b", "alpha_prime", "keep_prob"))
    assert q == 0.9
    rng = np.random.default_rng(12)
    y = _alpha_dropout(get("selu").numpy(rng.standard_normal(2_000_000)), q, a, b, ap, rng)
    n = y.size
    assert abs(y.mean()) <= 5 * y.std() / np.sqrt(n)
    assert abs(np.mean(y ** 2) - 1) <= 5 * np.std(y ** 2) / np.sqrt(n)
    # the wrong affine map (no correction) visibly breaks the variance
    y0 = np.where(rng.random(n) < q, get("selu").numpy(rng.standard_normal(n)), ap)
    assert abs(np.mean(y0 ** 2) - np.mean(y0) ** 2 - 1) > 20 * np.std(y0 ** 2) / np.sqrt(n)


def test_alpha_dropout_matches_torch(derivation):
    torch = pytest.importorskip("torch")
    res = derivation.to_dict(20)["result"]
    a, b, ap = (float(res[k]) for k in ("a", "b", "alpha_prime"))
    torch.manual_seed(0)
    x = torch.randn(20000, dtype=torch.float64)
    y = torch.nn.functional.alpha_dropout(x, p=0.1, training=True).numpy()
    xn = x.numpy()
    kept = np.isclose(y, a * xn + b, rtol=0, atol=1e-12)
    dropped = np.isclose(y, a * ap + b, rtol=0, atol=1e-12)
    assert np.all(kept | dropped)                     # every output is a x + b or the dropped value a alpha' + b
    assert 0.85 < kept.mean() < 0.95


def test_symbolic_alpha_dropout_helpers():
    import sympy as sp
    q, ap = sp.symbols("q alpha'", positive=True)
    a, b = selu.alpha_dropout_affine(q, ap)
    # the defining equations: mean 0 and variance 1 of a x' + b
    mean = (1 - q) * ap
    var = q + (1 - q) * ap ** 2 - mean ** 2
    assert sp.simplify(a * mean + b) == 0
    assert sp.simplify(a ** 2 * var - 1) == 0


def test_bad_keep_prob():
    with pytest.raises(ValueError, match="keep_prob"):
        selu.build(keep_prob="1.5")
    with pytest.raises(ValueError, match="digits"):
        selu.build(digits=0)


def test_cli_digits(capsys):
    from varprop.cli import main
    assert main(["derive", "selu", "--json", "--digits", "35"]) == 0
    out = json.loads(capsys.readouterr().out)
    doc = out[0] if isinstance(out, list) else out
    assert doc["verified"] is True
    from varprop.activations import mpmath_namespace
    with mp.workdps(60):
        ns = mpmath_namespace()
        for key, exact in (("alpha", selu_alpha(ns)), ("lambda", selu_lambda(ns))):
            text = doc["result"][key]
            assert len(text.replace(".", "")) <= 35          # trailing zeros are stripped
            assert abs(mp.mpf(text) - exact) <= mp.mpf(10) ** -34 / 2 * 1.01


def _selu_moments_scipy(nu):
    """(mean, variance) of selu(h), h ~ N(0, nu), by SciPy's QUADPACK."""
    from scipy import integrate
    f = get("selu").numpy

    def g(t, k):
        return float(f(np.array([np.sqrt(nu) * t]))[0]) ** k * np.exp(-t * t / 2) / np.sqrt(2 * np.pi)
    m1 = sum(integrate.quad(g, lo, hi, args=(1,), epsabs=1e-14, epsrel=1e-13)[0] for lo, hi in ((-np.inf, 0), (0, np.inf)))
    m2 = sum(integrate.quad(g, lo, hi, args=(2,), epsabs=1e-14, epsrel=1e-13)[0] for lo, hi in ((-np.inf, 0), (0, np.inf)))
    return m1, m2 - m1 ** 2


def test_jacobian_against_central_differences_of_scipy_quadrature(derivation):
    res = derivation.to_dict(15)["result"]
    h = 1e-4
    up, down = _selu_moments_scipy(1 + h), _selu_moments_scipy(1 - h)
    j12, j22 = (up[0] - down[0]) / (2 * h), (up[1] - down[1]) / (2 * h)
    assert float(res["jacobian_12"]) == pytest.approx(j12, rel=1e-6)
    assert float(res["jacobian_22"]) == pytest.approx(j22, rel=1e-6)
    assert float(res["jacobian_norm"]) == pytest.approx(np.hypot(j12, j22), rel=1e-6)
    assert round(float(res["jacobian_norm"]), 3) == 0.788 and float(res["jacobian_norm"]) < 1


def test_chi1_above_one_against_the_float_mean_field(derivation):
    from varprop.derive import mean_field as mf
    chi = float(derivation.to_dict(15)["result"]["chi_1"])
    assert chi == pytest.approx(mf.chi1("selu", 1.0, 0.0), rel=1e-10)
    assert round(chi, 4) == 1.0716


def test_off_fixed_point_a_network_converges_at_the_jacobian_rate(derivation):
    """A NumPy SELU network (LeCun weights) fed inputs of mean 1 and variance 4 reaches mean 0, variance 1;
    the float length map from the same second moment contracts by J_22 per layer near the fixed point."""
    from varprop.derive import mean_field as mf
    j22 = float(derivation.to_dict(15)["result"]["jacobian_22"])
    q, gaps = 5.0, []
    for _ in range(40):
        q = mf.length_map("selu", q, 1.0)
        gaps.append(q - 1)
    assert gaps[-1] / gaps[-2] == pytest.approx(j22, rel=1e-3)
    rng = np.random.default_rng(2)
    n, batch = 1024, 64
    x = 1 + 2 * rng.standard_normal((batch, n))
    f = get("selu").numpy
    for _ in range(30):
        x = f(x @ (rng.standard_normal((n, n)) / np.sqrt(n)))
    assert abs(x.mean()) < 0.05 and abs(x.var() - 1) < 0.05

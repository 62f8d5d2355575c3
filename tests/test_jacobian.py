"""Jacobian spectra at initialization: free-probability moments (derive/jacobian.py) against the simulator."""
import math

import numpy as np
import pytest

from varprop.derive import jacobian as jt
from varprop.simulate.jacobian import jacobian_spectrum


def test_closed_cases():
    # linear: mu_2 = mu_1^2 = 1, so the variance is L (Gaussian) or 0 (orthogonal); ReLU: 2L and L
    assert jt.spectrum_moments("linear", 1.0, 0.0, 7, "gaussian") == pytest.approx((1.0, 7.0))
    assert jt.spectrum_moments("linear", 1.0, 0.0, 7, "orthogonal") == pytest.approx((1.0, 0.0), abs=1e-12)
    assert jt.spectrum_moments("relu", 2.0, 0.0, 7, "gaussian") == pytest.approx((1.0, 14.0))
    assert jt.spectrum_moments("relu", 2.0, 0.0, 7, "orthogonal") == pytest.approx((1.0, 7.0))
    assert jt.spectrum_moments("linear", 1.2, 0.0, 3, "gaussian")[0] == pytest.approx(1.2 ** 3)
    # the Fuss-Catalan second moment is L + 1, its variance L: the same as the free-probability formula
    for L in (1, 4, 9):
        assert jt.fuss_catalan_moment(L, 2) - 1 == pytest.approx(jt.spectrum_moments("linear", 1, 0, L)[1])


def test_tanh_at_criticality_approaches_isometry_only_with_orthogonal_weights():
    ratios = []
    for sb in (0.05, 0.01, 1e-3, 1e-5):
        sw, q = jt.critical_point("tanh", sb)
        m_g, v_g = jt.spectrum_moments("tanh", sw, sb, 10, "gaussian")
        m_o, v_o = jt.spectrum_moments("tanh", sw, sb, 10, "orthogonal")
        assert m_g == pytest.approx(1.0, rel=1e-6) and m_o == pytest.approx(1.0, rel=1e-6)
        assert v_g >= 10 and v_o < v_g
        ratios.append(v_o)
    assert all(a > b for a, b in zip(ratios, ratios[1:])) and ratios[-1] < 0.05       # q* -> 0: isometry


def test_derivative_moments_against_sampling():
    rng = np.random.default_rng(0)
    z = rng.standard_normal(2_000_000)
    for act in ("tanh", "hardtanh"):
        from varprop.activations import get
        d2 = get(act).numpy_derivative(np.sqrt(0.7) * z).astype(np.float64) ** 2
        mu1, mu2 = jt.derivative_moments(act, 0.7)
        assert abs(mu1 - d2.mean()) < 5 * d2.std() / math.sqrt(z.size)
        assert abs(mu2 - (d2 ** 2).mean()) < 5 * (d2 ** 2).std() / math.sqrt(z.size)


def test_orthogonal_linear_net_is_an_exact_isometry():
    r = jacobian_spectrum(48, 6, "linear", 1.0, weights="orthogonal", trials=2, seed=4)
    assert np.allclose(r.sv2, 1.0, atol=1e-10)


@pytest.mark.parametrize("act,weights,depth", [("linear", "gaussian", 4), ("relu", "orthogonal", 4),
                                               ("relu", "gaussian", 2), ("tanh", "orthogonal", 6)])
def test_simulated_moments_match_free_probability(act, weights, depth):
    """Width 256: the finite-width bias of the variance is of relative order depth / width; allowed 15%."""
    if act == "tanh":
        sb = 1e-3
        sw, _ = jt.critical_point(act, sb)
    else:
        sw, sb = (1.0 if act == "linear" else 2.0), 0.0
    r = jacobian_spectrum(256, depth, act, sw, sb, weights=weights, trials=6, seed=2)
    assert abs(r.mean - r.theory_mean) < 5 * r.se_mean() + 0.05 * r.theory_mean
    assert abs(r.var - r.theory_var) < 5 * r.se_var() + 0.15 * r.theory_var


def test_spread_contrast_gaussian_against_orthogonal_tanh():
    sb = 1e-3
    sw, _ = jt.critical_point("tanh", sb)
    g = jacobian_spectrum(128, 8, "tanh", sw, sb, weights="gaussian", trials=3, seed=1)
    o = jacobian_spectrum(128, 8, "tanh", sw, sb, weights="orthogonal", trials=3, seed=1)
    assert o.var < 0.2 * g.var                      # orthogonal weights: the spectrum stays concentrated


def test_reproducible_and_refusals():
    a = jacobian_spectrum(32, 3, "tanh", 1.5, 0.1, trials=2, seed=9)
    b = jacobian_spectrum(32, 3, "tanh", 1.5, 0.1, trials=2, seed=9)
    assert np.array_equal(a.sv2, b.sv2)
    with pytest.raises(ValueError, match="width must be an integer"):
        jacobian_spectrum(10**6, 3, "tanh", 1.0)
    with pytest.raises(ValueError, match="flops"):
        jacobian_spectrum(4096, 5000, "tanh", 1.0, trials=10)
    with pytest.raises(ValueError, match="weights must be one of"):
        jacobian_spectrum(8, 2, "tanh", 1.0, weights="unitary")
    with pytest.raises(ArithmeticError, match="overflowed"):
        jacobian_spectrum(16, 400, "linear", 100.0)


def test_cli(tmp_path, capsys):
    import json

    from varprop.cli import main
    out = tmp_path / "s.json"
    assert main(["spectrum", "--activation", "linear", "--sigma-w2", "1", "--sigma-b2", "0", "--width", "32",
                 "--depth", "3", "--weights", "orthogonal", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "variance" in text and "theory" in text
    d = json.loads(out.read_text())
    assert d["mean"] == pytest.approx(1.0) and d["var"] == pytest.approx(0.0, abs=1e-12)
    for argv, frag in ((["spectrum", "--width", "0"], "width must be an integer"),
                       (["spectrum", "--weights", "unitary"], "invalid choice"),
                       (["spectrum", "--activation", "maxout"], "not implemented"),
                       (["spectrum", "--json", str(tmp_path)], "is a folder")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert frag in err and err.count("\n") == 1, err

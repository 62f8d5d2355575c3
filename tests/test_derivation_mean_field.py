"""The mean-field derivation (derive/mean_field.py) against closed forms, independent mpmath roots and Monte Carlo."""
import json
import math

import mpmath as mp
import numpy as np
import pytest

from varprop.derive.derivations import mean_field


def _result(d, digits=15):
    return {k: v for k, v in d.to_dict(digits)["result"].items() if k != "latex"}


def test_relu_closed_forms():
    d = mean_field.build(activation="relu", sigma_b2="0.3", sigma_w2="1.2")
    assert d.verified, d.problems()
    r = _result(d)
    assert r["critical_sigma_w2"] == "2"
    assert float(r["q_star"]) == pytest.approx(0.3 / (1 - 0.6), rel=1e-14)
    assert float(r["chi_1"]) == pytest.approx(0.6, rel=1e-14)
    assert float(r["xi_c"]) == pytest.approx(-1 / math.log(0.6), rel=1e-9)
    assert any(c.name == "critical_sigma_w2" and c.relative_difference() == 0 for c in d.comparisons)


def test_tanh_published_critical_point():
    d = mean_field.build(activation="tanh", sigma_b2=0)
    assert d.verified, d.problems()
    r = _result(d)
    assert r["critical_sigma_w2"] == "1" and r["q_star"] == "0" and r["chi_1"] == "1"
    assert r["xi_c"] == "+inf"


def _tanh_root(sw, sb):
    """q* and chi_1 by an independent route: mpmath quad of tanh directly and findroot."""
    with mp.workdps(30):
        sw, sb = mp.mpf(sw), mp.mpf(sb)

        def second(q):
            s = mp.sqrt(q)
            return mp.quad(lambda z: mp.tanh(s * z) ** 2 * mp.npdf(z), [-mp.inf, 0, mp.inf])
        q = mp.findroot(lambda q: sw * second(q) + sb - q, mp.mpf(0.5))
        s = mp.sqrt(q)
        chi = sw * mp.quad(lambda z: (1 - mp.tanh(s * z) ** 2) ** 2 * mp.npdf(z), [-mp.inf, 0, mp.inf])
        return q, chi


def test_tanh_against_independent_roots():
    d = mean_field.build(activation="tanh", sigma_b2="0.05", sigma_w2="1.5", digits=20)
    assert d.verified, d.problems()
    r = _result(d, 20)
    q, chi = _tanh_root("1.5", "0.05")
    with mp.workdps(30):
        assert abs(mp.mpf(r["q_star"]) - q) < mp.mpf(10) ** -18
        assert abs(mp.mpf(r["chi_1"]) - chi) < mp.mpf(10) ** -18
    assert float(r["xi_c"]) == pytest.approx(-1 / math.log(float(chi)), rel=1e-9)


def test_tanh_critical_line_point():
    d = mean_field.build(activation="tanh", sigma_b2="0.05", digits=15)
    assert d.verified, d.problems()
    r = _result(d)
    crit = mp.mpf(r["critical_sigma_w2"])
    assert float(crit) == pytest.approx(1.76, abs=0.005)        # Schoenholz et al. 2017's (1.76, 0.05)
    _, chi = _tanh_root(r["critical_sigma_w2"], "0.05")
    assert abs(chi - 1) < 1e-12


def test_chi1_by_monte_carlo():
    d = mean_field.build(activation="tanh", sigma_b2="0.05", sigma_w2="2.5")
    r = _result(d)
    q, chi = float(r["q_star"]), float(r["chi_1"])
    z = np.random.default_rng(21).standard_normal(1_000_000)
    sample = 2.5 * (1 - np.tanh(np.sqrt(q) * z) ** 2) ** 2
    se = sample.std() / np.sqrt(z.size)
    assert abs(sample.mean() - chi) <= 5 * se
    assert chi > 1                                     # sigma_w^2 = 2.5 lies in the chaotic phase
    # there xi_c comes from chi_c at the correlation map's fixed point c* < 1: check both by Monte Carlo
    c_star, chic = float(r["c_star"]), float(r["chi_c"])
    assert 0 < c_star < 1 and chic < 1
    assert float(r["xi_c"]) == pytest.approx(-1 / math.log(chic), rel=1e-9)
    rng = np.random.default_rng(22)
    z1, z2 = rng.standard_normal((2, 1_000_000))
    u1 = np.sqrt(q) * z1
    u2 = np.sqrt(q) * (c_star * z1 + np.sqrt(1 - c_star ** 2) * z2)
    c_map = (2.5 * np.tanh(u1) * np.tanh(u2) + 0.05) / q
    assert abs(c_map.mean() - c_star) <= 5 * c_map.std() / np.sqrt(z1.size)
    d_map = 2.5 * (1 - np.tanh(u1) ** 2) * (1 - np.tanh(u2) ** 2)
    assert abs(d_map.mean() - chic) <= 5 * d_map.std() / np.sqrt(z1.size)


def test_maxout_and_leaky():
    d = mean_field.build(activation="maxout", params={"k": "2"}, sigma_b2="0.1", sigma_w2="0.5")
    assert d.verified, d.problems()
    assert _result(d)["critical_sigma_w2"] == "1"
    d = mean_field.build(activation="leaky_relu", params={"negative_slope": "0.5"}, sigma_b2="0.1")
    assert d.verified, d.problems()
    assert _result(d)["critical_sigma_w2"] == "1.6"


def test_errors():
    with pytest.raises(ValueError, match="sigma_b2"):
        mean_field.build(sigma_b2="-1")
    with pytest.raises(ValueError, match="jumps over 1"):
        mean_field.build(activation="gelu", sigma_b2="0.1")


def test_cli(capsys):
    from varprop.cli import main
    assert main(["derive", "mean-field", "--activation", "relu", "--sigma-b2", "0.2", "--sigma-w2", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    doc = out[0] if isinstance(out, list) else out
    r = doc["result"]
    assert r["critical_sigma_w2"] == "2" and float(r["q_star"]) == pytest.approx(0.4)
    assert float(r["chi_1"]) == 0.5 and {"xi_q", "xi_c"} <= set(r)
    assert main(["derive", "mean-field", "--activation", "nope"]) == 2


def test_forward_results_do_not_use_gradient_independence():
    from varprop.derive.derivations import mean_field
    d = mean_field.build(activation="tanh", sigma_b2="0.05", sigma_w2="1.5")
    for s in d.steps:
        if s.title.startswith(("fixed point q*", "q* is a fixed point", "pre-activation second moment")):
            assert "grad_indep" not in s.uses, s.title
    assert any("grad_indep" in s.uses for s in d.steps if "chi_1" in s.title)
    assert "forward results" in d.assumptions["grad_indep"]


@pytest.mark.parametrize("act, sw, sb", [("tanh", "1.5", "0.05"), ("gelu", "1.8", "0.2"), ("selu", "1.3", "0.1")])
def test_fixed_point_by_two_root_finders_away_from_trivial_points(act, sw, sb):
    """sigma_b^2 > 0: Brent's method on the float length map against the secant method on the mpmath moments,
    and both against iterating the map (the report's mean-field claims rest on these)."""
    from fractions import Fraction

    from varprop.activations import get
    from varprop.derive import mean_field as mf
    from varprop.derive.derivations.mean_field import polished_fixed_point
    q_brent = mf.fixed_point(act, float(sw), float(sb))
    q_secant = float(polished_fixed_point(get(act), Fraction(sw), Fraction(sb), q_brent, 12))
    assert q_secant == pytest.approx(q_brent, rel=1e-9)
    q = 1.0
    for _ in range(400):
        q = mf.length_map(act, q, float(sw), float(sb))
    assert q == pytest.approx(q_secant, rel=1e-7)


def test_ordered_phase_writes_c_star_one_and_chi_c_chi_1():
    """Below the critical line the stable fixed point of the correlation map is c = 1 itself: the results
    carry c* = 1 and chi_c = chi_1 as fields, and chi_c is the map's slope at c = 1 by Monte Carlo."""
    d = mean_field.build(activation="tanh", sigma_b2="0.05", sigma_w2="1.2")
    r = _result(d)
    chi = float(r["chi_1"])
    assert chi < 1 and float(r["c_star"]) == 1.0 and float(r["chi_c"]) == pytest.approx(chi, rel=1e-12)
    q = float(r["q_star"])
    z = np.random.default_rng(22).standard_normal(1_000_000)
    slope = 1.2 * (1 - np.tanh(np.sqrt(q) * z) ** 2) ** 2       # sigma_w^2 E[phi'(u)^2] at c = 1
    assert abs(slope.mean() - float(r["chi_c"])) <= 5 * slope.std() / np.sqrt(z.size)

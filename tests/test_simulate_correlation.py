"""Pairs of inputs through random networks: the simulated correlation per layer against the correlation map."""
import numpy as np
import pytest

from varprop.derive import mean_field as mf
from varprop.simulate.correlation import correlation_theory, pair_correlation


def test_theory_iterates_mean_fields_correlation_map():
    q_star = mf.fixed_point("tanh", 1.5, 0.05)
    # the input's length q0 puts the first pre-activations at q* = 1.5 q0 + 0.05: every layer is at q*
    c = correlation_theory("tanh", 120, 1.5, 0.05, c0=0.3, q0=(q_star - 0.05) / 1.5)
    for a, b in zip(c[:-1], c[1:]):           # at q*, each step is the correlation map itself
        assert b == pytest.approx(mf.correlation_map("tanh", a, 1.5, 0.05), abs=1e-6)
    assert c[-1] > 0.99                       # ordered phase (xi_c = 15.8): inputs collapse onto one direction


def test_chaotic_phase_converges_to_c_star_below_one():
    c_star, _ = mf.chi_c("tanh", 4.0, 0.05)
    c = correlation_theory("tanh", 200, 4.0, 0.05, c0=0.99)
    assert c[-1] == pytest.approx(c_star, abs=1e-6) and c_star < 0.9


def test_dropout_removes_the_fixed_point_at_one():
    # identical inputs stay identical without dropout; with independent masks they decorrelate
    assert correlation_theory("relu", 5, 2.0, 0.0, c0=1.0)[-1] == pytest.approx(1.0)
    c = correlation_theory("relu", 50, 2.0, 0.0, c0=1.0, keep_prob=0.8)
    assert c[0] == pytest.approx(1.0) and c[1] == pytest.approx(0.8) and c[-1] < 0.6


@pytest.mark.parametrize("act,sw,sb,p", [("tanh", 1.5, 0.05, 1.0), ("tanh", 3.0, 0.05, 1.0),
                                         ("relu", 2.0, 0.0, 0.8)])
def test_simulation_matches_theory(act, sw, sb, p):
    """100 networks of width 256: the finite-width bias of a correlation is O(1/n); allowed 5 % plus 5 se."""
    r = pair_correlation([256] * 9, act, sw, sb, c0=0.9, keep_prob=p, trials=100, seed=2)
    assert np.all(np.abs(r.mean - r.theory) <= 5 * r.se + 0.05 * np.abs(r.theory))
    assert r.per_trial.shape == (100, 8)


def test_reproducible_and_refusals():
    a = pair_correlation([16] * 3, "tanh", 1.0, trials=3, seed=4)
    b = pair_correlation([16] * 3, "tanh", 1.0, trials=3, seed=4)
    assert np.array_equal(a.per_trial, b.per_trial)
    with pytest.raises(ValueError, match="c0 is a correlation"):
        pair_correlation([8, 8], "tanh", 1.0, c0=2)
    with pytest.raises(ValueError, match="keep_prob"):
        pair_correlation([8, 8], "tanh", 1.0, keep_prob=0)
    with pytest.raises(ValueError, match="ceiling"):
        pair_correlation([16384] * 10, "tanh", 1.0, trials=1000)
    with pytest.raises(ValueError, match="trials"):
        pair_correlation([8, 8], "tanh", 1.0, trials=1)


def test_cli(tmp_path, capsys):
    import json

    from varprop.cli import main
    out = tmp_path / "pair.json"
    assert main(["simulate", "--widths", "64x5", "--activation", "tanh", "--init", "normal(0, sqrt(1.5/fan_in))",
                 "--sigma-b2", "0.05", "--pair-correlation", "0.5", "--trials", "10", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "correlation +- se" in text and len(text.strip().splitlines()) == 2 + 4
    d = json.loads(out.read_text())
    assert d["theory"] == pytest.approx(list(correlation_theory("tanh", 4, 1.5, 0.05, c0=0.5)))
    for argv, frag in ((["--residual"], "takes neither"), (["--pair-correlation", "2"], "c0 is a correlation"),
                       (["--widths", "8,16,8", "--init", "normal(0, 0.1)"], "one sigma_w^2")):
        base = ["simulate", "--widths", "16x3", "--pair-correlation", "0.5"]
        assert main(base + argv) == 2, argv
        err = capsys.readouterr().err
        assert frag in err and err.count("\n") == 1, err

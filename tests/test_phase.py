"""The phase diagram (derive/phase.py) against mean_field's point-by-point root finding, and `varprop phase`."""
import json
import math

import numpy as np
import pytest

from varprop.derive import mean_field as mf
from varprop.derive import phase


@pytest.mark.parametrize("act", ["tanh", "silu", "sigmoid", "hardtanh", "elu"])
def test_grid_matches_mean_field_point_by_point(act):
    p = phase.diagram(act, (0.5, 4.0, 12), (0.0, 0.3, 7))
    for i in (0, 3, 6):
        for j in (0, 5, 8, 11):
            sw, sb = p.sigma_w2[j], p.sigma_b2[i]
            q = mf.fixed_point(act, sw, sb)
            if math.isfinite(q):
                assert p.q_star[i, j] == pytest.approx(q, rel=1e-7, abs=1e-12)
            else:
                assert math.isinf(p.q_star[i, j])
            assert p.chi1[i, j] == pytest.approx(mf.chi1(act, sw, sb), rel=1e-7)
            xq, xc = mf.depth_scales(act, sw, sb)
            if p.chi1[i, j] < 1 - 1e-3:                  # the ordered phase: xi_c = -1/log chi_1 for every act
                assert p.xi_c[i, j] == pytest.approx(xc, rel=1e-6)
            elif p.chi1[i, j] > 1 + 1e-3 and 0 < q < math.inf:
                if p.note:                               # kinked: left undefined in the chaotic phase, and said
                    assert math.isnan(p.xi_c[i, j]) and "kinks" in p.note
                else:
                    assert p.xi_c[i, j] == pytest.approx(xc, rel=5e-3)
                    assert p.c_star[i, j] == pytest.approx(mf.chi_c(act, sw, sb)[0], abs=2e-3)


def test_critical_line_matches_mean_field_and_relu_is_two_everywhere():
    sb = np.array([0.0, 0.05, 0.1, 0.3])
    line = phase.critical_line("tanh", sb, sw_range=(0.5, 4.0))
    assert line == pytest.approx([mf.critical_sigma_w2("tanh", float(s)) for s in sb], rel=1e-6)
    assert (np.diff(line) > 0).all()                                   # more bias needs more weight variance
    p = phase.diagram("relu", (1.0, 3.0, 5), (0.0, 0.2, 3))
    assert (p.critical == 2.0).all() and "sigma_w^2 = 2" in p.note
    assert np.isinf(p.q_star[1:, 2:]).all() and p.q_star[1, 1] == pytest.approx(0.1 / (1 - 1.5 / 2))
    assert (p.xi_c[:, 2:] == np.inf).all()


def test_sigma_b_zero_chaotic_phase_has_c_star_zero_for_odd_activations():
    # with no bias an odd phi maps c = 0 to itself, and beyond chi_1 = 1 that is the stable fixed point
    c_star, chi_c = mf.chi_c("tanh", 3.0, 0.0)
    assert c_star == 0.0 and chi_c < 1
    p = phase.diagram("tanh", (2.0, 3.0, 3), (0.0, 0.1, 2))
    assert (p.c_star[0] == 0.0).all()
    assert p.xi_c[0, 2] == pytest.approx(mf.depth_scales("tanh", 3.0, 0.0)[1], rel=1e-3)


def test_bad_input():
    with pytest.raises(ValueError, match="points per axis"):
        phase.diagram("tanh", (0.5, 4.0, 1))
    with pytest.raises(ValueError, match="low < high"):
        phase.diagram("tanh", (4.0, 0.5, 10))
    with pytest.raises(ValueError, match="maxout"):
        phase.diagram("maxout")
    with pytest.raises(TypeError, match="low, high, points"):
        phase.diagram("tanh", 3.0)


def test_cli_writes_json_and_figure(tmp_path, capsys):
    from varprop.cli import main
    js, png = tmp_path / "p.json", tmp_path / "p.png"
    assert main(["phase", "--activation", "tanh", "--points", "12", "--json", str(js), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "critical sigma_w^2" in out
    d = json.loads(js.read_text())
    assert len(d["sigma_w2"]) == 12 and len(d["xi_c"]) == 12 and len(d["xi_c"][0]) == 12
    assert d["critical_sigma_w2"][0] == pytest.approx(1.0, abs=1e-6)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for argv, frag in ((["phase", "--points", "5000"], "points per axis"),
                       (["phase", "--activation", "nope"], "unknown activation"),
                       (["phase", "--json", str(tmp_path), "--points", "5"], "folder"),
                       (["phase", "--json", str(js), "--plot", str(js), "--points", "5"], "same file"),
                       (["phase", "--sigma-b2-max", "nan"], "both finite")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert frag in err and err.count("\n") == 1

"""The trainability fit on cells whose boundary is known, the heat map, and the report section."""
import json
import math

import numpy as np
import pytest

from varprop.cli import main
from varprop.sweep import SweepResult, run
from varprop.sweep.grid import Grid, cell_id
from varprop.sweep.plot import depth_curve, heatmap, parse_overlay
from varprop.sweep.trainability import analyse, fit_boundary

SW = [1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0]
DEPTHS = [4, 8, 16, 32, 64, 128, 256]


def _synthetic(rule):
    """A finished (sigma_w2, depth) train sweep whose cells train exactly where ``rule(depth, xi_c)`` holds."""
    grid = Grid({"sigma_w2": SW, "depth": DEPTHS}, {"sigma_w2": "list", "depth": "log"})
    xi = dict(zip(SW, depth_curve("tanh", 0.05, SW, "xi_c")))
    rows = []
    for i, c in enumerate(grid.cells()):
        ok = rule(c["depth"], xi[c["sigma_w2"]])
        rows.append({"cell_id": cell_id(c), "index": i, "coords": c, "seed": i, "elapsed_s": 0.0, "worker": "w",
                     "metrics": {"train_acc": 0.95 if ok else 0.1, "test_acc": 0.9 if ok else 0.1, "chance": 0.1}})
    manifest = {"kind": "train", "grid": grid.to_dict(), "fixed": {"activation": "tanh", "sigma_b2": 0.05},
                "seed": 0, "cells": len(rows)}
    return SweepResult("-", manifest, rows)


def test_fit_boundary_is_halfway_between_the_two_sides():
    c, err, inside = fit_boundary([1, 2, 3, 10, 20], [True, True, True, False, False])
    assert err == 0 and inside and c == pytest.approx(math.sqrt(30))
    assert fit_boundary([1, 2], [True, True])[2] is False        # nothing untrainable: no boundary in the grid


def test_a_six_xi_c_boundary_is_found_and_verified():
    t = analyse(_synthetic(lambda L, xi: L < 6 * xi), n_boot=300)
    assert t.errors == 0 and t.errors_depth_only > 0
    # the fit can only place c between the grid's ratios on either side of 6
    assert t.c_low <= 6 <= t.c_high and 3 < t.c < 12
    assert t.verdict == "verified"


def test_a_fixed_depth_boundary_is_not_mistaken_for_xi_c():
    t = analyse(_synthetic(lambda L, xi: L < 40), n_boot=300)
    assert t.errors_depth_only == 0 and t.errors > 0
    assert t.verdict != "verified"


def test_a_boundary_far_from_six_is_refuted():
    t = analyse(_synthetic(lambda L, xi: L < 0.7 * xi), n_boot=300)
    assert t.c_high < 3 and t.verdict == "refuted"


def test_no_boundary_in_the_grid_is_inconclusive():
    assert analyse(_synthetic(lambda L, xi: True), n_boot=10).verdict == "inconclusive"


def test_overlay_parsing():
    assert parse_overlay("6xi_c") == (6.0, "xi_c") and parse_overlay("xi_q") == (1.0, "xi_q")
    assert parse_overlay("2.5*xi_c") == (2.5, "xi_c")
    for bad in ("6xi", "import os", "-1xi_c", "0xi_c"):
        with pytest.raises(ValueError):
            parse_overlay(bad)


def test_heatmap_png_from_a_sweep(tmp_path, capsys):
    out = tmp_path / "s"
    run("phase", ["sigma_w2=1,2,4", "sigma_b2=0,0.05"], {"activation": "tanh"}, out, "serial")
    png = tmp_path / "h.png"
    assert main(["sweep", "plot", str(out), "--x", "sigma_b2", "--y", "sigma_w2", "--z", "chi_1",
                 "--out", str(png)]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert w >= 6 * 200 and h >= 4 * 200                                 # dpi >= 200 on a 6.4 x 4.8 in figure
    for argv, msg in ((["--z", "nope"], "not a metric"), (["--x", "depth", "--z", "chi_1"], "not an axis"),
                      (["--z", "chi_1", "--overlay", "6xi_c"], "depth and sigma_w2"),
                      (["--z", "chi_1", "--dpi", "100"], ">= 200")):
        argv = ["sweep", "plot", str(out), "--x", "sigma_b2", "--y", "sigma_w2", *argv, "--out", str(png)]
        if "--x" in argv[4:] and argv.count("--x") > 1:
            i = argv.index("--x")
            del argv[i:i + 2]
        assert main(argv) == 2
        assert msg in capsys.readouterr().err


@pytest.mark.slow
def test_heatmap_overlay_draws_the_depth_scale():
    res = _synthetic(lambda L, xi: L < 6 * xi)
    plain = heatmap(res, x="depth", y="sigma_w2", z="train_acc")
    with_curve = heatmap(res, x="depth", y="sigma_w2", z="train_acc", overlay=["6xi_c"])
    assert plain[:4] == b"\x89PNG" and plain != with_curve


@pytest.mark.slow
def test_report_section_is_deterministic(tmp_path):
    from varprop.report.trainability import section
    outs = []
    for k in range(2):
        d = tmp_path / f"r{k}"
        d.mkdir()
        claims, md = section(str(d), "smoke", 0, client="serial")
        outs.append({f: (d / f).read_bytes() for f in ("trainability.md", "trainability.json", "trainability.png")})
    assert outs[0] == outs[1]
    blob = json.loads(outs[0]["trainability.json"])
    assert blob["cells"] == 6 and blob["verdict"] in ("verified", "refuted", "inconclusive")
    assert claims[0].verdict == blob["verdict"] and "trainability.md" in md
    assert np.isfinite(blob["threshold"])

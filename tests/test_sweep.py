"""varprop.sweep without a cluster: grids, seeds, cells against the library routes, resume, bad input."""
import json
import math
import os
import sys

import numpy as np
import pytest

from varprop.cli import main
from varprop.sweep import Grid, cell_seed, execute, load, plan, run
from varprop.sweep import store
from varprop.sweep.grid import cell_id, parse_axis

def _has_dask() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


T = {"sigma_w2": float, "depth": int, "activation": str, "batchnorm": bool}


# --- grids -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, values", [
    ("sigma_w2=1:4:7", [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]),
    ("sigma_w2=1:4:31", [round(1 + 0.1 * i, 12) for i in range(31)]),
    ("sigma_w2=log:1:100:3", [1.0, 10.0, 100.0]),
    ("depth=log:2:64:6", [2, 4, 8, 16, 32, 64]),
    ("depth=10:300:30", list(range(10, 301, 10))),
    ("depth=1,2,4", [1, 2, 4]),
    ("sigma-w2=2.5", [2.5]),
    ("activation=tanh,relu", ["tanh", "relu"]),
    ("batchnorm=true,false", [True, False]),
])
def test_axis_forms(spec, values):
    key, got, _ = parse_axis(spec, T)
    assert key in T and got == values


@pytest.mark.parametrize("spec, message", [
    ("foo=1:2:3", "unknown grid key 'foo'"),
    ("sigma_w2=1:2:0", "empty"),
    ("sigma_w2=", "no values"),
    ("sigma_w2=1:2", "a:b:n"),
    ("sigma_w2=log:0:2:3", "positive"),
    ("depth=1:2:5", "repeats"),           # 1, 1.25, ... rounds to 1, 1, 2, 2, 2
    ("depth=1.5,2", "integers"),
    ("sigma_w2=1,1", "repeats"),
    ("sigma_w2=1,,2", "empty value"),
    ("sigma_w2=nan", "finite"),
    ("activation=1:2:3", "list"),
    ("sigma_w2", "NAME=SPEC"),
])
def test_bad_axes(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_axis(spec, T)


def test_cells_product_first_axis_slowest():
    g = Grid.parse(["sigma_w2=1,2", "depth=3,4,5"], T)
    assert len(g) == 6
    assert g.cells()[:4] == [{"sigma_w2": 1.0, "depth": 3}, {"sigma_w2": 1.0, "depth": 4},
                             {"sigma_w2": 1.0, "depth": 5}, {"sigma_w2": 2.0, "depth": 3}]


def test_seed_depends_on_coordinates_and_sweep_seed_only():
    small = {c["cell_id"]: c["seed"] for c in plan("phase", ["sigma_w2=1,2"], {"activation": "tanh"})[1]}
    big = {c["cell_id"]: c["seed"] for c in plan("phase", ["sigma_w2=3,2,1.5,1"], {"activation": "tanh"})[1]}
    assert all(big[k] == v for k, v in small.items())           # order and other cells do not matter
    other = {c["cell_id"]: c["seed"] for c in plan("phase", ["sigma_w2=1,2"], {}, seed=1)[1]}
    assert set(other) == set(small) and all(other[k] != small[k] for k in small)
    seeds = [cell_seed(0, {"depth": d}) for d in range(1000)]
    assert len(set(seeds)) == 1000 and all(0 <= s < 2 ** 63 for s in seeds)
    assert cell_id({"a": 1, "b": 2.0}) == cell_id({"b": 2.0, "a": 1}) != cell_id({"a": 1, "b": 2})


def test_plan_rejects_before_work():
    with pytest.raises(ValueError, match="more than --max-cells 5"):
        plan("phase", ["sigma_w2=1:2:3", "sigma_b2=0:1:2"], max_cells=5)
    with pytest.raises(ValueError, match="seed is the sweep's own"):
        plan("phase", ["sigma_w2=1"], {"seed": 3})
    with pytest.raises(ValueError, match="unknown option 'hidden'"):
        plan("phase", ["sigma_w2=1"], {"hidden": "3"})
    with pytest.raises(ValueError, match="unknown sweep kind"):
        plan("fit", ["sigma_w2=1"])
    with pytest.raises(ValueError, match="both a grid axis and a fixed option"):
        plan("phase", ["sigma_w2=1"], {"sigma_w2": 2})
    # every cell's configuration is built: a bad activation or a bad simulate cell fails up front
    with pytest.raises(ValueError, match="cell activation=nope"):
        plan("phase", ["activation=tanh,nope"], {"sigma_w2": 1.0})
    with pytest.raises(ValueError, match="needs widths, or depth"):
        plan("simulate", ["sigma_w2=1"], {})
    with pytest.raises(ValueError, match="do not give init as well"):
        plan("simulate", ["sigma_w2=1"], {"depth": 2, "init": "he_normal"})


# --- cells against the library routes ------------------------------------------------------------

def test_phase_cells_are_the_mean_field_theory(tmp_path):
    from varprop.derive import mean_field as mf
    r = run("phase", ["sigma_w2=1,1.5,2.5"], ["activation=tanh", "sigma_b2=0.05"], tmp_path / "s", "serial")
    assert r.complete and len(r.rows) == 3 and r.computed == [row["cell_id"] for row in r.rows]
    for row in r.rows:
        sw = row["coords"]["sigma_w2"]
        m = row["metrics"]
        assert m["q_star"] == mf.fixed_point("tanh", sw, 0.05)
        assert m["chi_1"] == mf.chi1("tanh", sw, 0.05)
        assert (m["xi_q"], m["xi_c"]) == mf.depth_scales("tanh", sw, 0.05)
        # xi_c = -1/log(chi_c), chi_c at the correlation map's fixed point (chi_1 in the ordered phase)
        assert m["xi_c"] == pytest.approx(-1 / math.log(m["chi_c"]), rel=1e-12)
        assert (m["chi_c"] == m["chi_1"]) == (sw < m["critical_sigma_w2"])
    assert r.rows[2]["metrics"]["phase"] == "chaotic" and r.rows[2]["metrics"]["c_star"] < 1


def test_simulate_cell_is_varprop_simulate_with_the_cell_seed():
    from varprop.simulate import run as simulate
    _, cells = plan("simulate", ["sigma_w2=1.5,2"], {"depth": 3, "width": 32, "trials": 3, "activation": "tanh",
                                                    "sigma_b2": 0.05, "batch": 4})
    for d in cells:
        row = execute(d)
        ref = simulate(widths=[32] * 4, batch=4, activation="tanh", trials=3, seed=d["seed"], sigma_b2=0.05,
                       init="variance_scaling", init_params={"scale": d["coords"]["sigma_w2"], "mode": "fan_in",
                                                             "distribution": "normal"}, progress=False)
        assert row["metrics"]["act_std_last"] == float(ref.mean("act_std")[-1])
        assert row["metrics"]["grad_std_first"] == float(ref.mean("grad_std")[0])
        assert row["metrics"]["theory_act_std_last"] == float(ref.theory["act_std"][-1])
        assert row["seed"] == d["seed"] and row["worker"].startswith("local:")


def test_train_cell_draws_sigma_w2_and_sigma_b2_and_repeats_bit_for_bit():
    from varprop.sweep.kinds import _train_build, cell_options
    _, cells = plan("train", ["sigma_w2=1.5,3"], {"depth": 2, "width": 200, "activation": "tanh", "sigma_b2": 0.05,
                                                 "epochs": 1, "optimizer": "sgd", "lr": 0.01})
    for d in cells:
        o = cell_options("train", d["fixed"], d["coords"])
        net = _train_build(o, d["seed"], 64, 10).network
        ps = {p.name: p.value for p in net.parameters()}
        w = ps["1.weight"]                                    # 200 x 200: Var = sigma_w2 / 200
        se = w.var() * math.sqrt(2 / w.size)
        assert abs(w.var() * 200 - d["coords"]["sigma_w2"]) <= 5 * se * 200
        b = np.concatenate([ps["0.bias"], ps["1.bias"]])
        assert abs(b.var() - 0.05) <= 5 * 0.05 * math.sqrt(2 / b.size)
    a, b = execute(cells[0]), execute(cells[0])
    assert a["metrics"] == b["metrics"] and 0 <= a["metrics"]["test_acc"] <= 1


# --- the folder: resume, once only, bad input --------------------------------------------------------

def test_resume_computes_only_missing_cells(tmp_path):
    out = tmp_path / "s"
    r = run("phase", ["sigma_w2=1:3:5"], ["activation=tanh"], out, "serial")
    before = {cid: open(store.cell_path(out, cid)).read() for cid in r.computed}
    gone = sorted(before)[:2]
    for cid in gone:
        os.unlink(store.cell_path(out, cid))
    r2 = run("phase", ["sigma_w2=1:3:5"], ["activation=tanh"], out, "serial", resume=True)
    assert sorted(r2.computed) == gone and len(r2.skipped) == 3 and r2.complete
    kept = {cid: text for cid, text in before.items() if cid not in gone}
    assert {cid: open(store.cell_path(out, cid)).read() for cid in kept} == kept     # untouched
    r3 = run(out=out, resume=True, client="serial")            # kind, grid and fixed from the manifest
    assert r3.computed == [] and r3.complete
    lines = open(out / store.CSV).read().splitlines()
    assert len(lines) == 6 and lines[0].startswith("index,cell_id,sigma_w2,")
    m = json.load(open(out / store.MANIFEST))
    assert m["kind"] == "phase" and m["fixed"] == {"activation": "tanh"} and m["varprop_version"]
    with pytest.raises(ValueError, match="already holds a sweep"):
        run("phase", ["sigma_w2=1:3:5"], ["activation=tanh"], out, "serial")
    with pytest.raises(ValueError, match="different sweep"):
        run("phase", ["sigma_w2=1:3:4"], ["activation=tanh"], out, "serial", resume=True)
    assert load(out).complete


def test_cells_go_to_a_cluster_longest_first():
    from varprop.sweep.kinds import cell_options, cost
    from varprop.sweep.runner import submission_order
    _, cells = plan("train", ["depth=2,8,4", "epochs=1,3"], ["width=32"])
    order = submission_order(cells)
    costs = [cost("train", cell_options("train", d["fixed"], d["coords"])) for d in order]
    assert costs == sorted(costs, reverse=True) and len(set(costs)) == len(costs)
    assert order[0]["coords"] == {"depth": 8, "epochs": 3} and order[-1]["coords"] == {"depth": 2, "epochs": 1}
    assert sorted(d["index"] for d in order) == list(range(6))
    _, sims = plan("simulate", ["trials=4,2", "depth=3"], ["width=16"])
    assert [d["coords"]["trials"] for d in submission_order(sims)] == [4, 2]
    _, sims = plan("simulate", ["widths=16x3,64x5"], [])            # the simulator's widths forms
    assert [d["coords"]["widths"] for d in submission_order(sims)] == ["64x5", "16x3"]
    _, phases = plan("phase", ["sigma_w2=1:2:3"], [])
    assert [d["index"] for d in submission_order(phases)] == [0, 1, 2]    # equal cost: grid order


def test_a_cell_file_is_never_written_twice(tmp_path):
    row = {"cell_id": "abc", "index": 0, "coords": {}, "metrics": {"x": math.inf}, "seed": 1, "elapsed_s": 0.1,
           "worker": "w"}
    assert store.write_cell(tmp_path, row) is True
    assert store.write_cell(tmp_path, dict(row, metrics={"x": 1.0})) is False
    assert store.read_cells(tmp_path)["abc"]["metrics"]["x"] == math.inf


def _cli(capsys, *argv):
    rc = main(list(argv))
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--grid", "foo=1:2:3"], "unknown grid key 'foo'"),
    (["--grid", "sigma_w2=1:2:0"], "empty"),
    (["--grid", "sigma_w2=1:2:30", "--grid", "sigma_b2=0:1:30", "--max-cells", "100"], "900 cells"),
    (["--grid", "sigma_w2=1", "--fixed", "seed=2"], "seed is the sweep's own"),
    (["--grid", "sigma_w2=1", "--fixed", "activation"], "KEY=VALUE"),
    pytest.param(["--grid", "sigma_w2=1:2:3", "--scheduler", "tcp://127.0.0.1:9", "--timeout", "1"], "cannot reach",
                 marks=pytest.mark.skipif(not _has_dask(),
                                          reason="needs dask distributed")),
    ([], "at least one --grid"),
])
def test_cli_bad_grids_exit_2_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "s"
    rc, err = _cli(capsys, "sweep", "phase", *argv, "--out", str(out))
    assert rc == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_cli_serial_then_resume(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sweep", "phase", "--grid", "sigma_w2=1,2", "--fixed", "sigma-b2=0.05", "--serial",
                 "--out", str(out)]) == 0
    assert "2/2 cells done, 2 computed" in capsys.readouterr().out
    assert main(["sweep", "phase", "--grid", "sigma_w2=1,2", "--fixed", "sigma-b2=0.05", "--serial", "--resume",
                 "--out", str(out)]) == 0
    assert "0 computed, 2 already done" in capsys.readouterr().out


def test_without_dask_the_cli_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)     # import distributed -> ImportError
    rc, err = _cli(capsys, "sweep", "phase", "--grid", "sigma_w2=1", "--out", str(tmp_path / "s"))
    assert rc == 2 and 'pip install "varprop[sweep]"' in err
    assert main(["sweep", "phase", "--grid", "sigma_w2=1", "--serial", "--out", str(tmp_path / "t")]) == 0


def test_importing_the_sweep_loads_no_dask():
    import subprocess
    code = "import sys, varprop.sweep; print('distributed' in sys.modules, 'dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_cli_sweep_without_a_kind_and_bad_trainability_options(tmp_path, capsys):
    rc, err = _cli(capsys, "sweep")
    assert rc == 2 and "name a kind" in err
    rc, err = _cli(capsys, "sweep", "trainability", "--out", str(tmp_path / "t"), "--figure", "f.jpg")
    assert rc == 2 and ".png" in err and not (tmp_path / "t").exists()
    rc, err = _cli(capsys, "sweep", "trainability", "--out", str(tmp_path / "t"), "--mode", "huge")
    assert rc == 2 and "invalid choice" in err


@pytest.mark.parametrize("module", ["varprop.sweep", "varprop.sweep.grid", "varprop.sweep.runner",
                                    "varprop.sweep.trainability"])
def test_docstring_examples_run(module):
    import doctest
    import importlib
    res = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0

"""``varprop simulate``: outputs, the API's result, error paths (one line, exit 2) and Ctrl-C."""
import csv
import json

import numpy as np
import pytest

from varprop.cli import main
from varprop.simulate import run

BASE = ["simulate", "--widths", "40x4", "--batch", "4", "--activation", "tanh", "--init", "normal(0, 0.2)",
        "--trials", "3", "--seed", "1"]


def test_table_json_csv_plot(tmp_path, capsys):
    j, c, p = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    assert main(BASE + ["--json", str(j), "--csv", str(c), "--plot", str(p)]) == 0
    out, err = capsys.readouterr()
    assert err == ""                                   # no progress bar when stderr is not a terminal
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["layer", "act", "mean"] and len(lines) == 5
    data = json.loads(j.read_text())
    # auto picks dense for layers this narrow (see simulate.config.gaussian_is_cheaper)
    assert data["engine"] == "dense" and data["seed"] == 1 and data["config"]["trials"] == 3
    assert data["elapsed_s"] >= 0
    row = data["layers"][0]
    for key in ("layer", "act_mean", "act_std", "act_std_se", "theory_act_std", "grad_std", "grad_std_se",
                "theory_grad_std", "saturated", "dead"):
        assert key in row
    assert row["layer"] == 1 and row["dead"] is None  # tanh cannot die
    rows = list(csv.DictReader(c.open()))
    assert len(rows) == 3 and float(rows[2]["act_std"]) == pytest.approx(data["layers"][2]["act_std"])
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_api_matches_cli(tmp_path):
    j = tmp_path / "r.json"
    assert main(BASE + ["--json", str(j), "--quiet"]) == 0
    r = run(widths="40x4", batch=4, activation="tanh", init="normal(0, 0.2)", trials=3, seed=1)
    cli = json.loads(j.read_text())
    api = json.loads(r.to_json())
    assert cli["layers"] == api["layers"]


def test_relu_dead_fraction_and_inputs_file(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(4, 40)) * 3.0
    f = tmp_path / "x.npy"
    np.save(f, x)
    j = tmp_path / "r.json"
    assert main(["simulate", "--widths", "40x4", "--batch", "4", "--activation", "relu", "--trials", "2",
                 "--inputs", str(f), "--json", str(j), "--quiet"]) == 0
    data = json.loads(j.read_text())
    assert data["config"]["inputs"] == "given"
    assert 0.0 <= data["layers"][0]["dead"] <= 1.0
    # layer 1's theory uses the given inputs' second moment (about 9, not 1)
    assert data["layers"][0]["theory_pre_second"] == pytest.approx(2.0 * float(np.mean(x ** 2)))


@pytest.mark.parametrize("args,message", [
    (["--widths", "0x3"], "at least two positive widths"),
    (["--widths", "abc"], "widths must be NxK or a comma list of integers, got 'abc'"),
    (["--widths", "8"], "at least two positive widths"),
    (["--widths", "8x3", "--trials", "0"], "trials must be >= 1"),
    (["--widths", "8x3", "--batch", "0"], "batch must be >= 1"),
    (["--widths", "8x3", "--activation", "nope"], "unknown activation"),
    (["--widths", "8x3", "--init", "nope_normal"], "unknown initializer"),
    (["--widths", "8x3", "--init", "normal(0, __import__('os'))"], "not allowed"),
    (["--widths", "8x3", "--init", "uniform(-1, 1)", "--engine", "gaussian"], "needs Gaussian weights"),
    (["--widths", "8x3", "--dropout", "1"], "dropout"),
    (["--widths", "8x3", "--sigma-b2", "-1"], "sigma_b2"),
    (["--widths", "200000x3", "--batch", "4", "--engine", "dense", "--init", "he_uniform"], "needs about"),
    (["--widths", "8x3", "--inputs", "missing.npy"], "cannot read inputs"),
])
def test_bad_configurations_exit_2_with_one_line(args, message, capsys):
    assert main(["simulate"] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("varprop: error: ") and err.count("\n") == 1 and message in err, err


def test_inputs_wrong_shape(tmp_path, capsys):
    f = tmp_path / "x.npy"
    np.save(f, np.zeros((3, 7)))
    assert main(["simulate", "--widths", "8x3", "--batch", "3", "--inputs", str(f)]) == 2
    assert "inputs must have shape (batch, 8)" in capsys.readouterr().err


def test_ctrl_c_writes_the_finished_trials(tmp_path, monkeypatch, capsys):
    import varprop.simulate.runner as run_module
    real = run_module.simulate_trial

    def interrupted(cfg, trial, keep_weights=True, workspace=None):
        if trial == 2:
            raise KeyboardInterrupt
        return real(cfg, trial, keep_weights, workspace)

    monkeypatch.setattr(run_module, "simulate_trial", interrupted)
    j = tmp_path / "r.json"
    assert main(BASE[:-4] + ["--trials", "5", "--json", str(j)]) == 130
    data = json.loads(j.read_text())
    assert data["interrupted"] is True and data["trials_done"] == 2
    assert "interrupted after 2 of 5 trials" in capsys.readouterr().err


def test_interrupt_before_any_trial_propagates(monkeypatch):
    import varprop.simulate.runner as run_module

    def boom(cfg, trial, keep_weights=True, workspace=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "simulate_trial", boom)
    with pytest.raises(KeyboardInterrupt):
        run(widths="8x3", trials=2)


def test_api_type_errors():
    with pytest.raises(TypeError):
        run(widths=[8, 8.5], trials=1)
    with pytest.raises(TypeError):
        run(widths="8x3", trials=True)
    with pytest.raises(ValueError, match="engine"):
        run(widths="8x3", engine="fast")


@pytest.mark.parametrize("engine", ["gaussian", "dense"])
def test_overflow_leaves_the_deep_layers_empty_and_says_where(engine, tmp_path, capsys):
    j = tmp_path / "r.json"
    assert main(["simulate", "--widths", "64x200", "--activation", "linear", "--init", "normal(0, 1)",
                 "--trials", "2", "--engine", engine, "--json", str(j)]) == 1
    out, err = capsys.readouterr()
    data = json.loads(j.read_text())
    layers, over = data["layers"], data["overflow"]
    # q_l ~ 64^l: float32 holds h up to 3.4e38 (64^21.3), float64's sum of squares up to 1.8e308 (64^170);
    # the gradients grow as 64^(L - l) on the way back
    assert over["trials"] == 2
    if engine == "dense":
        assert over == {"layer": 21, "quantity": "pre-activations h", "trials": 2}
        assert all(r["act_std"] is not None for r in layers[:20]) and all(r["act_std"] is None for r in layers[20:])
    else:
        # float64 gives out near 64^170 both ways: h forward near layer 170, or (when the forward pass just
        # fits) the gradient near layer 200 - 170 on the way back
        depth_reached = over["layer"] if over["quantity"] == "pre-activations h" else 200 - over["layer"]
        assert over["quantity"] in ("pre-activations h", "gradients") and 150 < depth_reached < 190
        assert layers[0]["act_std"] > 1 and layers[-1]["act_std"] is None
    # near the limit a layer is either right or flagged, never a silent layer of zeros
    assert all(r["act_std"] is None or r["act_std"] > 0 for r in layers)
    line = f"overflow in 2 of 2 trials, first: the {over['quantity']} of layer {over['layer']} exceed"
    assert line in out and err.startswith("varprop: " + line) and err.count("\n") == 1


def test_no_overflow_means_no_overflow_entry(tmp_path):
    j = tmp_path / "r.json"
    assert main(["simulate", "--widths", "16x3", "--trials", "2", "--quiet", "--json", str(j)]) == 0
    assert json.loads(j.read_text())["overflow"] is None


def test_the_weight_gradient_norm_alone_overflowing_is_named():
    from varprop.simulate.runner import _overflow
    assert _overflow([[0, 0], [0, 0]]) is None
    assert _overflow([[0, 0], [2, 3], [5, 2]]) == {"layer": 5, "quantity": "gradients", "trials": 2}
    assert _overflow([[7, 1], [2, 3], [9, 0]]) == {"layer": 7, "quantity": "activations x", "trials": 3}


def test_init_parameters(capsys):
    r = run(widths="32x3", init="variance_scaling", init_params={"scale": 2, "mode": "fan_in",
                                                                 "distribution": "uniform"}, trials=1)
    assert r.engine == "dense" and r.config["init"].startswith("variance_scaling(scale=2")
    assert r.theory["pre_second"][0] == pytest.approx(2.0)
    assert main(["simulate", "--widths", "8x3", "--init", "normal(0, 1)", "--init-param", "scale=2"]) == 2
    assert "apply to an initializer name" in capsys.readouterr().err
    assert main(["simulate", "--widths", "8x3", "--init", "he_normal", "--init-param", "scale"]) == 2
    assert "malformed parameter" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--widths", "64x1000000000"], "999999999 weight layers exceed the ceiling of 10000"),
    (["--widths", "64x" + "9" * 30], "weight layers exceed the ceiling"),
    (["--widths", ",".join(["8"] * 10002)], "10001 weight layers exceed the ceiling of 10000"),
    (["--widths", "16x200000", "--batch", "2"], "199999 weight layers exceed the ceiling of 10000"),
    (["--widths", "16x3", "--trials", "1000000000"], "trials must be at most 1000000"),
    (["--widths", "16x3", "--bins", "1000000000", "--histograms"], "bins must be at most 1000000"),
    (["--widths", "16x1000", "--bins", "1000000", "--histograms"], "bins 1000000: the histograms take"),
    (["--widths", "64x1000", "--trials", "1000000"], "would take at least"),
    (["--widths", "16x3", "--batch", "1000000000"], "batch 1000000000: the activations"),
])
def test_ceilings_refuse_before_any_work(args, message, capsys):
    assert main(["simulate"] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("varprop: error: ") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("opt", ["--json", "--csv", "--plot"])
def test_outputs_are_checked_before_any_work(opt, tmp_path, monkeypatch, capsys):
    import varprop.simulate.runner as run_module
    monkeypatch.setattr(run_module, "simulate_trial", lambda *a, **k: pytest.fail("work started"))
    (tmp_path / "f").write_text("keep")
    for bad, fragment in [(str(tmp_path), "is a folder"), ("", "is empty"),
                          (str(tmp_path / "f" / "r.out"), "is not a folder")]:
        assert main(["simulate", "--widths", "8x3", opt, bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"varprop: error: {opt}") and fragment in err and err.count("\n") == 1, err
    assert (tmp_path / "f").read_text() == "keep"


def test_two_outputs_naming_one_file_are_refused(tmp_path, capsys):
    p = tmp_path / "r.out"
    assert main(["simulate", "--widths", "8x3", "--json", str(p), "--csv", str(p)]) == 2
    assert "--json and --csv name the same file" in capsys.readouterr().err


def test_json_to_a_symlink_and_a_device(tmp_path):
    import stat
    real = tmp_path / "real.json"
    real.write_text("old")
    real.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert main(["simulate", "--widths", "8x3", "--trials", "1", "--quiet", "--json", str(link)]) == 0
    assert link.is_symlink() and json.loads(real.read_text())["trials_done"] == 1
    assert real.stat().st_mode & 0o777 == 0o600
    assert main(["simulate", "--widths", "8x3", "--trials", "1", "--quiet", "--json", "/dev/null"]) == 0
    assert stat.S_ISCHR(__import__("os").lstat("/dev/null").st_mode)


def test_huge_inputs_are_refused_as_overflow(tmp_path, capsys):
    f = tmp_path / "x.npy"
    np.save(f, np.full((16, 16), 1e300))
    assert main(["simulate", "--widths", "16x3", "--inputs", str(f)]) == 2
    assert "inputs: their mean square overflows float64" in capsys.readouterr().err
    np.save(f, np.full((16, 16), 1e39))
    assert main(["simulate", "--widths", "16x3", "--inputs", str(f), "--engine", "dense",
                 "--init", "he_uniform"]) == 2
    assert "do not fit in float32" in capsys.readouterr().err


def test_huge_weights_are_reported_as_overflow_with_exit_1(tmp_path, capsys):
    j = tmp_path / "r.json"
    assert main(["simulate", "--widths", "16x3", "--trials", "2", "--init", "uniform(-1e30, 1e30)",
                 "--json", str(j), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err == ("varprop: overflow in 2 of 2 trials, first: the pre-activations h of layer 1 exceed float32; "
                   "no statistics from there on (the weights or inputs are too large)\n")
    data = json.loads(j.read_text())
    assert data["overflow"] == {"layer": 1, "quantity": "pre-activations h", "trials": 2}
    assert all(r["act_std"] is None for r in data["layers"])


def test_available_memory_respects_the_address_space_limit():
    import subprocess
    import sys
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30)); "
            "from varprop.simulate.config import available_memory; print(available_memory())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert 0 < int(out) < 2 * 2**30


def test_time_estimate_grows_with_the_work():
    from varprop.simulate.config import Config, time_estimate
    small = time_estimate(Config.build("64x4", trials=10))
    assert time_estimate(Config.build("64x4", trials=20)) == pytest.approx(2 * small)
    assert time_estimate(Config.build("64x8", trials=10)) > 2 * small
    dense = Config.build("1024x4", trials=1, init="he_uniform", batch=16)
    # two B n^2 products per layer at the assumed rate, at least
    assert time_estimate(dense) >= 3 * 2 * 16 * 1024 ** 2 / 5e10


@pytest.mark.parametrize("name,content,fragment", [
    ("x.npy", b"hello, not an array", "is not a .npy file"),
    ("x.npz", b"PK\x03\x04garbage", "File is not a zip file"),
    ("x.npy", None, "would take about"),               # a header promising 10^13 float64 values
    ("x.npy", "complex", "inputs are complex"),
])
def test_inputs_files_are_checked_before_loading(name, content, fragment, tmp_path, capsys):
    import io
    f = tmp_path / name
    if content is None:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                                   "shape": (100000, 100000000)})
        f.write_bytes(buf.getvalue() + b"\0" * 64)
    elif content == "complex":
        np.save(f, np.ones((16, 16), dtype=complex))
    else:
        f.write_bytes(content)
    assert main(["simulate", "--widths", "16x3", "--inputs", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("varprop: error: ") and err.count("\n") == 1 and fragment in err, err


def test_a_long_run_announces_its_estimate_on_a_terminal(monkeypatch, capsys):
    import varprop.simulate.runner as run_module
    monkeypatch.setattr(run_module, "check_work", lambda cfg: 5400.0)
    run(widths="8x3", trials=2, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("simulate: 2 trials of 2 layers, at least 90.0 min (a lower bound")
    run(widths="8x3", trials=2, progress=False)
    assert capsys.readouterr().err == ""
    assert run_module._duration(42) == "42 s" and run_module._duration(7.2e3) == "2.0 h"

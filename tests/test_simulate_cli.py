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
    assert data["engine"] == "gaussian" and data["seed"] == 1 and data["config"]["trials"] == 3
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
def test_overflow_leaves_the_deep_layers_empty(engine, tmp_path, capsys):
    j = tmp_path / "r.json"
    assert main(["simulate", "--widths", "64x200", "--activation", "linear", "--init", "normal(0, 1)",
                 "--trials", "2", "--engine", engine, "--json", str(j)]) == 0
    out, err = capsys.readouterr()
    assert "non-finite values (overflow) from layer" in out and err == ""
    layers = json.loads(j.read_text())["layers"]
    assert layers[0]["act_std"] > 1 and layers[-1]["act_std"] is None


def test_init_parameters(capsys):
    r = run(widths="32x3", init="variance_scaling", init_params={"scale": 2, "mode": "fan_in",
                                                                 "distribution": "uniform"}, trials=1)
    assert r.engine == "dense" and r.config["init"].startswith("variance_scaling(scale=2")
    assert r.theory["pre_second"][0] == pytest.approx(2.0)
    assert main(["simulate", "--widths", "8x3", "--init", "normal(0, 1)", "--init-param", "scale=2"]) == 2
    assert "apply to an initializer name" in capsys.readouterr().err
    assert main(["simulate", "--widths", "8x3", "--init", "he_normal", "--init-param", "scale"]) == 2
    assert "malformed parameter" in capsys.readouterr().err

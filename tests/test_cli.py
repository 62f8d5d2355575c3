"""`varprop activations` and `varprop gain`: output, JSON, and one-line errors with exit code 2."""
import json
import subprocess
import sys

import pytest

from varprop.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_activations_lists_the_registry(capsys):
    code, out, _ = run(capsys, "activations")
    assert code == 0
    assert "leaky_relu(negative_slope=0.01)" in out and "maxout(k=2)" in out and "gelu" in out
    code, out, _ = run(capsys, "activations", "--json")
    rows = json.loads(out)
    assert {r["name"] for r in rows} >= {"relu", "selu", "mish", "rrelu"}
    assert next(r for r in rows if r["name"] == "rrelu")["params"] == {"lower": "0.125", "upper": "1/3"}


def test_gain_text(capsys):
    code, out, _ = run(capsys, "gain", "tanh")
    assert code == 0
    assert "forward gain       1.59253741972283" in out
    assert "5/3" in out and "+4.655%" in out


def test_gain_json(capsys):
    code, out, _ = run(capsys, "gain", "leaky_relu", "--param", "negative_slope=0.2", "--digits", "20", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["activation"] == "leaky_relu" and d["params"] == {"negative_slope": "0.2"}
    assert d["forward_gain"] == d["backward_gain"] == "1.386750490563072805"  # sqrt(2/1.04) = 1.38675049056307280504...; the 20th digit is a 0
    assert d["closed_form"] is not None and d["digits"] == 20
    assert float(d["torch_gain"]) == pytest.approx(1.3867504905630728)
    assert set(d) >= {"activation", "params", "q", "forward_gain", "backward_gain", "second_moment",
                      "derivative_second_moment", "mean", "closed_form", "digits", "torch_gain"}
    code, out, _ = run(capsys, "gain", "gelu", "--q", "2", "--json")
    d = json.loads(out)
    assert d["torch_gain"] is None and d["q"] == "2"


@pytest.mark.parametrize("argv,needle", [
    (["gain", "nope"], "unknown activation 'nope'; known: linear, sigmoid"),
    (["gain", "relu", "--q", "0"], "q must be > 0"),
    (["gain", "relu", "--q", "-2"], "q must be > 0"),
    (["gain", "relu", "--q", "abc"], "not a number"),
    (["gain", "relu", "--digits", "0"], "digits must be between 1 and 60"),
    (["gain", "relu", "--digits", "61"], "digits must be between 1 and 60"),
    (["gain", "relu", "--digits", "x"], "invalid int value"),
    (["gain", "leaky_relu", "--param", "oops"], "malformed parameter 'oops'"),
    (["gain", "leaky_relu", "--param", "alpha=1"], "has no parameter 'alpha'"),
    (["gain", "elu", "--param", "alpha=-1"], "must be > 0"),
    (["gain"], "the following arguments are required"),
    (["nosuchcommand"], "invalid choice"),
])
def test_errors_are_one_line_and_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("varprop: error: ")
    assert needle in lines[0]


def test_module_entry_point_and_console_script():
    out = subprocess.run([sys.executable, "-m", "varprop", "gain", "relu", "--json"], capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout)["closed_form"] == "\\sqrt{2}"
    bad = subprocess.run([sys.executable, "-m", "varprop", "gain", "relu", "--q", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_gain_table_covers_the_registry(capsys):
    from varprop.activations import names
    code, out, _ = run(capsys, "gain", "all", "--digits", "8")
    assert code == 0
    body = out.splitlines()[1:1 + len(names())]
    assert [line.split()[0].split("(")[0] for line in body] == names()
    tanh = next(line for line in body if line.startswith("tanh "))
    assert tanh.split()[1] == "1.5925374" and "+4.655%" in tanh
    code, out, _ = run(capsys, "gain", "all", "--json", "--digits", "6")
    rows = json.loads(out)
    assert len(rows) == len(names()) and rows[3]["forward_gain"] == "1.41421"

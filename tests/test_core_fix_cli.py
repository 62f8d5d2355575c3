"""The command line: one line and exit 2 for every bad input, shared widths grammar, variance expressions."""
import time

import pytest

from varprop.cli import main


@pytest.mark.parametrize("argv, words", [
    (["gain", "celu", "--param", "alpha=1e-300"], "between 1e-9 and 1e9"),
    (["gain", "leaky_relu", "--param", "negative_slope=1e-1000000"], "exponent"),
    (["check", "normal(0,1)", "--activation", "relu", "--q", "1e-100000000"], "exponent"),
    (["derive", "mean-field", "--sigma-b2", "1e400"], "exponent"),
    (["derive", "mean-field", "--sigma-b2", "1e300"], "at most"),
    (["derive", "activation-stats", "--widths", "4,8,2", "--init", "1e300"], "at most"),
    (["derive", "activation-stats", "--widths", "4x100000000000"], "digits"),
])
def test_bad_values_give_one_line_and_exit_2(argv, words, capsys):
    t = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - t < 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("varprop: error:") and words in err


def test_an_unwritable_out_path_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["derive", "symmetry", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists and is not a folder" in err


def test_an_arithmetic_error_is_one_line(monkeypatch, capsys):
    import varprop.cli.gain as gain

    def overflow(args):
        raise OverflowError("int too large to convert to float")
    monkeypatch.setattr(gain, "run", overflow)
    assert main(["gain", "relu"]) == 2
    assert capsys.readouterr().err == "varprop: error: int too large to convert to float\n"


def test_derive_widths_use_the_shared_grammar_and_init_takes_a_variance_expression(capsys):
    assert main(["derive", "activation-stats", "--widths", "4x3", "--init", "2/fan_in", "--format", "json"]) == 0
    import json
    d = json.loads(capsys.readouterr().out)
    d = d[0] if isinstance(d, list) else d
    # widths 4, 4, 4 and Var(w) = 2/fan_in = 1/2 on both layers
    assert d["result"]["weight_var_1"] == d["result"]["weight_var_2"] == "0.5"


def test_gain_rrelu_says_it_uses_the_test_time_map(capsys):
    assert main(["gain", "rrelu"]) == 0
    assert "test-time" in capsys.readouterr().out


def test_gain_prints_short_closed_forms_only(capsys):
    assert main(["gain", "selu", "--q", "1e300"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) < 200
    assert "q                  1e+300" in out

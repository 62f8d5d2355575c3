"""parse_distribution refuses fan-dependent parameters that are invalid at some layer's fans."""
import pytest

from varprop.expr import SAMPLE_FANS, parse_distribution


@pytest.mark.parametrize("text, words", [
    ("normal(0, 1/(fan_in-fan_in))", "division by zero"),
    ("normal(0, -sqrt(2/fan_in))", "std is negative"),
    ("uniform(sqrt(3/fan_in), -sqrt(3/fan_in))", "low > high"),
    ("truncated_normal(sqrt(1/fan_in), low=fan_in, high=-fan_in)", "low < high"),
    ("normal(0, sqrt(2/(fan_out-fan_in)))", "fan_in="),       # negative variance where fan_in > fan_out
])
def test_invalid_fan_dependent_parameters_are_refused(text, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(")) as err:
        parse_distribution(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["normal(0, sqrt(2/fan_in))", "truncated_normal(sqrt(2/(fan_in+fan_out)))",
                                  "uniform(-sqrt(6/(fan_in+fan_out)), sqrt(6/(fan_in+fan_out)))",
                                  "normal(0.01*fan_in, 1)"])
def test_valid_fan_dependent_parameters_are_kept(text):
    d = parse_distribution(text)
    for fan_in, fan_out in SAMPLE_FANS:
        assert d.variance(fan_in, fan_out) >= 0

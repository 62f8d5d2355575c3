"""The distribution parser: safe expressions evaluate to a hand computation, hostile ones are refused."""
import math
import re

import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from varprop.expr import MAX_EXPONENT, MAX_LENGTH, parse_distribution, symbols

FI, FO = symbols()

# --------------------------------------------------------------------------------------------------
# random safe expressions: (text, hand computation) built side by side
# --------------------------------------------------------------------------------------------------

_LEAVES = st.sampled_from([
    ("fan_in", lambda env: env["fan_in"]),
    ("fan_out", lambda env: env["fan_out"]),
    ("pi", lambda env: math.pi),
    ("e", lambda env: math.e),
]) | st.integers(1, 50).map(lambda n: (str(n), lambda env, n=n: float(n))) | st.sampled_from(
    ["0.5", "0.01", "2.5", "1e-2", "3.0"]).map(lambda s: (s, lambda env, s=s: float(s)))


def _combine(children):
    """Positive-valued expressions: + * / sqrt and small powers keep the value > 0."""
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda ab: (f"({ab[0][0]} + {ab[1][0]})", lambda env, a=ab[0][1], b=ab[1][1]: a(env) + b(env))),
        pair.map(lambda ab: (f"{ab[0][0]}*{ab[1][0]}", lambda env, a=ab[0][1], b=ab[1][1]: a(env) * b(env))),
        pair.map(lambda ab: (f"{ab[0][0]}/({ab[1][0]})", lambda env, a=ab[0][1], b=ab[1][1]: a(env) / b(env))),
        children.map(lambda a: (f"sqrt({a[0]})", lambda env, f=a[1]: math.sqrt(f(env)))),
        st.tuples(children, st.sampled_from(["2", "3", "0.5", "-1", "-0.5", "(-2)"])).map(
            lambda ap: (f"({ap[0][0]})**{ap[1]}",
                        lambda env, f=ap[0][1], p=float(ap[1].strip("()")): f(env) ** p)),
    )


POSITIVE = st.recursive(_LEAVES, _combine, max_leaves=8)
SIGNED = st.one_of(
    POSITIVE,
    POSITIVE.map(lambda a: (f"-{a[0]}", lambda env, f=a[1]: -f(env))),
    st.tuples(POSITIVE, POSITIVE).map(
        lambda ab: (f"{ab[0][0]} - {ab[1][0]}", lambda env, a=ab[0][1], b=ab[1][1]: a(env) - b(env))),
)
FANS = st.tuples(st.integers(1, 4096), st.integers(1, 4096))


def _hand(fn, fan_in, fan_out):
    try:
        v = fn({"fan_in": float(fan_in), "fan_out": float(fan_out)})
    except (OverflowError, ZeroDivisionError):
        v = math.inf
    assume(math.isfinite(v) and 1e-100 < abs(v) < 1e100)
    return v


@settings(max_examples=150, deadline=None)
@given(SIGNED, POSITIVE, FANS)
def test_random_normal_parameters_match_a_hand_computation(mean, std, fans):
    fan_in, fan_out = fans
    m, s = _hand(mean[1], fan_in, fan_out), _hand(std[1], fan_in, fan_out)
    d = parse_distribution(f"normal({mean[0]}, {std[0]})")
    p = d.params(fan_in, fan_out)
    assert math.isclose(p["mean"], m, rel_tol=1e-12)
    assert math.isclose(p["std"], s, rel_tol=1e-12)
    assert math.isclose(d.variance(fan_in, fan_out), s * s, rel_tol=1e-12)
    assert math.isclose(d.mean(fan_in, fan_out), m, rel_tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(POSITIVE, FANS)
def test_random_expressions_agree_with_their_sympy_form(std, fans):
    fan_in, fan_out = fans
    s = _hand(std[1], fan_in, fan_out)
    d = parse_distribution(f"uniform(-{std[0]}, {std[0]})")
    exact = d.sympy_variance().subs({FI: fan_in, FO: fan_out})
    assert math.isclose(float(sp.N(exact, 30)), (2 * s) ** 2 / 12, rel_tol=1e-10)
    assert math.isclose(d.variance(fan_in, fan_out), s * s / 3, rel_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(SIGNED, POSITIVE, FANS)
def test_canonical_expression_reparses_to_the_same_values(mean, std, fans):
    fan_in, fan_out = fans
    _hand(mean[1], fan_in, fan_out), _hand(std[1], fan_in, fan_out)
    d = parse_distribution(f"normal({mean[0]}, {std[0]})")
    again = parse_distribution(d.expression())
    assert again.kind == d.kind
    for name, value in d.params(fan_in, fan_out).items():
        assert math.isclose(again.params(fan_in, fan_out)[name], value, rel_tol=1e-12)


# --------------------------------------------------------------------------------------------------
# the distributions and their exact moments
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, variance, mean", [
    ("normal(0, sqrt(2/fan_in))", 2 / FI, 0),
    ("normal(mean=0.5, std=1/sqrt(fan_in))", 1 / FI, sp.Rational(1, 2)),
    ("normal(std=0.01)", sp.Rational(1, 10000), 0),
    ("uniform(-sqrt(6/(fan_in+fan_out)), sqrt(6/(fan_in+fan_out)))", 2 / (FI + FO), 0),
    ("uniform(low=0, high=1)", sp.Rational(1, 12), sp.Rational(1, 2)),
    ("uniform(-1/fan_in**0.5, 1/fan_in**0.5)", 1 / (3 * FI), 0),
    ("constant(0.5)", 0, sp.Rational(1, 2)),
    ("constant(value=-pi)", 0, -sp.pi),
    ("normal(0, 0)", 0, 0),
    ("normal(fan_in, e**2)", sp.exp(4), FI),
])
def test_exact_moments_table(text, variance, mean):
    d = parse_distribution(text)
    assert sp.simplify(d.sympy_variance() - variance) == 0
    assert sp.simplify(d.sympy_mean() - mean) == 0
    for fans in ((1, 1), (3, 700), (512, 64)):
        sub = {FI: fans[0], FO: fans[1]}
        assert math.isclose(d.variance(*fans), float(sp.sympify(variance).subs(sub)), rel_tol=1e-13, abs_tol=1e-300)
        assert math.isclose(d.mean(*fans), float(sp.sympify(mean).subs(sub)), rel_tol=1e-13, abs_tol=1e-300)


def test_numbers_stay_exact():
    d = parse_distribution("normal(0.1, 0.01)")
    assert d.sympy_params() == {"mean": sp.Rational(1, 10), "std": sp.Rational(1, 100)}
    assert d.expression() == "normal(mean=1/10, std=1/100)"


@pytest.mark.parametrize("low, high", [(-2, 2), (-3, 3), (-1, 2.5), (0, 1), (-0.5, 4)])
def test_truncated_normal_moments_against_scipy(low, high):
    truncnorm = pytest.importorskip("scipy.stats").truncnorm
    d = parse_distribution(f"truncated_normal(std=sqrt(2/fan_in), low={low}, high={high})")
    std = math.sqrt(2 / 50)
    ref = truncnorm(low, high, loc=0, scale=std)
    assert math.isclose(d.variance(50, 10), ref.var(), rel_tol=1e-12)
    assert math.isclose(d.mean(50, 10), ref.mean(), rel_tol=1e-12, abs_tol=1e-15)
    exact = d.sympy_variance().subs({FI: 50})
    assert math.isclose(float(sp.N(exact, 30)), ref.var(), rel_tol=1e-12)
    exact_mean = d.sympy_mean().subs({FI: 50})
    assert math.isclose(float(sp.N(exact_mean, 30)), ref.mean(), rel_tol=1e-12, abs_tol=1e-15)


def test_truncated_normal_default_bounds_are_two_stds_in_closed_form():
    d = parse_distribution("truncated_normal(1)")
    factor = 1 - 4 * sp.exp(-2) / (sp.sqrt(2 * sp.pi) * sp.erf(sp.sqrt(2)))
    assert sp.simplify(d.sympy_variance() - factor) == 0
    assert math.isclose(float(factor), 0.7737413035499232, rel_tol=1e-14)


def test_truncated_normal_monte_carlo():
    # independent route: rejection sampling of N(0, 1) cut to [-1, 3]; tolerance 5 standard errors
    import numpy as np
    rng = np.random.default_rng(7)
    z = rng.standard_normal(400_000)
    z = z[(z >= -1) & (z <= 3)] * 0.2
    d = parse_distribution("truncated_normal(0.2, -1, 3)")
    var = d.variance(1, 1)
    se_var = math.sqrt((np.mean((z - z.mean()) ** 4) - var ** 2) / len(z))
    assert abs(z.var() - var) < 5 * se_var
    assert abs(z.mean() - d.mean(1, 1)) < 5 * z.std() / math.sqrt(len(z))


def test_uses_and_kind():
    assert parse_distribution("normal(0, sqrt(2/(fan_in+fan_out)))").uses() == {"fan_in", "fan_out"}
    assert parse_distribution("uniform(-1, 1)").uses() == set()
    assert parse_distribution(" truncated_normal(2) ").kind == "truncated_normal"
    assert parse_distribution(" truncated_normal(2) ").text == "truncated_normal(2)"


def test_raw_text_never_reaches_sympy_parser(monkeypatch):
    import sympy.parsing.sympy_parser as parser

    def boom(*a, **k):
        raise AssertionError("parse_expr called")
    monkeypatch.setattr(parser, "parse_expr", boom)
    d = parse_distribution("truncated_normal(sqrt(2/fan_in))")
    assert d.sympy_variance().has(FI)


# --------------------------------------------------------------------------------------------------
# refusals: one line, naming the offending part
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, part", [
    ("__import__('os').system('ls')", "attribute access"),
    ("normal(0, __import__('os'))", "__import__"),
    ("os.system('rm -rf /')", "attribute access 'os.system'"),
    ("normal(0, (1).__class__)", "attribute access"),
    ("normal(0, lambda: 1)", "lambda"),
    ("(lambda: normal(0, 1))()", "lambda"),
    ("normal(0, [1][0])", "subscript"),
    ("normal(0, [x for x in (1, 2)])", "comprehension"),
    ("normal(0, sum(x for x in (1,)))", "sum"),
    ("normal(0, f'{1}')", "f-string"),
    ("normal(0, '1')", "string literal"),
    ("normal(0, 10**10**10)", "exponent"),
    ("normal(0, 2**100)", "exponent"),
    ("normal(0, 2**fan_in)", "exponent"),
    ("normal(0, (10.0**60)**60)", "too large"),
    ("normal(0, fan_in2)", "unknown name 'fan_in2'"),
    ("normal(0, x)", "unknown name"),
    ("normal(0, exp(1))", "unknown function"),
    ("normal(0, normal(0, 1))", "a distribution inside"),
    ("2*normal(0, 1)", "a distribution inside"),
    ("gamma(1, 2)", "unknown distribution"),
    ("normal(0, 1 if fan_in else 2)", "conditional"),
    ("normal(0, fan_in > 1)", "comparison"),
    ("normal(0, 1 and 2)", "boolean operator"),
    ("normal(0, 5 % 2)", "Mod"),
    ("normal(0, True)", "boolean"),
    ("normal(0, 1j)", "complex"),
    ("normal(0, *[1])", "starred"),
    ("normal(0, **{'std': 1})", "keyword unpacking"),
    ("normal(0, (fan_in := 1))", "assignment expression"),
    ("normal(0, 1); import os", "not a valid"),
    ("import os", "not a valid"),
    ("normal(0, 1e400)", "non-finite"),
    ("normal(0, 1/0)", "division by zero"),
    ("normal(0, sqrt(-1))", "square root of a negative"),
    ("normal(0, (-8)**0.5)", "fractional power"),
    ("normal(0, -1)", "std must be >= 0"),
    ("uniform(1, -1)", "low > high"),
    ("truncated_normal(1, 2, 1)", "low < high"),
    ("normal(0)", "needs 'std'"),
    ("normal(0, 1, 2)", "at most 2 arguments"),
    ("normal(0, 1, mean=1)", "given twice"),
    ("normal(0, sigma=1)", "no parameter 'sigma'"),
    ("sqrt(2/fan_in)", "must be one of"),
    ("normal(0, sqrt(1, 2))", "sqrt takes exactly one"),
    ("", "empty"),
    ("x" * (MAX_LENGTH + 1), "too long"),
    ("normal(0, " + "(" * 240 + "1" + ")" * 240 + ")", "not a valid"),
    ("normal(0, " + "-" * 70 + "1)", "nested too deeply"),
])
def test_hostile_and_wrong_inputs_are_refused(text, part):
    with pytest.raises(ValueError) as info:
        parse_distribution(text)
    msg = str(info.value)
    assert "\n" not in msg
    assert part in msg


@pytest.mark.parametrize("arg", ["-" * 480 + "1", "1+" * 240 + "1", "sqrt(" * 80 + "4" + ")" * 80,
                                 "(" * 150 + "1" + ")" * 150, "2**" * 120 + "1"])
def test_deep_but_short_inputs_parse_or_refuse_cleanly(arg):
    text = f"normal(0, {arg})"
    assert len(text) <= MAX_LENGTH
    try:
        d = parse_distribution(text)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert math.isfinite(d.variance(1, 1))
        assert d.sympy_variance().is_number


def test_exponent_limit_is_inclusive():
    assert parse_distribution(f"normal(0, 1.01**{MAX_EXPONENT})").variance(1, 1) == pytest.approx(1.01 ** 128)


def test_non_string_and_bad_fans():
    with pytest.raises(TypeError):
        parse_distribution(3)
    d = parse_distribution("normal(0, 1/fan_in)")
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(ValueError, match="fan_in must be a positive number"):
            d.variance(bad, 1)
    with pytest.raises(TypeError):
        d.variance("3", 1)
    with pytest.raises(ValueError, match="std is negative"):
        parse_distribution("normal(0, 1 - fan_in)").params(2, 1)
    with pytest.raises(ValueError, match="division by zero"):
        parse_distribution("normal(0, 1/(fan_in - fan_out))").params(2, 2)


def test_numeric_path_never_imports_sympy():
    import subprocess
    import sys
    code = ("import sys; from varprop.expr import parse_distribution as p; "
            "d = p('truncated_normal(sqrt(2/fan_in), -3, 3)'); d.variance(10, 20); d.mean(10, 20); "
            "p('uniform(-1/fan_in, 1/fan_out)').params(3, 4); print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("text, part", [
    ("normal(0, (fan_in*fan_out)**17)", "degree 34"),
    ("normal(0, (fan_in**8)**8)", "degree 64"),
    ("truncated_normal(fan_in**2, -40, -39)", "no probability mass"),
    ("truncated_normal(fan_in, 3, -3)", "low < high"),
])
def test_degree_and_truncation_limits(text, part):
    with pytest.raises(ValueError, match=part):
        parse_distribution(text)


def test_overflow_at_large_fans_is_a_value_error():
    d = parse_distribution("normal(0, fan_in**30)")
    assert d.variance(2, 1) == 2.0 ** 60
    with pytest.raises(ValueError, match="overflows"):
        d.variance(1e6, 1)


def test_far_tail_truncation_keeps_its_accuracy():
    truncnorm = pytest.importorskip("scipy.stats").truncnorm
    d = parse_distribution("truncated_normal(1, 30, 31)")
    assert math.isclose(d.mean(1, 1), truncnorm(30, 31).mean(), rel_tol=1e-12)
    assert math.isclose(float(sp.N(d.sympy_mean(), 30)), truncnorm(30, 31).mean(), rel_tol=1e-12)
    assert math.isclose(float(sp.N(d.sympy_variance(), 30)), truncnorm(30, 31).var(), rel_tol=1e-6)


_TOKENS = st.sampled_from(["normal(", "uniform(", "truncated_normal(", "constant(", "sqrt(", "(", ")", ",", "+",
                           "-", "*", "/", "**", "fan_in", "fan_out", "pi", "e", "0", "1", "2.5", "1e3", "64",
                           "std=", "low=", "x", ".", "[", "]", "'", "lambda", ":", "__class__", " "])


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=40).map("".join))
def test_any_token_soup_parses_or_fails_with_one_line(text):
    try:
        d = parse_distribution(text)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    try:
        v = d.variance(3, 5)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert math.isfinite(v) and v >= 0


@pytest.mark.parametrize("text,fragment", [
    ("normal(0, 1e-400)", "underflows to 0 '1e-400'"),
    ("uniform(-1E-999, 1)", "underflows to 0 '1E-999'"),
    ("normal(0, 1e400)", "overflows to infinity"),
    ("normal(0, 1e-200*1e-200)", "underflows to 0"),
    ("normal(0, (1e-200)**2)", "underflows to 0"),
])
def test_literals_that_do_not_survive_as_floats_are_refused(text, fragment):
    """1e-400 would quietly become 0 and turn a tiny spread into constant weights."""
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_distribution(text)


@pytest.mark.parametrize("text,variance", [("normal(0, 0.0e5)", 0), ("normal(0, 0e-400)", 0), ("normal(0, 0*3)", 0),
                                           ("normal(0, 1e-320)", sp.Rational(1, 10 ** 640))])
def test_zeros_written_as_zeros_and_representable_tiny_numbers_are_kept(text, variance):
    assert parse_distribution(text).sympy_variance() == variance

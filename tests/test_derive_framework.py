"""The derivation framework: exact checks decide, spot checks only add, assumptions are accounted for."""
import json

import mpmath as mp
import pytest
import sympy as sp

from varprop.derive.derivation import Derivation, decimal_string, exact_check, spot_check, spot_points

x = sp.Symbol("x", real=True)
n = sp.Symbol("n", positive=True, integer=True)
v = sp.Symbol("v", positive=True)


def _d():
    d = Derivation("t", "Title", "Summary.")
    d.assume("iid", "independent and identically distributed")
    return d


@pytest.mark.parametrize("lhs, rhs, ok", [
    (sp.sin(x) ** 2 + sp.cos(x) ** 2, 1, True),
    ((x + 1) ** 2, x ** 2 + 2 * x + 1, True),
    ((x + 1) ** 2, x ** 2 + 1, False),                     # a wrong expansion
    (sp.sqrt(3) * sp.sqrt(12), 6, True),
    (sp.Sum(v, (sp.Symbol("i"), 1, n)), n * v, True),
    (sp.Sum(v, (sp.Symbol("i"), 1, n)), (n + 1) * v, False),
    (sp.Ge((x - sp.S.Half) ** 2, 0, evaluate=False), sp.true, True),
    (sp.Gt(x ** 2, 1, evaluate=False), sp.true, False),  # false at x = 0
    (sp.Matrix([[x, 1], [2, x]]) * 2, sp.Matrix([[2 * x, 2], [4, 2 * x]]), True),
    (sp.Matrix([[x, 1]]), sp.Matrix([[x, 2]]), False),
    (sp.solveset(x ** 2 - 1, x, sp.S.Reals), sp.FiniteSet(-1, 1), True),
    (sp.exp(x) * sp.exp(-x), 1, True),
    (sp.exp(x), 1 + x, False),
])
def test_step_exact_check_table(lhs, rhs, ok):
    d = _d()
    s = d.step("t", lhs, rhs, uses=("iid",))
    assert s.verified is ok, s.method
    assert d.verified is ok


def test_wrong_step_makes_the_derivation_unverified_and_says_why():
    d = _d()
    d.step("good", 2 * x + 2 * x, 4 * x, uses="iid")
    d.step("bad", (x + 1) ** 2, x ** 2 + 1)
    assert not d.verified
    assert any("step 2 (bad)" in p for p in d.problems())
    out = d.to_dict()
    assert out["verified"] is False and [s["verified"] for s in out["steps"]] == [True, False]


def test_undeclared_assumption_raises_and_unused_one_fails():
    d = _d()
    with pytest.raises(ValueError, match="not declared"):
        d.step("s", x, x, uses=("independence",))
    d.assume("zero_mean", "E[w] = 0")
    d.step("s", x, x, uses=("iid",))
    assert not d.verified
    assert d.problems() == ["assumption 'zero_mean' is declared but no step uses it"]
    d.step("t", 2 * x, x + x, uses=("zero_mean",))
    assert d.verified
    with pytest.raises(ValueError, match="twice"):
        d.assume("iid", "again")


def test_empty_derivation_is_not_verified():
    assert not Derivation("e", "E", "S").verified


def test_spot_check_catches_what_is_numerically_false():
    # the exact route is never replaced by numbers, but numbers can veto: check the veto path directly
    passed, bad = spot_check(x ** 2 + 1, x ** 2 + 1 + sp.Rational(1, 10 ** 6))
    assert bad is not None and passed == 0
    passed, bad = spot_check(sp.sin(x) ** 2, 1 - sp.cos(x) ** 2)
    assert bad is None and passed == 3


def test_spot_points_respect_assumptions_and_are_deterministic():
    k = sp.Symbol("k", integer=True, positive=True)
    r = sp.Symbol("r", negative=True)
    pts = spot_points({k, r, x})
    assert pts == spot_points({x, r, k})
    for p in pts:
        assert p[k].is_Integer and p[k] > 0 and p[r] < 0


def test_spot_check_fills_indexed_symbols():
    W = sp.IndexedBase("W")
    i, j = sp.symbols("i j", integer=True)
    lhs = sp.Sum(2 * W[j], (j, 1, n))
    rhs = 2 * sp.Sum(W[j], (j, 1, n))
    passed, bad = spot_check(lhs, rhs)
    assert bad is None and passed == 3


def test_numeric_step_is_checked_against_evalf():
    d = _d()
    integral = sp.Integral(sp.exp(-x ** 2), (x, 0, 1))
    with mp.workdps(40):
        good = mp.sqrt(mp.pi) / 2 * mp.erf(1)
    assert d.numeric("closes numerically", integral, good, 20, uses="iid").verified
    assert not d.numeric("wrong value", integral, 0.75, 10).verified
    lab = d.numeric("labelled", r"\int_0^1 e^{-x^2} dx", good, 12)
    assert lab.verified and lab.latex.endswith("0.746824132812")


def test_string_expressions_are_refused():
    d = _d()
    with pytest.raises(TypeError):
        d.step("s", "x + 1", x + 1)
    with pytest.raises(TypeError):
        d.result("r", "1.5")
    with pytest.raises(ValueError):
        d.result("latex", 1)


def test_to_dict_is_json_and_deterministic():
    def build():
        d = _d()
        d.text("Some *prose*.")
        d.step("s", n * v, v * n, because="commutes", uses="iid")
        d.text("After.")
        d.result("gain", sp.sqrt(2))
        d.result("expr", n * v)
        d.result("val", mp.mpf(1) / 3)
        d.compare("gain", sp.sqrt(2), 1.5, "somewhere")
        return json.dumps(d.to_dict(12), sort_keys=True)
    a, b = build(), build()
    assert a == b
    out = json.loads(a)
    assert out["result"]["gain"] == "1.41421356237"
    assert out["result"]["expr"] == "n*v"
    assert out["result"]["val"] == "0.333333333333"
    assert out["result"]["latex"]["gain"] == r"\sqrt{2}"
    assert out["steps"][0]["prose"] == ["Some *prose*."] and out["epilogue"] == ["After."]
    assert out["assumptions"] == [{"key": "iid", "text": "independent and identically distributed", "used_in": [1]}]
    rel = float(out["comparisons"][0]["relative_difference"])
    assert rel == pytest.approx((1.5 - 2 ** 0.5) / 2 ** 0.5, rel=1e-5)


@pytest.mark.parametrize("value, digits, text", [
    (2, 5, "2"), (sp.Integer(7), 3, "7"), (sp.Rational(1, 4), 10, "0.25"), (0.1, 3, "0.1"),
    (sp.pi, 6, "3.14159"), (mp.mpf(2) ** 0.5, 4, "1.414"), (sp.Rational(3, 2), 1, "2"),
])
def test_decimal_string(value, digits, text):
    assert decimal_string(value, digits) == text


def test_exact_check_reports_a_reason():
    ok, why = exact_check(x + 1, x)
    assert not ok and "not proven" in why
    assert exact_check(x, x) == (True, "identical")


_SLOW = pytest.mark.slow  # these rebuild derivations the derivation tests already build


@pytest.mark.parametrize("module", ["derivation", "derivations", "render", "derivations.linear_variance",
                                    "derivations.residual", "__init__", "maps",
                                    pytest.param("derivations.fan_rules", marks=_SLOW),
                                    pytest.param("derivations.gains", marks=_SLOW),
                                    pytest.param("derivations.sigmoid", marks=_SLOW),
                                    pytest.param("derivations.symmetry", marks=_SLOW),
                                    pytest.param("derivations.dropout", marks=_SLOW),
                                    pytest.param("derivations.selu", marks=_SLOW),
                                    pytest.param("derivations.batchnorm", marks=_SLOW)])
def test_doctests(module):
    import doctest
    import importlib
    name = "varprop.derive" if module == "__init__" else f"varprop.derive.{module}"
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0

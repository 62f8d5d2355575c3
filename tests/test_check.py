"""`varprop check`: right and wrong claims, each verdict held against numbers plugged in by hand."""
import functools
import json
import math

import numpy as np
import pytest
import sympy as sp

from varprop.cli import main
from varprop.derive.check import COUNTEREXAMPLE_FANS, check, small_signal_moments
from varprop.derive.gains import gains
from varprop.derive.moments import moment
from varprop.expr import parse_distribution, symbols

FI, FO = symbols()
GLOROT_UNIFORM = "uniform(-sqrt(6/(fan_in+fan_out)), sqrt(6/(fan_in+fan_out)))"
FANS = ((1, 1), (7, 3), (64, 256), (300, 300), (1000, 17))


def _ratios_by_hand(init, act, q, fan_in, fan_out, **params):
    """The two ratios from the float variance and quadrature moments: no SymPy, no closed forms."""
    v = parse_distribution(init).variance(fan_in, fan_out)
    second = float(moment(act, "second", q, 15, closed=False, **params).value)
    deriv2 = float(moment(act, "deriv2", q, 15, closed=False, **params).value)
    return fan_in * v * second / q, fan_out * v * deriv2


# (init, activation, q, params, verdict, forward preserved, backward preserved, condition)
CLAIMS = [
    ("normal(0, sqrt(2/fan_in))", "relu", 1, {}, "forward", True, False, "fan_in = fan_out"),
    ("normal(0, sqrt(2/fan_out))", "relu", 1, {}, "backward", False, True, "fan_in = fan_out"),
    ("normal(0, sqrt(2/fan_in))", "relu", 3, {}, "forward", True, False, "fan_in = fan_out"),
    (GLOROT_UNIFORM, "linear", 1, {}, "fan_in = fan_out", False, False, "fan_in = fan_out"),
    (GLOROT_UNIFORM, "tanh", 0, {}, "fan_in = fan_out", False, False, "fan_in = fan_out"),
    (GLOROT_UNIFORM, "relu", 1, {}, "neither", False, False, None),         # Glorot for ReLU: wrong
    (GLOROT_UNIFORM, "tanh", 1, {}, "neither", False, False, None),         # tanh is not linear at q = 1
    ("normal(0, 0.01)", "relu", 1, {}, "neither", False, False, None),
    ("normal(0, 0.01)", "tanh", 0, {}, "neither", False, False, None),
    ("normal(0, sqrt(1/fan_in))", "selu", 1, {}, "forward", True, False, None),
    ("normal(0, 0.75/sqrt(fan_in))", "selu", 1, {}, "neither", False, False, None),   # PyTorch's 3/4
    ("normal(0, 5/3/sqrt(fan_in))", "tanh", 1, {}, "neither", False, False, None),    # PyTorch's 5/3
    ("normal(0, sqrt(1/fan_in))", "tanh", 0, {}, "forward", True, False, "fan_in = fan_out"),
    ("normal(0, sqrt(2/((1 + 0.2**2)*fan_in)))", "leaky_relu", 1, {"negative_slope": "0.2"}, "forward", True,
     False, "fan_in = fan_out"),
    ("normal(0, sqrt(2/fan_in))", "leaky_relu", 1, {"negative_slope": "0.2"}, "neither", False, False, None),
    ("truncated_normal(sqrt(2/fan_in)/0.87962566103423978)", "relu", 1, {}, "forward", True, False,
     "fan_in = fan_out"),
    ("truncated_normal(sqrt(2/fan_in))", "relu", 1, {}, "neither", False, False, None),   # uncorrected std
    ("uniform(-sqrt(6/fan_in), sqrt(6/fan_in))", "relu", 1, {}, "forward", True, False, "fan_in = fan_out"),
    ("normal(0, sqrt(2/fan_in))", "abs", 0, {}, "neither", False, False, None),
    ("normal(0, sqrt(1/fan_in))", "abs", 0, {}, "forward", True, False, "fan_in = fan_out"),
    # phi(0) = 1/2: the constant adds fan_in Var(w)/4 to the pre-activation variance, which q -> 0 keeps
    ("normal(0, 4/sqrt(fan_in))", "sigmoid", 0, {}, "neither", False, False, None),
    ("normal(0, sqrt(1/fan_in))", "maxout", 1, {}, "forward", True, False, None),
]


@functools.lru_cache(maxsize=None)
def _checked(init, act, q, params):
    return check(init, act, q=q, params=dict(params))


@pytest.mark.parametrize("init, act, q, params, verdict, fwd, bwd, condition", CLAIMS)
def test_claims(init, act, q, params, verdict, fwd, bwd, condition):
    r = _checked(init, act, q, tuple(params.items()))
    assert r.verdict == verdict
    assert (r.forward.preserved, r.backward.preserved) == (fwd, bwd)
    assert r.condition == condition
    if verdict == "both":
        assert r.counterexample is None
    else:
        c = r.counterexample
        assert c is not None and (c["fan_in"], c["fan_out"]) in COUNTEREXAMPLE_FANS
        for name, preserved in (("forward", fwd), ("backward", bwd)):
            if not preserved:
                assert abs(float(c[f"{name}_ratio"]) - 1) > 1e-6


@pytest.mark.parametrize("init, act, q, params, verdict, fwd, bwd, condition", CLAIMS)
def test_each_verdict_numerically_by_plugging_fans(init, act, q, params, verdict, fwd, bwd, condition):
    r = _checked(init, act, q, tuple(params.items()))
    for fan_in, fan_out in FANS:
        sym_f = float(r.forward_ratio.subs({FI: fan_in, FO: fan_out}))
        sym_b = float(r.backward_ratio.subs({FI: fan_in, FO: fan_out}))
        got_f, got_b = r.ratios_at(fan_in, fan_out)
        assert math.isclose(sym_f, got_f, rel_tol=1e-12) and math.isclose(sym_b, got_b, rel_tol=1e-12)
        if q != 0 and act != "maxout":
            hand_f, hand_b = _ratios_by_hand(init, act, q, fan_in, fan_out, **params)
            assert math.isclose(sym_f, hand_f, rel_tol=1e-12) and math.isclose(sym_b, hand_b, rel_tol=1e-12)
        if fwd:
            assert math.isclose(sym_f, 1, rel_tol=1e-13)
        if bwd:
            assert math.isclose(sym_b, 1, rel_tol=1e-13)
        if condition == "fan_in = fan_out" and fan_in == fan_out:
            assert math.isclose(sym_f, 1, rel_tol=1e-13) and math.isclose(sym_b, 1, rel_tol=1e-13)
    c = r.counterexample
    if c is not None:
        f, b = r.ratios_at(c["fan_in"], c["fan_out"])
        assert math.isclose(float(c["forward_ratio"]), f, rel_tol=1e-12)
        assert math.isclose(float(c["backward_ratio"]), b, rel_tol=1e-12)


@pytest.mark.parametrize("act, direction", [("gelu", "forward"), ("tanh", "forward"), ("gelu", "backward"),
                                            ("tanh", "backward"), ("silu", "forward"), ("elu", "backward")])
def test_exact_gains_from_derive_gains_are_preserved_at_q1(act, direction):
    # 20 digits of the gain: squaring a gain rounded to 15 digits moves the ratio by up to 1e-14, more than
    # the half unit of the 15th digit that "1 to 15 digits" allows
    g = gains(act, q=1, digits=20)
    if direction == "forward":
        init, fan = f"normal(0, {g.forward_str()}/sqrt(fan_in))", "fan_in"
    else:
        init, fan = f"normal(0, {g.backward_str()}/sqrt(fan_out))", "fan_out"
    r = check(init, act, q=1)
    d = getattr(r, direction)
    assert d.preserved and d.precision is not None
    assert r.verdict == direction
    # a gain off in its 6th digit is not preserving
    value = float(g.forward if direction == "forward" else g.backward) * (1 + 1e-6)
    assert not getattr(check(f"normal(0, {value!r}/sqrt({fan}))", act, q=1), direction).preserved


def test_glorot_ratios_are_the_expected_expressions():
    r = check(GLOROT_UNIFORM, "linear")
    assert sp.simplify(r.variance - 2 / (FI + FO)) == 0
    assert sp.simplify(r.forward_ratio - 2 * FI / (FI + FO)) == 0
    assert sp.simplify(r.backward_ratio - 2 * FO / (FI + FO)) == 0


@pytest.mark.parametrize("init", ["constant(0.5)", "constant(0)", "normal(0.3, 0)", "uniform(2, 2)"])
def test_constant_weights_get_the_symmetry_verdict(init):
    r = check(init, "tanh")
    assert r.verdict == "symmetry"
    assert r.variance == 0
    # constant nonzero weights still scale the signal: E[w^2] = E[w]^2 carries it
    assert (r.forward_ratio == 0 and r.backward_ratio == 0) == (r.mean == 0)
    assert not r.forward.preserved and not r.backward.preserved
    assert r.counterexample is None and r.condition is None
    assert "never differ" in r.verdict_text


@pytest.mark.parametrize("k, second", [(2, 1), (3, None)])
def test_maxout_small_signal_limit_is_its_q1_moment(k, second):
    # maxout is positively homogeneous, so q -> 0+ changes nothing; k = 3 has no closed form
    s = small_signal_moments("maxout", k=k)
    assert s.backward == sp.Rational(1, k)
    m = moment("maxout", "second", 1, 15, closed=False, k=k)
    assert math.isclose(float(s.forward), float(m.value), rel_tol=1e-14)
    if second is not None:
        assert s.forward == second and s.digits is None
    else:
        assert s.digits is not None and s.digits >= 15
    r0, r1 = check("normal(0, sqrt(1/fan_in))", "maxout", q=0, params={"k": k}), \
        check("normal(0, sqrt(1/fan_in))", "maxout", q=1, params={"k": k})
    assert r0.ratios_at(10, 20) == pytest.approx(r1.ratios_at(10, 20), rel=1e-14)


def test_nonzero_mean_is_noted():
    r = check("normal(0.1, sqrt(2/fan_in))", "relu")
    assert any("mean 1/10" in n for n in r.notes)


def test_condition_off_the_diagonal_is_solved():
    r = check("normal(0, sqrt(1/fan_in))", "relu")
    assert r.verdict == "neither"
    assert r.backward.condition == "fan_out = 2*fan_in"
    assert r.forward.condition is None   # 1/2 whatever the fans


# --------------------------------------------------------------------------------------------------
# the small-signal limit q -> 0+
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("act, params", [("relu", {}), ("leaky_relu", {"negative_slope": "0.3"}), ("elu", {}),
                                         ("abs", {}), ("linear", {}), ("hardtanh", {}), ("celu", {"alpha": 2})])
def test_small_signal_factors_equal_the_sympy_limit_of_the_closed_forms(act, params):
    from varprop.derive.moments import closed_form
    from varprop.activations import get
    b = get(act, **params)
    fwd, bwd, centred, digits = small_signal_moments(b)
    assert centred and digits is None
    q = sp.Symbol("q", positive=True)
    assert sp.simplify(sp.limit(closed_form(b, "second") / q, q, 0, "+") - fwd) == 0
    assert sp.simplify(sp.limit(closed_form(b, "deriv2"), q, 0, "+") - bwd) == 0


@pytest.mark.parametrize("act", ["tanh", "gelu", "silu", "softsign", "mish", "sigmoid", "softplus"])
def test_small_signal_factors_against_quadrature_at_small_q(act):
    fwd, bwd, centred, _ = small_signal_moments(act)
    q = 1e-10
    # kept in mpmath: Var[phi] = E[phi^2] - E[phi]^2 cancels 10 digits at this q
    second = moment(act, "second", q, 22, closed=False).value
    mean = moment(act, "mean", q, 22, closed=False).value
    deriv2 = float(moment(act, "deriv2", q, 22, closed=False).value)
    # E[phi^2]/q (or Var[phi]/q when phi(0) != 0) and E[phi'^2] move from their limits by O(q), or by
    # O(sqrt(q)) when phi'' jumps at 0 (softsign: x - x|x| + ..., so 2 sqrt(q) E|z|^3 = 3.2e-5 here)
    fluct = float(second / q if centred else (second - mean ** 2) / q)
    tol = 10 * math.sqrt(q)
    assert math.isclose(fluct, float(fwd), rel_tol=tol)
    assert math.isclose(deriv2, float(bwd), rel_tol=tol)


# --------------------------------------------------------------------------------------------------
# theory against a sampled layer
# --------------------------------------------------------------------------------------------------

def _sample(init, shape, fan_in, fan_out, rng):
    d = parse_distribution(init)
    p = d.params(fan_in, fan_out)
    if d.kind == "normal":
        return rng.normal(p["mean"], p["std"], shape)
    return rng.uniform(p["low"], p["high"], shape)


@pytest.mark.parametrize("init, act, fan_in, fan_out", [
    ("normal(0, sqrt(2/fan_in))", "relu", 64, 16),
    (GLOROT_UNIFORM, "linear", 48, 96),
    ("normal(0, 0.05)", "tanh", 80, 40),
])
def test_forward_and_backward_ratios_against_monte_carlo(init, act, fan_in, fan_out):
    # a layer h = W x with x = phi(h_prev), h_prev ~ N(0, 1); and g_prev = W^T (g * 1) with g ~ N(0, 1):
    # E[h^2] / q and Var(g_prev) / Var(g) are the forward ratio and, times E[phi'^2], the backward one
    from varprop.activations import get
    rng = np.random.default_rng(20261123)
    trials, batch = 400, 64
    r = check(init, act, q=1)
    want_f, want_b = r.ratios_at(fan_in, fan_out)
    phi = get(act)
    fwd, bwd = [], []
    for _ in range(trials):
        w = _sample(init, (fan_out, fan_in), fan_in, fan_out, rng)
        h_prev = rng.standard_normal((batch, fan_in))
        h = phi.numpy(h_prev) @ w.T
        g = rng.standard_normal((batch, fan_out))
        g_prev = (g @ w) * phi.numpy_derivative(h_prev)
        fwd.append(np.mean(h ** 2))
        bwd.append(np.mean(g_prev ** 2))
    fwd, bwd = np.array(fwd), np.array(bwd)
    # per-trial means are iid across trials: 5 standard errors of their average
    assert abs(fwd.mean() - want_f) < 5 * fwd.std(ddof=1) / math.sqrt(trials)
    assert abs(bwd.mean() - want_b) < 5 * bwd.std(ddof=1) / math.sqrt(trials)


# --------------------------------------------------------------------------------------------------
# library and CLI errors
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"init": "normal(0, 1)", "activation": "nope"}, "unknown activation"),
    ({"init": "normal(0, 1)", "activation": "relu", "q": -1}, "q must be >= 0"),
    ({"init": "normal(0, 1)", "activation": "relu", "q": "x"}, "not a number"),
    ({"init": "normal(0, 1)", "activation": "relu", "params": {"foo": 1}}, "no parameter 'foo'"),
    ({"init": "__import__('os')", "activation": "relu"}, "not allowed"),
    ({"init": "normal(0, 1)", "activation": "relu", "digits": 0}, "digits"),
])
def test_library_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check(**kwargs)


def _cli(capsys, *argv):
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_text(capsys):
    code, out, err = _cli(capsys, "normal(0, sqrt(2/fan_in))", "--activation", "relu")
    assert code == 0 and err == ""
    assert "preserved forward only" in out and "fan_out/fan_in" in out and "counterexample" in out


def test_cli_json(capsys):
    code, out, _ = _cli(capsys, GLOROT_UNIFORM, "--activation", "tanh", "--q", "0", "--json")
    assert code == 0
    d = json.loads(out)
    for key in ("init", "activation", "variance", "forward_ratio", "backward_ratio", "forward_preserved",
                "backward_preserved", "condition", "counterexample"):
        assert key in d
    assert d["init"] == GLOROT_UNIFORM and d["activation"] == "tanh"
    assert d["variance"] == "2/(fan_in + fan_out)"
    assert d["forward_preserved"] is False and d["backward_preserved"] is False
    assert d["condition"] == "fan_in = fan_out"
    assert d["counterexample"]["fan_in"] != d["counterexample"]["fan_out"]


def test_cli_json_param_and_null_fields(capsys):
    code, out, _ = _cli(capsys, "normal(0, 0.01)", "--activation", "leaky_relu", "--param", "negative_slope=0.1",
                        "--json")
    d = json.loads(out)
    assert code == 0 and d["activation"] == "leaky_relu(negative_slope=0.1)" and d["condition"] is None
    code, out, _ = _cli(capsys, "constant(1)", "--activation", "relu", "--json")
    d = json.loads(out)
    assert d["verdict"] == "symmetry" and d["counterexample"] is None and d["condition"] is None


@pytest.mark.parametrize("argv", [
    ["os.system('ls')", "--activation", "relu"],
    ["normal(0, 1)[0]", "--activation", "relu"],
    ["normal(0, 10**10**10)", "--activation", "relu"],
    ["normal(0, 1)", "--activation", "nope"],
    ["normal(0, 1)"],
    ["normal(0, 1)", "--activation", "relu", "--q", "-1"],
    ["normal(0, 1)", "--activation", "relu", "--param", "slope"],
    ["normal(0, 1)", "--activation", "relu", "--digits", "99"],
    ["gamma(1, 1)", "--activation", "relu"],
])
def test_cli_errors_exit_2_with_one_line(capsys, argv):
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("varprop: error: ") and err.count("\n") == 1 and "Traceback" not in err


# -- initializer names: the grammar of `varprop simulate --init` -------------------------------------------
@pytest.mark.parametrize("name", ["xavier_uniform", "glorot_normal", "he_normal", "kaiming_uniform", "lecun_normal",
                                  "he_truncated_normal", "xavier_truncated_normal", "zeros"])
def test_an_initializer_name_is_audited_as_the_law_it_draws(name):
    from varprop.cli.check import resolve
    from varprop.nn.init import get
    dist, init = resolve(name), get(name)
    for fan_in, fan_out in FANS:      # the expression's variance is the initializer's own (torch layout: out, in)
        assert dist.variance(fan_in, fan_out) == pytest.approx(init.variance((fan_out, fan_in)), rel=1e-12, abs=0)
        assert dist.mean(fan_in, fan_out) == init.mean((fan_out, fan_in)) == 0


def test_check_xavier_uniform_by_name_agrees_with_the_expression(capsys):
    assert main(["check", "xavier_uniform", "--activation", "tanh", "--json"]) == 0
    by_name = json.loads(capsys.readouterr().out)
    assert main(["check", GLOROT_UNIFORM, "--activation", "tanh", "--json"]) == 0
    by_text = json.loads(capsys.readouterr().out)
    assert by_name["init"].startswith("xavier_uniform = uniform(")
    for key in ("variance", "forward_ratio", "backward_ratio", "verdict", "counterexample"):
        assert by_name[key] == by_text[key], key
    assert by_name["variance"] == "2/(fan_in + fan_out)"


def test_a_name_with_options_and_an_exact_gain(capsys):
    assert main(["check", "he_normal", "--activation", "relu"]) == 0
    assert "(preserved, exact)" in capsys.readouterr().out     # scale 2.0 is exactly 2
    assert main(["check", "kaiming_normal", "--init-param", "nonlinearity=tanh", "--activation", "tanh",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["init"].startswith("kaiming_normal(nonlinearity=tanh) = normal(0, sqrt(")
    assert r["forward_preserved"] and r["forward_precision"].endswith("digits") and not r["backward_preserved"]


@pytest.mark.parametrize("argv,fragment", [
    (["xavier_unifrom"], "did you mean xavier_uniform"),
    (["kaiming_normall"], "did you mean kaiming_normal"),
    (["norml(0, 1)"], "did you mean normal"),
    (["kaiming_normal(nonlinearity=relu)"], "kaiming_normal --init-param nonlinearity=relu"),
    (["orthogonal"], "not an iid law"),
    (["normal(0, 1)", "--init-param", "mode=fan_in"], "applies to an initializer name"),
    (["he_normal", "--init-param", "colour=red"], "he_normal"),
])
def test_bad_names_get_one_line_and_a_suggestion(argv, fragment, capsys):
    assert main(["check", *argv, "--activation", "tanh"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and fragment in err, err


# -- bounded symbolic work ------------------------------------------------------------------------------
HEAVY = [
    "normal(0, (fan_in+2*fan_out+3)**8/(3*fan_in+fan_out+7)**8)",
    "normal(0, (fan_in+2*fan_out+3)**16/(3*fan_in+fan_out+7)**16)",
    "normal(0, " + "+".join(f"1/(fan_in+{k})" for k in range(1, 13)) + ")",
]


@pytest.mark.parametrize("init", HEAVY)
def test_runaway_symbolic_work_is_replaced_by_the_numeric_decision(init):
    import time
    start = time.perf_counter()
    r = check(init, "tanh")
    assert time.perf_counter() - start < 10         # it ran past a minute before the bound
    assert r.symbolic is False and r.verdict == "neither"
    assert any(n.startswith("symbolic proof not attempted") for n in r.notes)
    # the counterexample's ratios are the hand-computed ones
    c = r.counterexample
    f, b = _ratios_by_hand(init, "tanh", 1, c["fan_in"], c["fan_out"])
    assert float(c["forward_ratio"]) == pytest.approx(f, rel=1e-9)
    assert float(c["backward_ratio"]) == pytest.approx(b, rel=1e-9)


def test_the_numeric_decision_finds_what_holds():
    """Heavy forms of He and of Glorot: the numeric decision gives the verdicts the simple forms prove."""
    he = "normal(0, sqrt(2/fan_in)*(fan_in+3*fan_out+1)**6/(fan_in+3*fan_out+1)**6)"
    r = check(he, "relu")
    assert not r.symbolic and r.verdict == "forward" and r.forward.precision.startswith("numeric at")
    assert check("normal(0, sqrt(2/fan_in))", "relu").verdict == "forward"
    glorot = "normal(0, sqrt(2/(fan_in+fan_out))*(fan_out+2)**6/(fan_out+2)**6)"
    r = check(glorot, "linear")
    assert not r.symbolic and r.verdict == "fan_in = fan_out" and r.condition == "fan_in = fan_out"
    assert check("normal(0, sqrt(2/(fan_in+fan_out)))", "linear").verdict == "fan_in = fan_out"


def test_the_cli_says_the_proof_was_not_attempted(capsys):
    assert main(["check", HEAVY[1], "--activation", "tanh"]) == 0
    out = capsys.readouterr().out
    assert "note             symbolic proof not attempted" in out and "verdict          preserved in neither" in out

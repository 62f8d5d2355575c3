"""The registry: its NumPy, mpmath and Numba forms agree with its SymPy expression and derivative."""
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from varprop import activations as A
from varprop import kernels

ELEMENTWISE = [n for n in A.names() if n != "maxout"]
NON_DEFAULT = {  # a second parameter setting per parametrized entry, so defaults are not all that is tested
    "leaky_relu": {"negative_slope": "0.2"}, "prelu": {"a": "0.5"}, "rrelu": {"lower": "0.1", "upper": "0.3"},
    "elu": {"alpha": "1.5"}, "celu": {"alpha": "0.5"}, "swish": {"beta": "2"}, "softplus": {"beta": "3"},
    "hardtanh": {"min_val": "-2", "max_val": "0.5"},
}
CASES = [(n, {}) for n in ELEMENTWISE] + [(n, p) for n, p in NON_DEFAULT.items()]
X = sp.Symbol("x", real=True)


def _sympy_numeric(expr):
    return sp.lambdify(X, expr, modules=["mpmath"])


def _near_kink(bound, x):
    return any(abs(x - float(k)) < 1e-9 for k in (*bound.kinks(), 0.0))


points = st.floats(min_value=-12, max_value=12, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{p or ''}" for n, p in CASES])
@settings(max_examples=40, deadline=None)
@given(x=points)
def test_numpy_forward_and_derivative_match_sympy(name, params, x):
    b = A.get(name, **params)
    expr = b.sympy(X)
    f = _sympy_numeric(expr)
    want = float(f(x))
    got = float(b.numpy(np.array([x], dtype=np.float64))[0])
    assert got == pytest.approx(want, rel=1e-12, abs=1e-14)
    if _near_kink(b, x):
        return
    dwant = float(_sympy_numeric(sp.diff(expr, X))(x))
    dgot = float(b.numpy_derivative(np.array([x], dtype=np.float64))[0])
    assert dgot == pytest.approx(dwant, rel=1e-11, abs=1e-13)


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{p or ''}" for n, p in CASES])
def test_registry_derivative_is_the_derivative(name, params):
    """The hand-written derivative equals sympy.diff of the expression, symbolically on every piece."""
    b = A.get(name, **params)
    d_hand = b.sympy_derivative(X)
    d_auto = sp.diff(b.sympy(X), X)
    rng = np.random.default_rng(0)
    for x in rng.uniform(-6, 6, size=25):
        if _near_kink(b, x):
            continue
        a = d_hand.subs(X, sp.Float(x, 30)).evalf(25)
        c = d_auto.subs(X, sp.Float(x, 30)).evalf(25)
        assert abs(a - c) <= 1e-20 * max(1, abs(c))


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{p or ''}" for n, p in CASES])
def test_numba_and_mpmath_match_numpy(name, params):
    b = A.get(name, **params)
    x = np.random.default_rng(1).normal(0, 4, size=2001)
    x[:5] = [0.0, -1e-300, 50.0, -50.0, 3.0]
    assert np.allclose(kernels.activate(b, x), b.numpy(x), rtol=1e-13, atol=1e-15)
    assert np.allclose(kernels.activate_derivative(b, x), b.numpy_derivative(x), rtol=1e-12, atol=1e-14)
    for xi in x[:40]:
        assert float(b.mpmath(float(xi))) == pytest.approx(float(b.numpy(np.array([xi]))[0]), rel=1e-12, abs=1e-15)


def test_numpy_forms_are_finite_for_large_inputs():
    x = np.array([-1e4, -700.0, 0.0, 700.0, 1e4])
    for n in ELEMENTWISE:
        b = A.get(n)
        assert np.isfinite(b.numpy(x)).all(), n
        assert np.isfinite(b.numpy_derivative(x)).all(), n


def test_selu_constants_are_the_published_ones():
    import mpmath as mp
    with mp.workdps(40):
        ns = A.mpmath_namespace()
        assert mp.nstr(A.selu_alpha(ns), 30) == "1.67326324235437728481704299167"
        assert mp.nstr(A.selu_lambda(ns), 30) == "1.05070098735548049341933498529"
    a, lam = A.get("selu").kernel_params()
    assert a == pytest.approx(1.6732632423543772, rel=1e-15)
    assert lam == pytest.approx(1.0507009873554805, rel=1e-15)


def test_parameters_are_exact_and_validated():
    b = A.get("leaky_relu", negative_slope="1/5")
    assert b.sympy(X) == sp.Piecewise((X, X > 0), (X / 5, True))
    assert b.label() == "leaky_relu(negative_slope=0.2)"
    assert A.get("rrelu").label() == "rrelu(lower=0.125, upper=1/3)"
    assert A.get("LeakyReLU".replace("LeakyReLU", "leaky-relu")).name == "leaky_relu"
    with pytest.raises(ValueError, match="unknown activation 'nope'; known: linear"):
        A.get("nope")
    with pytest.raises(ValueError, match="has no parameter 'beta'"):
        A.get("elu", beta=1)
    with pytest.raises(ValueError, match="must be > 0"):
        A.get("elu", alpha="-1")
    with pytest.raises(ValueError, match="integer >= 2"):
        A.get("maxout", k="2.5")
    with pytest.raises(ValueError, match="not a number"):
        A.get("elu", alpha="abc")
    with pytest.raises(ValueError, match="min_val < max_val"):
        A.get("hardtanh", min_val=1, max_val=0)
    with pytest.raises(ValueError, match="finite"):
        A.get("elu", alpha=math.inf)
    with pytest.raises(TypeError):
        A.get(3)


@pytest.mark.parametrize("bad", ["x", "=1", "a=", "1a=2", None])
def test_parse_params_rejects_malformed(bad):
    with pytest.raises(ValueError, match="malformed parameter"):
        A.parse_params([bad])


def test_parse_params():
    assert A.parse_params(["alpha=1.5", " beta = 2 "]) == {"alpha": "1.5", "beta": "2"}
    with pytest.raises(ValueError, match="given twice"):
        A.parse_params(["a=1", "a=2"])


def test_maxout_sympy_form_is_a_max():
    e = A.get("maxout", k=3).sympy()
    assert isinstance(e, sp.Max) and len(e.args) == 3
    assert A.get("maxout", k=3).arity == 3


def test_maxout_k_has_a_ceiling():
    assert A.get("maxout", k=A.MAXOUT_K_MAX).arity == A.MAXOUT_K_MAX
    with pytest.raises(ValueError, match=f"must be at most {A.MAXOUT_K_MAX}"):
        A.get("maxout", k=100000000)

"""Exact Gaussian moments: closed forms, quadrature and Monte Carlo hold each other to account."""
import zlib
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from varprop import activations as A
from varprop.derive.moments import KINDS, closed_form, moment, quadrature, verify_closed_form

Q = sp.Symbol("q", positive=True)

# {(activation, kind): expected closed form in q}
EXPECTED = {
    ("relu", "mean"): sp.sqrt(Q) / sp.sqrt(2 * sp.pi),
    ("relu", "second"): Q / 2,
    ("relu", "deriv2"): sp.Rational(1, 2),
    ("leaky_relu", "second"): (1 + sp.Rational(1, 100) ** 2) * Q / 2,
    ("leaky_relu", "deriv2"): (1 + sp.Rational(1, 100) ** 2) / 2,
    ("linear", "mean"): sp.Integer(0),
    ("linear", "second"): Q,
    ("linear", "deriv2"): sp.Integer(1),
    ("abs", "mean"): sp.sqrt(2 * Q / sp.pi),
    ("abs", "second"): Q,
    ("abs", "deriv2"): sp.Integer(1),
    ("sigmoid", "mean"): sp.Rational(1, 2),
    ("tanh", "mean"): sp.Integer(0),
    ("elu", "deriv2"): sp.Rational(1, 2) + sp.exp(2 * Q) * sp.erfc(sp.sqrt(2 * Q)) / 2,
    ("maxout", "mean"): sp.sqrt(Q) / sp.sqrt(sp.pi),
    ("maxout", "second"): Q,
    ("maxout", "deriv2"): sp.Rational(1, 2),
    ("gelu", "mean"): Q / sp.sqrt(2 * sp.pi * (1 + Q)),
}


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: "-".join(k))
def test_closed_forms_table(key):
    got = closed_form(*key)
    assert got is not None
    diff = sp.simplify(got - EXPECTED[key])
    if diff != 0:  # compare by substituting numbers when simplify leaves a form it cannot cancel
        for qv in (sp.Rational(1, 3), 1, 5):
            assert abs(sp.N((got - EXPECTED[key]).subs(Q, qv), 40)) < 1e-35


def test_selu_is_self_normalizing_at_its_constants():
    assert moment("selu", "second", 1, digits=40).value_str(35) == "1"
    assert moment("selu", "mean", 1, digits=40).value == 0
    # quadrature, an independent route, agrees to 30 digits
    v, d = quadrature("selu", "second", 1, digits=32)
    assert d >= 30 and abs(v - 1) < mp.mpf(10) ** -30
    v, _ = quadrature("selu", "mean", 1, digits=32)
    assert abs(v) < mp.mpf(10) ** -30


CLOSED = [(n, k) for n in A.names() for k in KINDS if k in A.lookup(n).closed]


@pytest.mark.parametrize("name,kind", CLOSED, ids=[f"{n}-{k}" for n, k in CLOSED])
def test_every_closed_form_agrees_with_quadrature(name, kind):
    assert verify_closed_form(name, kind, qs=(Fraction(1, 2), 2), digits=25) < 1e-22


def test_hand_derived_gelu_second_moment_agrees_to_40_digits():
    assert verify_closed_form("gelu", "second", qs=(Fraction(1, 10), 1, 7), digits=45) < 1e-40


def test_requested_digits_are_certified():
    m30 = moment("tanh", "second", 1, digits=30)
    m45 = moment("tanh", "second", 1, digits=45)
    assert m30.method == "quadrature" and m30.digits == 30
    assert abs(m30.value - m45.value) / m45.value < mp.mpf(10) ** -29
    m = moment("relu", "second", Fraction(3, 7), digits=12)
    assert m.method == "closed form" and m.value_str() == "0.214285714286"


def _monte_carlo(bound, kind, q, n, seed):
    rng = np.random.default_rng(seed)
    if bound.name == "maxout":
        k = bound.arity
        z = rng.standard_normal((k, n)) * np.sqrt(q)
        m = z.max(axis=0)
        if kind == "deriv2":
            vals = (z[0] == m).astype(float)
        else:
            vals = m if kind == "mean" else m ** 2
    else:
        x = rng.standard_normal(n) * np.sqrt(q)
        if kind == "mean":
            vals = bound.numpy(x)
        elif kind == "second":
            vals = bound.numpy(x) ** 2
        else:
            vals = bound.numpy_derivative(x) ** 2
    return vals.mean(), vals.std(ddof=1) / np.sqrt(n)


ALL = [(n, k, q) for n in A.names() for k in KINDS for q in (0.5, 2.0)]


@pytest.mark.parametrize("name,kind,q", ALL, ids=[f"{n}-{k}-q{q}" for n, k, q in ALL])
def test_every_moment_agrees_with_monte_carlo(name, kind, q):
    b = A.get(name)
    est, se = _monte_carlo(b, kind, q, 400_000, seed=zlib.crc32(f"{name}|{kind}|{q}".encode()))
    exact = float(moment(b, kind, Fraction(str(q)), digits=15, closed=False).value)
    assert abs(est - exact) <= 5 * se + 1e-12, (est, exact, se)


def test_bad_input():
    with pytest.raises(ValueError, match="q must be > 0"):
        moment("relu", "second", 0)
    with pytest.raises(ValueError, match="q must be > 0"):
        moment("relu", "second", "-1")
    with pytest.raises(ValueError, match="digits must be between 1 and 60"):
        moment("relu", "second", 1, digits=0)
    with pytest.raises(ValueError, match="unknown moment"):
        moment("relu", "third")
    with pytest.raises(TypeError):
        moment("relu", "second", 1, digits=2.5)

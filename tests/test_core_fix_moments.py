"""Moments and gains at extreme q, exact closed-form gains, bounded number input, light import."""
import subprocess
import sys
from fractions import Fraction

import mpmath as mp
import pytest

from varprop.activations import decimal_string, fmt, to_fraction
from varprop.derive.gains import gains
from varprop.derive.moments import moment, quadrature


def _rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("q", ["1e-30", "1e-300"])
def test_relu_second_moment_is_q_over_2_at_tiny_q(q):
    # closed form q/2 was rounded to an absolute 0 below 1e-21, giving a gain of +inf
    m = moment("relu", "second", q, 15)
    with mp.workdps(30):
        assert _rel(m.value, mp.mpf(Fraction(q).numerator) / Fraction(q).denominator / 2) < 1e-16
    g = gains("relu", q, 15)
    assert g.forward_str() == decimal_string(mp.sqrt(2), 15)


@pytest.mark.parametrize("act,kind,q,expected", [
    # small q: phi(x) ~ x (tanh, gelu' at 0 is 1/2): E[phi^2] ~ q c^2, E[phi'^2] ~ c'^2
    ("tanh", "second", Fraction(1, 10 ** 300), mp.mpf("1e-300")),
    ("tanh", "deriv2", Fraction(1, 10 ** 300), mp.mpf(1)),
    ("gelu", "deriv2", Fraction(1, 10 ** 40), mp.mpf("0.25")),
    ("gelu", "second", Fraction(1, 10 ** 40), mp.mpf("2.5e-41")),
    # large q: E[sech^4(s z)] -> (4/3) / (s sqrt(2 pi)) since int sech^4 = 4/3
    ("tanh", "deriv2", Fraction(10 ** 300), mp.mpf(4) / 3 / mp.sqrt(2 * mp.pi) / mp.mpf(10) ** 150),
])
def test_quadrature_is_relative_at_extreme_q(act, kind, q, expected):
    with mp.workdps(30):
        value, certified = quadrature(act, kind, q, 15)
        assert certified >= 12
        assert _rel(value, expected) < 1e-12


def test_quadrature_agrees_with_closed_form_at_tiny_q():
    for act in ("relu", "elu", "gelu"):
        a = moment(act, "second", "1e-40", 20, closed=True)
        b = moment(act, "second", "1e-40", 20, closed=False)
        assert _rel(b.value, a.value) < mp.mpf(10) ** -(b.digits - 1)


def test_selu_mean_at_huge_q_is_not_a_cancelled_closed_form():
    # exp(q/2) erfc(sqrt(q/2)) cancels; the mean is lambda sqrt(q/(2 pi)) minus an O(1) term
    m = moment("selu", "mean", "1e300", 15)
    from varprop.activations import mpmath_namespace, selu_lambda
    lam = selu_lambda(mpmath_namespace())
    assert _rel(m.value, lam * mp.mpf(10) ** 150 / mp.sqrt(2 * mp.pi)) < 1e-12


def test_gains_print_only_certified_digits():
    g = gains("tanh", 1, 15)
    low = type(g)(**{**g.__dict__, "certified": 3})
    assert low.forward_str() == decimal_string(g.forward, 3)
    assert type(g)(**{**g.__dict__, "certified": 0}).backward_str() == "not certified"


def test_closed_gain_is_never_rounded_to_a_simple_number():
    import sympy as sp
    g = gains("elu", alpha="1e-6")
    closed = g.closed_forward()
    assert closed != sp.sqrt(2)
    assert abs(float(sp.N(closed, 30) - g.forward)) < 1e-14


@pytest.mark.parametrize("text", ["1e-1000000", "1e-100000000", "1" * 700, "1e400"])
def test_to_fraction_refuses_huge_numbers_quickly(text):
    with pytest.raises(ValueError):
        to_fraction(text, "q")
    with pytest.raises(ValueError):
        to_fraction(10 ** 400, "q")


def test_fmt_and_decimal_string():
    assert fmt(Fraction(1, 10 ** 30)) == "1e-30"
    assert fmt(Fraction(12345, 100)) == "123.45"
    assert fmt(Fraction(1, 3)) == "1/3"
    assert decimal_string(mp.mpf("5e-31"), 15) == "5e-31"
    assert decimal_string(mp.mpf(2), 15) == "2"


def test_import_varprop_does_not_import_scipy():
    code = "import sys, varprop, varprop.activations; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_numpy_erf_still_works_lazily():
    import numpy as np
    from scipy.special import erf
    x = np.linspace(-3, 3, 7)
    from varprop.activations import get
    assert np.allclose(get("gelu").numpy(x), x * (1 + erf(x / np.sqrt(2))) / 2, rtol=1e-15, atol=0)

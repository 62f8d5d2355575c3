"""One rule for names across the parts: activations, losses, optimizers and schedules alike."""
import doctest

import pytest

import varprop.names
from varprop.activations import lookup
from varprop.names import key_of
from varprop.nn import get_loss, get_optimizer, get_schedule


def test_doctests():
    assert doctest.testmod(varprop.names).failed == 0


@pytest.mark.parametrize("get,name,expect", [
    (lambda n: lookup(n).name, " Leaky-ReLU ", "leaky_relu"),
    (lambda n: get_loss(n).name, "Cross-Entropy", "cross_entropy"),
    (lambda n: get_optimizer(n, lr=0.1).name, "ADAMW", "adamw"),
    (lambda n: type(get_schedule(n)).__name__, "Cosine", "Cosine"),
])
def test_every_table_forgives_case_space_and_dashes(get, name, expect):
    assert get(name) == expect


@pytest.mark.parametrize("call,what", [
    (lambda: lookup("nope"), "activation"), (lambda: get_loss("nope"), "loss"),
    (lambda: get_optimizer("nope"), "optimizer"), (lambda: get_schedule("nope"), "schedule"),
])
def test_unknown_names_list_the_known_ones(call, what):
    with pytest.raises(ValueError, match=f"unknown {what} 'nope'; known: "):
        call()


def test_a_name_must_be_a_string():
    with pytest.raises(TypeError, match="loss must be a name, got int"):
        key_of(3, {"mse": 1}, "loss")

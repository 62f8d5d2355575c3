"""The runnable examples in the trainer core's docstrings stay true."""
import doctest
import importlib

import pytest

MODULES = ["varprop.nn", "varprop.nn.kernels", "varprop.nn.layers", "varprop.nn.losses", "varprop.nn.optim",
           "varprop.nn.schedules", "varprop.nn.network", "varprop.nn.trainer", "varprop.nn.checkpoint"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

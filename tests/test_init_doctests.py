"""The runnable examples in the docstrings of varprop.nn.init and derive/truncnorm run and hold."""
import doctest
import importlib

import pytest

MODULES = ["varprop.nn.init", "varprop.nn.init.core", "varprop.nn.init.presets", "varprop.nn.init.arrays",
           "varprop.nn.init.structured", "varprop.nn.init.draw", "varprop.nn.init.ziggurat",
           "varprop.nn.init.jax", "varprop.nn.init.torch", "varprop.nn.init.differences", "varprop.truncnorm"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name.endswith(".torch"):
        pytest.importorskip("torch")
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

"""JAX's own initializer tests (tests/peers/jax_nn_initializers.py) run against varprop.nn.init.jax.

The peer file is JAX's tests/nn_test.py (jax-v0.10.2) cut to its initializer tests, with the module under
test swapped; its header says exactly what changed. Its name keeps pytest from collecting it by itself
(outside the skips below): it is loaded here, and its test case runs as this module's.
It needs jax and absl-py (JAX's test harness, jax._src.test_util, is built on absl's parameterized tests).
"""
import importlib.util
import pathlib

import pytest

pytest.importorskip("jax")
pytest.importorskip("absl.testing.parameterized", reason="JAX's test harness needs absl-py")

_PATH = pathlib.Path(__file__).parent / "peers" / "jax_nn_initializers.py"
_spec = importlib.util.spec_from_file_location("peers_jax_nn_initializers", _PATH)
_peer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_peer)

# about 250 cases, each compiling its own shape and dtype: tens of seconds, so with the slow tests
NNInitializersTest = pytest.mark.slow(_peer.NNInitializersTest)


def test_the_peer_tests_are_all_here():
    """Guards the vendoring: JAX's initializer tests are present, and test varprop's module."""
    names = {n.split("(")[0].rstrip("0123456789") for n in dir(NNInitializersTest) if n.startswith("test")}
    assert {"testInitializer", "testInitializerOrthogonalZeroSize", "testInitializerProvider",
            "testVarianceScalingMultiAxis", "testVarianceScalingBatchAxis", "testVarianceScalingError",
            "testAccidentalUpcasting"} <= names
    assert _peer.initializers.__name__ == "varprop.nn.init.jax"
    assert len([n for n in dir(NNInitializersTest) if n.startswith("testInitializer")]) > 200

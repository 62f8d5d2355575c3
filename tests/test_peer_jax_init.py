"""JAX's own initializer tests (jax tests/nn_test.py, class NNInitializersTest) run against varprop.nn.init.jax.

The peer's file is JAX's (Apache-2.0) and is not part of this repository (tests/peers/README.md says where to
get it): it is read as JAX wrote it, and the one change is made when it is loaded: the module under test,
``nn.initializers`` (``from jax import nn``), becomes ``varprop.nn.init.jax``. Only NNInitializersTest runs.
Without the file, jax or absl-py (JAX's test harness is built on absl's parameterized tests) this skips and
says why; ``VARPROP_JAX_PEER_TESTS=/path/to/nn_test.py`` points it at a copy elsewhere.
"""
import os
import sys
import types
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("absl.testing.parameterized", reason="JAX's test harness needs absl-py (pip install absl-py)")

PEER_ENV = "VARPROP_JAX_PEER_TESTS"
PEER = Path(os.environ.get(PEER_ENV, Path(__file__).parent / "peers" / "jax_nn_test.py"))
UNDER_TEST = "from varprop.nn.init import jax as initializers\n"


def _load_peer():
    src = PEER.read_text()
    anchor = "import jax.numpy as jnp\n"
    if anchor not in src or "nn.initializers." not in src:
        raise RuntimeError(f"{PEER} does not look like JAX's tests/nn_test.py")
    src = src.replace("nn.initializers.", "initializers.").replace(anchor, anchor + UNDER_TEST, 1)
    module = types.ModuleType("peers_jax_nn_test")
    module.__file__ = str(PEER)
    sys.modules[module.__name__] = module
    exec(compile(src, str(PEER), "exec"), module.__dict__)
    return module


if PEER.is_file():
    _PEER_MODULE = _load_peer()
    # about 250 cases, each compiling its own shape and dtype: tens of seconds, so with the slow tests
    NNInitializersTest = pytest.mark.slow(_PEER_MODULE.NNInitializersTest)

    def test_the_peer_tests_test_varprop():
        assert _PEER_MODULE.initializers.__name__ == "varprop.nn.init.jax"
        assert len([n for n in dir(NNInitializersTest) if n.startswith("testInitializer")]) > 200
else:
    def test_peer_suite_present():
        pytest.skip(f"JAX's tests/nn_test.py is not at {PEER} (see tests/peers/README.md, or set {PEER_ENV})")

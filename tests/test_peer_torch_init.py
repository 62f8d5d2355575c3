"""PyTorch's own initializer tests (pytorch test/nn/test_init.py) run unchanged against varprop.nn.init.torch.

The peer's file is loaded as PyTorch wrote it and run twice:

* ``as_module``: its module-level ``init`` (from ``import torch.nn.init as init``) is bound to
  ``varprop.nn.init.torch``, as a user who swaps the import would;
* ``patched``: for each test, every function of ``torch.nn.init`` that varprop provides is replaced by
  varprop's (and restored after), so torch's own callers (``nn.Linear.reset_parameters``...) use them too.

The peer's ``@slowTest`` tests run as well (as with PYTORCH_TEST_WITH_SLOW=1). The file is PyTorch's
(BSD-3-Clause) and is not part of this repository: tests/peers/README.md says where to get the version
matching the installed torch. Without it, or without torch's test dependencies, these tests skip and say why.
"""
import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")
pytest.importorskip("expecttest", reason="torch.testing._internal needs expecttest (pip install expecttest)")
common_utils = pytest.importorskip("torch.testing._internal.common_utils")

from varprop.nn.init import torch as vinit  # noqa: E402

pytestmark = pytest.mark.slow      # about 20 s per mode on one core

PEER_ENV = "VARPROP_TORCH_PEER_TESTS"
PEER_DEFAULT = Path(__file__).parent / "peers" / "torch_test_init.py"
PEER = Path(os.environ.get(PEER_ENV, PEER_DEFAULT))
PEER_CLASSES = ("TestNNInit", "TestNNInitDeviceTypeCPU")


def replaceable_names():
    """The functions of torch.nn.init that varprop's front end provides under the same name."""
    return sorted(n for n, f in vars(torch.nn.init).items()
                  if isinstance(f, types.FunctionType) and isinstance(getattr(vinit, n, None), types.FunctionType))


def _load_peer(mode):
    spec = importlib.util.spec_from_file_location(f"_torch_peer_test_init_{mode}", PEER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module            # unittest and torch's device-type machinery look classes up here
    spec.loader.exec_module(module)
    if mode == "as_module":
        module.init = vinit
    return module


class _RunSlowTests:
    def setUp(self):
        slow = common_utils.TEST_WITH_SLOW
        common_utils.TEST_WITH_SLOW = True
        self.addCleanup(setattr, common_utils, "TEST_WITH_SLOW", slow)
        super().setUp()


class _PatchTorch(_RunSlowTests):
    def setUp(self):
        saved = {n: getattr(torch.nn.init, n) for n in replaceable_names()}
        for n in saved:
            setattr(torch.nn.init, n, getattr(vinit, n))
        self.addCleanup(lambda: [setattr(torch.nn.init, n, f) for n, f in saved.items()])
        super().setUp()


MIXINS = {"as_module": _RunSlowTests, "patched": _PatchTorch}

if PEER.is_file():
    for _mode, _mixin in MIXINS.items():
        _peer = _load_peer(_mode)
        for _name in PEER_CLASSES:
            _cls = type(f"{_name}_{_mode}", (_mixin, getattr(_peer, _name)), {"__module__": __name__})
            globals()[_cls.__name__] = _cls
    del _peer, _cls          # pytest collects every TestCase subclass it finds, whatever its name
else:
    def test_peer_suite_present():
        pytest.skip(f"PyTorch's test/nn/test_init.py is not at {PEER} (see tests/peers/README.md, "
                    f"or set {PEER_ENV})")


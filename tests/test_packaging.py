"""One import package: nothing generic lands in site-packages, and importing stays light."""
import importlib.util
import subprocess
import sys


def test_parts_are_subpackages_of_varprop():
    for name in ("varprop.derive", "varprop.simulate", "varprop.nn"):
        assert importlib.util.find_spec(name) is not None, name
    for generic in ("derive", "simulate"):
        spec = importlib.util.find_spec(generic)
        assert spec is None or "varprop" not in (spec.origin or ""), generic


def test_import_nn_fails_while_varprop_nn_works():
    code = "import importlib\ntry:\n    import nn\nexcept ImportError:\n    print('no-nn')\nimport varprop.nn\nprint('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.split() == ["no-nn", "ok"]


def test_importing_varprop_and_gains_loads_no_sympy_and_compiles_nothing():
    code = ("import sys, varprop, varprop.derive.gains, varprop.activations, varprop.streams, varprop.kernels\n"
            "print('sympy' in sys.modules)\n"
            "from varprop import kernels\n"
            "print(len(kernels.forward.signatures))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "0"]

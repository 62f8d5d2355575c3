"""One import package: nothing generic lands in site-packages, and importing stays light.

What is meant is a property of the installed distribution, not of the folder the clone lives in (a clone
made by ``git clone .../varprop`` sits in a folder named varprop, and from its root ``import derive`` finds
./derive as any folder would). So the tests read the distribution's own metadata, import from a neutral
working directory, and (slow) build a wheel and list it.
"""
import importlib.metadata
import json
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

GENERIC = ("derive", "simulate", "nn")
ROOT = Path(__file__).resolve().parents[1]


def test_parts_are_subpackages_of_varprop():
    for name in ("varprop.derive", "varprop.simulate", "varprop.nn"):
        assert importlib.util.find_spec(name) is not None, name


def test_distribution_declares_only_the_varprop_top_level():
    dist = importlib.metadata.distribution("varprop")
    top = (dist.read_text("top_level.txt") or "").split()
    assert top == ["varprop"]
    # a regular install lists its modules, none of which may sit outside varprop/; an editable install's list
    # names the source tree's own paths (derive/...), mapped into varprop.* by its finder: the import test
    # below and the slow wheel test check that case
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct.get("dir_info", {}).get("editable") or dist.read_text("RECORD") is None:
        # an editable install, or the source tree's own varprop.egg-info found first on sys.path
        pytest.skip("not a regular install: its file list is the source tree's")
    outside = [str(f) for f in (dist.files or [])
               if str(f).endswith(".py") and not str(f).startswith(("varprop/", "__editable__"))]
    assert outside == []


def test_generic_names_do_not_import_while_the_parts_do(tmp_path):
    # tmp_path is empty, so nothing on sys.path but site-packages (and the editable finder) can answer
    code = ("import importlib\n"
            f"for name in {GENERIC!r}:\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "        print(name, 'imported')\n"
            "    except ImportError:\n"
            "        print(name, 'absent')\n"
            "import varprop.nn, varprop.derive, varprop.simulate\n"
            "print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env=env, check=True)
    assert out.stdout.split() == ["derive", "absent", "simulate", "absent", "nn", "absent", "ok"]


@pytest.mark.slow
def test_built_wheel_ships_only_varprop(tmp_path):
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for rel in files.split():
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    out = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(src)], check=True, capture_output=True, text=True)
    (wheel,) = out.glob("varprop-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"varprop"}
    for part in ("varprop/derive/gains.py", "varprop/simulate/engines.py", "varprop/nn/trainer.py"):
        assert part in names, part


def test_importing_varprop_and_gains_loads_no_sympy_and_compiles_nothing():
    code = ("import sys, varprop, varprop.derive.gains, varprop.activations, varprop.streams, varprop.kernels\n"
            "print('sympy' in sys.modules)\n"
            "from varprop import kernels\n"
            "print(len(kernels.forward.signatures))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "0"]

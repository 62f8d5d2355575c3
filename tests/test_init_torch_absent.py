"""Without PyTorch, its front end says how to install it; the rest of varprop.nn.init does not need it."""
import subprocess
import sys
import textwrap


def _without_torch(code: str) -> subprocess.CompletedProcess:
    # None in sys.modules makes every `import torch` fail as if torch were not installed
    prelude = "import sys\nsys.modules['torch'] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


def test_importing_the_torch_front_end_without_torch_says_how_to_install_it():
    out = _without_torch("""
        for stmt in ("import varprop.nn.init.torch", "from varprop.nn.init import torch"):
            try:
                exec(stmt)
            except ModuleNotFoundError as e:
                assert e.name == "torch", e.name
                print(type(e).__name__, "|", e)
            else:
                raise SystemExit("imported without torch")
    """)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        kind, message = line.split(" | ")
        assert kind == "TorchNotInstalled"
        assert 'pip install "varprop[torch]"' in message
        assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in message


def test_the_numpy_initializers_need_no_torch():
    out = _without_torch("""
        from varprop.nn import init
        w = init.he_normal((64, 32), rng=0)
        print(w.shape, "torch" in sys.modules and sys.modules["torch"] is not None)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["(64,", "32)", "False"]

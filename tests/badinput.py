"""The harness of the bad-input tables: run ``varprop ...`` in a child process under a memory and time limit.

A case is (argv, expected exit code, a fragment the one-line message must contain). The child gets an
address-space limit (``resource.RLIMIT_AS``) and a wall-clock timeout, so a regression that starts to
allocate gigabytes or to work for hours fails fast instead of thrashing the machine. The child's stderr must
be a single line and never a traceback.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys

__all__ = ["Case", "run_cli", "check_case"]

MEM_LIMIT = 6 * 2**30     # generous for NumPy/Numba/LLVM start-up, far below the gigabytes a bad case asks for
TIMEOUT = 60.0            # seconds: Numba compilation in a fresh process plus the refusal itself


class Case:
    def __init__(self, argv, code=2, fragment="", *, stdin=None, files=None, cwd=None, id=None):
        self.argv, self.code, self.fragment = list(argv), code, fragment
        self.stdin, self.files, self.cwd = stdin, files or {}, cwd
        self.id = id or " ".join(self.argv)[:60]

    def __repr__(self):
        return f"Case({self.id!r})"


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))


def run_cli(argv, *, cwd=None, stdin=None, timeout=TIMEOUT, env=None):
    """(exit code, stdout, stderr) of ``python -m varprop argv`` in a limited child process."""
    full_env = dict(os.environ)
    full_env.update({"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "MKL_NUM_THREADS": "1"})
    full_env.update(env or {})
    p = subprocess.run([sys.executable, "-m", "varprop", *argv], cwd=cwd, input=stdin, capture_output=True,
                       text=True, timeout=timeout, preexec_fn=_limit, env=full_env)
    return p.returncode, p.stdout, p.stderr


def check_case(case: Case, tmp_path) -> None:
    """Run one case in ``tmp_path`` (its files written there first) and assert the refusal it expects."""
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    cwd = tmp_path / case.cwd if case.cwd else tmp_path
    code, _, err = run_cli(case.argv, cwd=cwd, stdin=case.stdin)
    assert "Traceback" not in err, err
    assert code == case.code, (code, err)
    if case.code == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1, err
        assert lines[0].startswith("varprop: error: "), err
    assert case.fragment.lower() in err.lower(), err

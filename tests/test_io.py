"""Atomic writes: a file is complete or absent; an interrupted write leaves the old one intact."""
import os

import numpy as np
import pytest

from varprop.io import Progress, atomic_open, atomic_savez, atomic_write_text


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "sub" / "r.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert os.listdir(p.parent) == ["r.txt"]


def test_interrupted_write_keeps_previous_file(tmp_path):
    p = tmp_path / "r.txt"
    atomic_write_text(p, "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(p, "w") as fh:
            fh.write("half")
            raise KeyboardInterrupt
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["r.txt"]


def test_savez_refuses_object_arrays_and_loads_without_pickle(tmp_path):
    p = tmp_path / "a.npz"
    atomic_savez(p, w=np.arange(3.0))
    with np.load(p, allow_pickle=False) as f:
        assert f["w"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(TypeError, match="pickle"):
        atomic_savez(p, bad=np.array([{}], dtype=object))


def test_progress_is_silent_when_not_a_terminal(capsys):
    import io
    buf = io.StringIO()
    with Progress(5, "x", stream=buf) as bar:
        for _ in range(5):
            bar.update()
    assert buf.getvalue() == ""
    buf = io.StringIO()
    with Progress(2, "x", enabled=True, stream=buf) as bar:
        bar.update(2)
    assert "2/2" in buf.getvalue()


def test_written_files_get_ordinary_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "m.txt", "x")
    finally:
        os.umask(mask)
    assert os.stat(p).st_mode & 0o777 == 0o644

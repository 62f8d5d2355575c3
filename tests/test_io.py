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


def test_new_files_follow_the_umask(tmp_path):
    mask = os.umask(0o077)
    try:
        p = atomic_write_text(tmp_path / "m.txt", "x")
    finally:
        os.umask(mask)
    assert os.stat(p).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_an_existing_file_keeps_its_mode(tmp_path, mode):
    p = tmp_path / "secret.json"
    p.write_text("old")
    os.chmod(p, mode)
    atomic_write_text(p, "new")
    assert p.read_text() == "new" and os.stat(p).st_mode & 0o777 == mode


def test_a_symlink_stays_and_its_target_gets_the_content(tmp_path):
    real = tmp_path / "data" / "r.json"
    real.parent.mkdir()
    real.write_text("old")
    os.chmod(real, 0o600)
    link = tmp_path / "link.json"
    link.symlink_to(os.path.join("data", "r.json"))      # relative, as ln -s writes it
    chain = tmp_path / "chain.json"
    chain.symlink_to(link)
    atomic_write_text(chain, "new")
    assert chain.is_symlink() and link.is_symlink()
    assert real.read_text() == "new" and os.stat(real).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(tmp_path)) == ["chain.json", "data", "link.json"]
    assert os.listdir(real.parent) == ["r.json"]        # the temporary was beside the real target


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "out.json"
    link.symlink_to(tmp_path / "new" / "r.json")
    atomic_write_text(link, "x")
    assert link.is_symlink() and (tmp_path / "new" / "r.json").read_text() == "x"


def test_hard_links_all_see_the_new_content(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old")
    os.link(a, b)
    inode = os.stat(a).st_ino
    atomic_write_text(b, "new content")
    assert a.read_text() == b.read_text() == "new content"
    assert os.stat(a).st_ino == os.stat(b).st_ino == inode and os.stat(a).st_nlink == 2
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]


def test_devices_are_streams_and_never_replaced():
    import stat
    from varprop.io import resolve_target
    assert resolve_target("/dev/null") == ("/dev/null", True)
    real, stream = resolve_target("/dev/stdout")
    assert stream and real.startswith("/proc/")
    atomic_write_text("/dev/null", "x")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_device_gives_one_line():
    import stat
    from varprop.io import WriteError, resolve_target
    assert resolve_target("/dev/full")[1]                  # checked first: never replace a device
    with pytest.raises(WriteError) as info:
        atomic_write_text("/dev/full", "x" * 100000)
    assert str(info.value) == "cannot write /dev/full: No space left on device"
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


def test_dev_stdout_writes_to_standard_output_and_stays_a_link(tmp_path):
    import subprocess
    import sys
    code = ("import sys; from varprop.io import atomic_write_text; print('table', flush=False); "
            "atomic_write_text('/dev/stdout', 'json\\n')")
    out = tmp_path / "out.txt"
    with open(out, "w") as fh:                             # stdout redirected to a file, as `> out.txt` does
        subprocess.run([sys.executable, "-c", code], stdout=fh, check=True)
    assert out.read_text() == "table\njson\n"              # printed text first, nothing truncated
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout == "table\njson\n"
    assert os.path.islink("/dev/stdout")


def test_a_fifo_is_written_directly(tmp_path):
    import threading
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    atomic_write_text(link, "through the pipe")
    reader.join(10)
    assert got == ["through the pipe"]
    import stat
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()


def _dead_pid():
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_are_swept_and_live_ones_kept(tmp_path):
    import time
    target = tmp_path / "r.json"
    now = time.time()
    dead, live = _dead_pid(), os.getpid()
    files = {
        f".r.json.{dead}.abcdefgh.tmp": now - 120,        # writer gone, two minutes old: stale
        f".r.json.{dead}.abcdefg1.tmp": now - 5,          # writer gone a moment ago (or elsewhere): kept
        f".r.json.{live}.abcdefg2.tmp": now - 600,        # a writer still running: kept
        f".r.json.{live}.abcdefg3.tmp": now - 7200,       # untouched for two hours: stale
        ".r.json.abcdefg4.tmp": now - 7200,               # the older naming, no PID: by age
        ".r.json.abcdefg5.tmp": now - 60,
        f".other.json.{dead}.abcdefgh.tmp": now - 7200,   # another target's
        ".r.json.backup": now - 7200,                     # not a temporary of ours
        f".r.json.{dead}.abc.tmp": now - 7200,            # not mkstemp's form
    }
    for name, mtime in files.items():
        (tmp_path / name).write_text("partial")
        os.utime(tmp_path / name, (mtime, mtime))
    atomic_write_text(target, "new")
    left = set(os.listdir(tmp_path))
    assert left == {"r.json", f".r.json.{dead}.abcdefg1.tmp", f".r.json.{live}.abcdefg2.tmp",
                    ".r.json.abcdefg5.tmp", f".other.json.{dead}.abcdefgh.tmp", ".r.json.backup",
                    f".r.json.{dead}.abc.tmp"}


def test_temporaries_carry_the_writer_pid(tmp_path):
    seen = []
    with atomic_open(tmp_path / "r.txt", "w") as fh:
        seen = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
        fh.write("x")
    assert len(seen) == 1 and seen[0].startswith(f".r.txt.{os.getpid()}.")


def test_check_writable(tmp_path):
    from varprop.io import check_writable
    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "d").mkdir()
    ok = check_writable(tmp_path / "new" / "deeper" / "r.json", "--json")
    assert ok == str(tmp_path / "new" / "deeper" / "r.json") and not (tmp_path / "new").exists()
    assert check_writable(tmp_path / "f.txt", "--json") == str(tmp_path / "f.txt")
    (tmp_path / "l.txt").symlink_to("f.txt")
    assert check_writable(tmp_path / "l.txt", "--json") == str(tmp_path / "f.txt")
    for bad, fragment in [("", "--json is empty"), ("   ", "--json is empty"),
                          (str(tmp_path / "d"), "is a folder"), (str(tmp_path / "x") + "/", "ends with /"),
                          (str(tmp_path / "f.txt" / "r.json"), "is not a folder")]:
        with pytest.raises(ValueError, match=fragment) as info:
            check_writable(bad, "--json")
        assert str(info.value).startswith("--json") and "\n" not in str(info.value)


def test_check_writable_refuses_a_socket(tmp_path):
    import socket
    from varprop.io import check_writable
    path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(path))
        with pytest.raises(ValueError, match="is a socket"):
            check_writable(path, "--csv")
    finally:
        s.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_check_writable_refuses_a_read_only_folder_and_file(tmp_path):
    from varprop.io import WriteError, check_writable
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "f.txt").write_text("keep")
    os.chmod(ro / "f.txt", 0o444)
    os.chmod(ro, 0o555)
    try:
        with pytest.raises(ValueError, match="not writable"):
            check_writable(ro / "new.json", "--json")
        with pytest.raises(ValueError, match="not writable"):
            check_writable(ro / "f.txt", "--json")
        with pytest.raises(WriteError, match="not writable"):
            atomic_write_text(ro / "f.txt", "x")
        assert (ro / "f.txt").read_text() == "keep"
    finally:
        os.chmod(ro, 0o755)


def test_check_distinct(tmp_path):
    from varprop.io import check_distinct
    (tmp_path / "a").write_text("x")
    (tmp_path / "b").symlink_to("a")
    check_distinct({"--json": tmp_path / "a", "--csv": tmp_path / "c", "--plot": None})
    check_distinct({"--json": "/dev/null", "--csv": "/dev/null"})
    with pytest.raises(ValueError, match="--json and --csv name the same file"):
        check_distinct({"--json": tmp_path / "a", "--csv": tmp_path / "b"})


def test_check_folder(tmp_path):
    from varprop.io import check_folder
    (tmp_path / "f.txt").write_text("x")
    assert check_folder(tmp_path / "a" / "b") == str(tmp_path / "a" / "b")
    assert check_folder(tmp_path) == str(tmp_path)
    for bad, fragment in [("", "--out is empty"), (tmp_path / "f.txt", "exists and is not a folder"),
                          (tmp_path / "f.txt" / "d", "which is not a folder")]:
        with pytest.raises(ValueError, match=fragment):
            check_folder(bad, "--out")


def test_check_writable_reports_what_is_not_writable(tmp_path, monkeypatch):
    """The permission checks themselves (root passes every access test, so they are simulated here)."""
    import varprop.io as vio
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "f.txt").write_text("keep")
    real_access = os.access
    monkeypatch.setattr(vio.os, "access", lambda p, m: False if str(p).startswith(str(ro)) else real_access(p, m))
    with pytest.raises(ValueError, match=r"--json .*new\.json is in .*ro, which is not writable"):
        vio.check_writable(ro / "new.json", "--json")
    with pytest.raises(ValueError, match="cannot be created in .*ro, which is not writable"):
        vio.check_writable(ro / "sub" / "new.json", "--json")
    with pytest.raises(ValueError, match="--out .*: .*ro is not writable"):
        vio.check_folder(ro / "sub", "--out")
    with pytest.raises(vio.WriteError, match="exists and is not writable"):
        vio.atomic_write_text(ro / "f.txt", "x")
    assert (ro / "f.txt").read_text() == "keep"

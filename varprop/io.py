"""Atomic writes, output-path checks and terminal-only progress, shared by every part that writes results.

A result file is either complete or absent: we write a temporary file beside the file the path really names
(symbolic links are followed, so a link stays a link and its target gets the new content), flush and fsync
it, give it the old file's permission bits (a new file gets what ``open`` would give it under the umask),
then ``os.replace`` it over the target (atomic on POSIX). An interrupted run leaves the previous file intact.

What is not a regular file is written as a stream, directly, never replaced: a device (``/dev/null``,
``/dev/full``, a terminal), a named pipe, or a path through ``/proc`` such as ``/dev/stdout`` (which names
whatever standard output is, even when the shell redirected it to a file). A failed write there (``/dev/full``
gives ENOSPC) raises :class:`WriteError`, an ``OSError`` with a one-line message.

A file with several hard links is written through in place, so that every name sees the new result (as
``cp`` does): the new content is completed in a temporary file first, then copied into the target. That copy
is not atomic; a crash during it can leave the target partly written.

Temporary files are named ``.NAME.PID.XXXXXXXX.tmp``. One left by a killed run is removed by the next write
to the same target once it is stale: its writer's process is gone (and the file is a minute old, so that a
writer that just started in another PID namespace is spared), or it has not changed for an hour.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> p = atomic_write_text(os.path.join(d, "a.txt"), "hello\\n")
>>> open(p).read()
'hello\\n'
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import stat
import sys
import tempfile
import time

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_open", "atomic_savez", "check_writable",
           "check_distinct", "check_folder", "resolve_target", "sweep_stale", "WriteError", "Progress"]

STALE_DEAD_S = 60.0        # a temporary file of a process that is gone, this old, is stale
STALE_S = 3600.0           # any temporary file untouched this long is stale


class WriteError(OSError):
    """A result could not be written: one line naming the path and the reason."""

    def __str__(self):
        return self.args[0] if self.args else "write failed"


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def resolve_target(path) -> tuple[str, bool]:
    """``(real path, is_stream)`` of an output path.

    Links are followed one at a time (folders by ``realpath``); the result is a stream when the chain passes
    through ``/proc`` (``/dev/stdout`` -> ``/proc/self/fd/1`` names an open file, not a place for a new one)
    or ends at something other than a regular file or nothing (a device, a pipe, a socket).

    >>> resolve_target("/dev/null")
    ('/dev/null', True)
    """
    p = os.path.abspath(os.fspath(path))
    for _ in range(40):
        p = os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))
        if p == "/proc" or p.startswith("/proc/"):
            return p, True
        if not os.path.islink(p):
            break
        p = os.path.join(os.path.dirname(p), os.readlink(p))
    else:
        raise WriteError(f"{path}: too many levels of symbolic links")
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        return p, False
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror}") from None
    return p, not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


def check_writable(path, option: str = "output") -> str:
    """The real path ``path`` names, or ValueError (one line naming ``option``) when a result could not be
    written there; checked before any work, so a run never ends by failing to save.

    Allowed: an existing regular file that can be written, in a folder that can be written (the new content
    goes to a temporary file beside it first); a path that does not exist yet under folders that exist or can
    be created; a device, pipe or standard stream that can be written (see :func:`resolve_target`). Refused: an
    empty path, a folder, a path ending in ``/``, a socket, a parent that is a file, anything not writable.

    >>> check_writable("/dev/null", "--json")
    '/dev/null'
    >>> check_writable("", "--json")
    Traceback (most recent call last):
    ...
    ValueError: --json is empty: name a file
    """
    text = os.fspath(path)
    if not isinstance(text, str):
        text = os.fsdecode(text)
    if text.strip() == "":
        raise ValueError(f"{option} is empty: name a file")
    if "\0" in text:
        raise ValueError(f"{option} {text!r} contains a NUL character")
    if text.endswith(os.sep):
        raise ValueError(f"{option} {text} ends with {os.sep}: name a file, not a folder")
    try:
        real, stream = resolve_target(text)
    except OSError as exc:
        raise ValueError(f"{option} {exc}") from None
    try:
        st = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        raise ValueError(f"{option} {text}: {exc.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{option} {text} is a folder: name a file")
    if st is not None and stat.S_ISSOCK(st.st_mode):
        raise ValueError(f"{option} {text} is a socket: name a file, a device or a pipe")
    if stream:
        if not os.access(real, os.W_OK):
            raise ValueError(f"{option} {text} is not writable")
        return real
    folder = os.path.dirname(real)
    probe = folder
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ValueError(f"{option} {text}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        why = "cannot be created in" if probe != folder else "is in"
        raise ValueError(f"{option} {text} {why} {probe}, which is not writable")
    if st is not None and not os.access(real, os.W_OK):
        raise ValueError(f"{option} {text} exists and is not writable")
    return real


def check_folder(path, option: str = "--out") -> str:
    """The real path of an output folder that exists or can be created and written into, or ValueError
    (one line naming ``option``). Files are written into it; the folder itself is never replaced.

    >>> check_folder("", "--out")
    Traceback (most recent call last):
    ...
    ValueError: --out is empty: name a folder
    """
    text = os.fsdecode(os.fspath(path))
    if text.strip() == "":
        raise ValueError(f"{option} is empty: name a folder")
    if "\0" in text:
        raise ValueError(f"{option} {text!r} contains a NUL character")
    real = os.path.realpath(text)
    probe = real
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        what = "exists and is not a folder" if probe == real else f"is under {probe}, which is not a folder"
        raise ValueError(f"{option} {text} {what}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {text}: {probe} is not writable")
    return real


def check_distinct(paths: dict) -> None:
    """ValueError when two options (``{option: path}``, None for an option not given) name the same file."""
    seen = {}
    for option, path in paths.items():
        if path is None:
            continue
        real, stream = resolve_target(path)
        if stream:
            continue
        if real in seen:
            raise ValueError(f"{seen[real]} and {option} name the same file {path}")
        seen[real] = option


_TEMP = re.compile(r"(?:(\d+)\.)?[a-z0-9_]{8}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:     # it exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def sweep_stale(path, now: float | None = None) -> list[str]:
    """Remove the stale temporary files (see the module's notes) a killed write left beside ``path``;
    returns the paths removed. Only names of the exact form ``.NAME.PID.XXXXXXXX.tmp`` are touched."""
    directory, base = os.path.split(os.path.abspath(os.fspath(path)))
    prefix, suffix = "." + base + ".", ".tmp"
    now = time.time() if now is None else now
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(suffix)) or len(name) <= len(prefix) + len(suffix):
            continue
        m = _TEMP.fullmatch(name[len(prefix):-len(suffix)])
        if m is None:
            continue
        full = os.path.join(directory, name)
        try:
            st = os.lstat(full)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        age = now - st.st_mtime
        pid = int(m.group(1)) if m.group(1) else None
        dead = pid is not None and not _alive(pid)
        if (dead and age > STALE_DEAD_S) or age > STALE_S:
            with contextlib.suppress(OSError):
                os.unlink(full)
                removed.append(full)
    return removed


@contextlib.contextmanager
def _stream(path, real, mode):
    """Write straight into a device, pipe or open file (no temporary, no rename, no truncation)."""
    for s in (sys.stdout, sys.stderr):   # what was printed before stays before
        with contextlib.suppress(Exception):
            s.flush()
    try:
        fd = os.open(path if real.startswith("/proc/") else real, os.O_WRONLY | os.O_APPEND | os.O_NOCTTY)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror}") from None
    try:
        fh = os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    try:
        with fh:
            yield fh
            fh.flush()
    except OSError as exc:
        if isinstance(exc, WriteError):
            raise
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb"):
    """Open a temporary file beside the file ``path`` names; on a clean exit it replaces that file, else it
    is removed. Devices, pipes and standard streams are written directly (see the module's notes).

    Missing parent folders are created (a report or checkpoint path names its folder). A new file gets the
    permissions an ordinary ``open`` would give it (mkstemp's are 0600), an existing one keeps its own (and,
    where allowed, its owner and group), and the folder is synced after the rename so that the new name
    survives a crash too.
    """
    if "w" not in mode or "+" in mode:
        raise ValueError(f"atomic_open writes a whole file: mode 'w' or 'wb', got {mode!r}")
    path = os.fspath(path)
    real, stream = resolve_target(path)
    if stream:
        with _stream(path, real, mode) as fh:
            yield fh
        return
    directory, base = os.path.split(real)
    try:
        os.makedirs(directory, exist_ok=True)
        old = os.stat(real) if os.path.exists(real) else None
        if old is not None and not os.access(real, os.W_OK):
            raise WriteError(f"cannot write {path}: it exists and is not writable")
        sweep_stale(real)
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}.", suffix=".tmp", dir=directory)
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.chmod(tmp, stat.S_IMODE(old.st_mode) & 0o777 if old is not None else _default_mode())
        if old is not None and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
            with contextlib.suppress(OSError):
                os.chown(tmp, old.st_uid, old.st_gid)
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if old is not None and old.st_nlink > 1:
            _copy_into(tmp, real)        # every hard link sees the new content (not atomic: see the notes)
            os.unlink(tmp)
        else:
            os.replace(tmp, real)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError) and exc.errno is not None:
            raise WriteError(f"cannot write {path}: {exc.strerror}") from None
        raise
    with contextlib.suppress(OSError):   # not every filesystem lets a folder be opened and synced
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _copy_into(src: str, dst: str) -> None:
    with open(src, "rb") as fin, open(dst, "r+b") as fout:
        fout.truncate(0)
        shutil.copyfileobj(fin, fout)
        fout.flush()
        os.fsync(fout.fileno())


def atomic_write_bytes(path, data: bytes) -> str:
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return os.fspath(path)


def atomic_write_text(path, text: str) -> str:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_savez(path, **arrays) -> str:
    """``numpy.savez`` to ``path`` atomically (object arrays are refused: files load without pickle)."""
    import numpy as np
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; it could not be loaded without pickle")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


class Progress:
    """A progress bar (tqdm) on stderr when it is a terminal; silent when piped or disabled.

    ``enabled=None`` decides by ``stream.isatty()``; tqdm is imported only when a bar is shown, so a piped
    run pays nothing for it. ``update(n, info)`` advances by ``n`` and shows ``info`` (what was just done)
    after the counts.

    >>> with Progress(3, "trials", enabled=False) as bar:
    ...     for _ in range(3):
    ...         bar.update()
    """

    def __init__(self, total: int, label: str = "", enabled: bool | None = None, stream=None):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = isatty() if enabled is None else bool(enabled)
        self.count = 0
        self._bar = None
        if self.enabled:
            from tqdm import tqdm
            self._bar = tqdm(total=self.total, desc=label or None, file=self.stream, mininterval=0.1,
                             dynamic_ncols=True, leave=True)

    def update(self, n: int = 1, info: str = "") -> None:
        self.count += n
        if self._bar is None:
            return
        if info:
            self._bar.set_postfix_str(info, refresh=False)
        self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

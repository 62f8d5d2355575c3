"""Atomic writes and terminal-only progress, shared by every part that writes results or runs long.

A result file is either complete or absent: we write a temporary file in the same directory, flush and
fsync it, then ``os.replace`` it over the target (atomic on POSIX). An interrupted run leaves the
previous file intact.

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
import sys
import tempfile

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_open", "atomic_savez", "Progress"]


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``, else it is removed.

    Missing parent folders are created (a report or checkpoint path names its folder). The file gets the
    permissions an ordinary ``open`` would give it (mkstemp's are 0600), and the folder is synced after the
    rename so that the new name survives a crash too.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        os.chmod(tmp, _default_mode())
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):   # not every filesystem lets a folder be opened and synced
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


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

"""Memory a run may take, known before it allocates: what is available and a one-line refusal beyond it.

``available_memory()`` is the least of Linux's MemAvailable (``/proc/meminfo``; ``os.sysconf`` pages
elsewhere), the cgroup's memory.max less its usage, and the process's address-space limit (``ulimit -v``,
``resource.RLIMIT_AS``) less what it has mapped already, or None when none is known. :func:`check` compares an estimate with it and names the option that asked for it.

>>> check(1024, "--hidden 8")   # a kilobyte is always there
1024
"""
from __future__ import annotations

import os

__all__ = ["available_memory", "check", "gib"]


def available_memory() -> int | None:
    """Bytes a new allocation of this process can get, or None when unknown: the least of Linux's
    MemAvailable (or the free physical pages), the cgroup's memory.max less its usage, and the address-space
    limit (``RLIMIT_AS``) less the address space already mapped."""
    found = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as fh:
                found.append(max(int(limit) - int(fh.read().strip()), 0))
    except (OSError, ValueError):
        pass
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as fh:
                mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            found.append(max(soft - mapped, 0))
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return min(found) if found else None


def gib(n: float) -> str:
    """Bytes as GiB (or MiB below one GiB), for messages."""
    return f"{n / 2 ** 30:.2f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:.1f} MiB"


def check(need: float, option: str, hint: str = "") -> float:
    """``need`` when it fits the memory available, else ValueError: '<option> needs about X but only Y ...'."""
    avail = available_memory()
    if avail is not None and need > avail:
        raise ValueError(f"{option} needs about {gib(need)} of memory but only {gib(avail)} is available"
                         + (f"; {hint}" if hint else ""))
    return need

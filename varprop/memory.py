"""Memory a run may take, known before it allocates: what is available and a one-line refusal beyond it.

``available_memory()`` is the smaller of Linux's MemAvailable (``/proc/meminfo``; ``os.sysconf`` pages
elsewhere) and the process's address-space limit (``ulimit -v``, ``resource.RLIMIT_AS``), or None when
neither is known. :func:`check` compares an estimate with it and names the option that asked for it.

>>> check(1024, "--hidden 8")   # a kilobyte is always there
1024
"""
from __future__ import annotations

import os

__all__ = ["available_memory", "check", "gib"]


def available_memory() -> int | None:
    """Bytes a new allocation can get: min(MemAvailable, RLIMIT_AS), or None when unknown."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            pass
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            avail = soft if avail is None else min(avail, soft)
    except (ImportError, ValueError, OSError):
        pass
    return avail


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

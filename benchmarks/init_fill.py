"""Time to fill a 4096 x 4096 float32 weight: varprop.nn.init against NumPy's Generator and torch.nn.init.

Run: python benchmarks/init_fill.py [--size N] [--repeats R]

Three initializers, each done three or four ways side by side in one process, interleaved round by round
so that a change in machine load hits every contender alike:

* ``varprop (seed)``      ``init.he_normal(shape, rng=seed)``: counter-stream ziggurat / uniform fill in
                          Numba, parallel over the Numba threads, bit-identical for a seed whatever their count;
* ``varprop (Generator)`` the same call with a ``numpy.random.Generator``, which is used as given;
* ``numpy``               the equivalent NumPy code, float32 throughout: ``standard_normal(dtype=float32)``
                          then an in-place scale, ``random(dtype=float32)`` scaled in place, and for the
                          truncated normal a rejection loop (NumPy has no truncated normal);
* ``torch``               ``torch.nn.init.kaiming_normal_`` / ``xavier_uniform_`` / ``trunc_normal_`` on a
                          fresh ``torch.empty`` (when torch is installed).

Every contender allocates its result, as a user's call does. Wall-clock medians are printed first, then
the medians of the process's CPU time (all threads summed), which a busy machine disturbs less. The first call of each varprop fill (Numba
compilation, or loading it from the on-disk cache) is timed apart and excluded from the medians. Ratios
are varprop (seed) over the peer: below 1 means varprop is faster.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import time

os.environ.pop("OPENBLAS_CORETYPE", None)       # let OpenBLAS pick its kernel for this machine
os.environ.pop("OPENBLAS_L2_SIZE", None)

import numpy as np  # noqa: E402


def _numpy_contenders(n: int):
    g = np.random.default_rng(0)
    he_std = math.sqrt(2.0 / n)
    xa_limit = math.sqrt(6.0 / (2 * n))
    tn_sigma = 1.0 / 0.87962566103423978       # std 1 after the cut at +-2 sigma

    def he_normal():
        out = g.standard_normal((n, n), dtype=np.float32)
        out *= np.float32(he_std)
        return out

    def xavier_uniform():
        out = g.random((n, n), dtype=np.float32)
        out *= np.float32(2 * xa_limit)
        out -= np.float32(xa_limit)
        return out

    def truncated_normal():
        out = g.standard_normal((n, n), dtype=np.float32)
        bad = np.abs(out) > 2.0
        while bad.any():
            out[bad] = g.standard_normal(int(bad.sum()), dtype=np.float32)
            bad = np.abs(out) > 2.0
        out *= np.float32(tn_sigma)
        return out

    return {"he_normal": he_normal, "xavier_uniform": xavier_uniform, "truncated_normal": truncated_normal}


def _varprop_contenders(n: int, use_generator: bool):
    from varprop.nn import init
    g = np.random.default_rng(0)
    shape = (n, n)
    rng = (lambda: g) if use_generator else (lambda: 12345)
    return {"he_normal": lambda: init.he_normal(shape, rng()),
            "xavier_uniform": lambda: init.xavier_uniform(shape, rng()),
            "truncated_normal": lambda: init.truncated_normal(shape, rng(), std=1.0)}


def _torch_contenders(n: int):
    try:
        import torch
    except ImportError:
        return None
    ti = torch.nn.init
    return {"he_normal": lambda: ti.kaiming_normal_(torch.empty(n, n), nonlinearity="relu"),
            "xavier_uniform": lambda: ti.xavier_uniform_(torch.empty(n, n)),
            "truncated_normal": lambda: ti.trunc_normal_(torch.empty(n, n), std=1.0 / 0.87962566103423978,
                                                         a=-2.0 / 0.87962566103423978,
                                                         b=2.0 / 0.87962566103423978)}


def _environment() -> list[str]:
    import numba
    lines = [f"numba threads: {numba.get_num_threads()}"]
    try:
        import torch
        lines.append(f"torch threads: {torch.get_num_threads()}")
    except ImportError:
        lines.append("torch: not installed")
    try:
        from threadpoolctl import threadpool_info
        for info in threadpool_info():
            lines.append(f"{info.get('internal_api')}: {info.get('num_threads')} threads, "
                         f"kernel {info.get('architecture', '?')}")
    except ImportError:
        pass
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    if args.size < 2 or args.repeats < 1:
        ap.error("--size must be >= 2 and --repeats >= 1")
    n = args.size

    first = {}
    ours = _varprop_contenders(n, use_generator=False)
    for name, f in ours.items():
        t0 = time.perf_counter()
        f()
        first[name] = time.perf_counter() - t0
    contenders = {"varprop (seed)": ours, "varprop (Generator)": _varprop_contenders(n, True),
                  "numpy": _numpy_contenders(n)}
    torch_c = _torch_contenders(n)
    if torch_c is not None:
        contenders["torch"] = torch_c

    from varprop.io import Progress
    times = {c: {k: [] for k in ours} for c in contenders}
    cpu = {c: {k: [] for k in ours} for c in contenders}
    for fns in contenders.values():                # warm-up: one untimed call each
        for f in fns.values():
            f()
    with Progress(args.repeats, "rounds") as bar:
        for _ in range(args.repeats):
            for kind in ours:
                for c, fns in contenders.items():
                    t0, c0 = time.perf_counter(), time.process_time()
                    fns[kind]()
                    times[c][kind].append(time.perf_counter() - t0)
                    cpu[c][kind].append(time.process_time() - c0)
            bar.update()

    print(f"fill a {n} x {n} float32 matrix; median of {args.repeats} rounds, milliseconds")
    for line in _environment():
        print("  " + line)
    print("  first varprop call (compile or cache load, excluded): "
          + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in first.items()))
    names = list(contenders)
    for title, table in (("wall-clock time", times), ("CPU time of all threads (less sensitive to "
                                                      "other load on the machine)", cpu)):
        print(title)
        print(f"{'initializer':<18}" + "".join(f"{c:>21}" for c in names)
              + "".join(f"{'seed/' + c:>16}" for c in names[2:]))
        for kind in ours:
            med = {c: statistics.median(table[c][kind]) for c in names}
            print(f"{kind:<18}" + "".join(f"{med[c] * 1e3:>21.1f}" for c in names)
                  + "".join(f"{med['varprop (seed)'] / med[c]:>16.2f}" for c in names[2:]))


if __name__ == "__main__":
    main()

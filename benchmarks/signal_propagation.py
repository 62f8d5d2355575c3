"""Time the signal-propagation tools at the sizes the issue names, with the BLAS kernel reported.

Run: python benchmarks/signal_propagation.py [--repeats N]

* Jacobian spectra of a 1024-wide, 50-layer tanh network (one network: 50 products of 1024 x 1024 plus one
  SVD), Gaussian and orthogonal weights; a NumPy reference doing the same products beside it.
* The phase diagram at 100 x 100 points for a closed-form activation (ReLU), a smooth one that needs
  quadrature (tanh) and a kinked one (hardtanh).

Medians over repeats after one warm-up run; the first (cold) run is reported apart. OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE are unset for this process, as the machine may set them; threads are whatever threadpoolctl
reports (BLAS uses every free core).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

for _k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_k, None)

import numpy as np  # noqa: E402


def _time(fn, repeats):
    t0 = time.perf_counter()
    fn()
    cold = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return cold, statistics.median(runs)


def _numpy_reference(n=1024, depth=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * 0.3
    J = np.eye(n)
    for _ in range(depth):
        W = rng.standard_normal((n, n)) * np.sqrt(1.19 / n)
        h = W @ x
        J = (1 - np.tanh(h) ** 2)[:, None] * (W @ J)
        x = np.tanh(h)
    return np.linalg.svd(J, compute_uv=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from threadpoolctl import threadpool_info

    from varprop.derive import jacobian, phase
    from varprop.simulate.jacobian import jacobian_spectrum
    blas = [f"{i.get('internal_api')} {i.get('architecture', '?')} x{i.get('num_threads')}" for i in threadpool_info()]
    print("BLAS:", ", ".join(blas))
    sw, _ = jacobian.critical_point("tanh", 1e-3)
    print(f"{'workload':<52} {'cold (s)':>9} {'median (s)':>11}")
    for weights in ("gaussian", "orthogonal"):
        cold, med = _time(lambda w=weights: jacobian_spectrum(1024, 50, "tanh", sw, 1e-3, weights=w, trials=1),
                          args.repeats)
        print(f"{'spectrum 1024 x 50 tanh, ' + weights:<52} {cold:>9.2f} {med:>11.2f}")
    cold, med = _time(_numpy_reference, args.repeats)
    print(f"{'NumPy reference: the same products and SVD (Gaussian)':<52} {cold:>9.2f} {med:>11.2f}")
    for act in ("relu", "tanh", "hardtanh"):
        cold, med = _time(lambda a=act: phase.diagram(a, (0.5, 4.0, 100), (0.0, 0.3, 100)), args.repeats)
        print(f"{'phase diagram 100 x 100, ' + act:<52} {cold:>9.2f} {med:>11.2f}")


if __name__ == "__main__":
    main()

"""Sweeps: grids of simulate, train or phase cells, each one task on Dask distributed; a tidy results table.

* :func:`run` - ``run(kind, grid, fixed, out, client=None)``: every cell of the grid as one task
  (a LocalCluster by default, a ``tcp://HOST:PORT`` scheduler, a ``distributed.Client``, or
  ``"serial"``), each finished cell written atomically once, ``resume=True`` for the missing ones;
* :func:`load` - a sweep folder's manifest and finished cells; :func:`plan` - the cells without running;
* :func:`plot` - a heat map of one metric over two axes, with depth-scale overlays;
* :func:`trainability` - Schoenholz et al. 2017's trainability phase diagram and the fit of its boundary;
* :mod:`varprop.sweep.grid` - axes (``a:b:n``, ``log:a:b:n``, lists), cell ids and seeds;
  :mod:`varprop.sweep.kinds` - what a cell computes.

Importing this package imports neither Dask nor matplotlib: Dask is an optional extra
(``pip install "varprop[sweep]"``), needed only to run on a cluster.

The same sweep on a laptop (a LocalCluster, one single-thread worker process per core) and on a cluster
(``dask scheduler`` on one machine, ``dask worker tcp://HOST:8786 --nthreads 1`` on each of the others,
varprop installed on all of them)::

    from varprop.sweep import run
    grid, fixed = ["sigma_w2=1:4:31", "depth=log:4:256:7"], {"activation": "tanh", "sigma_b2": 0.05, "width": 256}
    r = run("simulate", grid, fixed, "sweep1")                          # LocalCluster, closed at the end
    r = run("simulate", grid, fixed, "sweep2", "tcp://HOST:8786")       # an existing cluster
    r = run(out="sweep2", client="tcp://HOST:8786", resume=True)        # after a crash: the missing cells

>>> from varprop.sweep import plan
>>> manifest, cells = plan("phase", ["sigma_w2=1:2:3"], {"activation": "tanh"})
>>> manifest["cells"], [c["coords"]["sigma_w2"] for c in cells]
(3, [1.0, 1.5, 2.0])
"""
from __future__ import annotations

from .grid import Grid, cell_id, cell_seed
from .kinds import KINDS, execute
from .runner import INSTALL, SweepError, SweepResult, load, plan, run

__all__ = ["run", "load", "plan", "plot", "trainability", "Grid", "SweepResult", "SweepError", "KINDS",
           "execute", "cell_id", "cell_seed", "INSTALL"]


def plot(*args, **kwargs):
    """See :func:`varprop.sweep.plot.heatmap`."""
    from .plot import heatmap
    return heatmap(*args, **kwargs)


def trainability(*args, **kwargs):
    """See :func:`varprop.sweep.trainability.trainability`."""
    from .trainability import trainability as _t
    return _t(*args, **kwargs)

"""A seed gives bit-identical results whatever the number of Numba threads (run in subprocesses)."""
import json
import os
import subprocess
import sys

import numpy as np

from varprop.simulate import run

SCRIPT = r"""
import hashlib, json, sys
import numpy as np
import varprop.simulate.kernels as K
import varprop.simulate.threads as T
K.PARALLEL_MIN = 0          # force the parallel kernels and fills even for these small arrays
T.SERIAL_MAX = 0
from varprop.simulate import run
out = {}
for name, kw in json.loads(sys.argv[1]).items():
    r = run(**kw)
    h = hashlib.sha256()
    for f in sorted(r.per_trial):
        h.update(np.ascontiguousarray(r.per_trial[f]).tobytes())
    for f in sorted(r.histograms or {}):
        h.update(np.ascontiguousarray(r.histograms[f]).tobytes())
    out[name] = h.hexdigest()
print(json.dumps(out))
"""

CONFIGS = {
    "dense": dict(widths=[300, 520, 300, 260], batch=6, activation="tanh", init="he_uniform", trials=2, seed=7,
                  dropout=0.2, sigma_b2=0.1, histograms=True),
    "gaussian": dict(widths="400x4", batch=7, activation="relu", init="he_normal", trials=2, seed=7,
                     dropout=0.1, residual=True),
    "orthogonal": dict(widths="64x3", batch=4, activation="selu", init="orthogonal", trials=2, seed=7),
}


def _digests(threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(CONFIGS)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bit_identical_across_thread_counts():
    assert _digests(1) == _digests(2)


def test_same_seed_same_bits_and_prefix_property():
    kw = dict(widths="50x4", batch=3, activation="tanh", init="xavier_normal", seed=3)
    a, b = run(trials=3, **kw), run(trials=5, **kw)
    for f in a.per_trial:
        np.testing.assert_array_equal(a.per_trial[f], b.per_trial[f][:3])
    c = run(trials=3, **{**kw, "seed": 4})
    assert not np.array_equal(a.per_trial["act_std"], c.per_trial["act_std"])


def test_reused_workspace_gives_the_same_bits():
    """Trials writing into one Workspace (as run() does) match trials with fresh arrays, whatever ran before."""
    from varprop.simulate.config import Config
    from varprop.simulate.engines import Workspace, simulate_trial
    configs = [
        dict(widths="40x4", batch=5, activation="tanh", init="normal(0.05, 0.2)", engine="gaussian", sigma_b2=0.1),
        dict(widths="40x4", batch=5, activation="relu", init="he_normal", engine="gaussian", dropout=0.2,
             residual=True),
        dict(widths=[30, 40, 20], batch=6, activation="maxout", params={"k": 2}, init="he_uniform", engine="dense",
             batchnorm=True, histograms=True),
    ]
    ws = Workspace()
    for kw in configs + configs[::-1]:   # shapes change between configs: arrays are reallocated or reused
        cfg = Config.build(trials=3, seed=11, **kw)
        for t in range(3):
            (a, ha), (b, hb) = simulate_trial(cfg, t, workspace=ws), simulate_trial(cfg, t)
            for f in a:
                np.testing.assert_array_equal(a[f], b[f])
            for f in (ha or {}):
                np.testing.assert_array_equal(ha[f], hb[f])


def test_team_choice_changes_no_bits(monkeypatch):
    """Trials with and without Numba's thread team (the choice threads.Team makes by timing) agree bit for
    bit, for a configuration large enough that the choice is made."""
    import varprop.simulate.threads as T
    from varprop.simulate.config import Config
    from varprop.simulate.engines import Workspace, simulate_trial
    cfg = Config.build(widths=[T.TEAM_MIN // 8, T.TEAM_MIN // 8, 300], batch=8, activation="tanh",
                       init="normal(0, 0.01)", trials=2, seed=5, engine="gaussian")
    assert T.serial(cfg) and T.numba_team(cfg)
    runs = {}
    for choice in (True, False):
        def fixed(self, c=choice):
            self._pending = c
            return c
        monkeypatch.setattr(T.Team, "next", fixed)
        ws = Workspace()
        runs[choice] = [simulate_trial(cfg, t, workspace=ws)[0] for t in range(2)]
    for a, b in zip(runs[True], runs[False]):
        for f in a:
            np.testing.assert_array_equal(a[f], b[f])


def test_team_probes_then_keeps_the_faster():
    import varprop.simulate.threads as T
    t = T.Team()
    seen = []
    for i in range(T.Team.WINDOW + T.Team.PROBE):
        team = t.next()
        seen.append(team)
        t.record(0.010 if team else 0.004)     # one thread is faster
    probe = T.Team.PROBE
    assert seen[:probe] == [True, False] * (probe // 2)                 # the probes alternate
    assert not any(seen[probe:T.Team.WINDOW])                           # then one thread for the window
    assert seen[T.Team.WINDOW:] == [True, False] * (probe // 2)         # and the next window probes again

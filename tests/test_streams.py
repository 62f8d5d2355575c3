"""Counter-based streams: reproducible, thread-count independent, and distributed as claimed."""
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from varprop import streams


def test_same_key_same_numbers_and_prefix_property():
    a = streams.normal(3, (1, 2, 3), 1001)
    b = streams.normal(3, (1, 2, 3), 1001)
    assert np.array_equal(a, b)
    longer = streams.normal(3, (1, 2, 3), 5000)
    assert np.array_equal(longer[:1000], a[:1000])  # slot i comes from counter i whatever the size
    assert not np.array_equal(a, streams.normal(3, (1, 2, 4), 1001))
    assert not np.array_equal(a, streams.normal(4, (1, 2, 3), 1001))


def test_normal_moments_within_five_standard_errors():
    n = 2_000_000
    z = streams.normal(11, (0,), n)
    assert abs(z.mean()) < 5 / np.sqrt(n)
    # the variance of a sample variance of N(0,1) data is 2/(n-1)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / (n - 1))
    # the fourth moment is 3; Var(z^4) = 105 - 9 = 96
    assert abs((z ** 4).mean() - 3) < 5 * np.sqrt(96 / n)
    assert stats.kstest(z[:200_000], "norm").pvalue > 1e-4


def test_uniform_distribution():
    u = streams.uniform(5, (7, 7), 200_000, low=-2.0, high=3.0)
    assert u.min() >= -2.0 and u.max() < 3.0
    assert stats.kstest(u, "uniform", args=(-2.0, 5.0)).pvalue > 1e-4


def test_neighbouring_streams_are_uncorrelated():
    n = 200_000
    a = streams.normal(0, (0, 0), n)
    b = streams.normal(0, (0, 1), n)
    c = streams.normal(0, (1, 0), n)
    for x, y in ((a, b), (a, c), (b, c), (a[1:], a[:-1])):
        assert abs(np.corrcoef(x, y)[0, 1]) < 5 / np.sqrt(n)


def test_float32_fill():
    z = streams.normal(1, (2,), (64, 33), dtype=np.float32, mean=1.0, std=0.5)
    assert z.dtype == np.float32 and z.shape == (64, 33)
    z64 = streams.normal(1, (2,), (64, 33), dtype=np.float64, mean=1.0, std=0.5)
    assert np.allclose(z, z64, rtol=1e-6)


def test_bad_ids():
    with pytest.raises(ValueError):
        streams.key(-1)
    with pytest.raises(ValueError):
        streams.key(0, 1, 2, 3, 4)


_SCRIPT = "import numpy as np, hashlib; from varprop import streams; " \
          "a = streams.normal(9, (4, 2), 300_001); b = streams.uniform(9, (5,), 100_003); " \
          "print(hashlib.sha256(a.tobytes() + b.tobytes()).hexdigest())"


def test_bit_identical_whatever_the_thread_count():
    digests = set()
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1

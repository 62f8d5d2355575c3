"""Smoke test of the report's training-practice experiments: claims with their fields, three-valued
verdicts, figures written (deterministically), JSON-ready blobs."""
import json
import os

import numpy as np
import pytest

from varprop.report.claims import VERDICTS, Claim
from varprop.report.practice_diagnostics import EXPERIMENTS
from varprop.report.training import Data


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = ((X - X[:200].mean(0)) / (X[:200].std(0) + 1e-8)).astype(np.float32)
    return Data("digits (tiny)", X[:200], y[:200], X[200:260], y[200:260], X[260:320], y[260:320], 10)


@pytest.mark.parametrize("fn", EXPERIMENTS, ids=lambda f: f.__name__)
def test_experiment_in_smoke_mode(fn, data, tmp_path):
    before = set(os.listdir(tmp_path))
    claims, md, blob = fn(data, str(tmp_path), "smoke", 0)
    assert claims and all(isinstance(c, Claim) for c in claims)
    for c in claims:
        assert c.verdict in VERDICTS
        assert c.quantity and c.direction and c.test and c.evidence and c.claim
        assert c.link.startswith("training.md#")
        assert f'<a id="{c.link.split("#", 1)[1]}"></a>' in md
    pngs = sorted(set(os.listdir(tmp_path)) - before)
    assert pngs and all(p.endswith(".png") for p in pngs)
    for p in pngs:
        assert f"]({p})" in md
        head = (tmp_path / p).read_bytes()
        assert head[:8] == b"\x89PNG\r\n\x1a\n" and b"Software" not in head
    json.dumps(blob, allow_nan=True)
    if fn.__name__ == "bias_variance":     # cheap enough to check that a second run gives the same bytes
        first = {p: (tmp_path / p).read_bytes() for p in pngs}
        claims2, md2, _ = fn(data, str(tmp_path), "smoke", 0)
        assert md2 == md and [c.verdict for c in claims2] == [c.verdict for c in claims]
        assert all((tmp_path / p).read_bytes() == b for p, b in first.items())


def test_bad_mode(data, tmp_path):
    with pytest.raises(ValueError, match="mode"):
        EXPERIMENTS[0](data, str(tmp_path), "huge", 0)

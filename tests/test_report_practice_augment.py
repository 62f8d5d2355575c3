"""The report's augmentation, stochastic-depth and ensemble section: each experiment runs in smoke mode on a
tiny dataset and returns well-formed claims with three-valued verdicts, its anchors and its figures."""
import json
import os

import numpy as np
import pytest
from sklearn.datasets import load_digits

from varprop.report.claims import VERDICTS, Claim
from varprop.report.practice_augment import EXPERIMENTS
from varprop.report.training import Data


@pytest.fixture(scope="module")
def tiny():
    X, y = load_digits(return_X_y=True)
    X = ((X - X[:60].mean(0)) / np.where(X[:60].std(0) > 0, X[:60].std(0), 1)).astype(np.float32)
    return Data("digits", X[:60], y[:60], X[60:90], y[60:90], X[90:130], y[90:130], 10)


@pytest.mark.parametrize("fn", EXPERIMENTS, ids=[f.__name__ for f in EXPERIMENTS])
def test_experiment_in_smoke_mode(fn, tiny, tmp_path):
    claims, md, blob = fn(tiny, str(tmp_path), "smoke", 0)
    assert claims and all(isinstance(c, Claim) for c in claims)
    for c in claims:
        assert c.verdict in VERDICTS
        assert c.quantity and c.direction and c.test and c.evidence.startswith("2 seeds")
        assert c.link.startswith("training.md#")
        assert f'<a id="{c.link.split("#", 1)[1]}"></a>' in md
    pngs = [f for f in os.listdir(tmp_path) if f.endswith(".png")]
    assert pngs and all(f"({p})" in md for p in pngs)
    for p in pngs:
        assert (tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(blob)      # JSON-ready


def test_figures_are_deterministic(tiny, tmp_path):
    fn = EXPERIMENTS[-1]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    _, md_a, blob_a = fn(tiny, str(a), "smoke", 0)
    _, md_b, blob_b = fn(tiny, str(b), "smoke", 0)
    assert md_a == md_b and blob_a == blob_b
    for name in os.listdir(a):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_bad_mode_and_non_square_images(tiny, tmp_path):
    with pytest.raises(ValueError, match="mode"):
        EXPERIMENTS[0](tiny, str(tmp_path), "fast", 0)
    flat = Data("flat", tiny.X[:, :10], tiny.y, tiny.Xv[:, :10], tiny.yv, tiny.Xt[:, :10], tiny.yt, 10)
    with pytest.raises(ValueError, match="square"):
        EXPERIMENTS[0](flat, str(tmp_path), "smoke", 0)

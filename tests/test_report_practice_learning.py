"""The report's practice section in smoke mode: every experiment returns stated, judged claims, links its
anchor and writes its figure."""
import os

import numpy as np
import pytest

from varprop.report import practice_learning as pl
from varprop.report.claims import VERDICTS, Claim
from varprop.report.training import Data


@pytest.fixture(scope="module")
def tiny():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = ((X - X.mean(0)) / (X.std(0) + 1e-6)).astype(np.float32)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(X))[:400]
    tr, va, te = idx[:240], idx[240:300], idx[300:]
    return Data("digits", X[tr], y[tr], X[va], y[va], X[te], y[te], 10)


@pytest.mark.parametrize("fn", pl.EXPERIMENTS, ids=lambda f: f.__name__)
def test_smoke(fn, tiny, tmp_path):
    claims, md, blob = fn(tiny, str(tmp_path), "smoke", 0)
    assert claims and all(isinstance(c, Claim) for c in claims)
    for c in claims:
        assert c.verdict in VERDICTS and c.section == "training"
        assert c.quantity and c.direction and c.test and c.evidence.startswith("2 seeds")
        anchor = c.link.split("#", 1)[1]
        assert c.link.startswith("training.md#") and f'<a id="{anchor}"></a>' in md
    pngs = [f for f in os.listdir(tmp_path) if f.endswith(".png")]
    assert len(pngs) == 1 and f"({pngs[0]})" in md
    with open(tmp_path / pngs[0], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    (key, value), = blob.items()
    assert len(value["seeds"]) == pl.SEEDS["smoke"]


def test_figures_are_deterministic(tiny, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    pl.noise(tiny, str(a), "smoke", 0)
    pl.noise(tiny, str(b), "smoke", 0)
    assert (a / "practice_noise.png").read_bytes() == (b / "practice_noise.png").read_bytes()


def test_bad_mode(tiny, tmp_path):
    with pytest.raises(ValueError, match="mode"):
        pl.noise(tiny, str(tmp_path), "fast", 0)


def test_semisupervised_setting_is_chosen_on_the_validation_split_with_its_own_seeds(tiny, tmp_path):
    _, md, blob = pl.semisupervised(tiny, str(tmp_path), "smoke", 3)
    r = blob["semisupervised"]
    assert set(r["selection_seeds"]).isdisjoint(r["seeds"])
    val = r["validation"]
    assert set(val) == set(pl._SSL_CONFIGS) and r["chosen"] == max(val, key=val.get)
    assert r["config"] == pl._SSL_CONFIGS[r["chosen"]] and f"{r['chosen']} (chosen)" in md

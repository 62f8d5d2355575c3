"""The report's signal-propagation section at toy size: every claim judged, its fields stated, figures written."""
import json
import os

import pytest

from varprop.report import signal
from varprop.report.claims import VERDICTS


@pytest.mark.slow
def test_smoke_section_is_complete_and_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    claims, summary = signal.write(str(a), "smoke", 0)
    signal.write(str(b), "smoke", 0)
    assert len(claims) == 12
    for c in claims:
        assert c.verdict in VERDICTS and c.quantity and c.direction and c.test and c.evidence
        assert c.link.startswith("signal.md#")
    for name in ("signal.md", "signal.json", "signal_correlations.png", "signal_phase.png", "signal_spectra.png",
                 "signal_finite_width.png", "signal_saxe.png", "signal_lsuv.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    md = (a / "signal.md").read_text()
    for anchor in ("correlations", "spectra", "finite-width", "lsuv", "saxe"):
        assert f'<a id="{anchor}"></a>' in md
    assert json.loads((a / "signal.json").read_text())["mode"] == "smoke"
    assert "signal.md" in summary and os.path.getsize(a / "signal_spectra.png") > 10_000


def test_the_contrast_can_fail():
    """A spectrum claim whose contrast sits on the simulated value is not verified."""
    from varprop.report.claims import judge_theory
    j = judge_theory([1.0], [0.01], [1.0], networks=100, bias=0.15, contrast=[1.05])
    assert j.verdict == "inconclusive"

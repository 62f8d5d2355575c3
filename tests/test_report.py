"""`varprop report`: the pipeline end to end at toy size, determinism, atomic replacement, golden derivations."""
import filecmp
import os
import re

import numpy as np
import pytest

import varprop.report as report
from varprop.report.claims import VERDICTS, agreement, counts, judge_paired, judge_theory, paired_interval


def _tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def _png_dpi(data: bytes) -> float:
    """The resolution a PNG declares in its pHYs chunk (pixels per metre), in dots per inch."""
    import struct
    i = data.find(b"pHYs")
    assert i > 0, "no pHYs chunk"
    ppm_x, _, unit = struct.unpack(">IIB", data[i + 4:i + 13])
    assert unit == 1
    return ppm_x * 0.0254


def test_cli_prints_the_count_of_each_verdict(tmp_path, monkeypatch, capsys):
    from varprop.cli import main
    from varprop.report.claims import Claim
    claims = [Claim("x", "a holds", verdict="verified"), Claim("x", "b holds", verdict="refuted"),
              Claim("x", "c holds", verdict="inconclusive"), Claim("x", "d holds", verdict="verified")]
    monkeypatch.setattr(report, "build", lambda out, mode, seed: claims)
    assert main(["report", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("4 claims: verified 2, refuted 1, inconclusive 1")
    assert out[1:] == ["  refuted: b holds", "  inconclusive: c holds"]


@pytest.fixture
def few_derivations(monkeypatch):
    monkeypatch.setattr(report, "_derivation_names", lambda: ["linear-variance", "sigmoid"])


def test_agreement_is_five_standard_errors():
    theory = np.array([1.0, 0.5, 0.25])
    se = np.array([0.01, 0.01, 0.01])
    assert agreement(theory + 0.04, se, theory) == (True, pytest.approx(4.0))
    ok, z = agreement(theory + np.array([0, 0, 0.06]), se, theory)
    assert not ok and z == pytest.approx(6.0)
    assert agreement(np.ones(2), np.zeros(2), np.ones(2)) == (True, 0.0)     # exact, no spread
    assert agreement(np.ones(2), np.zeros(2), np.zeros(2))[0] is False       # off, no spread


def test_agreement_allows_the_named_bias():
    theory = np.array([10.0, 10.0])
    se = np.array([0.01, 0.01])
    assert agreement(theory * 1.015, se, theory, bias=0.02)[0]
    assert not agreement(theory * 1.015, se, theory)[0]


def test_judge_theory_three_verdicts():
    t = np.array([2.0, 4.0, 8.0])
    se = np.full(3, 0.05)
    assert judge_theory(t + 0.01, se, t, 100, contrast=3.0 ** np.arange(1, 4)).verdict == "verified"
    assert judge_theory(t * 1.5, se, t, 100).verdict == "refuted"
    # too few networks for a skewed statistic, or a contrast inside the band: the test could not fail
    assert judge_theory(t, se, t, 20).verdict == "inconclusive"
    assert judge_theory(t, np.full(3, 10.0), t, 100, contrast=t * 1.2).verdict == "inconclusive"


def test_paired_interval_is_the_t_interval():
    from scipy import stats
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 10), rng.normal(0, 1, 10)
    mean, lo, hi = paired_interval(a, b)
    ref = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert mean == pytest.approx(float(np.mean(a - b)))
    assert (lo, hi) == pytest.approx((ref.low, ref.high))


def test_judge_paired_three_verdicts():
    up = [0.9, 0.91, 0.95, 0.92, 0.93]
    down = [0.1, 0.12, 0.1, 0.11, 0.1]
    assert judge_paired(up, down, margin=0.5).verdict == "verified"
    assert judge_paired(down, up).verdict == "refuted"
    # a difference within its noise is inconclusive, never refuted
    assert judge_paired([0.5, 0.6, 0.4, 0.55, 0.45], [0.52, 0.5, 0.5, 0.5, 0.5]).verdict == "inconclusive"
    assert judge_paired(up, down, margin=0.9).verdict == "refuted"


def test_claim_rejects_an_unknown_verdict():
    from varprop.report.claims import Claim
    with pytest.raises(ValueError, match="verdict"):
        Claim("x", "y", verdict="maybe")


@pytest.mark.slow
def test_smoke_report_is_complete_linked_and_deterministic(tmp_path, few_derivations):
    a, b = tmp_path / "a", tmp_path / "b"
    claims = report.build(str(a), "smoke", seed=3, progress=False)
    report.build(str(b), "smoke", seed=3, progress=False)
    ta, tb = _tree(a), _tree(b)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if ta[k] != tb[k]]
    assert different == []                                  # figures included
    for must in ("README.md", "simulations.md", "training.md", "training.json", "derivations/index.md",
                 "derivations/all.tex", "derivations/linear-variance.md", "tanh_small_001.png", "depth.png"):
        assert must in ta, must
    index = ta["README.md"].decode()
    n = counts(claims)
    assert f"**{len(claims)} claims: {n['verified']} verified, {n['refuted']} refuted, " \
           f"{n['inconclusive']} inconclusive.**" in index
    summary = index.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert sum(summary.count(f"| {v} |") for v in VERDICTS) == len(claims)
    for c in claims:           # every claim says beforehand what it measures and how it is judged
        assert c.quantity and c.direction and c.test and c.evidence, c.claim
    sims, training = ta["simulations.md"].decode(), ta["training.md"].decode()
    for c in claims:
        if c.section in ("simulation", "training"):
            assert f"**{c.claim}.** Measured: {c.quantity}" in (sims if c.section == "simulation" else training)
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", index):
        assert link in ta, link
    for name, data in ta.items():        # every figure at print resolution
        if name.endswith(".png"):
            assert round(_png_dpi(data)) >= 200, name      # pHYs stores whole pixels per metre
    text = "".join(v.decode(errors="ignore") for k, v in ta.items() if k.endswith((".md", ".json")))
    assert "elapsed" not in text and str(tmp_path) not in text


def test_interrupted_report_leaves_the_previous_one(tmp_path, few_derivations, monkeypatch):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "README.md").write_text("previous report\n")
    report._write_manifest(str(out))

    def boom(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "_SECTIONS", [report._derivations, boom])
    with pytest.raises(KeyboardInterrupt):
        report.build(str(out), "smoke", progress=False)
    assert (out / "README.md").read_text() == "previous report\n"
    assert sorted(os.listdir(tmp_path)) == ["reports"]      # no temporary folder left behind


def _user_folder(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "keep.txt").write_text("x\n")
    return d


@pytest.mark.parametrize("case", ["folder", "cwd", "empty-string", "dot", "file", "report-with-user-file",
                                  "parent-of-cwd", "symlink-to-folder", "unwritable-parent"])
def test_out_never_replaces_a_users_files(tmp_path, monkeypatch, capsys, case):
    """The data-loss cases: each is refused with exit 2 before any work, and nothing of the user's changes."""
    from varprop.cli import main
    monkeypatch.setattr(report, "_SECTIONS", [])      # any work at all would be a failure of the check
    d = _user_folder(tmp_path)
    out, frag = str(d), "not a varprop report"
    if case == "cwd":
        monkeypatch.chdir(d)
        out = "."
    elif case == "empty-string":
        monkeypatch.chdir(d)
        out, frag = "", "--out is empty"
    elif case == "dot":
        monkeypatch.chdir(d)
        out = "./"
    elif case == "file":
        out, frag = str(d / "keep.txt"), "is not a folder"
    elif case == "report-with-user-file":
        r = tmp_path / "r"
        r.mkdir()
        (r / "README.md").write_text("a report\n")
        report._write_manifest(str(r))
        (r / "notes.txt").write_text("mine\n")
        out, frag = str(r), "did not write (notes.txt)"
    elif case == "parent-of-cwd":
        r = tmp_path / "r"
        (r / "sub").mkdir(parents=True)
        report._write_manifest(str(r))
        monkeypatch.chdir(r / "sub")
        out, frag = str(r), "current folder or contains it"
    elif case == "symlink-to-folder":
        (tmp_path / "link").symlink_to(d)
        out = str(tmp_path / "link")
    elif case == "unwritable-parent":
        if os.geteuid() == 0:
            pytest.skip("root writes anywhere")
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        out, frag = str(ro / "new"), "not writable"
    before = _tree(tmp_path)
    assert main(["report", "--out", out]) == 2
    err = capsys.readouterr().err
    assert frag in err and err.count("\n") == 1 and "Traceback" not in err
    assert _tree(tmp_path) == before


def test_out_may_replace_an_empty_folder_or_an_earlier_report(tmp_path, monkeypatch):
    calls = []

    def section(out, mode, seed, bar):
        calls.append(out)
        with open(os.path.join(out, "x.md"), "w") as fh:
            fh.write(f"seed {seed}\n")
        return [], ""

    monkeypatch.setattr(report, "_SECTIONS", [section])
    monkeypatch.setattr(report, "_steps", lambda mode: 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    report.build(str(empty), "smoke", seed=1, progress=False)
    assert sorted(os.listdir(empty)) == [".varprop-report", "README.md", "x.md"]
    report.build(str(empty), "smoke", seed=2, progress=False)          # an earlier report is replaced
    assert (empty / "x.md").read_text() == "seed 2\n"
    # a folder left by a killed run is swept by the next one
    (tmp_path / ".empty.new-abc").mkdir()
    report.build(str(empty), "smoke", seed=3, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["empty"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of quick, full"):
        report.build("x", "medium")
    with pytest.raises(ValueError, match="seed"):
        report.build("x", "quick", seed=-1)


def test_cli_errors(capsys):
    from varprop.cli import main
    assert main(["report", "--quick", "--full"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["report", "--seed", "-2"]) == 2
    assert main(["report", "--seed", str(2**70)]) == 2


REPORTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reports")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(os.path.join(REPORTS, "derivations")), reason="no committed report")
def test_committed_derivations_are_what_the_code_renders(tmp_path):
    """Golden files: the committed reports/derivations are exactly what rendering them again gives."""
    from varprop.derive import derivations, render
    ds = [derivations.build(n).to_dict(15) for n in derivations.names()]
    render.write(ds, "md", str(tmp_path), index=True)
    render.write(ds, "tex", str(tmp_path), index=True, pdf=False)
    for name in os.listdir(tmp_path):
        assert filecmp.cmp(tmp_path / name, os.path.join(REPORTS, "derivations", name), shallow=False), name


def test_training_plot_marks_divergence_and_has_no_empty_legend_entry(monkeypatch):
    from varprop.report import training
    figs = []
    monkeypatch.setattr(training, "_save", lambda fig, path: figs.append(fig))
    nan = float("nan")
    runs = {"plain": {"epoch": [1, 2, 3], "train_loss": [2.0, 5.0, nan], "val_acc": [0.2, 0.1, nan]},
            "never": {"epoch": [1], "train_loss": [nan], "val_acc": [nan]},
            "bn": {"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.3], "val_acc": [0.8, 0.9, 0.92]}}
    training._plot("x.png", runs, "t", diverged={"plain": True, "never": True, "bn": False})
    (fig,) = figs
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert labels == ["plain", "bn"]                       # no entry for the run with no line
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["diverged"]
    assert "never: diverged in the first epoch" in fig._suptitle.get_text()
    ticks = fig.axes[0].get_xticks()
    assert all(float(t).is_integer() for t in ticks)

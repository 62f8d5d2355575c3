"""Rendering is deterministic and well formed; `varprop derive` lists, renders, writes and refuses bad input."""
import json
import os
import shutil
import subprocess

import pytest
import sympy as sp

from varprop.cli import main
from varprop.derive import derivations, render
from varprop.derive.derivation import Derivation

FAST = ["linear-variance", "residual"]


@pytest.fixture(scope="module")
def dicts():
    return [derivations.build(n).to_dict(12) for n in FAST]


def _toy():
    x = sp.Symbol("x_1", real=True)
    d = Derivation("toy_deriv", "A toy: 100% of it & more", "Summary with $a_b$ and `code_x` and **bold** #1.")
    d.assume("key_a", "an assumption with _ and {braces}")
    d.text("Prose *emphasis* before $x^2$.")
    d.step("double_it", x + x, 2 * x, because="since 50% ~ half", uses=("key_a",))
    d.step("wrong", (x + 1) ** 2, x ** 2 + 1)
    d.result("val", sp.Rational(1, 3))
    d.compare("val", sp.Rational(1, 3), 0.3, "a book, p. 5")
    return d.to_dict(8)


@pytest.mark.parametrize("fmt", ["md", "tex", "json"])
def test_render_twice_is_byte_identical(fmt):
    a = render.render([derivations.build(n).to_dict(10) for n in FAST], fmt)
    b = render.render([derivations.build(n).to_dict(10) for n in FAST], fmt)
    assert a.encode() == b.encode() and len(a) > 1000


@pytest.mark.parametrize("fmt", ["md", "tex", "json"])
def test_write_twice_gives_identical_files(tmp_path, dicts, fmt):
    p1 = render.write(dicts, fmt, tmp_path / "a", index=True, pdf=False)
    p2 = render.write(dicts, fmt, tmp_path / "b", index=True, pdf=False)
    assert [os.path.basename(p) for p in p1] == [os.path.basename(p) for p in p2]
    assert len(p1) == len(FAST) + 1
    for x, y in zip(p1, p2):
        assert open(x, "rb").read() == open(y, "rb").read()


def test_markdown_shape(dicts):
    md = render.markdown(dicts[0])
    assert md.startswith("# Variance through a linear layer\n")
    assert md.count("$$") % 2 == 0 and md.count("$$\n") >= 2 * len(dicts[0]["steps"])
    assert "## Assumptions" in md and "## Result" in md
    bad = render.markdown(_toy())
    assert "NOT VERIFIED" in bad and "## Problems" in bad
    assert "| val | 0.33333333 | 0.3 |" in bad


def test_index_links_every_file(dicts):
    idx = render.index_markdown(dicts)
    for d in dicts:
        assert f"]({d['name']}.md)" in idx


def test_json_has_the_contract_fields(dicts):
    out = json.loads(render.to_json(dicts[0]))
    assert {"name", "title", "assumptions", "steps", "result", "verified"} <= set(out)
    assert all({"latex", "verified"} <= set(s) for s in out["steps"])
    assert out["result"]["variance_zero_mean"] == "n*v_w*v_x"
    text = render.to_json(dicts[0])
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_md_to_tex_escapes_text_but_not_math():
    assert render.md_to_tex("a_b $a_b$ 50% **x** *y* `c_d`") == \
        r"a\_b $a_b$ 50\% \textbf{x} \emph{y} \texttt{c\_d}"
    assert render.md_to_tex("$$x^2$$") == r"\[x^2\]"


def test_tex_is_balanced_and_escaped():
    t = render.tex([_toy()])
    assert t.startswith(r"\documentclass") and t.rstrip().endswith(r"\end{document}")
    for env in ("document", "itemize", "equation*"):
        assert t.count(r"\begin{" + env + "}") == t.count(r"\end{" + env + "}")
    assert r"100\% of it \& more" in t and r"toy\_deriv" in t
    # outside math, no raw underscore or percent survives
    import re
    text_only = re.sub(r"\$[^$]*\$|\\begin\{equation\*\}.*?\\end\{equation\*\}", "", t, flags=re.S)
    assert not re.search(r"(?<!\\)[_%&#]", text_only)


def test_long_equation_chains_break_in_tex():
    long = "a = " + " + ".join(["x"] * 60) + r" = \left(b = c\right) = d"
    out = render._tex_display(long)
    assert out.startswith(r"\begin{split}") and out.count("&=") == 3


def test_failing_tex_engine_warns_and_keeps_going(tmp_path, capsys):
    assert render._write_pdf(str(tmp_path / "x.pdf"), render.tex([_toy()]), "false") == []
    assert "no PDF for x.pdf" in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists()


def test_markdown_cells_protect_symbolic_values():
    assert render._md_cell("0.25") == "0.25"
    assert render._md_cell("(a/4)**L") == "`(a/4)**L`"
    assert render._md_math_cell(r"\|W\| |x|") == r"\Vert W\Vert  \vert x\vert "


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine installed")
def test_tex_compiles(tmp_path, dicts):
    paths = render.write(dicts, "tex", tmp_path, index=True)
    assert any(p.endswith(".pdf") for p in paths)


def test_unknown_format():
    with pytest.raises(ValueError, match="format"):
        render.render([_toy()], "html")


# -- the command line ---------------------------------------------------------------------------------------
def test_cli_lists(capsys):
    assert main(["derive"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in out]
    assert names == derivations.names()


def test_cli_stdout_formats(capsys):
    assert main(["derive", "residual"]) == 0
    assert capsys.readouterr().out.startswith("# Residual blocks")
    assert main(["derive", "residual", "--json", "--digits", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "residual" and out["verified"] and out["digits"] == 20
    import mpmath as mp
    fixup = next(st for st in out["steps"] if st["title"].startswith("Fixup scale for 54"))
    with mp.workdps(30):
        assert fixup["digits"] == 20 and fixup["value"] == mp.nstr(1 / mp.sqrt(mp.mpf(54)), 20)
    assert main(["derive", "residual", "linear-variance", "--format", "json"]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)] == ["residual", "linear-variance"]
    assert main(["derive", "residual", "--format", "tex"]) == 0
    assert capsys.readouterr().out.startswith(r"\documentclass")


def test_cli_out_writes_files_and_index(tmp_path, capsys):
    assert main(["derive", "linear-variance", "residual", "--out", str(tmp_path)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["index.md", "linear-variance.md", "residual.md"]
    printed = capsys.readouterr().out.split()
    assert len(printed) == 3
    assert main(["derive", "residual", "--format", "json", "--out", str(tmp_path / "j")]) == 0
    assert os.listdir(tmp_path / "j") == ["residual.json"]


@pytest.mark.parametrize("argv, message", [
    (["derive", "nope"], "unknown derivation 'nope'; known: symmetry"),
    (["derive", "residual", "--digits", "0"], "digits"),
    (["derive", "residual", "--digits", "x"], "invalid int"),
    (["derive", "residual", "--format", "html"], "invalid choice"),
    (["derive", "residual", "--widths", "3,a"], "--widths"),
    (["derive", "residual", "--widths", "3"], "--widths"),
    (["derive", "residual", "--sigma-w2", "-1"], "--sigma-w2"),
    (["derive", "residual", "--sigma-b2", "nan"], "sigma-b2"),
    (["derive", "residual", "--param", "oops"], "malformed parameter"),
    (["derive", "--json"], "name the derivations"),
    (["derive", "gains", "--param", "negative_slope=0.2"], "--param needs --activation"),
])
def test_cli_errors_are_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("varprop: error:") and message in err


def test_cli_module_does_not_import_sympy():
    code = "import sys, varprop.cli.derive; print('sympy' in sys.modules)"
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_builder_options_are_filtered():
    assert derivations.accepted_options("residual") == ("digits",)
    d = derivations.build("residual", digits=12, activation="tanh", sigma_b2=None)
    assert d.verified


def test_resolve_expands_all_and_drops_repeats():
    assert derivations.resolve(["residual", "all"])[0] == "residual"
    assert derivations.resolve(["all"]) == derivations.names()
    assert derivations.resolve(["sigmoid", "sigmoid"]) == ["sigmoid"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["md", "tex", "json"])
def test_cli_all_every_format_deterministic_and_verified(tmp_path, fmt):
    for sub in ("a", "b"):
        assert main(["derive", "all", "--format", fmt, "--out", str(tmp_path / sub)]) == 0
    files = sorted(os.listdir(tmp_path / "a"))
    assert files == sorted(os.listdir(tmp_path / "b"))
    assert len(files) >= len(derivations.names()) + 1
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine installed")
def test_every_derivation_compiles_to_pdf(tmp_path, capsys):
    # what CI builds: `varprop derive all --format tex`, each document and the combined one, through pdflatex
    assert main(["derive", "all", "--format", "tex", "--out", str(tmp_path)]) == 0
    assert "warning" not in capsys.readouterr().err
    for name in [*derivations.names(), "all"]:
        pdf = tmp_path / f"{name}.pdf"
        assert pdf.exists(), name
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:], name


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine installed")
def test_report_writes_the_pdfs_when_a_tex_engine_is_installed(tmp_path, monkeypatch):
    import varprop.report as report
    from varprop.io import Progress
    monkeypatch.setattr(report, "_derivation_names", lambda: FAST)
    report._derivations(str(tmp_path), "quick", 0, Progress(len(FAST), enabled=False))
    for name in [*FAST, "all"]:
        assert (tmp_path / "derivations" / f"{name}.pdf").read_bytes().startswith(b"%PDF-"), name

"""The README's console examples are what the program prints; its figure is the one its command makes.

Regenerate them with ``python tests/readme_examples.py --update``.
"""
import re

import pytest

import readme_examples as rx

TEXT = rx.README.read_text(encoding="utf-8")
EXAMPLES = rx.examples(TEXT)
SLOW = {"simulate"}       # a 4096-wide run and a 200 dpi figure


def _param(ex):
    marks = [pytest.mark.slow] if ex.command[0] in SLOW else []
    return pytest.param(ex, id=" ".join(ex.command[:2]), marks=marks)


def test_the_readme_has_examples_for_gain_check_and_simulate():
    assert {ex.command[0] for ex in EXAMPLES} >= {"gain", "check", "simulate"}


@pytest.mark.parametrize("ex", [_param(ex) for ex in EXAMPLES])
def test_example_output_is_the_programs(ex, tmp_path):
    argv = ex.command
    plot = rx.plot_path(argv)
    if plot is not None:
        argv = rx.with_plot(argv, str(tmp_path / "figure.png"))
    got = rx.run(argv)
    assert rx.normalize(got) == rx.normalize(ex.shown), (
        "README example drifted; run: python tests/readme_examples.py --update")
    if plot is not None:
        # the figure shown right after the block is the one the command writes
        after = TEXT.splitlines()[ex.end:ex.end + 4]
        images = [m.group(1) for line in after for m in re.finditer(r"!\[[^\]]*\]\(([^)]+)\)", line)]
        assert images and images[0] == plot, f"the image after `varprop {' '.join(ex.command[:1])}` is not {plot}"
        assert (rx.ROOT / plot).is_file(), f"{plot} is missing; run: python tests/readme_examples.py --update"
        assert (tmp_path / "figure.png").stat().st_size > 0


def test_normalize_masks_only_whitespace_and_elapsed_time():
    assert rx.normalize(["a   b ", "", "20 trials, engine gaussian, seed 0, 4.62 s", ""]) == \
        ["a b", "", "20 trials, engine gaussian, seed 0, <elapsed> s"]
    assert rx.normalize(["forward gain 1.59253741972283"]) != rx.normalize(["forward gain 1.59253741972284"])


def test_parser_reads_continued_commands_and_refuses_non_varprop_lines():
    text = "x\n```console\n$ varprop gain relu \\\n    --q 2\nout 1\n$ varprop activations\nrow\n```\n"
    a, b = rx.examples(text)
    assert a.command == ["gain", "relu", "--q", "2"] and a.shown == ["out 1"] and len(a.source) == 2
    assert b.command == ["activations"] and b.shown == ["row"]
    with pytest.raises(ValueError, match="examples run varprop"):
        rx.examples("```console\n$ rm -rf x\n```\n")

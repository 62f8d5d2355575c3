"""Bad input refused early: each row runs ``varprop`` under a memory and time limit (tests/badinput.py).

Rows are added beside the fix that makes them pass; a row is (argv, exit code, message fragment).
"""
import pytest

from badinput import Case, check_case

CASES = [
    Case(["report", "--out", ""], 2, "--out is empty"),
    Case(["report", "--out", "."], 2, "not a varprop report", files={"keep.txt": "x\n"}),
    Case(["report", "--out", "keep.txt"], 2, "is not a folder", files={"keep.txt": "x\n"}),
    Case(["report", "--seed", str(2**70)], 2, "--seed"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_refused_with_one_line_and_exit_2(case, tmp_path):
    check_case(case, tmp_path)

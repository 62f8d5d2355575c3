"""Bad input refused early: each row runs ``varprop`` under a memory and time limit (tests/badinput.py).

Rows are added beside the fix that makes them pass; a row is (argv, exit code, message fragment).
"""
import pytest

from badinput import Case, check_case

def _npy_header(shape) -> bytes:
    """A .npy header promising an array of ``shape`` (float64), with no data after it."""
    import io

    import numpy as np
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue()


CASES = [
    Case(["report", "--out", ""], 2, "--out is empty"),
    Case(["report", "--out", "."], 2, "not a varprop report", files={"keep.txt": "x\n"}),
    Case(["report", "--out", "keep.txt"], 2, "is not a folder", files={"keep.txt": "x\n"}),
    Case(["report", "--seed", str(2**70)], 2, "--seed"),
    # output paths: checked before any work, devices written as streams, never replaced
    Case(["simulate", "--widths", "8x3", "--json", ""], 2, "--json is empty"),
    Case(["simulate", "--widths", "8x3", "--json", "."], 2, "is a folder"),
    Case(["simulate", "--widths", "8x3", "--csv", "out/"], 2, "ends with /"),
    Case(["simulate", "--widths", "8x3", "--plot", "keep.txt/r.png"], 2, "is not a folder",
         files={"keep.txt": "x\n"}),
    Case(["simulate", "--widths", "8x3", "--json", "r.out", "--csv", "r.out"], 2, "name the same file"),
    Case(["simulate", "--widths", "8x3", "--trials", "1", "--quiet", "--json", "/dev/full"], 2,
         "cannot write /dev/full: No space left on device", id="simulate --json /dev/full"),
    Case(["simulate", "--widths", "8x3", "--trials", "1", "--quiet", "--json", "/dev/null"], 0, "",
         id="simulate --json /dev/null"),
    Case(["derive", "activation-stats", "--widths", "8x3", "--out", "keep.txt"], 2, "is not a folder",
         files={"keep.txt": "x\n"}),
    Case(["derive", "activation-stats", "--widths", "8x3", "--out", ""], 2, "--out is empty"),
    # absurd sizes: refused from the configuration, before anything is allocated
    Case(["simulate", "--widths", "64x1000000000", "--trials", "1"], 2, "exceed the ceiling of 10000"),
    Case(["simulate", "--widths", "16x3", "--bins", "1000000000", "--histograms"], 2, "bins must be at most"),
    Case(["simulate", "--widths", "16x1000", "--bins", "1000000", "--histograms"], 2, "the histograms take"),
    Case(["simulate", "--widths", "4096x3000", "--batch", "64"], 2, "needs about"),
    Case(["simulate", "--widths", "16x200000", "--batch", "2"], 2, "exceed the ceiling of 10000"),
    Case(["simulate", "--widths", "16x3", "--trials", "1000000000"], 2, "trials must be at most"),
    Case(["simulate", "--widths", "64x1000", "--trials", "1000000"], 2, "would take at least"),
    Case(["derive", "activation-stats", "--widths", "64x100000"], 2, "exceed the ceiling of 1000"),
    Case(["derive", "activation-stats", "--widths", "1000000x130", "--init", "normal(0, 1)"], 2, "overflows at layer"),
    Case(["derive", "activation-stats", "--activation", "maxout", "--param", "k=100000000"], 2, "at most 4096"),
    Case(["gain", "maxout", "--param", "k=100000000"], 2, "at most 4096"),
    Case(["simulate", "--widths", "8x3", "--activation", "maxout", "--param", "k=100000000"], 2, "at most 4096"),
    # overflow is reported as such (which layer, which quantity), never as null statistics with exit 0
    Case(["simulate", "--widths", "16x3", "--trials", "2", "--quiet", "--init", "uniform(-1e30, 1e30)"], 1,
         "overflow in 2 of 2 trials, first: the pre-activations h of layer 1"),
    Case(["simulate", "--widths", "16x3", "--inputs", "x.csv"], 2, "mean square overflows",
         files={"x.csv": "\n".join([",".join(["1e300"] * 16)] * 16) + "\n"}),
    # hostile inputs files
    Case(["simulate", "--widths", "16x3", "--inputs", "x.npz"], 2, "not a zip file", files={"x.npz": b"PK\x03\x04junk"}),
    Case(["simulate", "--widths", "16x3", "--inputs", "x.npy"], 2, "not a .npy file", files={"x.npy": b"junk"}),
    Case(["simulate", "--widths", "16x3", "--inputs", "x.npy"], 2, "would take about",
         files={"x.npy": _npy_header((100000, 100000000))}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_refused_with_one_line_and_exit_2(case, tmp_path):
    check_case(case, tmp_path)

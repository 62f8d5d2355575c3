"""Bad input to `varprop train` and `varprop check`, refused early: each row runs under a memory and time
limit (tests/badinput.py), so a regression that allocates gigabytes or works for minutes fails fast."""
import io

import numpy as np
import pytest

from badinput import Case, check_case


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _csv(labels) -> str:
    return "".join(f"{i % 3}.0,{(i * 7) % 5}.0,{y}\n" for i, y in enumerate(labels))


_X = np.random.default_rng(0).normal(size=(40, 3))
_Y = np.arange(40) % 2

CASES = [
    # sizes estimated before anything is allocated
    Case(["train", "--epochs", "1", "--hidden", "100000000"], 2, "--hidden 100000000 needs about"),
    Case(["train", "--epochs", "1", "--hidden", "100000,100000"], 2, "--hidden 100000,100000 needs about"),
    Case(["train", "--epochs", "1", "--augment-copies", "1000000", "--noise", "0.1"], 2,
         "--augment-copies 1000000 needs about"),
    Case(["train", "--epochs", "1000000000000"], 2, "--epochs must be in [1, 1000000]"),
    # labels that are not class indices 0 .. K-1
    Case(["train", "--data", "big.csv"], 2, "imply 1000000001 classes but only 2",
         files={"big.csv": _csv([0, 1000000000] * 10)}),
    Case(["train", "--data", "far.csv"], 2, "imply 1000001 classes but only 2",
         files={"far.csv": _csv([0, 1000000] * 10)}),
    Case(["train", "--data", "huge.csv"], 2, "label 1e+30 is not a class index",
         files={"huge.csv": _csv([0, 1e30] * 10)}),
    Case(["train", "--data", "t.npz"], 2, "imply 10000002 classes",
         files={"t.npz": _npz(X=_X, y=_Y, X_test=_X[:5], y_test=np.array([0, 1, 0, 1, 10000001]))}),
    # files that are not what they claim
    Case(["train", "--data", "zip.npz"], 2, "not a zip archive", files={"zip.npz": b"PK\x03\x04garbage"}),
    Case(["train", "--data", "empty.npz"], 2, "empty or truncated", files={"empty.npz": b""}),
    Case(["train", "--data", "c.npz"], 2, "complex features are not supported",
         files={"c.npz": _npz(X=_X + 1j, y=_Y)}),
    # expressions and names of `varprop check`
    Case(["check", "normal(0, 1e-400)", "--activation", "tanh"], 2, "underflows to 0 '1e-400'"),
    Case(["check", "xavier_unifrom", "--activation", "tanh"], 2, "did you mean xavier_uniform"),
    Case(["check", "kaiming_normal(nonlinearity=relu)", "--activation", "relu"], 2,
         "kaiming_normal --init-param nonlinearity=relu"),
]

# not refusals: runs that must end within the harness's time limit, with the status they document
RUNS = [
    Case(["check", "normal(0, (fan_in+2*fan_out+3)**16/(3*fan_in+fan_out+7)**16)", "--activation", "tanh"], 0, ""),
    Case(["check", "normal(0, " + "+".join(f"1/(fan_in+{k})" for k in range(1, 13)) + ")", "--activation", "tanh"],
         0, ""),
    Case(["train", "--epochs", "2", "--hidden", "16", "--optimizer", "adam", "--lr", "100", "--json", "r.json"], 3,
         "training diverged at epoch 1"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_refused_with_one_line_and_exit_2(case, tmp_path):
    check_case(case, tmp_path)


@pytest.mark.parametrize("case", RUNS, ids=lambda c: c.id)
def test_bounded_runs_end_with_their_documented_status(case, tmp_path):
    check_case(case, tmp_path)
    if case.code == 3:
        import json
        assert json.loads((tmp_path / "r.json").read_text())["diverged"] is True

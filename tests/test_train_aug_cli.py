"""`varprop train --augment/--mixup`: per-step augmentation changes training, is reproducible and survives
--resume bit for bit; shifts and flips need image data; bad combinations are one line and exit 2."""
import json

import pytest

from varprop.cli import main

from test_train_cli import _train


def _digits(tmp_path, *extra, name="r"):
    out = tmp_path / f"{name}.json"
    rc = main(["train", "--data", "digits", "--hidden", "16", "--batch-size", "64", "--seed", "2",
               "--json", str(out), *extra])
    return rc, out


def _losses(path):
    return [(e["train_loss"], e["val_loss"]) for e in json.loads(path.read_text())["epochs"]]


def test_per_step_augmentation_is_reproducible_and_changes_training(tmp_path):
    opts = ("--epochs", "2", "--augment", "--shift", "1", "--flip", "0.5", "--noise", "0.05",
            "--preprocess", "center")
    rc1, a = _digits(tmp_path, *opts, name="a")
    rc2, b = _digits(tmp_path, *opts, name="b")
    rc3, plain = _digits(tmp_path, "--epochs", "2", "--preprocess", "center", name="plain")
    assert rc1 == rc2 == rc3 == 0
    assert _losses(a) == _losses(b) and _losses(a) != _losses(plain)
    config = json.loads(a.read_text())["config"]
    assert config["augment"] is True and config["mixup"] == 0 and config["n_train"] == 1294


def test_mixup_trains_and_reports_an_accuracy(tmp_path):
    rc, out = _train(tmp_path, "--epochs", "2", "--mixup", "0.4")
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["config"]["mixup"] == 0.4
    assert all(0 <= e["train_acc"] <= 1 for e in res["epochs"])


def test_resume_with_per_step_augmentation_repeats_the_uninterrupted_run(tmp_path):
    opts = ("--augment", "--shift", "1", "--noise", "0.1", "--mixup", "0.3")
    ck = tmp_path / "ck.npz"
    rc, full = _digits(tmp_path, "--epochs", "3", *opts, name="full")
    assert rc == 0
    rc, _ = _digits(tmp_path, "--epochs", "1", *opts, "--checkpoint", str(ck), name="half")
    assert rc == 0
    rc, resumed = _digits(tmp_path, "--epochs", "3", "--resume", str(ck), *opts, name="resumed")
    assert rc == 0
    assert _losses(full) == _losses(resumed)
    assert json.loads(full.read_text())["test_acc"] == json.loads(resumed.read_text())["test_acc"]


@pytest.mark.parametrize("extra, message", [
    (("--augment", "--shift", "1"), "need image data"),                 # a .npz has no image shape
    (("--augment", "--flip", "0.5"), "need image data"),
    (("--augment",), "--augment needs an augmentation"),
    (("--noise", "0.1"), "need --augment"),
    (("--mixup", "-0.5"), "--mixup must be >= 0"),
    (("--mixup", "x"), "--mixup must be a number"),
    (("--mixup", "0.2", "--loss", "hinge"), "--mixup needs --loss cross_entropy"),
])
def test_bad_augmentation_options_fail_with_one_line(tmp_path, capsys, extra, message):
    rc, _ = _train(tmp_path, "--epochs", "1", *extra)
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_resume_with_other_augmentation_options_is_refused(tmp_path):
    ck = tmp_path / "ck.npz"
    rc, _ = _train(tmp_path, "--epochs", "1", "--mixup", "0.3", "--checkpoint", str(ck), name="half")
    assert rc == 0
    rc, _ = _train(tmp_path, "--epochs", "2", "--resume", str(ck), name="plain")
    assert rc == 2
    rc, _ = _train(tmp_path, "--epochs", "2", "--resume", str(ck), "--mixup", "0.5", name="other")
    assert rc == 2
    rc, _ = _train(tmp_path, "--epochs", "2", "--resume", str(ck), "--mixup", "0.3", name="same")
    assert rc == 0

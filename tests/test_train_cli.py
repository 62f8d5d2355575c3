"""`varprop train`: results written atomically and reproducibly, resume equals the uninterrupted run,
and every kind of bad input is one line and exit 2."""
import json

import numpy as np
import pytest

from varprop.cli import main


def _npz(path, n=120, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centers = rng.normal(size=(k, d)) * 2
    X = centers[y] + rng.normal(size=(n, d))
    np.savez(path, X=X, y=y)
    return str(path)


def _train(tmp_path, *extra, name="r"):
    data = _npz(tmp_path / "d.npz")
    out = tmp_path / f"{name}.json"
    rc = main(["train", "--data", data, "--hidden", "8", "--batch-size", "16", "--seed", "3",
               "--json", str(out), *extra])
    return rc, out


def test_json_and_plot_are_complete_and_reproducible(tmp_path, capsys):
    png1, png2 = tmp_path / "a.png", tmp_path / "b.png"
    rc, out = _train(tmp_path, "--epochs", "3", "--plot", str(png1), name="a")
    assert rc == 0
    text = capsys.readouterr().out
    assert "epoch   3/3" in text and "test accuracy" in text
    res = json.loads(out.read_text())
    assert [e["epoch"] for e in res["epochs"]] == [1, 2, 3]
    for e in res["epochs"]:
        assert set(e) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
        assert 0 <= e["train_acc"] <= 1 and e["train_loss"] > 0
    assert 0 <= res["test_acc"] <= 1 and res["diverged"] is False
    assert res["config"]["hidden"] == [8] and res["config"]["n_test"] == 24 and res["config"]["seed"] == 3
    rc, out2 = _train(tmp_path, "--epochs", "3", "--plot", str(png2), name="b")
    res2 = json.loads(out2.read_text())
    strip = (lambda r: [{k: v for k, v in e.items() if k != "seconds"} for e in r["epochs"]])
    assert strip(res) == strip(res2) and res["test_acc"] == res2["test_acc"]
    assert png1.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png1.read_bytes() == png2.read_bytes()  # no dates or versions in the file


def test_resume_repeats_the_uninterrupted_run(tmp_path, capsys):
    ck = tmp_path / "ck.npz"
    rc, full = _train(tmp_path, "--epochs", "4", "--dropout", "0.2", name="full")
    assert rc == 0
    rc, _ = _train(tmp_path, "--epochs", "2", "--dropout", "0.2", "--checkpoint", str(ck), name="half")
    assert rc == 0 and ck.exists()
    rc, resumed = _train(tmp_path, "--epochs", "4", "--resume", str(ck), name="resumed")
    assert rc == 0
    a, b = json.loads(full.read_text()), json.loads(resumed.read_text())
    for ea, eb in zip(a["epochs"], b["epochs"]):
        assert ea["train_loss"] == eb["train_loss"] and ea["val_loss"] == eb["val_loss"]
    assert len(b["epochs"]) == 4 and a["test_acc"] == b["test_acc"]


def test_augmented_copies_grow_the_training_split(tmp_path):
    rc, out = _train(tmp_path, "--epochs", "1", "--augment-copies", "2", "--noise", "0.1")
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["config"]["n_train"] == 3 * (120 - 24 - 10)


def test_preprocess_and_early_stopping_run(tmp_path):
    rc, out = _train(tmp_path, "--epochs", "30", "--preprocess", "whiten", "--early-stopping", "--patience", "2",
                     "--lr", "0.05")
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["config"]["preprocess"] == "whiten"
    assert res["stopped_early"] == (len(res["epochs"]) < 30)


def _one_line_error(capsys, argv, pattern):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("varprop: error:") and "\n" not in err and "Traceback" not in err
    assert pattern in err, err


@pytest.mark.parametrize("extra, pattern", [
    (["--lr", "0"], "--lr must be > 0"),
    (["--lr=-1e-3"], "--lr must be > 0"),
    (["--lr", "fast"], "--lr must be a number"),
    (["--dropout", "1"], "--dropout must be a probability"),
    (["--hidden", "8,x"], "--hidden must be positive integers"),
    (["--optimizer", "lbfgs"], "unknown optimizer"),
    (["--activation", "swishy"], "swishy"),
    (["--preprocess", "zca"], "unknown preprocessing"),
    (["--plot", "curves.pdf"], "--plot must name a .png"),
])
def test_bad_options_exit_2(tmp_path, capsys, extra, pattern):
    data = _npz(tmp_path / "d.npz")
    _one_line_error(capsys, ["train", "--data", data, "--epochs", "1", *extra], pattern)


def test_bad_data_exit_2(tmp_path, capsys):
    _one_line_error(capsys, ["train", "--data", "cifar10"], "unknown dataset 'cifar10'")
    p = tmp_path / "nan.csv"
    p.write_text("1,2,0\n3,nan,1\n4,5,1\n")
    _one_line_error(capsys, ["train", "--data", str(p)], "NaN or infinite feature at row 1")
    p = tmp_path / "neg.csv"
    p.write_text("1,2,0\n3,4,-2\n4,5,1\n")
    _one_line_error(capsys, ["train", "--data", str(p)], "labels out of range")
    np.savez(tmp_path / "m.npz", X=np.zeros((5, 2)), y=np.zeros(4, int))
    _one_line_error(capsys, ["train", "--data", str(tmp_path / "m.npz")], "shape mismatch")
    _one_line_error(capsys, ["train", "--data", f"fashion-mnist:{tmp_path}"], "Fashion-MNIST not found")
    _one_line_error(capsys, ["train", "--data", str(tmp_path / "absent.csv")], "cannot read")


def test_divergence_is_reported_not_crashed(tmp_path, capsys):
    rc, out = _train(tmp_path, "--epochs", "3", "--optimizer", "sgd", "--lr", "1e30")
    assert rc == 3                          # the documented status of a diverged run
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("varprop: training diverged at epoch")
    res = json.loads(out.read_text())   # strict JSON: a NaN loss is written as null
    assert res["diverged"] is True and len(res["epochs"]) < 3 and "diverged" in res["message"]


def test_transfer_freezes_the_lower_layers_and_trains_a_new_head(tmp_path):
    src = tmp_path / "a.npz"
    rc = main(["train", "--data", _npz(tmp_path / "A.npz", k=3, seed=1), "--hidden", "8,8", "--epochs", "2",
               "--checkpoint", str(src)])
    assert rc == 0
    rng = np.random.default_rng(7)          # task B: the same 6 inputs, 2 new classes
    X = rng.normal(size=(100, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    np.savez(tmp_path / "B.npz", X=X, y=y)
    dst = tmp_path / "b.npz"
    out = tmp_path / "b.json"
    for freeze, frozen_layers in (("1", {"0"}), (None, {"0", "1"})):
        extra = ["--freeze", freeze] if freeze else []
        rc = main(["train", "--data", str(tmp_path / "B.npz"), "--transfer", str(src), "--epochs", "3",
                   "--checkpoint", str(dst), "--json", str(out), *extra])
        assert rc == 0
        with np.load(src) as a, np.load(dst) as b:
            for name in ("0", "1"):
                same = np.array_equal(a[f"param/{name}.weight"], b[f"param/{name}.weight"])
                assert same == (name in frozen_layers), (freeze, name)
            assert b["param/2.weight"].shape == (2, 8)      # the new head
        res = json.loads(out.read_text())
        assert sorted(res["config"]["frozen"]) == sorted(f"{n}.{p}" for n in frozen_layers for p in ("weight", "bias"))


def test_transfer_errors(tmp_path, capsys):
    src = tmp_path / "a.npz"
    assert main(["train", "--data", _npz(tmp_path / "A.npz"), "--hidden", "4", "--epochs", "1",
                 "--checkpoint", str(src)]) == 0
    capsys.readouterr()
    _one_line_error(capsys, ["train", "--data", "digits", "--transfer", str(src)], "takes 6 inputs")
    _one_line_error(capsys, ["train", "--data", str(tmp_path / "A.npz"), "--transfer", str(src), "--freeze", "2"],
                    "only 1 hidden layers")
    _one_line_error(capsys, ["train", "--freeze", "1"], "--freeze K needs --transfer")


def test_describe_reads_widths_and_activation_from_the_network():
    from varprop.cli.train import describe
    from varprop.nn.network import build_mlp
    cfg = build_mlp(4, [8, 8, 5], 3, activation="tanh", batchnorm=True, dropout=0.1, residual=True).config()
    assert describe(cfg) == ([8, 8, 5], "tanh")
    assert describe(build_mlp(4, [], 3).config()) == ([], "linear")


def test_init_takes_an_expression_as_simulate_does(tmp_path, capsys):
    """--init "normal(0, sqrt(2/fan_in))" trains exactly as --init he_normal, and resumes from its checkpoint."""
    rc, by_text = _train(tmp_path, "--epochs", "2", "--init", "normal(0, sqrt(2/fan_in))", name="t")
    assert rc == 0
    rc, by_name = _train(tmp_path, "--epochs", "2", "--init", "he_normal", name="n")
    assert rc == 0
    a, b = json.loads(by_text.read_text()), json.loads(by_name.read_text())
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
    ck = tmp_path / "e.ckpt"
    assert _train(tmp_path, "--epochs", "1", "--init", "normal(0, sqrt(2/fan_in))", "--checkpoint", str(ck),
                  name="c")[0] == 0
    rc, resumed = _train(tmp_path, "--epochs", "2", "--resume", str(ck), name="r")
    assert rc == 0 and [e["train_loss"] for e in json.loads(resumed.read_text())["epochs"]] == \
        [e["train_loss"] for e in a["epochs"]]
    capsys.readouterr()

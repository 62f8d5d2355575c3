"""varprop.io.Progress: a tqdm bar on a terminal, nothing when piped; the trainer shows one per epoch."""
import io
import subprocess
import sys

import numpy as np

from varprop.io import Progress


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_piped_is_silent_and_a_terminal_gets_a_bar():
    piped = io.StringIO()
    with Progress(4, "trials", stream=piped) as bar:
        for _ in range(4):
            bar.update(info="ok")
    assert piped.getvalue() == "" and bar.count == 4
    tty = FakeTerminal()
    with Progress(4, "trials", stream=tty) as bar:
        for i in range(4):
            bar.update(info=f"run {i}")
    text = tty.getvalue()
    assert "trials" in text and "4/4" in text and "run 3" in text and "100%" in text


def test_enabled_overrides_the_terminal_check():
    tty = FakeTerminal()
    with Progress(2, "x", enabled=False, stream=tty) as bar:
        bar.update(2)
    assert tty.getvalue() == ""
    piped = io.StringIO()
    with Progress(2, "x", enabled=True, stream=piped) as bar:
        bar.update(2)
    assert "2/2" in piped.getvalue()


def test_a_silent_bar_does_not_import_tqdm():
    code = ("import io, sys\nfrom varprop.io import Progress\n"
            "with Progress(3, 'x', stream=io.StringIO()) as b:\n    b.update(3)\n"
            "print('tqdm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_trainer_fit_shows_one_bar_per_epoch_only_when_asked_or_on_a_terminal(capsys, monkeypatch):
    from varprop.nn import Trainer, build_mlp
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)

    def fit(progress):
        t = Trainer(build_mlp(4, [8], 2, seed=0), "cross_entropy", "adam", batch_size=16, epochs=2,
                    progress=progress)
        t.fit(X, y)
        return capsys.readouterr().err

    assert fit(None) == ""                         # pytest's captured stderr is not a terminal
    err = fit(True)
    assert "epoch 1/2" in err and "epoch 2/2" in err and "4/4" in err and "loss" in err
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    Trainer(build_mlp(4, [8], 2, seed=0), "cross_entropy", "adam", batch_size=16, epochs=1).fit(X, y)
    assert "epoch 1/1" in sys.stderr.getvalue()

"""The explorer's callbacks without a browser: every figure holds what the library computes for the
controls' values, bad input gives one clear line on the page, and the CLI shell validates like the others."""
import io
import math
import subprocess
import sys
from contextlib import redirect_stdout

import numpy as np
import pytest

from varprop.explore import model

pn = pytest.importorskip("panel")
pytest.importorskip("bokeh")

SMALL = dict(width=64, depth=4, batch=8, trials=3)


def _run_cli(*argv):
    from varprop.cli import main
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(list(argv))
    return code, buf.getvalue()


def _release(slider, value):
    """What the page sends when a slider is released: value, then value_throttled."""
    import param
    slider.value = value
    with param.parameterized.edit_constant(slider):
        slider.value_throttled = value


# ---- the signal panel ---------------------------------------------------------------------------------

def test_signal_data_is_the_simulators_result_for_the_same_arguments():
    from varprop.simulate import run
    s = model.SignalSettings(activation="leaky_relu", params={"negative_slope": "0.2"}, init="he_normal",
                             sigma_b2=0.1, dropout=0.1, seed=3, **SMALL)
    d = model.signal_data(s)
    r = run(widths=[64] * 5, batch=8, activation="leaky_relu", params={"negative_slope": "0.2"},
            init="he_normal", trials=3, seed=3, sigma_b2=0.1, dropout=0.1, histograms=True, bins=model.HIST_BINS,
            hist_range=3.0, progress=False)
    assert d["engine"] == r.engine
    for name in ("act_std", "grad_std"):
        np.testing.assert_array_equal(d[name]["sim"], r.mean(name))
        np.testing.assert_allclose(d[name]["hi"] - d[name]["sim"], 2 * r.se(name), rtol=1e-12)
        np.testing.assert_array_equal(d[name]["theory"], r.theory[name])
    assert [h[0] for h in d["hist"]["act"]] == [1, 2, 3, 4]
    np.testing.assert_array_equal(d["hist"]["grad"][2][3], r.histograms["grad"][2])


def test_the_theory_curve_is_mean_field_and_the_simulation_sits_on_it():
    # He init with ReLU keeps q = 2 per layer: act std sqrt(2 * (1/2 - 1/(2 pi))) (mean-field, exact)
    d = model.signal_data(model.SignalSettings(width=256, depth=3, batch=16, trials=6, activation="relu",
                                               init="he_normal"))
    expect = math.sqrt(2 * (0.5 - 1 / (2 * math.pi)))
    np.testing.assert_allclose(d["act_std"]["theory"], expect, rtol=1e-9)
    se = (d["act_std"]["hi"] - d["act_std"]["sim"]) / 2
    assert np.all(np.abs(d["act_std"]["sim"] - expect) < 5 * se + 2e-3 * expect)   # 5 se + finite width


def test_a_request_beyond_the_live_budget_is_refused_at_once_with_the_command_to_run_it():
    import time
    t = time.perf_counter()
    with pytest.raises(ValueError, match=r"2\.0 times the largest run .*varprop simulate --widths 2048x11"):
        model.signal_data(model.SignalSettings(width=2048))
    assert time.perf_counter() - t < 2.0
    ref = model.signal_config(model.LIVE_REFERENCE)
    assert model.signal_work(ref) == model._reference_work("gaussian")   # the reference itself is allowed


@pytest.mark.parametrize("field, value, message", [
    ("init", "__import__('os').system('true')", "not allowed in an initialization"),
    ("init", "normal(0, sqrt(2/fan_in)", "never closed"),
    ("init", "not_an_init", "not_an_init"),
    ("width", 0, "width must be a positive integer"),
    ("batch", 0, "batch must be >= 1"),
    ("dropout", 1.0, "dropout"),
    ("sigma_b2", -1.0, "sigma_b2"),
    ("activation", "nope", "nope"),
])
def test_bad_signal_settings_give_one_line(field, value, message):
    s = model.SignalSettings(**{**SMALL, field: value})
    with pytest.raises((ValueError, TypeError), match=message) as info:
        model.signal_data(s)
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def signal_panel():
    from varprop.explore.signal import SignalPanel
    return SignalPanel(model.SignalSettings(**SMALL))


def test_moving_a_control_redraws_with_the_library_values(signal_panel):
    p = signal_panel
    p.width.value = 32
    expect = model.signal_data(p.settings())
    np.testing.assert_array_equal(p.sources["act_std"].data["sim"], expect["act_std"]["sim"])
    np.testing.assert_array_equal(p.sources["grad_std"].data["theory"], expect["grad_std"]["theory"])
    np.testing.assert_array_equal(p.hist_sources[("act", 0)].data["top"], expect["hist"]["act"][0][3])
    assert "4 layers of 32" in p.info.text and not p.message.visible
    _release(p.depth, 12)
    assert len(p.sources["act_std"].data["layer"]) == 12
    shown = [f for f in p.hist_figures["act"] if f.visible]
    assert len(shown) == model.MAX_PANELS and shown[-1].title.text.startswith("layer 12")
    _release(p.depth, 4)


def test_a_bad_expression_shows_a_message_and_keeps_the_figure(signal_panel):
    p = signal_panel
    before = np.array(p.sources["act_std"].data["sim"])
    p.init.value = "normal(0, fan_in"
    assert p.message.visible and p.message.text.startswith("error: not a valid initialization expression")
    np.testing.assert_array_equal(p.sources["act_std"].data["sim"], before)
    p.init.value = "uniform(-sqrt(6/fan_in), sqrt(6/fan_in))"      # the dense engine for uniform weights
    assert not p.message.visible and "dense engine" in p.info.text
    assert p.preset.value == "uniform(-sqrt(6/fan_in), sqrt(6/fan_in))"
    p.preset.value = "xavier_normal"   # Gaussian weights: the engine auto expects to be faster at this size
    from varprop.simulate.config import Config
    cfg = Config.build(widths=[32] * 5, batch=8, activation=p.activation.value, init="xavier_normal", trials=3)
    assert p.init.value == "xavier_normal" and f"{cfg.engine} engine" in p.info.text


def test_choosing_an_activation_offers_its_parameters(signal_panel):
    p = signal_panel
    p.activation.value = "elu"
    assert p.params.value == "alpha=1" and "elu(alpha=1)" in p.info.text
    p.params.value = "alpha=0"
    assert p.message.visible and "alpha" in p.message.text
    p.params.value = "alpha=2"
    assert "elu(alpha=2)" in p.info.text and not p.message.visible
    p.activation.value = "tanh"
    assert p.params.value == "" and p.info.text.startswith("tanh")


def test_the_budget_message_reaches_the_page(signal_panel):
    p = signal_panel
    p.width.value = 1 << 15
    assert p.message.visible and "largest run this page recomputes live" in p.message.text
    p.width.value = 64
    assert not p.message.visible


# ---- training --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", model.TOY_PROBLEMS)
def test_toy_problems_are_two_balanced_classes_in_the_plane(name):
    X, y = model.toy_problem(name, 200, 0.1, seed=1)
    assert X.shape == (200, 2) and X.dtype == np.float32 and set(np.unique(y)) == {0, 1}
    assert abs(y.mean() - 0.5) < 0.1
    X2, _ = model.toy_problem(name, 200, 0.1, seed=1)
    np.testing.assert_array_equal(X, X2)


def test_toy_problem_checks_its_input():
    with pytest.raises(ValueError, match="unknown toy problem"):
        model.toy_problem("rings")
    with pytest.raises(ValueError, match="noise"):
        model.toy_problem("moons", noise=-1)


def test_he_init_learns_and_zeros_never_break_the_symmetry():
    he = model.TrainingSession(model.TrainSettings(init="he_normal"))
    start = he.initial_loss()
    he.step(15)
    assert he.losses[-1] < 0.25 * start and he.losses[-1] < 0.5 * he.losses[0]
    assert he.distinct_units() == (16, 16)
    zeros = model.TrainingSession(model.TrainSettings(init="zeros"))
    assert zeros.initial_loss() == pytest.approx(math.log(2), abs=1e-12)
    zeros.step(15)
    assert max(abs(v - math.log(2)) for v in zeros.losses) < 5e-3
    assert zeros.distinct_units() == (1, 16)


def test_training_session_checks_its_settings():
    with pytest.raises(ValueError, match="learning rate"):
        model.TrainingSession(model.TrainSettings(lr=0))
    with pytest.raises(ValueError, match="unknown initialization"):
        model.TrainingSession(model.TrainSettings(init="bogus"))
    assert "orthogonal" in model.train_init_options() and "zeros" in model.train_init_options()


def test_training_panel_ticks_epochs_and_resets():
    from varprop.explore.training import TrainingPanel
    p = TrainingPanel()
    assert list(p.loss_source.data["epoch"]) == [0]
    for _ in range(3):
        p.tick()
    assert list(p.loss_source.data["epoch"]) == [0, 1, 2, 3]
    assert list(p.loss_source.data["loss"][1:]) == p.session.losses
    np.testing.assert_array_equal(p.boundary_source.data["image"][0], p.session.boundary())
    p.init.value = "zeros"                       # a control change starts over
    assert list(p.loss_source.data["epoch"]) == [0] and "1 distinct of 16" in p.info.text
    assert "symmetry is never broken" in p.info.text
    p.lr.value = -1.0
    assert p.message.visible and "learning rate" in p.message.text
    p.tick()                                     # nothing to train: no error
    p.lr.value = 0.01
    assert not p.message.visible


# ---- check and gains -------------------------------------------------------------------------------------

def test_check_panel_prints_what_varprop_check_prints():
    from varprop.explore.check import CheckPanel
    p = CheckPanel()
    p.init.value = "uniform(-sqrt(6/(fan_in+fan_out)), sqrt(6/(fan_in+fan_out)))"
    p.activation.value = "tanh"
    p.q.value = "0"
    code, out = _run_cli("check", p.init.value, "--activation", "tanh", "--q", "0")
    assert code == 0
    import html
    assert html.unescape(p.output.text) == "<pre style='font-size: 13px; margin: 0'>" + out.rstrip("\n") + "</pre>"
    assert "fan_in = fan_out" in p.output.text
    p.activation.value = "leaky_relu"
    p.params.value = "negative_slope=0.2"
    assert "leaky_relu(negative_slope=0.2)" in p.output.text


@pytest.mark.parametrize("init, message", [("normal(0, fan_in", "never closed"),
                                           ("exec('1')", "not allowed"),
                                           ("normal(0, 1)", None)])
def test_check_panel_bad_input_is_one_line(init, message):
    from varprop.explore.check import CheckPanel
    p = CheckPanel(init=init)
    if message is None:
        assert not p.message.visible and "verdict" in p.output.text
    else:
        assert p.message.visible and message in p.message.text and p.message.text.startswith("error: ")


@pytest.mark.slow
def test_gain_table_is_varprop_gain_all():
    rows = model.gain_rows()
    code, out = _run_cli("gain", "all")
    lines = out.splitlines()[1:1 + len(rows)]
    assert code == 0 and len(rows) == len(lines)
    for r, line in zip(rows, lines):
        assert line.startswith(r["activation"] + " ")
        rest = line[len(r["activation"]):].split()
        # columns: forward, backward, E[phi^2], E[phi'^2], method, torch, difference
        assert rest[:2] == [r["forward"], r["backward"]] and rest[4] == r["method"].split()[0]
        assert rest[-1] == r["difference"] if r["difference"] else rest[-1] == "raises"


# ---- the command line ------------------------------------------------------------------------------------

def test_explore_is_a_subcommand_with_its_options():
    from varprop.cli import build_parser
    args = build_parser().parse_args(["explore", "--no-browser", "--port", "5100"])
    assert (args.port, args.host, args.no_browser) == (5100, "127.0.0.1", True)


@pytest.mark.parametrize("argv, message", [(["--port", "70000"], "port must be"), (["--port", "0"], "port must be"),
                                           (["--host", "a b"], "not a host name"),
                                           (["--port", "x"], "invalid int")])
def test_explore_refuses_bad_addresses(argv, message, capsys):
    from varprop.cli import main
    assert main(["explore", "--no-browser", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("varprop: error:") and message in err and err.count("\n") == 1


def test_without_panel_explore_says_how_to_install_it(tmp_path):
    code = ("import sys\nsys.modules['panel'] = None\nfrom varprop.cli import main\n"
            "sys.exit(main(['explore', '--no-browser']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == 'varprop: error: varprop explore needs Panel and Bokeh: pip install "varprop[explore]"'


def test_importing_the_explorer_loads_no_web_framework(tmp_path):
    code = "import sys, varprop.explore, varprop.cli.explore\nprint('panel' in sys.modules, 'bokeh' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True,
                         timeout=120)
    assert out.stdout.split() == ["False", "False"]


def test_app_returns_a_panel_object():
    page = __import__("varprop.explore", fromlist=["app"]).app()
    assert isinstance(page, pn.viewable.Viewable)


def test_in_a_notebook_each_redraw_is_pushed_to_the_page():
    """A comm-rendered view (as Jupyter renders it): a training tick, which changes no widget, still sends
    the new loss and boundary to the front end."""
    from bokeh.document import Document
    from panel.io.notebook import render_mimebundle
    from pyviz_comms import Comm

    from varprop.explore.training import TrainingPanel

    class RecordingComm(Comm):
        def __init__(self):
            super().__init__()
            self._comm = True
            self.sent = []

        def init(self):
            pass

        def send(self, data=None, metadata=None, buffers=()):
            self.sent.append(data)

        def close(self):
            pass

    p = TrainingPanel()
    doc, comm = Document(), RecordingComm()
    render_mimebundle(p.view()._render_model(doc, comm), doc, comm)
    before = len(comm.sent)
    p.tick()
    sent = [m for m in comm.sent[before:] if isinstance(m, str)]
    assert any(p.loss_source.id in m and "ColumnsStreamed" in m for m in sent)
    assert any("epoch 1: training loss" in m for m in sent)

"""The explorer in a real headless Chromium: the page loads cleanly, typing into a control redraws the figure
with what the library computes, training runs epoch by epoch, bad input shows a message.

Needs Debian's chromium and chromium-driver (``apt-get install -y chromium chromium-driver``) and
Selenium; skipped without them. Nothing downloads a browser or a driver: Selenium is pointed at
/usr/bin/chromedriver and runs offline. With ``VARPROP_SCREENSHOTS=DIR`` each panel is saved as
DIR/signal.png, DIR/training.png and DIR/check.png.
"""
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("panel")
pytest.importorskip("selenium")

from varprop.explore import model  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
    pytest.skip("needs Debian's chromium and chromium-driver", allow_module_level=True)

pytestmark = pytest.mark.slow

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1150")

DEEP = """
window.vpDeep = function (sel, root) {
  root = root || document;
  const hit = root.querySelector(sel);
  if (hit) return hit;
  for (const el of root.querySelectorAll('*')) {
    if (el.shadowRoot) { const h = vpDeep(sel, el.shadowRoot); if (h) return h; }
  }
  return null;
};
window.vpModel = function (name) { return Bokeh.documents[0].get_model_by_name(name); };
"""


def _die_with_parent():
    """Linux: the server gets SIGTERM if the test process dies without its teardown."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)    # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    where = tmp_path_factory.mktemp("explore")
    log = open(where / "server.log", "w")      # a file, not a pipe nobody reads (a full pipe blocks the server)
    proc = subprocess.Popen([sys.executable, "-m", "varprop", "explore", "--port", str(port), "--no-browser"],
                            cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"varprop explore exited: {(where / 'server.log').read_text()}")
            if time.time() > deadline:
                proc.kill()
                pytest.fail("varprop explore did not answer within 120 s")
            time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    errors = [l for l in (where / "server.log").read_text().splitlines() if "Traceback" in l or " ERROR" in l]
    assert errors == [], "the server logged errors: see " + str(where / "server.log")


@pytest.fixture(scope="module")
def page(server):
    os.environ["SE_OFFLINE"] = "true"          # Selenium Manager must never fetch a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    for flag in FLAGS:
        opts.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="varprop-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    driver.set_script_timeout(60)
    try:
        driver.get(server)
        _wait(driver, "return typeof Bokeh !== 'undefined' && Bokeh.documents.length > 0 && "
                      "Bokeh.documents[0].get_model_by_name('signal_info') !== null && "
                      "Bokeh.documents[0].get_model_by_name('signal_info').text.length > 0", 120)
        driver.execute_script(DEEP)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, script, timeout=60.0, *args):
    deadline = time.time() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value:
            return value
        if time.time() > deadline:
            state = driver.execute_script("return ['signal_message', 'signal_info', 'train_message', 'train_info', "
                                          "'check_message'].map(n => n + ': ' + vpModel(n).text)")
            raise AssertionError(f"timed out after {timeout} s waiting for: {script}; page: {state}")
        time.sleep(0.2)


def _inner(driver, css, tag):
    """The real <input>/<select>/<button> of the widget whose css class is ``css`` (inside its shadow root)."""
    el = driver.execute_script(f"const h = vpDeep('.{css}'); return h && h.shadowRoot.querySelector('{tag}');")
    assert el is not None, css
    return el


def _type(driver, css, text):
    el = _inner(driver, css, "input")
    from selenium.webdriver.common.keys import Keys
    old = driver.execute_script("return arguments[0].value", el)
    # delete the old text key by key, then type: the value is sent once, on Enter
    el.send_keys(Keys.END, *[Keys.BACKSPACE] * len(old), text, Keys.ENTER)


def _choose(driver, css, value):
    from selenium.webdriver.support.ui import Select
    Select(_inner(driver, css, "select")).select_by_value(value)


def _click(driver, css):
    _inner(driver, css, "button").click()


def _tab(driver, title):
    tab = driver.execute_script(
        "const t = vpDeep('.bk-tab'); for (const el of t.parentNode.querySelectorAll('.bk-tab')) "
        "{ if (el.textContent.trim() === arguments[0]) return el; } return null;", title)
    tab.click()


def _text(driver, name):
    return driver.execute_script("return vpModel(arguments[0]).text", name)


def _column(driver, source, col):
    return np.array(driver.execute_script("return Array.from(vpModel(arguments[0]).data[arguments[1]])",
                                          source, col), dtype=float)


def _screenshot(driver, name):
    out = os.environ.get("VARPROP_SCREENSHOTS")
    if out:
        os.makedirs(out, exist_ok=True)
        time.sleep(1.0)                       # let the last redraw reach the canvas
        driver.save_screenshot(os.path.join(out, f"{name}.png"))


def _severe(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_page_loads_without_console_errors(page):
    assert _severe(page) == []
    assert "10 layers of 1024" in _text(page, "signal_info")
    expect = model.signal_data(model.SignalSettings())
    np.testing.assert_allclose(_column(page, "act_std", "sim"), expect["act_std"]["sim"], rtol=1e-12)


def test_typing_a_width_and_choosing_an_activation_redraw_with_the_library_values(page):
    _type(page, "vp-signal-width", "256")
    _wait(page, "return vpModel('signal_info').text.includes('layers of 256')")
    expect = model.signal_data(model.SignalSettings(width=256))
    np.testing.assert_allclose(_column(page, "act_std", "sim"), expect["act_std"]["sim"], rtol=1e-12)
    np.testing.assert_allclose(_column(page, "grad_std", "sim"), expect["grad_std"]["sim"], rtol=1e-12)
    np.testing.assert_allclose(_column(page, "act_std", "theory"), expect["act_std"]["theory"], rtol=1e-12)
    np.testing.assert_allclose(_column(page, "hist_act_0", "top"), expect["hist"]["act"][0][3])

    _choose(page, "vp-signal-activation", "relu")
    _wait(page, "return vpModel('signal_info').text.startsWith('relu,')")
    _choose(page, "vp-signal-preset", "he_normal")
    _wait(page, "return vpModel('signal_info').text.includes('init he_normal')")
    expect = model.signal_data(model.SignalSettings(width=256, activation="relu", init="he_normal"))
    np.testing.assert_allclose(_column(page, "act_std", "sim"), expect["act_std"]["sim"], rtol=1e-12)
    np.testing.assert_allclose(_column(page, "act_std", "theory"), math.sqrt(1 - 1 / math.pi), rtol=1e-9)

    _choose(page, "vp-signal-activation", "tanh")
    _choose(page, "vp-signal-preset", "normal(0, 0.01)")      # the lecture's collapse
    _type(page, "vp-signal-width", "1024")
    _wait(page, "const t = vpModel('signal_info').text; return t.includes('layers of 1024') && "
                "t.includes('init normal(0, 0.01)') && t.startsWith('tanh')")
    _screenshot(page, "signal")
    assert _severe(page) == []


def test_a_bad_expression_and_an_oversized_run_show_a_clear_message(page):
    _type(page, "vp-signal-init", "normal(0, sqrt(2/fan_in)")
    msg = _wait(page, "const m = vpModel('signal_message'); return m.visible && m.text.includes('never') && m.text")
    assert msg.startswith("error: not a valid initialization expression")
    _type(page, "vp-signal-init", "normal(0, sqrt(1/fan_in))")
    _wait(page, "return !vpModel('signal_message').visible")
    _type(page, "vp-signal-width", "4096")
    msg = _wait(page, "const m = vpModel('signal_message'); return m.visible && m.text.includes('4096') && m.text")
    assert "largest run this page recomputes live" in msg and "varprop simulate --widths 4096x11" in msg
    _type(page, "vp-signal-width", "1024")
    _wait(page, "return !vpModel('signal_message').visible")


def _train(page, epochs):
    _click(page, "vp-train-start")
    _wait(page, f"return vpModel('train_loss').data.epoch.length > {epochs}", 120)
    _click(page, "vp-train-pause")
    time.sleep(0.5)
    return _column(page, "train_loss", "loss")


def test_training_loss_falls_for_he_and_stays_flat_for_zeros(page):
    _tab(page, "Training on a toy problem")
    _choose(page, "vp-train-init", "he_normal")
    loss = _train(page, 8)
    assert loss[-1] < 0.6 * loss[0], loss
    _screenshot(page, "training")
    _choose(page, "vp-train-init", "zeros")
    _wait(page, "return vpModel('train_loss').data.epoch.length === 1")
    loss = _train(page, 8)
    assert np.all(np.abs(loss - math.log(2)) < 5e-3), loss
    assert "1 distinct of 16 first-layer units" in _text(page, "train_info")
    _type(page, "vp-train-lr", "0")
    msg = _wait(page, "const m = vpModel('train_message'); return m.visible && m.text.includes('rate') && m.text")
    assert msg.startswith("error: the learning rate must be")
    _type(page, "vp-train-lr", "0.01")
    _choose(page, "vp-train-init", "he_normal")
    assert _severe(page) == []


def test_check_panel_prints_varprop_check_and_the_gain_table(page):
    _tab(page, "Check an init")
    _type(page, "vp-check-init", "uniform(-sqrt(6/(fan_in+fan_out)), sqrt(6/(fan_in+fan_out)))")
    _choose(page, "vp-check-activation", "tanh")
    _type(page, "vp-check-q", "0")
    _wait(page, "return vpModel('check_output').text.includes('small-signal') && "
                "vpModel('check_output').text.includes('tanh')")
    expect = model.check_lines("uniform(-sqrt(6/(fan_in+fan_out)), sqrt(6/(fan_in+fan_out)))", "tanh", "", "0")
    shown = page.execute_script("const d = document.createElement('div'); d.innerHTML = vpModel('check_output').text;"
                                "return d.textContent")
    assert shown.split("\n") == expect
    _type(page, "vp-check-init", "normal(0, fan_in")
    msg = _wait(page, "const m = vpModel('check_message'); return m.visible && m.text.includes('closed') && m.text")
    assert msg.startswith("error: not a valid initialization expression")
    _type(page, "vp-check-init", "normal(0, sqrt(2/fan_in))")
    _choose(page, "vp-check-activation", "relu")
    _type(page, "vp-check-q", "1")
    _wait(page, "const t = vpModel('check_output').text; return !vpModel('check_message').visible && "
                "t.includes('relu') && t.includes('q                1\\n')")
    table = _wait(page, "const t = vpModel('gain_table').text; return t.includes('gelu_tanh') && t", 180)
    assert "5/3" in table and "raises" in table
    _screenshot(page, "check")
    assert _severe(page) == []

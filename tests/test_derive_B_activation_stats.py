"""The activation-stats derivation (derive/activation_stats.py): options, predictions and a Monte Carlo check."""
import json
import math

import numpy as np
import pytest

from varprop.derive.derivations import activation_stats as st
from varprop.derive.mean_field import predict


def _results(d, digits=15):
    return {k: v for k, v in d.to_dict(digits)["result"].items() if k != "latex"}


def test_relu_he_closed_form():
    from varprop.nn.init import get as get_init
    d = st.build(widths="100x4", activation="relu", init=get_init("he_normal"))
    assert d.verified, d.problems()
    r = _results(d)
    # He: q = 2 at every layer, std(relu(h)) = sqrt(q/2 - q/(2 pi)), gradients keep their std
    for layer in (1, 2, 3):
        assert float(r[f"pre_q_{layer}"]) == pytest.approx(2.0, rel=1e-12)
        assert float(r[f"act_std_{layer}"]) == pytest.approx(math.sqrt(1 - 1 / math.pi), rel=1e-12)
        assert float(r[f"grad_std_{layer}"]) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("init, expected", [
    ("he_normal", lambda fi, fo: 2 / fi), ("xavier_uniform", lambda fi, fo: 2 / (fi + fo)),
    ("normal(0, sqrt(1/fan_in))", lambda fi, fo: 1 / fi), ("0.02", lambda fi, fo: 0.02), (0.5, lambda fi, fo: 0.5),
    ((0.5, "1/4"), lambda fi, fo: {10: 0.5, 20: 0.25}[fi]),
])
def test_weight_variance_sources(init, expected):
    from varprop.activations import get
    from varprop.cli.derive import _init
    ws = [10, 20, 5]
    # names resolve in the command-line layer (derive/ never imports nn/); the rest pass through unchanged
    v, _ = st.weight_variances(_init(init) if isinstance(init, str) else init, ws, get("tanh"))
    assert v == pytest.approx([expected(10, 20), expected(20, 5)], rel=1e-12)


def test_default_init_is_variance_preserving():
    d = st.build(widths="64x5", activation="selu")
    r = _results(d)
    for layer in range(1, 5):       # SELU's fixed point: mean 0, std 1 at every layer under LeCun
        assert abs(float(r[f"act_mean_{layer}"])) < 1e-12
        assert float(r[f"act_std_{layer}"]) == pytest.approx(1.0, rel=1e-12)


def test_parse_widths():
    assert st.parse_widths("4x3") == (4, 4, 4)
    assert st.parse_widths([3, 5]) == (3, 5)
    for bad in ("4", "0x3", "ax3", [4], [4, True]):
        with pytest.raises((ValueError, TypeError)):
            st.parse_widths(bad)


def test_bad_init():
    from varprop.activations import get
    with pytest.raises(ValueError, match="nonzero-mean"):
        st.weight_variances("normal(1, 0.1)", [4, 4], get("relu"))
    with pytest.raises(ValueError, match="names an initializer"):
        st.weight_variances("he_normal", [4, 4], get("relu"))
    with pytest.raises(ValueError):
        st.weight_variances("-0.1", [4, 4], get("relu"))
    with pytest.raises(ValueError, match="2 weight variances for 1 layers"):
        st.weight_variances([0.1, 0.2], [4, 4], get("relu"))
    with pytest.raises(TypeError):
        st.weight_variances(["a"], [4, 4], get("relu"))


def test_derive_never_imports_nn():
    # the architecture's arrows: core <- derive <- nn/init; a fresh interpreter builds the derivation
    # from a distribution and from per-layer variances without loading any nn module
    import subprocess
    import sys
    code = ("import sys; from varprop.derive.derivations import activation_stats as st; "
            "st.build(widths='8,8,8', activation='tanh', init='normal(0, sqrt(1/fan_in))'); "
            "st.build(widths='8,8,8', activation='tanh', init=[0.1, 0.2]); "
            "print(sorted(m for m in sys.modules if m.startswith('varprop.nn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_unknown_initializer(capsys):
    from varprop.cli import main
    assert main(["derive", "activation-stats", "--widths", "8,8", "--init", "nope_init"]) == 2
    err = capsys.readouterr().err
    assert "unknown initializer 'nope_init'" in err and "Traceback" not in err


def test_lecture_experiment_collapse_by_monte_carlo():
    # the lecture's tanh network with W = 0.01 randn collapses; theory and a NumPy Monte Carlo agree on layer 1
    # exactly (inputs on the sphere make h_1 exactly Gaussian) and within the O(1/n) bias deeper
    ws = [256] * 5
    d = st.build(widths=ws, activation="tanh", init="normal(0, 0.01)")
    r = _results(d)
    theory = np.array([float(r[f"act_std_{layer}"]) for layer in range(1, 5)])
    # tanh is nearly linear at this scale: each layer multiplies the std by about sqrt(n Var(w)) = 0.16
    assert np.allclose(theory[1:] / theory[:-1], np.sqrt(256 * 1e-4), rtol=0.01)
    rng = np.random.default_rng(51)
    trials, batch = 30, 16
    stds = np.empty((trials, 4))
    for t in range(trials):
        x = rng.standard_normal((batch, 256))
        x *= np.sqrt(256) / np.linalg.norm(x, axis=1, keepdims=True)
        for layer in range(4):
            x = np.tanh(x @ (rng.standard_normal((256, 256)) * 0.01).T)
            stds[t, layer] = x.std()
    mean, se = stds.mean(0), stds.std(0, ddof=1) / np.sqrt(trials)
    assert abs(mean[0] - theory[0]) <= 5 * se[0]
    assert np.all(np.abs(mean - theory) <= 5 * se + 2 / 256 * theory)


def test_matches_predict():
    d = st.build(widths=[30, 40, 50], activation="maxout", params={"k": "3"}, init="0.02", sigma_b2="0.1")
    assert d.verified, d.problems()
    p = predict([30, 40, 50], "maxout", 0.02, sigma_b2=0.1, params={"k": 3})
    r = _results(d)
    assert float(r["act_std_2"]) == pytest.approx(float(p.act_std[1]), rel=1e-14)
    assert float(r["grad_std_1"]) == pytest.approx(float(p.grad_std[0]), rel=1e-14)


def test_cli(capsys):
    from varprop.cli import main
    code = main(["derive", "activation-stats", "--widths", "32,32,32", "--activation", "tanh",
                 "--init", "xavier_normal", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    doc = out[0] if isinstance(out, list) else out
    assert doc["verified"] and {"act_std_1", "grad_std_2", "pre_q_2"} <= set(doc["result"])


def test_doctests():
    import doctest
    result = doctest.testmod(st)
    assert result.attempted > 0 and result.failed == 0


def test_depth_ceiling_is_refused_before_any_work():
    import time
    t = time.perf_counter()
    with pytest.raises(ValueError, match="100000 weight layers exceed the ceiling of 1000"):
        st.build(widths="64x100001")
    with pytest.raises(ValueError, match="exceed the ceiling of 1000"):
        st.build(widths=[8] * 1002)
    assert time.perf_counter() - t < 2


def test_an_exploding_signal_is_named_at_its_layer():
    from varprop.derive.mean_field import predict
    # q_l = (10^6)^l: E[relu(h)^2] = q/2 leaves float64 at layer 52 (1.8e308 ~ 10^308.3)
    with pytest.raises(ValueError, match=r"overflows at layer 5[1-4] of 129"):
        st.build(widths="1000000x130", init="normal(0, 1)")
    with pytest.raises(ValueError, match="overflows at layer"):
        predict([10 ** 6] * 60, "relu", 1.0)


def test_parse_widths_bounds_the_list_before_building_it():
    from varprop.derive.mean_field import parse_widths
    with pytest.raises(ValueError, match="999999999 weight layers exceed the ceiling of 1000000"):
        parse_widths("64x1000000000")
    with pytest.raises(ValueError, match="exceed the ceiling of 3"):
        parse_widths("4,4,4,4,4", max_layers=3)
    assert parse_widths("4x4", max_layers=3) == (4, 4, 4, 4)

"""`varprop gain all`: values in the value columns, the method in its own, and the on-disk moment cache."""
import json

import mpmath as mp
import pytest

from varprop.cli.gain import table_lines
from varprop.derive.gains import gains
from varprop.derive.moments import MomentCache, moment


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VARPROP_CACHE_DIR", str(tmp_path))
    MomentCache._instances.clear()
    yield tmp_path
    MomentCache._instances.clear()


def _columns(line):
    # activation, forward, backward, E[phi^2], E[phi'^2], then the method (one or three words) and torch
    parts = line.split()
    return parts[0], parts[1:3], parts[3:5], " ".join(parts[5:])


def test_value_columns_hold_the_moments_and_the_method_has_its_own_column(cache_dir):
    rows = [gains(name, 1, 15, cache=True) for name in ("relu", "tanh", "gelu")]
    lines = table_lines(rows, 1, 15)
    assert lines[0].split()[:6] == ["activation", "forward", "gain", "backward", "gain", "E[phi^2]"]
    assert "E[phi'^2]" in lines[0] and "method" in lines[0]
    body = {_columns(line)[0]: _columns(line) for line in lines[1:4]}
    for name in ("relu", "tanh", "gelu"):
        _, gain_cols, moment_cols, rest = body[name]
        second, deriv2 = (mp.mpf(c) for c in moment_cols)
        # the printed values are the moments, computed independently here without the cache
        assert second == mp.mpf(moment(name, "second").value_str())
        assert deriv2 == mp.mpf(moment(name, "deriv2").value_str())
        assert mp.mpf(gain_cols[0]) ** 2 * second == pytest.approx(1, rel=1e-13)
        assert mp.mpf(gain_cols[1]) ** 2 * deriv2 == pytest.approx(1, rel=1e-13)
    assert body["relu"][2] == ["0.5", "0.5"] and body["relu"][3].startswith("closed form sqrt(2)")
    assert body["tanh"][2] == ["0.394294490397841", "0.464402902448268"]
    assert body["tanh"][3].startswith("quadrature 5/3")
    # gelu: E[phi^2] closes (Stein's identity), E[phi'^2] does not
    assert body["gelu"][3].startswith("closed form / quadrature raises")
    assert "method:" in lines[-1] and "closed form" in lines[-1]


def test_a_cached_moment_is_the_computed_one_bit_for_bit(cache_dir):
    first = {k: moment("rrelu", k, 1, 30, cache=True) for k in ("mean", "second")}
    assert len(list(cache_dir.glob("moments-*.json"))) == 1
    MomentCache._instances.clear()                  # a new process: only the file remains
    again = {k: moment("rrelu", k, 1, 30, cache=True) for k in ("mean", "second")}
    for k in first:
        assert again[k].value == first[k].value and again[k].method == first[k].method == "closed form"
        assert again[k].digits == first[k].digits
        assert again[k].closed_form is None         # the expression is not stored ...
    # ... but a gain built from cached moments still derives it on request
    g = gains("relu", cache=True)
    MomentCache._instances.clear()
    assert str(gains("relu", cache=True).closed_forward()) == "sqrt(2)" == str(g.closed_forward())
    # exact rationals survive: (1 + m^2)/2 with m = (1/8 + 1/3)/2 = 11/48
    assert again["second"].value_str(30) == "0.526258680555555555555555555556"


def test_a_damaged_cache_file_is_ignored(cache_dir):
    m = moment("tanh", "second", cache=True)
    (path,) = cache_dir.glob("moments-*.json")
    path.write_text("{not json")
    MomentCache._instances.clear()
    assert moment("tanh", "second", cache=True).value_str() == m.value_str() == "0.394294490397841"
    data = json.loads(path.read_text())            # rewritten whole
    assert any(k.startswith("tanh()|second") for k in data)
    path.write_text(json.dumps({next(iter(data)): {"value": "bogus"}}))
    MomentCache._instances.clear()
    assert moment("tanh", "second", cache=True).value_str() == "0.394294490397841"


def test_an_unwritable_cache_folder_only_means_nothing_is_kept(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("VARPROP_CACHE_DIR", str(blocker / "below"))
    MomentCache._instances.clear()
    try:
        assert moment("relu", "second", cache=True).value_str() == "0.5"
    finally:
        MomentCache._instances.clear()

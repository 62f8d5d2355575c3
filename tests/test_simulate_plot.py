"""The simulation figure: histogram ranges from the data, log counts under a spike, print resolution."""
import numpy as np
import pytest

from varprop.simulate import run
from varprop.simulate.plot import DPI, figure, log_counts, save_plot

# one linear layer fed inputs near 1: h = sum of 21 weights x_j ~ N(21 * 0.5, 64), about N(10.5, 8^2)


@pytest.fixture(scope="module")
def shifted():
    return run(widths=[21, 64], batch=16, activation="linear", init="normal(0.5, 8/sqrt(21))", trials=4, seed=0,
               inputs=1 + 0.05 * np.random.default_rng(0).standard_normal((16, 21)), histograms=True)


def _draw(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig).draw()
    return fig


def test_a_layer_of_mean_10_5_and_std_8_is_binned_and_drawn_over_its_data(shifted):
    m, s = shifted.mean("act_mean")[0], shifted.mean("act_std")[0]
    assert m == pytest.approx(10.5, abs=4 * 8 / np.sqrt(4 * 64)) and s == pytest.approx(8, rel=0.15)
    edges = np.asarray(shifted.hist_edges["act"])[0]
    assert edges[0] <= 10.5 - 2.5 * 8 and edges[-1] >= 10.5 + 2.5 * 8
    counts = shifted.histograms["act"][0]
    assert counts.sum() >= 0.99 * 4 * 16 * 64           # the later trials' values fall in the first trial's bins
    fig = _draw(figure(shifted))
    act_ax = fig.axes[0]
    lo, hi = act_ax.get_xlim()
    assert lo <= 10.5 - 2.5 * 8 and hi >= 10.5 + 2.5 * 8
    assert "spans its layer's values" in fig._suptitle.get_text()


def test_the_histogram_edges_are_in_the_json_per_layer(shifted):
    d = shifted.to_dict()["histograms"]["act"]
    assert len(d["edges"]) == 1 and len(d["edges"][0]) == len(d["counts"][0]) + 1


def test_relu_spike_gets_a_log_count_axis_and_gaussian_gradients_do_not():
    r = run(widths=[64, 64, 64], batch=16, activation="relu", init="he_normal", trials=2, seed=0, histograms=True)
    fig = _draw(figure(r))
    act_axes, grad_axes = fig.axes[0:4:2], fig.axes[1:4:2]     # panels are added act, grad per column
    assert all(ax.get_yscale() == "log" for ax in act_axes)
    assert all(ax.get_yscale() == "linear" for ax in grad_axes)
    assert log_counts([1000, 30, 20, 10]) and not log_counts([100, 90, 40, 5]) and not log_counts([7])


def test_depth_axis_has_integer_ticks_and_the_legend_sits_off_the_data(shifted):
    r = run(widths="32x6", batch=8, activation="tanh", init="xavier_normal", trials=2, seed=0)
    fig = _draw(figure(r))
    ax = fig.axes[-1]
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1


def test_a_fixed_range_is_honoured_and_stated():
    r = run(widths=[16, 16, 16], batch=8, activation="tanh", init="xavier_normal", trials=2, seed=0,
            histograms=True, hist_range=2.0)
    edges = np.asarray(r.hist_edges["act"])
    assert np.all(edges[:, 0] == -2.0) and np.all(edges[:, -1] == 2.0)
    assert "share [-2, 2]" in figure(r)._suptitle.get_text()


def test_png_is_written_at_print_resolution(shifted, tmp_path):
    path = save_plot(shifted, tmp_path / "f.png")
    data = open(path, "rb").read()
    width = int.from_bytes(data[16:20], "big")
    assert DPI >= 200
    assert width == round(figure(shifted).get_figwidth() * DPI)

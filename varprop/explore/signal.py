"""Panel 1, the signal at initialization: controls -> :func:`varprop.explore.model.signal_data` -> figures.

Lecture-style histograms of the activations and gradients of each layer (up to MAX_PANELS layers), and the
activation and gradient std against depth (trial mean +- 2 standard errors) with derive/mean_field's
curve. Every control change recomputes the whole run; a request beyond the live budget is refused with a
message that gives the equivalent ``varprop simulate`` command.
"""
from __future__ import annotations

import time

import numpy as np

from . import model
from .widgets import clear, div, redraws, show_error

__all__ = ["SignalPanel", "INIT_PRESETS"]

# what the init menu offers; the text box takes any initializer name or expression
INIT_PRESETS = ("xavier_normal", "he_normal", "lecun_normal", "normal(0, 0.01)", "normal(0, 1)",
                "normal(0, sqrt(2/fan_in))", "xavier_uniform", "he_uniform",
                "uniform(-sqrt(6/fan_in), sqrt(6/fan_in))", "orthogonal", "zeros")

_COLORS = {"act": "#1f77b4", "grad": "#ff7f0e"}


def _param_text(act_name: str) -> str:
    from varprop.activations import fmt, lookup
    return ", ".join(f"{p.name}={fmt(p.default)}" for p in lookup(act_name).params)


class SignalPanel:
    """The widgets, the Bokeh figures and their data sources; ``update()`` recomputes from the widgets."""

    def __init__(self, settings: model.SignalSettings | None = None):
        import panel as pn
        from varprop.activations import names
        s = settings or model.SignalSettings()
        self.activation = pn.widgets.Select(label="activation", options=names(), value=s.activation,
                                            css_classes=["vp-signal-activation"], width=150)
        self.params = pn.widgets.TextInput(label="activation parameters (name=value, ...)",
                                           value=_param_text(s.activation), css_classes=["vp-signal-params"],
                                           width=260)
        self.preset = pn.widgets.Select(label="init preset", options=["(typed)"] + list(INIT_PRESETS),
                                        value=s.init if s.init in INIT_PRESETS else "(typed)", width=230,
                                        css_classes=["vp-signal-preset"])
        self.init = pn.widgets.TextInput(label="init: a name or a distribution in fan_in, fan_out", value=s.init,
                                         css_classes=["vp-signal-init"], width=330)
        self.width = pn.widgets.IntInput(label="width", value=s.width, start=1, step=64, width=100,
                                         css_classes=["vp-signal-width"])
        self.depth = pn.widgets.IntSlider(label="depth (weight layers)", value=s.depth, start=1, end=50,
                                          width=200, css_classes=["vp-signal-depth"])
        self.batch = pn.widgets.IntInput(label="batch", value=s.batch, start=1, width=80,
                                         css_classes=["vp-signal-batch"])
        self.trials = pn.widgets.IntInput(label="trials", value=s.trials, start=1, width=80,
                                          css_classes=["vp-signal-trials"])
        self.sigma_b2 = pn.widgets.FloatInput(label="sigma_b^2", value=s.sigma_b2, start=0.0, step=0.05, width=90,
                                              css_classes=["vp-signal-sigma-b2"])
        self.dropout = pn.widgets.FloatSlider(label="dropout (drop probability)", value=s.dropout, start=0.0,
                                              end=0.9, step=0.05, width=200, css_classes=["vp-signal-dropout"])
        self.batchnorm = pn.widgets.Checkbox(label="batch norm", value=s.batchnorm,
                                             css_classes=["vp-signal-batchnorm"])
        self.residual = pn.widgets.Checkbox(label="residual", value=s.residual, css_classes=["vp-signal-residual"])
        self.seed = pn.widgets.IntInput(label="seed", value=s.seed, start=0, width=80, css_classes=["vp-signal-seed"])
        self.message = div("signal_message", visible=False)
        self.info = div("signal_info")
        self._build_figures()
        self.activation.param.watch(self._on_activation, "value")
        self.preset.param.watch(self._on_preset, "value")
        for w in (self.params, self.init, self.width, self.batch, self.trials, self.sigma_b2, self.batchnorm,
                  self.residual, self.seed):
            w.param.watch(self._on_change, "value")
        for w in (self.depth, self.dropout):
            w.param.watch(self._on_change, "value_throttled")
        self.last_ms = None
        self.update()

    # -- figures ----------------------------------------------------------------------------------------------
    def _build_figures(self):
        from bokeh.models import ColumnDataSource, Legend, Whisker
        from bokeh.plotting import figure
        empty = {"layer": [], "sim": [], "lo": [], "hi": [], "lo_pos": [], "theory": []}
        self.sources = {k: ColumnDataSource(dict(empty), name=k) for k in ("act_std", "grad_std")}
        self.std_figures = {}
        for scale in ("linear", "log"):
            f = figure(height=300, width=760, y_axis_type=scale, x_axis_label="layer", y_axis_label="std",
                       title="std against depth: simulated (dots, +-2 standard errors) and mean-field theory "
                             "(lines)", name=f"std_{scale}", tools="pan,wheel_zoom,box_zoom,reset,save")
            items = []
            for key, label in (("act_std", "activation std"), ("grad_std", "gradient std")):
                color = _COLORS[key.split("_")[0]]
                src = self.sources[key]
                dots = f.scatter("layer", "sim", source=src, size=7, color=color)
                f.add_layout(Whisker(base="layer", upper="hi", lower="lo" if scale == "linear" else "lo_pos",
                                     source=src, line_color=color))
                line = f.line("layer", "theory", source=src, line_width=2, color=color, alpha=0.7)
                items += [(f"{label} (simulated)", [dots]), (f"{label} (mean-field theory)", [line])]
            f.add_layout(Legend(items=items, label_text_font_size="8pt"), "right")
            self.std_figures[scale] = f
        self.hist_sources = {}
        self.hist_figures = {}
        for kind in ("act", "grad"):
            row = []
            for k in range(model.MAX_PANELS):
                src = ColumnDataSource({"left": [], "right": [], "top": []}, name=f"hist_{kind}_{k}")
                f = figure(height=150, width=140, toolbar_location=None, title="", name=f"hist_fig_{kind}_{k}")
                f.quad(left="left", right="right", top="top", bottom=0, source=src, color=_COLORS[kind])
                f.yaxis.visible = False
                f.title.text_font_size = "8pt"
                f.xaxis.major_label_text_font_size = "7pt"
                self.hist_sources[(kind, k)] = src
                row.append(f)
            self.hist_figures[kind] = row

    # -- callbacks -------------------------------------------------------------------------------------------
    def _on_activation(self, event):
        text = _param_text(event.new)
        if text != self.params.value:
            self.params.value = text      # its watcher recomputes, with the new activation's parameters
        else:
            self.update()

    def _on_preset(self, event):
        if event.new != "(typed)" and event.new != self.init.value:
            self.init.value = event.new

    def _on_change(self, event):
        if event.obj is self.init and event.new != self.preset.value:
            self.preset.value = event.new if event.new in INIT_PRESETS else "(typed)"
        self.update()

    def settings(self) -> model.SignalSettings:
        """The widgets' values as SignalSettings (parameters parsed as ``--param`` items)."""
        return model.SignalSettings(width=self.width.value, depth=self.depth.value, batch=self.batch.value,
                                    trials=self.trials.value, activation=self.activation.value,
                                    params=model.split_params(self.params.value), init=self.init.value,
                                    sigma_b2=self.sigma_b2.value, dropout=self.dropout.value,
                                    batchnorm=self.batchnorm.value, residual=self.residual.value,
                                    seed=self.seed.value)

    @redraws
    def update(self) -> bool:
        """Recompute and redraw; on bad input show the message and leave the figures as they were."""
        start = time.perf_counter()
        try:
            s = self.settings()
            data = model.signal_data(s)
        except (ValueError, TypeError, ArithmeticError) as exc:
            show_error(self.message, exc)
            return False
        clear(self.message)
        self._draw(data)
        self.last_ms = 1e3 * (time.perf_counter() - start)
        cfg = data["config"]
        self.info.text = (f"{cfg['activation']}, init {cfg['init']}, {s.depth} layers of {s.width}, batch "
                          f"{s.batch}, {data['trials']} trials on the {data['engine']} engine: "
                          f"{self.last_ms:.0f} ms")
        return True

    def _draw(self, data):
        vals = []
        for key in ("act_std", "grad_std"):
            d = data[key]
            lo = np.asarray(d["lo"], dtype=float)
            self.sources[key].data = {"layer": d["layer"], "sim": d["sim"], "lo": lo, "hi": d["hi"],
                                      "lo_pos": np.where(lo > 0, lo, np.nan), "theory": d["theory"]}
            vals.append(np.asarray(d["sim"], dtype=float))
        v = np.concatenate(vals)
        v = v[np.isfinite(v)]
        log = bool(v.size and v.min() > 0 and v.max() / v.min() > 20)
        self.std_figures["log"].visible = log
        self.std_figures["linear"].visible = not log
        act_mean = data["act_mean"]
        for kind in ("act", "grad"):
            shown = data["hist"][kind]
            std = data["act_std" if kind == "act" else "grad_std"]["sim"]
            for k in range(model.MAX_PANELS):
                f, src = self.hist_figures[kind][k], self.hist_sources[(kind, k)]
                if k < len(shown):
                    layer, left, right, counts = shown[k]
                    src.data = {"left": left, "right": right, "top": counts}
                    extra = f"mean {act_mean[layer - 1]:.2f}, " if kind == "act" else ""
                    f.title.text = f"layer {layer}\n{extra}std {std[layer - 1]:.3g}"
                    f.visible = True
                else:
                    src.data = {"left": [], "right": [], "top": []}
                    f.visible = False

    def view(self):
        import panel as pn
        from bokeh.layouts import column, row
        controls = pn.Column(
            pn.Row(self.activation, self.params),
            pn.Row(self.preset, self.init),
            pn.Row(self.width, self.depth, self.batch, self.trials),
            pn.Row(self.sigma_b2, self.dropout, self.batchnorm, self.residual, self.seed),
        )
        plots = column(self.message, self.info, row(*self.hist_figures["act"]), row(*self.hist_figures["grad"]),
                       self.std_figures["linear"], self.std_figures["log"])
        self.panes = [pn.pane.Bokeh(plots)]
        return pn.Column(controls, *self.panes, name="Signal at initialization")

"""Panel 2, training on a 2-D toy problem: the decision boundary and the loss, epoch by epoch.

A :class:`varprop.explore.model.TrainingSession` (a ``build_mlp`` network and its ``Trainer``) advances one
epoch per tick of a periodic callback between Start and Pause; Reset rebuilds it from the controls, as
does any change of a control. With zeros every first-layer unit stays the same (the count of distinct
units is shown): the symmetry is never broken and the loss stays at log 2.
"""
from __future__ import annotations

import numpy as np

from . import model
from .widgets import clear, div, redraws, show_error

__all__ = ["TrainingPanel", "TICK_MS"]

TICK_MS = 150       # the periodic callback's period; one epoch per tick


class TrainingPanel:
    def __init__(self, settings: model.TrainSettings | None = None):
        import panel as pn
        from varprop.activations import names
        s = settings or model.TrainSettings()
        self.problem = pn.widgets.Select(label="problem", options=list(model.TOY_PROBLEMS), value=s.problem,
                                         width=110, css_classes=["vp-train-problem"])
        self.noise = pn.widgets.FloatInput(label="noise", value=s.noise, start=0.0, end=2.0, step=0.05, width=80,
                                           css_classes=["vp-train-noise"])
        self.init = pn.widgets.Select(label="init", options=list(model.train_init_options()), value=s.init,
                                      width=260, css_classes=["vp-train-init"])
        self.activation = pn.widgets.Select(label="activation", options=names(), value=s.activation, width=130,
                                            css_classes=["vp-train-activation"])
        self.depth = pn.widgets.IntSlider(label="hidden layers", value=s.depth, start=1, end=12, width=160,
                                          css_classes=["vp-train-depth"])
        self.width = pn.widgets.IntInput(label="width", value=s.width, start=2, end=256, width=80,
                                         css_classes=["vp-train-width"])
        self.optimizer = pn.widgets.Select(label="optimizer", options=list(model.OPTIMIZERS), value=s.optimizer,
                                           width=110, css_classes=["vp-train-optimizer"])
        self.lr = pn.widgets.FloatInput(label="learning rate", value=s.lr, start=0.0, step=0.005, width=110,
                                        css_classes=["vp-train-lr"])
        self.seed = pn.widgets.IntInput(label="seed", value=s.seed, start=0, width=80, css_classes=["vp-train-seed"])
        self.start = pn.widgets.Button(label="Start", color="success", width=80, css_classes=["vp-train-start"])
        self.pause = pn.widgets.Button(label="Pause", color="warning", width=80, css_classes=["vp-train-pause"])
        self.step_button = pn.widgets.Button(label="One epoch", width=100, css_classes=["vp-train-step"])
        self.reset_button = pn.widgets.Button(label="Reset", color="danger", width=80,
                                              css_classes=["vp-train-reset"])
        self.message = div("train_message", visible=False)
        self.info = div("train_info")
        self.session = None
        self._callback = None
        self._build_figures()
        for w in (self.problem, self.noise, self.init, self.activation, self.width, self.optimizer, self.lr,
                  self.seed):
            w.param.watch(lambda e: self.reset(), "value")
        self.depth.param.watch(lambda e: self.reset(), "value_throttled")
        self.start.on_click(lambda e: self.play())
        self.pause.on_click(lambda e: self.stop())
        self.step_button.on_click(lambda e: self.tick())
        self.reset_button.on_click(lambda e: self.reset())
        self.reset()

    def _build_figures(self):
        from bokeh.models import ColumnDataSource, LinearColorMapper
        from bokeh.plotting import figure
        self.boundary_source = ColumnDataSource({"image": [], "x": [], "y": [], "dw": [], "dh": []},
                                                name="boundary")
        self.points_source = ColumnDataSource({"x": [], "y": [], "color": []}, name="points")
        self.loss_source = ColumnDataSource({"epoch": [], "loss": []}, name="train_loss")
        f = figure(height=380, width=380, title="decision boundary: P(class 1)", name="boundary_fig",
                   toolbar_location=None, match_aspect=True)
        from bokeh.palettes import RdBu11
        mapper = LinearColorMapper(palette=RdBu11[::-1], low=0.0, high=1.0)   # red: class 0, blue: class 1
        f.image("image", x="x", y="y", dw="dw", dh="dh", source=self.boundary_source, color_mapper=mapper,
                alpha=0.75)
        f.scatter("x", "y", color="color", source=self.points_source, size=5, line_color="black",
                  line_width=0.4)
        self.boundary_figure = f
        g = figure(height=380, width=420, title="training loss per epoch", name="loss_fig",
                   x_axis_label="epoch", y_axis_label="cross-entropy", toolbar_location=None)
        g.line("epoch", "loss", source=self.loss_source, line_width=2)
        g.scatter("epoch", "loss", source=self.loss_source, size=3)
        self.loss_figure = g

    def settings(self) -> model.TrainSettings:
        return model.TrainSettings(problem=self.problem.value, noise=self.noise.value, init=self.init.value,
                                   activation=self.activation.value, depth=self.depth.value, width=self.width.value,
                                   optimizer=self.optimizer.value, lr=self.lr.value, seed=self.seed.value)

    # -- the controls -----------------------------------------------------------------------------------
    @redraws
    def reset(self) -> bool:
        """Rebuild the network and the trainer from the controls (training stops)."""
        self.stop()
        try:
            self.session = model.TrainingSession(self.settings())
        except (ValueError, TypeError, ArithmeticError) as exc:
            self.session = None
            show_error(self.message, exc)
            return False
        clear(self.message)
        X, y = self.session.X, self.session.y
        self.points_source.data = {"x": X[:, 0], "y": X[:, 1],
                                   "color": np.where(y == 1, "#2166ac", "#b2182b").tolist()}
        self.loss_source.data = {"epoch": [0], "loss": [self.session.initial_loss()]}
        self._draw()
        return True

    def play(self) -> None:
        import panel as pn
        if self.session is None or self._callback is not None:
            return
        self._callback = pn.state.add_periodic_callback(self.tick, period=TICK_MS)

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    @property
    def running(self) -> bool:
        return self._callback is not None

    @redraws
    def tick(self) -> None:
        """One epoch, then redraw; stops at the end of training or when it diverges."""
        if self.session is None:
            return
        try:
            self.session.step(1)
        except (ValueError, TypeError, ArithmeticError) as exc:
            self.stop()
            show_error(self.message, exc)
            return
        if self.session.done:
            self.stop()
        e = self.session.epoch
        if self.session.losses and len(self.loss_source.data["epoch"]) == e:   # epochs 0..e-1 drawn so far
            self.loss_source.stream({"epoch": [e], "loss": [self.session.losses[-1]]})
        self._draw()

    def _draw(self):
        s = self.session
        x0, x1, y0, y1 = s.extent
        self.boundary_source.data = {"image": [s.boundary()], "x": [x0], "y": [y0], "dw": [x1 - x0],
                                     "dh": [y1 - y0]}
        distinct, units = s.distinct_units()
        loss = s.losses[-1] if s.losses else s.initial_loss()
        acc = f", accuracy {s.accuracies[-1]:.3f}" if s.accuracies else ""
        sym = (" <b>All first-layer units are identical: the symmetry is never broken, so they can never "
               "differ.</b>" if distinct == 1 and units > 1 else "")
        note = f" {s.message}" if s.message else ""
        self.info.text = (f"epoch {s.epoch}: training loss {loss:.4f}{acc}; {distinct} distinct of {units} "
                          f"first-layer units.{sym}{note}")

    def view(self):
        import panel as pn
        from bokeh.layouts import column, row
        controls = pn.Column(
            pn.Row(self.problem, self.noise, self.init, self.activation),
            pn.Row(self.depth, self.width, self.optimizer, self.lr, self.seed),
            pn.Row(self.start, self.pause, self.step_button, self.reset_button),
        )
        plots = column(self.message, self.info, row(self.boundary_figure, self.loss_figure))
        self.panes = [pn.pane.Bokeh(plots)]
        return pn.Column(controls, *self.panes, name="Training on a toy problem")

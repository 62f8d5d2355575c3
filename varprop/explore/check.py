"""Panel 3, check an initialization: ``varprop check`` on what is typed, and ``varprop gain all``'s table.

The report is :meth:`varprop.derive.check.CheckResult.lines`, the very lines the command prints; the gain
table (exact forward and backward gains of every registered activation beside PyTorch's
``calculate_gain``) is computed the first time the panel is shown, since its SymPy closed forms take a few
seconds cold.
"""
from __future__ import annotations

import html

from . import model
from .widgets import clear, div, pre, redraws, show_error

__all__ = ["CheckPanel"]


class CheckPanel:
    def __init__(self, init: str = "normal(0, sqrt(2/fan_in))", activation: str = "relu"):
        import panel as pn
        from varprop.activations import names
        self.init = pn.widgets.TextInput(label="init: a distribution in fan_in, fan_out", value=init, width=420,
                                         css_classes=["vp-check-init"])
        self.activation = pn.widgets.Select(label="activation", options=names(), value=activation, width=150,
                                            css_classes=["vp-check-activation"])
        self.params = pn.widgets.TextInput(label="activation parameters (name=value, ...)", value="", width=260,
                                           css_classes=["vp-check-params"])
        self.q = pn.widgets.TextInput(label="q (0: small-signal limit)", value="1", width=120,
                                      css_classes=["vp-check-q"])
        self.message = div("check_message", visible=False)
        self.output = div("check_output")
        self.table_message = div("gain_message", visible=False)
        self.table = div("gain_table", text="<i>the gain table is computed when this panel is first shown</i>")
        self.table_done = False
        for w in (self.init, self.activation, self.params, self.q):
            w.param.watch(lambda e: self.update(), "value")
        self.update()

    @redraws
    def update(self) -> bool:
        try:
            lines = model.check_lines(self.init.value, self.activation.value, self.params.value, self.q.value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            show_error(self.message, exc)
            return False
        clear(self.message)
        self.output.text = pre(lines)
        return True

    @redraws
    def fill_table(self) -> bool:
        """Compute the gain table once (at q = 1, 15 digits, as ``varprop gain all``)."""
        if self.table_done:
            return True
        try:
            rows = model.gain_rows()
        except (ValueError, TypeError, ArithmeticError) as exc:
            show_error(self.table_message, exc)
            return False
        head = ("activation", "forward gain", "backward gain", "E[phi^2]", "torch calculate_gain", "torch vs exact")
        cells = "".join(f"<th style='text-align:left; padding: 2px 10px'>{h}</th>" for h in head)
        body = []
        for r in rows:
            vals = (r["activation"], r["forward"], r["backward"], r["method"], r["torch"], r["difference"])
            body.append("<tr>" + "".join(f"<td style='padding: 2px 10px; font-family: monospace'>"
                                         f"{html.escape(v)}</td>" for v in vals) + "</tr>")
        self.table.text = (f"<table style='border-collapse: collapse; font-size: 12px'><tr>{cells}</tr>"
                           + "".join(body) + "</table><p style='font-size: 12px'>q = 1; forward gain "
                           "sqrt(q/E[phi(sqrt(q) z)^2]), backward gain 1/sqrt(E[phi'(sqrt(q) z)^2]), z ~ N(0,1); "
                           "'closed form' moments are exact (SymPy), 'quadrature' ones certified to the digits "
                           "shown.</p>")
        self.table_done = True
        return True

    def view(self):
        import panel as pn
        from bokeh.layouts import column
        controls = pn.Row(self.init, self.activation, self.params, self.q)
        self.panes = [pn.pane.Bokeh(column(self.message, self.output)),
                      pn.pane.Bokeh(column(self.table_message, self.table))]
        return pn.Column(controls, self.panes[0], pn.pane.Markdown("### Gains of every activation beside PyTorch's"),
                         self.panes[1], name="Check an init")

"""The explorer page: three tabs wired to the library (see :mod:`varprop.explore`)."""
from __future__ import annotations

__all__ = ["Explorer", "app"]


class Explorer:
    """The three panels of one page (one per browser session when served)."""

    def __init__(self):
        from .check import CheckPanel
        from .signal import SignalPanel
        from .training import TrainingPanel
        self.signal = SignalPanel()
        self.training = TrainingPanel()
        self.check = CheckPanel()

    def view(self):
        import panel as pn
        tabs = pn.Tabs(self.signal.view(), self.training.view(), self.check.view(), dynamic=False)
        tabs.param.watch(self._on_tab, "active")
        self.tabs = tabs
        intro = pn.pane.Markdown(
            "## varprop explore\nThe signal of a deep network at initialization against the mean-field theory, "
            "training on a toy problem, and the audit of any initialization. Every number comes from the "
            "varprop library, the same functions as `varprop simulate`, `varprop train`, `varprop check` and "
            "`varprop gain all`.", sizing_mode="stretch_width")
        return pn.Column(intro, tabs)

    def _on_tab(self, event):
        if event.new != 1:
            self.training.stop()
        if event.new == 2:
            self.check.fill_table()


def app():
    """A new page (a Panel object): display it in a notebook, or serve it (:func:`varprop.explore.serve`)."""
    import panel as pn
    pn.extension()
    return Explorer().view()

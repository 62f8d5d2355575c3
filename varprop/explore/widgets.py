"""Small pieces the three panels share: named Bokeh models the page (and its tests) can find, messages."""
from __future__ import annotations

import functools
import html

__all__ = ["div", "show_error", "clear", "ERROR_STYLE", "redraws"]

ERROR_STYLE = {"color": "#a40000", "font-weight": "bold"}


def div(name: str, text: str = "", **kw):
    """A Bokeh Div called ``name`` (``Bokeh.documents[0].get_model_by_name(name)`` in the page)."""
    from bokeh.models import Div
    return Div(name=name, text=text, **kw)


def show_error(target, exc: Exception) -> None:
    """One clear line in ``target`` (a Div): what the command line would print after ``varprop: error:``."""
    target.text = f"error: {html.escape(str(exc))}"
    target.styles = ERROR_STYLE
    target.visible = True


def clear(target) -> None:
    target.text = ""
    target.visible = False


def pre(lines) -> str:
    return "<pre style='font-size: 13px; margin: 0'>" + html.escape("\n".join(lines)) + "</pre>"


def redraws(method):
    """Run ``method`` (which changes Bokeh models directly) so its changes reach the page from any callback.

    Served: Panel runs widget callbacks without Bokeh's document lock; its ``unlocked`` context collects
    the changes of the body and sends them to the browser. In a notebook, changes made to Bokeh models
    directly travel only when pushed (``push_notebook``) on the panes the panel rendered (``self.panes``).
    Elsewhere both do nothing.
    """
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from panel.io.document import unlocked
        from panel.io.notebook import push_notebook
        with unlocked():
            out = method(self, *args, **kwargs)
        push_notebook(*getattr(self, "panes", ()))
        return out
    return wrapper

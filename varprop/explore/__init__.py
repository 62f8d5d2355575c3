"""``varprop explore``: an interactive page with the theory beside the simulation (Panel and Bokeh).

Three panels, each a thin layer of widgets over library calls (:mod:`varprop.explore.model`):

1. the signal at initialization: per-layer histograms of activations and gradients and their std against
   depth with the mean-field curve (:func:`varprop.simulate.run`, the gaussian engine for Gaussian
   weights), recomputed as a control moves; a request beyond the live budget is refused with a message;
2. training on a 2-D toy problem (moons, circles, spiral, XOR) with any initializer, epoch by epoch
   (:class:`varprop.nn.Trainer`);
3. ``varprop check`` on a typed distribution, and the gain table of ``varprop gain all``.

In a notebook::

    import varprop.explore
    varprop.explore.app()            # the page, inline

From a shell: ``varprop explore [--port 5006] [--host 127.0.0.1] [--no-browser]``. Panel and Bokeh are an
optional extra: ``pip install "varprop[explore]"``.
"""
from __future__ import annotations

import ipaddress

__all__ = ["app", "serve", "require_panel", "INSTALL_HINT", "DEFAULT_PORT", "DEFAULT_HOST"]

INSTALL_HINT = 'pip install "varprop[explore]"'
DEFAULT_PORT = 5006
DEFAULT_HOST = "127.0.0.1"


def require_panel():
    """Import Panel, or raise ImportError with the line that installs it."""
    try:
        import bokeh  # noqa: F401
        import panel
    except ImportError:
        raise ImportError(f"varprop explore needs Panel and Bokeh: {INSTALL_HINT}") from None
    return panel


def app():
    """The explorer page as a Panel object (display it in a Jupyter notebook, or serve it)."""
    require_panel()
    from .app import app as make
    return make()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(port, host) -> tuple[int, str]:
    """A valid (port, host), or ValueError naming the problem."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer in [1, 65535], got {port!r}")
    if not isinstance(host, str) or not host.strip():
        raise ValueError("host must be a host name or an IP address, e.g. 127.0.0.1")
    host = host.strip()
    if any(c.isspace() or c in "/:@?#" for c in host) and not _is_ipv6(host):
        raise ValueError(f"host {host!r} is not a host name or an IP address")
    return port, host


def _is_ipv6(host):
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def serve(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, open_browser: bool = True):
    """Serve the page at http://HOST:PORT until interrupted (a new page per browser session).

    Listens on loopback (127.0.0.1) by default; another host makes the page reachable from the network,
    where anyone who can reach it can run simulations on this machine.
    """
    port, host = check_address(port, host)
    pn = require_panel()
    from .app import Explorer

    def page():
        pn.extension()
        return Explorer().view()

    origins = [f"{host}:{port}"] + ([f"localhost:{port}", f"127.0.0.1:{port}"] if is_loopback(host) else [])
    return pn.serve({"/": page}, port=port, address=host, show=open_browser, title="varprop explore",
                    websocket_origin=origins, threaded=False, print_url=True)

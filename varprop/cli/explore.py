"""``varprop explore``: the interactive page (Panel), served on loopback and opened in the browser."""
from __future__ import annotations

import sys

HELP = "start the interactive explorer: signal at initialization, training on a toy problem, check an init"
DESCRIPTION = (
    "Serves a local web page with three panels: the per-layer signal of a deep network at initialization "
    "beside the mean-field theory (recomputed as a control moves), training on a 2-D toy problem epoch by "
    "epoch, and `varprop check` with the gain table of every activation. Listens on 127.0.0.1 by default. "
    'Needs the explore extra: pip install "varprop[explore]".'
)


def add_arguments(p):
    p.add_argument("--port", type=int, default=5006, help="port to listen on (default 5006)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")


def run(args) -> int:
    from varprop.explore import check_address, is_loopback, require_panel, serve
    port, host = check_address(args.port, args.host)
    try:
        require_panel()
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    if not is_loopback(host):
        print(f"varprop explore: listening on {host}: anyone who can reach this address can use the page",
              file=sys.stderr)
    serve(port, host, open_browser=not args.no_browser)
    return 0

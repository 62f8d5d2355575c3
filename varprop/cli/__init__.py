"""The ``varprop`` command line: a thin shell over the library.

Each subcommand is a module of this package with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; its module imports the library lazily inside ``run`` so that ``varprop --help``
stays fast. Bad input of any kind prints one line, ``varprop: error: ...``, on stderr and exits 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "UsageError", "SUBCOMMANDS", "add_param_option"]

# name -> module (relative to this package); the order is the order of ``varprop --help``
SUBCOMMANDS = {
    "activations": "activations",
    "gain": "gain",
    "derive": "derive",
    "check": "check",
    "simulate": "simulate",
    "phase": "phase",
    "spectrum": "spectrum",
    "train": "train",
    "report": "report",
    "sweep": "sweep",
    "explore": "explore",
}


def add_param_option(p) -> None:
    """``--param NAME=VALUE`` (repeatable): an activation parameter, the same option in every subcommand."""
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="an activation parameter, e.g. --param negative_slope=0.2 (repeatable)")


class UsageError(Exception):
    """Bad input from the command line: reported as one line and exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's own default prints the usage too)
        raise UsageError(f"{self.prog}: {message}")


def _available():
    out = {}
    for name, mod in SUBCOMMANDS.items():
        try:
            out[name] = importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{mod}":
                raise
    return out


def build_parser() -> argparse.ArgumentParser:
    from varprop import __version__
    parser = _Parser(prog="varprop", description="Derive, simulate and apply the variance-preservation "
                     "conditions behind neural-network initialization.")
    parser.add_argument("--version", action="version", version=f"varprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, mod in _available().items():
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            parser.print_help()
            return 2
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"varprop: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except (ValueError, TypeError, ArithmeticError, OSError) as exc:
        # ArithmeticError: an overflow deep in a numeric library; OSError: a path that cannot be written
        print(f"varprop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("varprop: interrupted", file=sys.stderr)
        return 130

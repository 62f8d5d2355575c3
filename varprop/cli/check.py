"""``varprop check INIT --activation ACT``: does an initialization preserve the signal forward, backward, both?"""
from __future__ import annotations

import json

from varprop.cli import add_param_option

HELP = "audit an initialization written in fan_in/fan_out: forward and backward variance ratios and a verdict"
DESCRIPTION = (
    "INIT is one of normal(mean, std), uniform(low, high), truncated_normal(std, low=-2, high=2) (bounds in "
    "units of std) or constant(value), its arguments written with numbers, + - * / **, sqrt, pi, e, fan_in "
    "and fan_out, e.g. \"normal(0, sqrt(2/fan_in))\". Nothing is evaluated: the text is parsed and checked "
    "against a whitelist. The forward ratio fan_in Var(w) E[phi(sqrt(q) z)^2]/q and the backward ratio "
    "fan_out Var(w) E[phi'(sqrt(q) z)^2] must be 1 for every fan_in and fan_out; --q 0 is the small-signal "
    "limit (phi linearized at 0, Glorot's regime)."
)


def add_arguments(p):
    p.add_argument("init", metavar="INIT", help='a distribution, e.g. "normal(0, sqrt(2/fan_in))" (quote it)')
    p.add_argument("--activation", required=True, help="a registered activation (see `varprop activations`)")
    add_param_option(p)
    p.add_argument("--q", default="1", help="pre-activation second moment q >= 0; 0 is the small-signal limit "
                                            "(default 1)")
    p.add_argument("--digits", type=int, default=15, help="precision of numeric moments (1 to 60, default 15)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from varprop.activations import parse_params
    from varprop.derive.check import check

    result = check(args.init, args.activation, q=args.q, params=parse_params(args.param), digits=args.digits)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        print("\n".join(result.lines()))
    return 0

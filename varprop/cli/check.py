"""``varprop check INIT --activation ACT``: does an initialization preserve the signal forward, backward, both?"""
from __future__ import annotations

import json

from varprop.cli import add_param_option
from varprop.names import is_init_name, parse_init_params

HELP = "audit an initialization written in fan_in/fan_out: forward and backward variance ratios and a verdict"
DESCRIPTION = (
    "INIT is an initializer name, as --init of `varprop simulate` takes (xavier_uniform, he_normal, "
    "kaiming_normal, lecun_uniform, ..., options as repeated --init-param NAME=VALUE, e.g. --init-param "
    "nonlinearity=tanh), audited as the distribution in fan_in and fan_out it draws from; or a distribution: "
    "one of normal(mean, std), uniform(low, high), truncated_normal(std, low=-2, high=2) (bounds in "
    "units of std) or constant(value), its arguments written with numbers, + - * / **, sqrt, pi, e, fan_in "
    "and fan_out, e.g. \"normal(0, sqrt(2/fan_in))\". Nothing is evaluated: the text is parsed and checked "
    "against a whitelist. The forward ratio fan_in Var(w) E[phi(sqrt(q) z)^2]/q and the backward ratio "
    "fan_out Var(w) E[phi'(sqrt(q) z)^2] must be 1 for every fan_in and fan_out; --q 0 is the small-signal "
    "limit (phi linearized at 0, Glorot's regime)."
)


def add_arguments(p):
    p.add_argument("init", metavar="INIT", help='an initializer name (xavier_uniform) or a distribution, e.g. '
                                                '"normal(0, sqrt(2/fan_in))" (quote it)')
    p.add_argument("--init-param", action="append", default=[], metavar="NAME=VALUE",
                   help="a keyword of the initializer named by INIT, e.g. kaiming_normal --init-param "
                        "nonlinearity=tanh --init-param mode=fan_out (repeatable)")
    p.add_argument("--activation", required=True, help="a registered activation (see `varprop activations`)")
    add_param_option(p)
    p.add_argument("--q", default="1", help="pre-activation second moment q >= 0; 0 is the small-signal limit "
                                            "(default 1)")
    p.add_argument("--digits", type=int, default=15, help="precision of numeric moments (1 to 60, default 15)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def resolve(text: str, params: dict | None = None):
    """INIT as a :class:`varprop.expr.Distribution`: a distribution as written, or the law an initializer
    name (with ``params``) draws from, written in fan_in and fan_out (``Initializer.as_expression``)."""
    import dataclasses

    from varprop.expr import parse_distribution
    params = dict(params or {})
    if not is_init_name(text):
        import re

        from varprop.expr import KINDS
        head = re.match(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", text, re.S)
        if head and head.group(1).lower() not in KINDS:
            from varprop.nn.init import names
            if head.group(1).lower() in names():
                opts = " ".join(f"--init-param {a.strip().replace(' ', '')}" for a in head.group(2).split(",")
                                if a.strip())
                raise ValueError(f"write an initializer name alone, its options as --init-param: "
                                 f"{head.group(1)} {opts}".rstrip())
        if params:
            raise ValueError(f"--init-param applies to an initializer name, not to the expression {text!r}")
        return parse_distribution(text)
    from varprop.nn.init import get
    name = text.strip()
    initializer = get(name, **params)
    expression = initializer.as_expression()
    if expression is None:
        raise ValueError(f"{name} is not an iid law written in fan_in and fan_out (its entries are not drawn "
                         f"independently from one distribution), so `varprop check` cannot audit it")
    shown = name + ("(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")" if params else "")
    return dataclasses.replace(parse_distribution(expression), text=f"{shown} = {expression}")


def run(args) -> int:
    from varprop.activations import parse_params
    from varprop.derive.check import check

    dist = resolve(args.init, parse_init_params(args.init_param))
    result = check(dist, args.activation, q=args.q, params=parse_params(args.param), digits=args.digits)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        print("\n".join(result.lines()))
    return 0

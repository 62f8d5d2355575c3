"""``varprop phase``: the (sigma_w^2, sigma_b^2) phase diagram of an activation, order to chaos."""
from __future__ import annotations

import json
import math

from varprop.cli import add_param_option

HELP = "the (sigma_w^2, sigma_b^2) phase diagram: the order-to-chaos line chi_1 = 1 and the depth scale xi_c"
DESCRIPTION = ("For a grid of weight and bias variances: the length map's fixed point q*, chi_1, the correlation "
               "map's fixed point c* and the depth scale xi_c over which two inputs stay distinguishable "
               "(Poole et al. 2016, Schoenholz et al. 2017). Prints the critical sigma_w^2 at a few sigma_b^2; "
               "--plot draws xi_c as a heat map with the order-to-chaos line, --json writes every array.")


def add_arguments(p):
    p.add_argument("--activation", default="tanh", help="a registered activation (default tanh)")
    add_param_option(p)
    p.add_argument("--sigma-w2-min", type=float, default=0.5, help="smallest sigma_w^2 (default 0.5)")
    p.add_argument("--sigma-w2-max", type=float, default=4.0, help="largest sigma_w^2 (default 4)")
    p.add_argument("--sigma-b2-min", type=float, default=0.0, help="smallest sigma_b^2 (default 0)")
    p.add_argument("--sigma-b2-max", type=float, default=0.3, help="largest sigma_b^2 (default 0.3)")
    p.add_argument("--points", type=int, default=100,
                   help="grid points per axis (2 to 1000, default 100)")
    p.add_argument("--plot", metavar="PNG", help="write the heat map of xi_c with the critical line here")
    p.add_argument("--json", metavar="FILE", help="write q*, chi_1, c*, xi_q, xi_c and the critical line here")


def run(args) -> int:
    from varprop.activations import get, parse_params
    from varprop.derive import phase
    from varprop.io import atomic_write_text, check_distinct, check_writable

    outputs = {"--plot": args.plot, "--json": args.json}
    for option, path in outputs.items():
        if path is not None:
            check_writable(path, option)
    check_distinct(outputs)
    act = get(args.activation, **parse_params(args.param))
    p = phase.diagram(act, (args.sigma_w2_min, args.sigma_w2_max, args.points),
                      (args.sigma_b2_min, args.sigma_b2_max, args.points))
    print(f"activation {p.activation}: sigma_w^2 in [{args.sigma_w2_min:g}, {args.sigma_w2_max:g}], "
          f"sigma_b^2 in [{args.sigma_b2_min:g}, {args.sigma_b2_max:g}], {args.points} x {args.points} points")
    print("sigma_b^2   critical sigma_w^2 (chi_1 = 1)")
    n = len(p.sigma_b2)
    for i in sorted({0, n // 4, n // 2, (3 * n) // 4, n - 1}):
        c = p.critical[i]
        print(f"{p.sigma_b2[i]:<11.4g} {c:.10g}" if math.isfinite(c) else f"{p.sigma_b2[i]:<11.4g} none in range")
    if p.note:
        print(f"note: {p.note}")
    if args.json:
        atomic_write_text(args.json, json.dumps(p.to_dict(), indent=1) + "\n")
    if args.plot:
        p.plot(args.plot)
    return 0

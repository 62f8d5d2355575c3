"""``varprop spectrum``: singular values of the input-output Jacobian at initialization, with the theory."""
from __future__ import annotations

import json
import math

from varprop.cli import add_param_option

HELP = "singular values of the input-output Jacobian at initialization (dynamical isometry)"
DESCRIPTION = ("Draws random square MLPs (Gaussian or orthogonal weights), forms J = prod_l D_l W_l at an input on "
               "the length map's fixed point, and prints the mean and variance of its squared singular values "
               "beside the free-probability prediction m1 = chi_1^L, var = m1^2 L (mu2/mu1^2 - 1 - s1) "
               "(Pennington, Schoenholz & Ganguli 2017). --critical puts sigma_w^2 on the order-to-chaos line.")


def add_arguments(p):
    p.add_argument("--activation", default="tanh", help="a registered activation (default tanh)")
    add_param_option(p)
    p.add_argument("--width", type=int, default=256, help="units per layer (default 256)")
    p.add_argument("--depth", type=int, default=10, help="layers (default 10)")
    p.add_argument("--weights", default="gaussian", choices=("gaussian", "orthogonal"),
                   help="iid Gaussian or scaled Haar-orthogonal weights (default gaussian)")
    p.add_argument("--sigma-w2", type=float, default=None, help="weight variance times width (default: critical)")
    p.add_argument("--sigma-b2", type=float, default=1e-3, help="bias variance (default 0.001)")
    p.add_argument("--trials", type=int, default=2, help="networks (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON")


def run(args) -> int:
    from varprop.activations import get, parse_params
    from varprop.derive import jacobian
    from varprop.io import atomic_write_text, check_writable
    from varprop.simulate.jacobian import jacobian_spectrum

    if args.json is not None:
        check_writable(args.json, "--json")
    act = get(args.activation, **parse_params(args.param))
    sw = args.sigma_w2
    if sw is None:
        sw, _ = jacobian.critical_point(act, args.sigma_b2)
    r = jacobian_spectrum(args.width, args.depth, act, sw, args.sigma_b2, weights=args.weights,
                          trials=args.trials, seed=args.seed)

    def pm(v, se):
        return f"{v:.5g}" + (f" ± {se:.2g}" if math.isfinite(se) else "")
    print(f"{r.config['activation']}, {args.weights} weights, width {args.width}, depth {args.depth}, "
          f"sigma_w^2 {sw:.6g}, sigma_b^2 {args.sigma_b2:g}, q {r.config['q']:.4g}, {args.trials} networks")
    print(f"squared singular values   simulated          theory (wide limit)")
    print(f"mean                      {pm(r.mean, r.se_mean()):<18} {r.theory_mean:.5g}")
    print(f"variance                  {pm(r.var, r.se_var()):<18} {r.theory_var:.5g}")
    if args.json:
        atomic_write_text(args.json, json.dumps(r.to_dict(), indent=1, sort_keys=True) + "\n")
    return 0

"""``varprop derive [NAME...]``: list the derivations, or build, verify and render them."""
from __future__ import annotations

from varprop.cli import add_param_option

HELP = "derive the variance-preservation conditions with SymPy, verified step by step, and render them"
DESCRIPTION = (
    "Without a name, list the derivations. With names (or `all`), build each one (every step checked "
    "exactly by SymPy) and render it as Markdown (GitHub math), a standalone LaTeX document or JSON, on "
    "stdout or as one file per derivation in --out DIR (with an index for several). Options a derivation "
    "does not use are ignored by it. Exit status 1 when a derivation does not verify."
)


def add_arguments(p):
    p.add_argument("names", nargs="*", metavar="NAME", help="derivations to render, or `all`")
    p.add_argument("--format", choices=("md", "tex", "json"), default="md", help="output format (default md)")
    p.add_argument("--out", metavar="DIR", help="write NAME.md/.tex/.json files (and an index) into DIR")
    p.add_argument("--json", action="store_true", help="print the JSON form (same as --format json)")
    p.add_argument("--digits", type=int, default=15, help="significant digits of numeric values (1 to 60)")
    p.add_argument("--activation", help="activation for derivations that take one (see `varprop activations`)")
    add_param_option(p)
    p.add_argument("--sigma-b2", dest="sigma_b2", help="bias variance sigma_b^2 >= 0")
    p.add_argument("--sigma-w2", dest="sigma_w2", help="weight variance sigma_w^2 > 0 (fan_in Var(w))")
    p.add_argument("--widths", help="widths n_0,n_1,...,n_L, the input width n_0 first: 256,256,256 is an "
                   "input of 256 and two layers of 256 (comma-separated, or NxK: K widths of N, K - 1 layers); "
                   "at most 1000 weight layers")
    p.add_argument("--init", help="an initialization: an initializer name (he_normal), a weight variance "
                                  "(a number, or an expression in fan_in and fan_out such as 2/fan_in) or a "
                                  "distribution such as 'normal(0, sqrt(2/fan_in))'")


# the range a command-line variance may take: wide enough for any network, small enough that the moments
# and depth scales stay within floating point
VARIANCE_MAX = 10 ** 6
_WIDTH_TEXT = 7    # digits of one width or repeat count accepted ("256x6", "784,100,10")


def _fraction(text, what, positive=False):
    from varprop.activations import to_fraction
    v = to_fraction(text, what)
    if v < 0 or (positive and v == 0):
        raise ValueError(f"{what} must be {'> 0' if positive else '>= 0'}, got {text}")
    if v > VARIANCE_MAX:
        raise ValueError(f"{what} must be at most {VARIANCE_MAX}, got {text}")
    return v


def _widths(text):
    """The shared grammar of derive/mean_field.py ("256x6" or "784,100,10"), lengths bounded first."""
    import re
    from varprop.derive.derivations.activation_stats import MAX_LAYERS
    from varprop.derive.mean_field import parse_widths
    if any(len(t) > _WIDTH_TEXT for t in re.findall(r"\d+", text)):
        raise ValueError(f"--widths: numbers of at most {_WIDTH_TEXT} digits, got {text!r}")
    try:
        return list(parse_widths(text, max_layers=MAX_LAYERS))   # activation-stats, the one user of --widths
    except ValueError as exc:
        raise ValueError(f"--widths: {exc}") from None


def options(args) -> dict:
    """The builder options from the command line (None where not given)."""
    from varprop.activations import parse_params
    from varprop.derive.moments import check_digits
    check_digits(args.digits)
    return {
        "digits": args.digits,
        "activation": args.activation,
        "params": parse_params(args.param) or None,
        "sigma_b2": None if args.sigma_b2 is None else _fraction(args.sigma_b2, "--sigma-b2"),
        "sigma_w2": None if args.sigma_w2 is None else _fraction(args.sigma_w2, "--sigma-w2", positive=True),
        "widths": None if args.widths is None else _widths(args.widths),
        "init": None if args.init is None else _init(args.init),
    }


def _init(text):
    """An initializer name becomes the initializer object (derive/ sits below nn/init and never imports it);
    a number or a distribution in fan_in and fan_out is passed on as written."""
    import re
    name = text.strip()
    if re.fullmatch(r"[0-9.eE+-/ ]+", name):
        return _fraction(name, "--init")       # a weight variance: range-checked here
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return text
    from varprop.nn.init import get
    return get(name)


def _list() -> int:
    from varprop.derive import derivations
    rows = []
    for name in derivations.names():
        doc = (derivations.module(name).__doc__ or "").strip()
        rows.append((name, doc.splitlines()[0] if doc else ""))
    width = max((len(n) for n, _ in rows), default=0)
    for name, line in rows:
        print(f"{name:<{width}}  {line}")
    return 0


def run(args) -> int:
    if not args.names:
        if args.out is not None or args.json:
            raise ValueError("name the derivations to render, or `all`")
        return _list()
    from varprop.derive import derivations, render
    from varprop.io import Progress, check_folder

    if args.out is not None:
        check_folder(args.out, "--out")      # before any work: a run never ends by failing to save
    names = derivations.resolve(args.names)
    opts = options(args)
    fmt = "json" if args.json else args.format
    dicts = []
    with Progress(len(names), "derive") as bar:
        for name in names:
            dicts.append(derivations.build(name, **opts).to_dict(args.digits))
            bar.update(info=name)
    if args.out:
        paths = render.write(dicts, fmt, args.out, index=len(names) > 1 or "all" in args.names)
        for p in paths:
            print(p)
    else:
        print(render.render(dicts, fmt), end="")
    bad = [d["name"] for d in dicts if not d["verified"]]
    if bad:
        import sys
        print(f"varprop: not verified: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0

"""``varprop gain ACT``: the exact forward and backward gains, beside PyTorch's calculate_gain."""
from __future__ import annotations

import json

from varprop.cli import add_param_option

HELP = "exact variance-preserving gains of an activation (and PyTorch's value beside them)"
DESCRIPTION = (
    "Forward gain g_f(q) = sqrt(q / E[phi(sqrt(q) z)^2]): with Var(w) = g_f^2/fan_in a layer keeps its "
    "pre-activation second moment q. Backward gain g_b(q) = 1/sqrt(E[phi'(sqrt(q) z)^2]): with "
    "Var(w) = g_b^2/fan_out gradients keep their variance. z ~ N(0, 1)."
)


def add_arguments(p):
    p.add_argument("activation", help="a registered activation (see `varprop activations`), or 'all' for the "
                   "table of every activation at its default parameters")
    add_param_option(p)
    p.add_argument("--q", default="1", help="pre-activation second moment q > 0 (default 1)")
    p.add_argument("--digits", type=int, default=15, help="significant digits (1 to 60, default 15)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from varprop.activations import get, parse_params
    from varprop.derive.gains import gains
    from varprop.derive.moments import check_digits, check_q

    check_digits(args.digits)
    q = check_q(args.q)
    if args.activation == "all":
        if args.param:
            raise ValueError("--param applies to one activation, not to 'all'")
        return _table(q, args.digits, args.json)
    act = get(args.activation, **parse_params(args.param))
    g = gains(act, q, args.digits)
    if args.json:
        print(json.dumps(_as_json(g, args.digits), indent=2, sort_keys=True))
        return 0
    torch = g.torch
    rel = g.torch_relative_difference()
    lines = [
        f"activation         {act.label()}",
        f"q                  {_fmt(q)}",
        f"forward gain       {g.forward_str()}" + _closed(g.closed_forward()),
        f"backward gain      {g.backward_str()}" + _closed(g.closed_backward()),
        f"E[phi^2]           {g.second.value_str(args.digits)}  ({g.second.method})",
        f"E[phi'^2]          {g.deriv2.value_str(args.digits)}  ({g.deriv2.method})",
        f"E[phi]             {g.mean.value_str(args.digits)}  ({g.mean.method})",
        f"certified digits   {g.certified}" + _certified_note(g),
    ]
    if act.name == "rrelu":
        from varprop.activations import RRELU_NOTE
        lines.append(f"note               {RRELU_NOTE}")
    if torch is None:
        lines.append("torch gain         none (torch.nn.init.calculate_gain raises for this activation)")
    else:
        lines.append(f"torch gain         {torch.value:.15g} = {torch.expression}  "
                     f"(relative difference from the forward gain at this q: {rel:+.3%})")
    print("\n".join(lines))
    return 0


def _as_json(g, digits: int) -> dict:
    from varprop.activations import RRELU_NOTE
    torch = g.torch
    rel = g.torch_relative_difference()
    act = g.activation
    return {
        "activation": act.name,
        "params": {k: _fmt(v) for k, v in act.params.items()},
        "q": _fmt(g.q),
        "forward_gain": g.forward_str(),
        "backward_gain": g.backward_str(),
        "second_moment": g.second.value_str(digits),
        "derivative_second_moment": g.deriv2.value_str(digits),
        "mean": g.mean.value_str(digits),
        "closed_form": g.closed_forward_latex(),
        "closed_form_backward": g.closed_backward_latex(),
        "methods": {k: m.method for k, m in (("mean", g.mean), ("second", g.second), ("deriv2", g.deriv2))},
        "digits": g.certified,
        "note": RRELU_NOTE if act.name == "rrelu" else None,
        "torch_gain": None if torch is None else repr(torch.value),
        "torch_expression": None if torch is None else torch.expression,
        "torch_relative_difference": None if rel is None else f"{rel:.6g}",
    }


def _table(q, digits: int, as_json: bool) -> int:
    from varprop.activations import names
    from varprop.derive.gains import gain_table
    from varprop.io import Progress
    with Progress(len(names()), "gain table") as bar:
        rows = gain_table(q, digits, progress=lambda name: bar.update(info=name))
    if as_json:
        print(json.dumps([_as_json(g, digits) for g in rows], indent=2, sort_keys=True))
        return 0
    print("\n".join(table_lines(rows, q, digits)))
    return 0


def _method(g) -> str:
    a, b = g.second.method, g.deriv2.method
    return a if a == b else f"{a} / {b}"


def table_lines(rows, q, digits: int) -> list[str]:
    """The text of ``varprop gain all``: values in the value columns, the route to them in its own."""
    w = max(len(g.activation.label()) for g in rows)
    cells = [(g.activation.label(), g.forward_str(), g.backward_str(), g.second.value_str(digits),
              g.deriv2.value_str(digits), _method(g)) for g in rows]
    head = ("activation", "forward gain", "backward gain", "E[phi^2]", "E[phi'^2]", "method")
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    widths[0] = w

    def line(c, torch_col, rel_col):
        return ("  ".join(f"{x:<{widths[i]}}" for i, x in enumerate(c)) + f"  {torch_col:<8} {rel_col}").rstrip()

    out = [line(head, "torch", "torch vs exact")]
    for g, c in zip(rows, cells):
        t = g.torch
        torch_col = "raises" if t is None else t.expression if len(t.expression) <= 8 else "formula"
        rel = g.torch_relative_difference()
        out.append(line(c, torch_col, "" if rel is None else f"{rel:+.3%}"))
    out.append("")
    out.append(f"q = {_fmt(q)}; forward gain sqrt(q/E[phi(sqrt(q) z)^2]), backward gain 1/sqrt(E[phi'(sqrt(q) z)^2]), "
               "z ~ N(0,1).")
    out.append("method: how E[phi^2] / E[phi'^2] were obtained; 'closed form' is exact (SymPy), 'quadrature' is "
               "certified to the digits shown.")
    return out


_CLOSED_SHOWN = 80   # characters of a closed form worth printing beside its decimal


def _closed(expr) -> str:
    # a rational closed form (1 for selu) is already exact in the decimal; show the short others (= sqrt(2))
    if expr is None or expr.is_Rational:
        return ""
    text = str(expr)
    return f"  = {text}" if len(text) <= _CLOSED_SHOWN else ""


def _certified_note(g) -> str:
    if g.certified >= g.digits:
        return ""
    return f"  (fewer than the {g.digits} asked for: the gains are printed to the certified digits only)"


def _fmt(v):
    from varprop.activations import fmt
    return fmt(v)

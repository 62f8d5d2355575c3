"""Where common frameworks' initializers differ from the exact variance-preserving ones, with numbers.

Each row is computed, not typed: exact gains from :mod:`varprop.derive.gains` (forward gain at q = 1),
truncated-normal constants from :mod:`varprop.truncnorm`, PyTorch's values from its public
``calculate_gain`` table (:func:`varprop.derive.gains.torch_gain`). With ``measure=True`` and PyTorch
installed, the two sampling claims are also measured on a 2048 x 2048 tensor (seeded).

Run: python -m varprop.nn.init.differences [--measure]

>>> rows = {r.key: r for r in table()}
>>> round(rows["tanh"].theirs, 4), round(rows["tanh"].exact, 4)
(1.6667, 1.5925)
>>> rows["linear_default"].theirs == 1 / 3
True
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

__all__ = ["Row", "table", "main"]


@dataclass(frozen=True)
class Row:
    key: str
    what: str
    theirs: float        # the framework's number
    exact: float | None  # the variance-preserving (or asked-for) number, None where there is none
    note: str
    measured: float | None = None

    @property
    def relative(self) -> float | None:
        return None if self.exact is None else self.theirs / self.exact - 1.0


def table(measure: bool = False) -> list[Row]:
    from varprop import truncnorm
    from varprop.derive.gains import forward_gain_value, torch_gain

    from .presets import activation_scale

    tanh_t, selu_t = torch_gain("tanh").value, torch_gain("selu").value
    tanh_x, selu_x = forward_gain_value("tanh"), forward_gain_value("selu")
    trunc = truncnorm.std(-2.0, 2.0)
    linear_default = activation_scale("leaky_relu", "fan_in", "torch", negative_slope=math.sqrt(5.0))
    rows = [
        Row("tanh", "tanh gain: PyTorch 5/3 vs the forward gain at q = 1", tanh_t, tanh_x,
            f"weight variance {(tanh_t / tanh_x) ** 2:.4f} x the one that keeps q = 1 (exact only at that q: "
            "5/3 has its own fixed point q* = 1.178)"),
        Row("selu", "selu gain: PyTorch 3/4 vs the forward gain at q = 1", selu_t, selu_x,
            f"weight variance {(selu_t / selu_x) ** 2:.4f} x the one of the self-normalizing fixed point; "
            "deliberate, per PyTorch's documentation (gradient stability over self-normalization)"),
        Row("trunc_normal", "torch trunc_normal_(std=1, a=-2, b=2): std obtained vs asked", trunc, 1.0,
            "std of N(0,1) cut at +-2; varprop's truncated_normal(std) gives std exactly"),
        Row("linear_default", "nn.Linear default kaiming_uniform_(a=sqrt(5)): Var * fan_in vs LeCun",
            linear_default, activation_scale("linear"), "gain^2 = 2 / (1 + 5) = 1/3 of LeCun's 1/fan_in"),
        Row("keras_normal", "Keras/JAX 'normal' presets are truncated: max |w| in units of the std",
            2.0 / trunc, None, f"cut at +-2 sigma of the parent, sigma = std / {trunc:.8f}; PyTorch's "
            "kaiming_normal_ is not truncated"),
    ]
    if measure:
        rows = [_measured(r) for r in rows]
    return rows


def _measured(row: Row) -> Row:
    try:
        import torch
    except ImportError:
        return row
    g = torch.Generator().manual_seed(0)
    n = 2048
    if row.key == "trunc_normal":
        w = torch.nn.init.trunc_normal_(torch.empty(n, n, dtype=torch.float64), generator=g)
        return Row(**{**row.__dict__, "measured": w.std().item()})
    if row.key == "linear_default":
        torch.manual_seed(0)
        lin = torch.nn.Linear(n, n)
        return Row(**{**row.__dict__, "measured": lin.weight.detach().double().var().item() * n})
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", action="store_true", help="also sample with PyTorch where installed")
    args = ap.parse_args(argv)
    for r in table(args.measure):
        versus = "" if r.exact is None else f" vs {r.exact:.6f}  ({r.relative:+.2%})"
        meas = "" if r.measured is None else f"  measured {r.measured:.6f}"
        print(f"{r.what}\n    {r.theirs:.6f}{versus}{meas}\n    {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

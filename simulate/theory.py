"""The theory beside every simulated curve: derive/mean_field's wide-network prediction for a Config.

The simulator and :func:`varprop.derive.mean_field.predict` share one network convention (see
:mod:`varprop.simulate.engines`), so the prediction is a direct call: per-layer weight variances
``v_l`` from the configured law, the input second moment (1 for standard normal inputs), the keep
probability, batch norm and residual flags. Weights with a non-zero mean are outside the mean-field
theory; their prediction is left as NaN.

>>> from varprop.simulate.config import Config
>>> cfg = Config.build(widths=[100] * 4, batch=8, activation="relu", init="he_normal", trials=2)
>>> [round(float(s), 6) for s in theory(cfg)["pre_second"]]
[2.0, 2.0, 2.0]
"""
from __future__ import annotations

import numpy as np

__all__ = ["theory", "THEORY_FIELDS"]

THEORY_FIELDS = ("pre_second", "pre_std", "act_mean", "act_std", "act_second", "grad_std")


def theory(cfg) -> dict[str, np.ndarray]:
    """``{field: array over layers}`` for the fields in THEORY_FIELDS (NaN where the theory is silent)."""
    from varprop.derive.mean_field import predict
    depth = cfg.depth
    if any(cfg.weight_mean(layer) != 0.0 for layer in range(1, depth + 1)):
        return {f: np.full(depth, np.nan) for f in THEORY_FIELDS}
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            p = predict(list(cfg.widths), cfg.act, [cfg.weight_variance(layer) for layer in range(1, depth + 1)],
                        sigma_b2=cfg.sigma_b2, input_second_moment=cfg.input_second_moment(),
                        keep_prob=cfg.keep, batchnorm=cfg.batchnorm, residual=cfg.residual, batch=cfg.batch)
    except (ValueError, OverflowError):  # the predicted q overflows a float: the network explodes
        return {f: np.full(depth, np.nan) for f in THEORY_FIELDS}
    pre_q = np.asarray(p.pre_q, dtype=float)
    mean = np.asarray(p.act_mean, dtype=float)
    std = np.asarray(p.act_std, dtype=float)
    grad = np.asarray(p.grad_std, dtype=float) if cfg.backward else np.full(depth, np.nan)
    return {"pre_second": pre_q, "pre_std": np.sqrt(pre_q), "act_mean": mean, "act_std": std,
            "act_second": std ** 2 + mean ** 2, "grad_std": grad}

"""Monte Carlo simulation of deep MLPs at initialization, held against the mean-field theory.

``run(widths=..., batch=..., activation=..., init=..., trials=..., seed=..., engine=...)`` returns a
:class:`Result` (per-layer means, standard errors and theory; ``to_json()``, ``to_csv()``, ``table()``).
Two engines: ``dense`` materializes every W from counter-based streams; ``gaussian`` draws the layer
outputs and gradients from their exact conditional laws without forming W (Gaussian weights only).

>>> from varprop.simulate import run
>>> r = run(widths="64x4", batch=8, activation="tanh", init="xavier_normal", trials=2, seed=0)
>>> r.engine, len(r.layers)
('gaussian', 3)
"""
from .config import Config, parse_widths
from .result import Result
from .runner import run, run_config

__all__ = ["run", "run_config", "Result", "Config", "parse_widths"]

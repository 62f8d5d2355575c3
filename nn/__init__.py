"""varprop.nn: verified initializers and a compact MLP trainer.

Everything is imported lazily on first use, so ``import varprop.nn`` (and ``import varprop.nn.init``)
compiles nothing and loads no SymPy.

* model: :func:`build_mlp`, :class:`Network`, layers :class:`Dense`, :class:`Activation`,
  :class:`BatchNorm`, :class:`Dropout`, :class:`AlphaDropout`, :class:`Residual`, :class:`Parameter`;
* training: :func:`get_loss`, :func:`get_optimizer`, :func:`get_schedule`, :class:`Trainer`,
  :class:`History`;
* practice: activation penalties and train-time noise (:mod:`varprop.nn.hooks`), multi-task heads
  (:class:`MultiTaskLoss`, :class:`Head`), semi-supervised training (:class:`SemiSupervisedLoss`);
* estimators: :class:`MLPClassifier`, :class:`MLPRegressor` (scikit-learn conventions); ensembles:
  :class:`Ensemble` (of trainers), :class:`EnsembleClassifier` (of estimators);
* data: the loaders of :mod:`varprop.nn.data`; initializers: :mod:`varprop.nn.init`.

>>> import varprop.nn as nn
>>> net = nn.build_mlp(4, [8], 3, seed=0)
>>> net.n_out
3
"""
from __future__ import annotations

import importlib

_LAZY = {
    "build_mlp": "network", "Network": "network",
    "Dense": "layers", "Activation": "layers", "BatchNorm": "layers", "Dropout": "layers",
    "AlphaDropout": "layers", "Residual": "layers", "Parameter": "layers",
    "get_loss": "losses", "Loss": "losses",
    "get_optimizer": "optim", "Optimizer": "optim",
    "get_schedule": "schedules", "Schedule": "schedules",
    "Trainer": "trainer", "History": "trainer",
    "MLPClassifier": "estimator", "MLPRegressor": "estimator",
    "Ensemble": "ensemble", "EnsembleClassifier": "ensemble",
    "MultiTaskLoss": "multitask", "Head": "multitask", "SemiSupervisedLoss": "semisupervised",
}
_SUBMODULES = ("init", "data", "preprocess", "augment", "layers", "kernels", "losses", "optim", "network",
               "trainer", "checkpoint", "schedules", "estimator", "ensemble", "hooks", "multitask", "semisupervised",
               "pretrain", "diagnostics")

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    try:   # the data loaders, named by nn/data.py
        data = importlib.import_module(f"{__name__}.data")
    except ImportError:
        data = None
    if data is not None and not name.startswith("_") and name in getattr(data, "__all__", ()):
        return getattr(data, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))

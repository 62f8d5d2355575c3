"""The derivations by CLI name, in the order ``varprop derive`` lists them.

Each module exposes ``build(**options) -> Derivation``. Modules are imported lazily (SymPy is heavy) and a
module that does not exist yet is skipped. :func:`build` passes only the options a builder's signature
accepts, so one command line can serve every derivation.

>>> from varprop.derive import catalog
>>> catalog.names()[:3]
['symmetry', 'linear-variance', 'fan-rules']
>>> catalog.build("linear-variance").verified
True
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect

__all__ = ["CATALOG", "names", "module", "build", "accepted_options", "resolve"]

# CLI name -> module of varprop.derive
CATALOG = {
    "symmetry": "symmetry",
    "linear-variance": "linear_variance",
    "fan-rules": "fan_rules",
    "gains": "gain_table",
    "dropout": "dropout",
    "batchnorm": "batchnorm",
    "residual": "residual",
    "selu": "selu",
    "mean-field": "mean_field",
    "sigmoid": "sigmoid",
    "activation-stats": "activation_stats",
}
_PACKAGE = "varprop.derive"


def _exists(mod: str) -> bool:
    return importlib.util.find_spec(f"{_PACKAGE}.{mod}") is not None


def names() -> list[str]:
    """The derivations available in this installation, in catalog order."""
    return [n for n, m in CATALOG.items() if _exists(m)]


def module(name: str):
    """The module that builds derivation ``name``; ValueError listing the known names otherwise."""
    known = names()
    if name not in known:
        raise ValueError(f"unknown derivation {name!r}; known: {', '.join(known)}")
    return importlib.import_module(f"{_PACKAGE}.{CATALOG[name]}")


def resolve(requested) -> list[str]:
    """Expand "all" and check every name, keeping the order given and dropping repeats."""
    out = []
    for n in requested:
        for m in (names() if n == "all" else [n]):
            if m not in out:
                module(m)
                out.append(m)
    return out


def accepted_options(name: str) -> tuple[str, ...]:
    """The keyword options ``build`` of derivation ``name`` accepts."""
    sig = inspect.signature(module(name).build)
    return tuple(p.name for p in sig.parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def build(name: str, **options):
    """Build derivation ``name`` with the options its builder accepts (None values are left out)."""
    accepted = set(accepted_options(name))
    kw = {k: v for k, v in options.items() if k in accepted and v is not None}
    return module(name).build(**kw)

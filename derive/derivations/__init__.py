"""The derivation documents, one module per ``varprop derive`` name, in the order the command lists them.

Derivation ``mean-field`` is module ``mean_field`` of this package, and so on: each exposes
``build(**options) -> Derivation``. Modules are imported lazily (SymPy is heavy). :func:`build` passes only the
options a builder's signature accepts, so one command line can serve every derivation.

>>> from varprop.derive import derivations
>>> derivations.names()[:3]
['symmetry', 'linear-variance', 'fan-rules']
>>> derivations.build("linear-variance").verified
True
"""
from __future__ import annotations

import importlib
import inspect

__all__ = ["CATALOG", "names", "module", "build", "accepted_options", "resolve"]

# the CLI names, in listing order; each is the module name with "-" for "_"
CATALOG = ("symmetry", "linear-variance", "fan-rules", "gains", "dropout", "batchnorm", "residual", "selu",
           "mean-field", "correlation-map", "jacobian-spectrum", "finite-width", "sigmoid", "activation-stats")


def names() -> list[str]:
    """The derivations, in catalog order."""
    return list(CATALOG)


def module(name: str):
    """The module that builds derivation ``name``; ValueError listing the known names otherwise."""
    known = names()
    if name not in known:
        raise ValueError(f"unknown derivation {name!r}; known: {', '.join(known)}")
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


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

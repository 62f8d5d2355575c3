"""``varprop activations``: the registry, with parameters and defaults."""
from __future__ import annotations

import json

HELP = "list the registered activations with their parameters and defaults"


def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print the registry as JSON")


def run(args) -> int:
    from varprop.activations import REGISTRY, fmt
    rows = []
    for a in REGISTRY.values():
        rows.append({
            "name": a.name,
            "params": {p.name: fmt(p.default) for p in a.params},
            "description": a.doc,
            "aliases": list(a.aliases),
            "closed_form_moments": sorted(a.closed),
        })
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        head = f"{r['name']}({params})" if params else r["name"]
        print(f"{head:<{width + 30}} {r['description']}")
    return 0

"""Checkpoints: weights, optimizer state, random-stream position and configuration in one ``.npz``.

Layout (every entry a plain numeric array, so the file loads with ``allow_pickle=False``):

* ``config``: a one-element string array holding JSON - the network, loss, optimizer, schedule and
  trainer settings, the position (epoch, batch within the epoch, optimizer step; the random streams
  are keyed by these, so no generator state is needed) and the history so far;
* ``param/<name>``, ``buffer/<name>``: the network's parameters and batch-norm statistics;
* ``opt/<name>/<slot>``: the optimizer's moment buffers;
* ``best/...``: the best weights seen so far when early stopping is on.

Writes are atomic (:func:`varprop.io.atomic_savez`): an interrupted save leaves the previous file.

>>> import os, tempfile, numpy as np
>>> p = os.path.join(tempfile.mkdtemp(), "c.npz")
>>> _ = write(p, {"format": FORMAT}, {"param/0.weight": np.ones(2, np.float32)})
>>> cfg, arrays = read(p)
>>> cfg["format"], arrays["param/0.weight"].tolist()
('varprop-checkpoint-1', [1.0, 1.0])
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from varprop.io import atomic_savez

__all__ = ["FORMAT", "write", "read"]

FORMAT = "varprop-checkpoint-1"


def write(path, config: dict, arrays: dict) -> str:
    """Write ``config`` (JSON-serializable) and ``arrays`` (name -> numeric array) to ``path`` atomically."""
    text = json.dumps(config, sort_keys=True, allow_nan=True)
    payload = {"config": np.array([text])}
    for k, v in arrays.items():
        if k == "config":
            raise ValueError("'config' is reserved in a checkpoint")
        payload[k] = np.asarray(v)
    return atomic_savez(path, **payload)


def read(path) -> tuple[dict, dict]:
    """(config, arrays) from a checkpoint written by :func:`write`; never unpickles anything."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"checkpoint {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise ValueError(f"{path!r} is not a readable checkpoint ({e})") from None
    if "config" not in arrays:
        raise ValueError(f"{path!r} is not a varprop checkpoint (no config entry)")
    try:
        config = json.loads(str(arrays.pop("config").reshape(-1)[0]))
    except (json.JSONDecodeError, IndexError) as e:
        raise ValueError(f"{path!r}: its config is not valid JSON ({e})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a {FORMAT} file")
    return config, arrays

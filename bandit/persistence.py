"""Saving and loading LinUCB models: one versioned ``.npz`` file, no pickle.

The file holds the arrays (A, A⁻¹, b, θ, counts) and a JSON document (format name,
version, configuration, arm ids, and the random generator's state) stored as bytes. A
loaded model holds the very same float64 values and generator state, so it makes
bit-identical decisions. Files of another format version, or damaged files, are refused
with a message that says so.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import BanditError

FORMAT = "creative-studio/linucb"
VERSION = 1
_CONFIG = ("n_features", "alpha", "l2", "fit_intercept", "policy", "epsilon", "temperature",
           "refresh_every", "seed")
_ARRAYS = ("A", "A_inv", "b", "theta", "counts", "since_refresh")


def save_model(model, path) -> None:
    """Write to a binary file object, or atomically to a path (a temporary file in the
    same folder, then a rename)."""
    with model._lock:
        k = len(model._ids)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "config": {name: getattr(model, name) for name in _CONFIG},
            "arms": list(model._ids),
            "rng_state": model._rng.bit_generator.state,
        }
        arrays = {
            "A": model._A[:k].copy(), "A_inv": model._A_inv[:k].copy(),
            "b": model._b[:k].copy(), "theta": model._theta[:k].copy(),
            "counts": model._counts[:k].copy(), "since_refresh": model._since_refresh[:k].copy(),
        }
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    if hasattr(path, "write"):
        path.write(buffer.getvalue())
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_model(cls, path):
    if not hasattr(path, "read"):
        path = Path(path)
    if zipfile.is_zipfile(path) is False and (hasattr(path, "read") or path.is_file()):
        raise BanditError(f"{str(path)!r} is not a LinUCB model file (not an npz archive)")
    if hasattr(path, "seek"):
        path.seek(0)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            arrays = {name: data[name] for name in _ARRAYS}
    except FileNotFoundError:
        raise BanditError(f"model file {str(path)!r} does not exist") from None
    except (zipfile.BadZipFile, OSError, EOFError):
        raise BanditError(f"{str(path)!r} is not a LinUCB model file (not a readable npz)") from None
    except (KeyError, ValueError, UnicodeDecodeError):
        raise BanditError(f"{str(path)!r} is a damaged LinUCB model file") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BanditError(f"{str(path)!r} is not a LinUCB model file (format "
                          f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise BanditError(f"{str(path)!r} has format version {meta.get('version')!r}; this "
                          f"library reads version {VERSION}")
    try:
        model = cls(**{name: meta["config"][name] for name in _CONFIG})
        arms = meta["arms"]
        k, d = len(arms), model.dim
        expected = {"A": (k, d, d), "A_inv": (k, d, d), "b": (k, d), "theta": (k, d),
                    "counts": (k,), "since_refresh": (k,)}
        for name, shape in expected.items():
            if arrays[name].shape != shape:
                raise BanditError(f"{str(path)!r} is a damaged LinUCB model file "
                                  f"({name} has shape {arrays[name].shape}, expected {shape})")
        for arm in arms:
            model.add_arm(arm)
        model._A[:k] = arrays["A"]
        model._b[:k] = arrays["b"]
        model._counts[:k] = arrays["counts"]
        model._since_refresh[:k] = arrays["since_refresh"]
        for i in range(k):
            model._set_inverse(i, arrays["A_inv"][i])
        model._theta[:k] = arrays["theta"]
        model._rng.bit_generator.state = meta["rng_state"]
    except BanditError:
        raise
    except (KeyError, TypeError, ValueError):
        raise BanditError(f"{str(path)!r} is a damaged LinUCB model file") from None
    return model

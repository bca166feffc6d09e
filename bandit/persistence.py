"""Saving and loading LinUCB models: one versioned ``.npz`` file, no pickle.

The file holds the arrays (A, A⁻¹, b, θ, counts) and a JSON document (format name,
version, configuration, arm ids, and the random generator's state) stored as bytes. A
loaded model holds the very same float64 values and generator state, so it makes
bit-identical decisions; θ is recomputed from A⁻¹ and b, not read. Files of another
format version, damaged files, and files whose values are not a consistent model
(NaN, negative counts, an A that is not positive definite or an A⁻¹ that is not its
inverse) are refused with a message that says so.
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
#: Settings newer than version 1: saved when the model has them; a file without them
#: loads with the model's defaults.
_OPTIONAL_CONFIG = ("thompson_draws",)
_ARRAYS = ("A", "A_inv", "b", "theta", "counts", "since_refresh")
#: Largest relative residual ‖A·A⁻¹ − I‖ / (‖A‖·‖A⁻¹‖) of a stored inverse.
INVERSE_TOLERANCE = 1e-6


def save_model(model, path) -> None:
    """Write to a binary file object, or atomically to a path (a temporary file in the
    same folder, then a rename)."""
    with model._lock:
        k = len(model._ids)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "config": {name: getattr(model, name) for name in _CONFIG + _OPTIONAL_CONFIG
                       if name in _CONFIG or hasattr(model, name)},
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
    """Read a model written by ``save_model`` from a path or a binary file object.

    Everything in the file is checked before it is used: the archive and JSON document
    (any failure to parse them means a damaged file), the configuration and arm ids,
    array shapes and dtypes, finite values, counts >= 0, every A symmetric positive
    definite, and the stored A⁻¹ its inverse up to rounding (relative residual
    ‖A·A⁻¹ − I‖ / (‖A‖·‖A⁻¹‖) <= 1e-6; Sherman–Morrison drift after 1e5 updates is about
    1e-16). θ is recomputed as A⁻¹b rather than read, so an edited θ cannot steer
    decisions. A model that passes decides bit-identically to the one saved.
    """
    if not hasattr(path, "read"):
        path = Path(path)
    label = repr(str(path))
    if zipfile.is_zipfile(path) is False and (hasattr(path, "read") or path.is_file()):
        raise BanditError(f"{label} is not a LinUCB model file (not an npz archive)")
    if hasattr(path, "seek"):
        path.seek(0)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            arrays = {name: data[name] for name in _ARRAYS}
    except FileNotFoundError:
        raise BanditError(f"model file {label} does not exist") from None
    except OSError:
        raise BanditError(f"{label} is not a LinUCB model file (not a readable npz)") from None
    except Exception:  # zipfile, numpy's .npy header parser and json fail in many ways
        raise BanditError(f"{label} is a damaged LinUCB model file") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BanditError(f"{label} is not a LinUCB model file (format "
                          f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise BanditError(f"{label} has format version {meta.get('version')!r}; this "
                          f"library reads version {VERSION}")
    try:
        return _build(cls, meta, arrays)
    except BanditError as error:
        raise BanditError(f"{label} is a damaged LinUCB model file ({error})") from None


def _build(cls, meta: dict, arrays: dict):
    """The model that ``meta`` and ``arrays`` describe; BanditError saying what is wrong."""
    config, arms = meta.get("config"), meta.get("arms")
    if not isinstance(config, dict) or any(name not in config for name in _CONFIG):
        raise BanditError(f"config must be an object with {', '.join(_CONFIG)}")
    if not isinstance(config["fit_intercept"], bool):
        raise BanditError("fit_intercept must be true or false")
    n_features = config["n_features"]
    if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 0:
        raise BanditError(f"n_features must be an integer, got {n_features!r}")
    if not isinstance(arms, list):
        raise BanditError("arms must be a list")
    k = len(arms)
    d = n_features + 1 if config["fit_intercept"] else n_features
    expected = {"A": (k, d, d), "A_inv": (k, d, d), "b": (k, d), "theta": (k, d),
                "counts": (k,), "since_refresh": (k,)}
    for name, shape in expected.items():
        array = arrays[name]
        if array.shape != shape:
            raise BanditError(f"{name} has shape {array.shape}, expected {shape}")
        kind = np.integer if name in ("counts", "since_refresh") else np.floating
        if not np.issubdtype(array.dtype, kind):
            raise BanditError(f"{name} has dtype {array.dtype}")
        if not np.isfinite(array).all():
            raise BanditError(f"{name} contains NaN or inf")
        if kind is np.integer and (array < 0).any():
            raise BanditError(f"{name} contains negative counts")
    try:  # the shapes match n_features: the model's arrays are no larger than the file's
        model = cls(**{name: config[name] for name in _CONFIG + _OPTIONAL_CONFIG
                       if name in config})
    except TypeError:  # a setting this version of the model does not know
        raise BanditError(f"config {sorted(config)} does not fit this LinUCB") from None
    A, A_inv = arrays["A"].astype(np.float64), arrays["A_inv"].astype(np.float64)
    _check_inverse(A, A_inv)
    for arm in arms:
        model.add_arm(arm)
    model._A[:k] = A
    model._b[:k] = arrays["b"]
    model._counts[:k] = arrays["counts"]
    model._since_refresh[:k] = arrays["since_refresh"]
    for i in range(k):
        model._set_inverse(i, A_inv[i])  # also θ = A⁻¹b
    try:
        model._rng.bit_generator.state = meta.get("rng_state")
    except (TypeError, ValueError, KeyError, OverflowError):
        raise BanditError("bad random generator state") from None
    return model


def _check_inverse(A: np.ndarray, A_inv: np.ndarray) -> None:
    """Each A (k, d, d) must be symmetric positive definite and A_inv its inverse."""
    if not np.all(np.abs(A - A.transpose(0, 2, 1)).max(axis=(1, 2), initial=0.0)
                  <= 1e-10 * np.abs(A).max(axis=(1, 2), initial=0.0)):
        raise BanditError("A is not symmetric")
    try:
        np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        raise BanditError("A is not positive definite") from None
    eye = np.eye(A.shape[-1])
    residual = np.linalg.norm(A @ A_inv - eye, axis=(1, 2))
    scale = np.linalg.norm(A, axis=(1, 2)) * np.linalg.norm(A_inv, axis=(1, 2))
    if not np.all(residual <= INVERSE_TOLERANCE * scale):
        raise BanditError("A_inv is not the inverse of A")

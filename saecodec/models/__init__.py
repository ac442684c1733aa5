"""Model families, model files and loading by identity, name or path."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .l1 import SparseL1Autoencoder
from .modelfile import FAMILIES, Model, identity_of_file, load_file, read_metadata, register_family
from .rrae import RankReductionAutoencoder
from .selectors import SELECTORS, apply_selector, l1_penalty
from .transforms import Transform

__all__ = [
    "FAMILIES", "Model", "RankReductionAutoencoder", "SELECTORS", "SparseL1Autoencoder", "Transform", "apply_selector",
    "identity_of_file", "l1_penalty", "load", "load_file", "read_metadata", "register_family",
]

_cache: dict[str, Model] = {}
_cache_lock = threading.Lock()


def load(identity_or_path: str | os.PathLike, *, name: str | None = None) -> Model:
    """Load a model from a file path, a full identity, an identity prefix or a name.

    Loaded models are cached by identity; the returned object is shared, so treat it as
    read-only.
    """
    from .. import registry

    key = os.fspath(identity_or_path)
    if not registry.is_identity(key) and Path(key).is_file():
        path = Path(key)
        expected = None
    else:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        entry = registry.find(key, name=name)
        path, expected = entry.path, entry.identity
    model = load_file(path)
    if expected is not None and model.identity != expected:
        from ..errors import ModelMismatchError

        raise ModelMismatchError(f"model file {path} changed: identity {model.identity}, expected {expected}")
    with _cache_lock:
        _cache.setdefault(model.identity, model)
        return _cache[model.identity]

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
    "identity_of_file", "l1_penalty", "load", "load_file", "loaded", "read_metadata", "register_family",
    "remember",
]

_cache: dict[str, Model] = {}
_cache_lock = threading.Lock()


def remember(model: Model) -> Model:
    """Make ``model`` the loaded model of its identity in this process (first one wins)."""
    ident = model.ensure_identity()
    with _cache_lock:
        return _cache.setdefault(ident, model)


def loaded(identity: str) -> Model | None:
    """The model already loaded (or remembered) in this process under ``identity``, if any."""
    with _cache_lock:
        return _cache.get(identity)


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
        if (cached := loaded(key)) is not None:
            return cached
        entry = registry.find(key, name=name)
        path, expected = entry.path, entry.identity
    model = load_file(path)
    if expected is not None and model.identity != expected:
        from ..errors import ModelMismatchError

        raise ModelMismatchError(f"model file {path} changed: identity {model.identity}, expected {expected}")
    return remember(model)

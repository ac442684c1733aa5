"""The model families (torch networks), their input transforms, model files, and where networks run.

``Model``, ``FAMILIES``, ``load_file`` and ``Transform`` import without torch; the network
classes and selectors are imported on first use (docs/seams.md, section 1).
"""

import importlib

from .model import FAMILIES, Model, load_file
from .transforms import Transform

_LAZY = {"SparseL1Autoencoder": "l1", "RankReductionAutoencoder": "rrae", "SELECTORS": "selectors",
         "apply_selector": "selectors", "l1_penalty": "selectors"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FAMILIES", "Model", "RankReductionAutoencoder", "SELECTORS", "SparseL1Autoencoder", "Transform",
           "apply_selector", "l1_penalty", "load_file"]

"""The model families, their input transforms, model files, and where networks run.

The torch families are imported on first use (``saecodec.models.SparseL1Autoencoder`` etc.),
so that a reader of a family without torch (the wavelet family) never imports torch.
"""

from .model import FAMILIES, Model, load_file
from .transforms import Transform

_LAZY = {"SparseL1Autoencoder": ".l1", "RankReductionAutoencoder": ".rrae", "SELECTORS": ".selectors",
         "apply_selector": ".selectors", "l1_penalty": ".selectors"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)


__all__ = ["FAMILIES", "Model", "RankReductionAutoencoder", "SELECTORS", "SparseL1Autoencoder", "Transform",
           "apply_selector", "l1_penalty", "load_file"]

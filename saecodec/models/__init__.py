"""The model families (torch networks), their input transforms, model files, and where networks run."""

from .l1 import SparseL1Autoencoder
from .model import FAMILIES, Model, load_file
from .rrae import RankReductionAutoencoder
from .selectors import SELECTORS, apply_selector, l1_penalty
from .transforms import Transform

__all__ = ["FAMILIES", "Model", "RankReductionAutoencoder", "SELECTORS", "SparseL1Autoencoder", "Transform",
           "apply_selector", "l1_penalty", "load_file"]

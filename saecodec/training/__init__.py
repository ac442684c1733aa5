"""Training loops for the model families (progress bars, checkpoints, metrics)."""

from .loop import TrainConfig, evaluate, fit
from .l1 import build_l1, train_l1

__all__ = ["TrainConfig", "build_l1", "evaluate", "fit", "train_l1"]

"""Training loops for the model families (progress bars, checkpoints, metrics)."""

from .conv_hyper import ConvHyperConfig, train_conv_hyper
from .loop import TrainConfig, evaluate, fit
from .l1 import build_l1, train_l1
from .rrae import common_basis, finetune_decoder, train_rrae

__all__ = ["ConvHyperConfig", "TrainConfig", "build_l1", "common_basis", "evaluate", "finetune_decoder", "fit", "train_l1",
           "train_conv_hyper", "train_rrae"]

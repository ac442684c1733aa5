"""Hostile and damaged files (#22): no silent wrong data, no memory disclosure, no bombs.

Each test builds the file or payload an attacker (or a damaged copy) would hand a reader
and reads it through the real reader: h5py and h5dump with the plugin, zarr v2 and v3,
numcodecs. ``benchmarks/hostile_files.py`` runs the same attacks in bulk.
"""

import os
import sys

import numpy as np
import pytest
import torch

from conftest import blobs
from saecodec.errors import SaecodecError


# -- 8: training checkpoints cannot run code ------------------------------------------------
class _Evil:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_resume_from_a_malicious_checkpoint_runs_nothing(tmp_path):
    from saecodec.models.l1 import SparseL1Autoencoder
    from saecodec.training import TrainConfig, fit

    marker, ck = tmp_path / "pwned", tmp_path / "ck.pt"
    torch.save({"module": _Evil(marker), "epoch": 1}, ck)
    data = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    with pytest.raises(SaecodecError, match="refusing to load"):
        fit(SparseL1Autoencoder(16, 8, 8), data, TrainConfig(epochs=2, batch=32, device="cpu", progress=False,
                                                             checkpoint=str(ck), resume=True))
    assert not marker.exists()


def test_conv_hyper_resume_from_a_malicious_checkpoint_runs_nothing(tmp_path):
    from saecodec.models import Transform
    from saecodec.training import ConvHyperConfig, train_conv_hyper

    marker, ck = tmp_path / "pwned", tmp_path / "ck.pt"
    torch.save({"arch": _Evil(marker)}, ck)
    cfg = ConvHyperConfig(steps=2, batch=2, crop=16, device="cpu", progress=False, checkpoint=str(ck), resume=True)
    with pytest.raises(SaecodecError, match="refusing to load"):
        train_conv_hyper(blobs(8, (16, 16)).astype(np.float32), arch=dict(chans=(4,), M=4, Nh=4, lambdas=(100, 1000)),
                         transform=Transform("asinh", 1.0, True, "mean"), cfg=cfg, name="evil")
    assert not marker.exists()

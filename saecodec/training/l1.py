"""Training the sparse L1 autoencoder on frames, producing a complete model file."""

from __future__ import annotations

import numpy as np
import torch

from ..models import Model, SparseL1Autoencoder, Transform
from .loop import TrainConfig, fit


def build_l1(frame_shape, m_frac: float, l_frac: float, lam: float, selector: str = "z") -> SparseL1Autoencoder:
    """The paper's naming: architecture (m/n, l/n, lambda, f)."""
    n = int(np.prod(frame_shape))
    return SparseL1Autoencoder(n, max(1, round(n * m_frac)), max(1, round(n * l_frac)), lam, selector)


def train_l1(frames: np.ndarray, *, m_frac: float = 0.25, l_frac: float = 0.125, lam: float = 1e-3,
             selector: str = "z", transform: Transform | None = None, cfg: TrainConfig | None = None,
             name: str = "l1", provenance: str = "") -> tuple[Model, dict]:
    """frames (N, h, w) in intensity units -> a trained :class:`Model` and its metrics."""
    cfg = cfg or TrainConfig()
    transform = transform or Transform()
    frame_shape = tuple(frames.shape[-2:])
    torch.manual_seed(cfg.seed)  # the initial weights
    module = build_l1(frame_shape, m_frac, l_frac, lam, selector)
    z, _ = transform.forward(np.asarray(frames))
    result = fit(module, z, cfg, desc=f"train l1 {name}")
    metrics = summarise(result, module.n)
    model = Model(module, frame_shape, transform, name, provenance=provenance, metrics=metrics)
    return model, result


def summarise(result: dict, n: int) -> dict:
    out = {}
    for part in ("train", "val"):
        if part in result:
            r = result[part]
            out[f"{part}_rel_l2"] = round(r["rel_l2"], 6)
            out[f"{part}_nnz"] = round(r["nnz"], 3)
            out[f"{part}_nnz_f"] = round(r["nnz_f"], 3)
            out[f"{part}_cr_paper"] = round(n / r["nnz_f"], 3) if r["nnz_f"] > 0 else None
    out["epochs"] = len(result["history"])
    return out

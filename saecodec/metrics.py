"""Reconstruction errors as the project reports them (demo, training scripts, benchmarks)."""

from __future__ import annotations

import numpy as np


def frame_metrics(x: np.ndarray, y: np.ndarray, transform) -> dict:
    """Errors of ``y`` against ``x`` (..., h, w).

    ``rel_l2_t``: relative L2 in the model's transformed (asinh/log) domain against each
    frame's deviation from its own mean, i.e. of the per-frame normalised input the
    network sees; ``rel_l2_t_median_frame``: its median over frames; ``rel_l2_i``: relative
    L2 in intensity units; ``psnr_t``: PSNR over the transformed value range.
    """
    h, w = x.shape[-2:]
    ux = transform.to_u(x).reshape(-1, h * w)
    uy = transform.to_u(y).reshape(-1, h * w)
    err = uy - ux
    dev = ux - ux.mean(axis=1, keepdims=True)
    per_frame = np.linalg.norm(err, axis=1) / np.maximum(np.linalg.norm(dev, axis=1), 1e-12)
    return {
        "rel_l2_t": float(np.linalg.norm(err) / np.linalg.norm(dev)),
        "rel_l2_t_median_frame": float(np.median(per_frame)),
        "rel_l2_i": float(np.linalg.norm(y.astype(np.float64) - x) / np.linalg.norm(x.astype(np.float64))),
        "psnr_t": float(20 * np.log10((ux.max() - ux.min()) / np.sqrt(np.mean(err**2)))),
    }

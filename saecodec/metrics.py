"""Reconstruction errors as the project reports them (demo, training, benchmarks), defined once.

Two relative L2 errors, named for what they measure:

* :func:`rel_l2` (:class:`RelL2` over batches): ||y - x|| / ||x||, in whatever domain x is
  given (intensities, or the network's per-frame normalised input in training);
* :func:`offset_free_rel_l2`: the project's quality metric on log-domain frames,
  ||y - x|| / ||x - per-frame mean of x||, aggregated over the set (sums of squares over
  all frames, then the ratio), with its median over frames.
"""

from __future__ import annotations

import math
import warnings

import numpy as np


class RelL2:
    """||test - ref|| / ||ref|| accumulated over batches (numpy arrays or torch tensors)."""

    def __init__(self):
        self.err2 = self.ref2 = 0.0

    def add(self, ref, test) -> "RelL2":
        self.err2 += float(((test - ref) ** 2).sum())
        self.ref2 += float((ref ** 2).sum())
        return self

    @property
    def value(self) -> float:
        return math.sqrt(self.err2 / self.ref2) if self.ref2 > 0 else 0.0


def rel_l2(ref: np.ndarray, test: np.ndarray) -> float:
    """||test - ref|| / ||ref|| over the finite elements of ``ref``."""
    ref, test = np.asarray(ref, np.float64), np.asarray(test, np.float64)
    ok = np.isfinite(ref)
    return RelL2().add(ref[ok], test[ok]).value


def offset_free_terms(ref: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: (sum of squared errors, sum of squared deviations of ref from its mean), the
    two sums :func:`offset_free_rel_l2` is made of, for aggregating frames of different sizes;
    elements where either is not finite are left out."""
    h, w = ref.shape[-2:]
    r = np.asarray(ref, np.float64).reshape(-1, h * w)
    t = np.asarray(test, np.float64).reshape(-1, h * w)
    ok = np.isfinite(r) & np.isfinite(t)
    with warnings.catch_warnings():  # a frame with no finite element: "Mean of empty slice"
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(np.where(ok, r, np.nan), axis=1, keepdims=True)
    err2 = (np.where(ok, t - r, 0.0) ** 2).sum(axis=1)
    dev2 = (np.where(ok, r - mean, 0.0) ** 2).sum(axis=1)
    return err2, dev2


def offset_free_summary(err2: np.ndarray, dev2: np.ndarray) -> tuple[float, float]:
    """(aggregate, median over frames) from :func:`offset_free_terms`."""
    err2, dev2 = np.asarray(err2, np.float64), np.asarray(dev2, np.float64)
    per_frame = np.sqrt(err2) / np.maximum(np.sqrt(dev2), 1e-12)
    aggregate = math.sqrt(err2.sum() / max(dev2.sum(), 1e-300))
    return aggregate, float(np.median(per_frame)) if len(per_frame) else 0.0


def offset_free_rel_l2(ref: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    """(aggregate, median over frames) of ||test - ref|| / ||ref - per-frame mean of ref||
    for frames (..., h, w) in the domain where the error is measured (log10 intensities);
    elements where either is not finite are left out."""
    return offset_free_summary(*offset_free_terms(ref, test))


def value_metrics(x: np.ndarray, y: np.ndarray) -> dict:
    """Errors of ``y`` against ``x`` over the finite elements of ``x``, in x's units.

    psnr: 20 log10(value range / RMSE); nrmse: RMSE / value range; rel_l2: :func:`rel_l2`.
    """
    ok = np.isfinite(x)
    xv = x[ok].astype(np.float64)
    yv = y[ok].astype(np.float64)
    err = yv - xv
    rmse = float(np.sqrt(np.mean(err**2))) if err.size else 0.0
    rng = float(xv.max() - xv.min()) if xv.size else 0.0
    return {
        "psnr": float("inf") if rmse == 0 else 20 * math.log10(rng / rmse) if rng > 0 else float("nan"),
        "nrmse": rmse / rng if rng > 0 else float("nan"),
        "max_abs": float(np.abs(err).max(initial=0.0)),
        "rel_l2": rel_l2(xv, yv),
    }


def frame_metrics(x: np.ndarray, y: np.ndarray, transform) -> dict:
    """Errors of ``y`` against ``x`` (..., h, w), intensities.

    ``rel_l2_t`` and ``rel_l2_t_median_frame``: :func:`offset_free_rel_l2` in the model's
    transformed (asinh, log-like) domain; ``rel_l2_i``: :func:`rel_l2` in intensity
    units; ``psnr_t``: PSNR over the transformed value range.
    """
    ux, uy = transform.to_u(x), transform.to_u(y)
    aggregate, median = offset_free_rel_l2(ux, uy)
    return {
        "rel_l2_t": aggregate,
        "rel_l2_t_median_frame": median,
        "rel_l2_i": rel_l2(x, y),
        "psnr_t": float(20 * np.log10((ux.max() - ux.min()) / np.sqrt(np.mean((uy - ux) ** 2)))),
    }

"""The L1 paper's baselines, computed rather than stored: their bytes are entropy estimates."""

from __future__ import annotations

import math

import numpy as np


def dct_baseline(u: np.ndarray, target: float, block: int = 8) -> tuple[np.ndarray, float]:
    """8x8 windowed DCT of the log frames minus their means, keeping the largest
    coefficients (one global threshold) until the papers' relative L2 reaches ``target``.
    Returns (reconstruction, estimated bytes: float16 values + positions at their entropy
    + 8 bytes of normalisation per frame)."""
    from scipy.fft import dctn, idctn

    n, h, w = u.shape
    hb, wb = -(-h // block) * block, -(-w // block) * block
    mean = u.reshape(n, -1).mean(axis=1)[:, None, None]
    # Deviations from the frame mean, not divided by the frame's spread: the orthonormal DCT
    # then preserves exactly the norm that the papers' aggregate relative L2 measures.
    z = np.pad(u - mean, ((0, 0), (0, hb - h), (0, wb - w)), mode="edge")
    blocks = z.reshape(n, hb // block, block, wb // block, block)
    c = dctn(blocks, axes=(2, 4), norm="ortho")
    mags = np.sort(np.abs(c).ravel())
    dropped = np.concatenate([[0.0], np.cumsum(mags**2)])  # dropped[k]: energy of the k smallest
    budget = target**2 * float(((z[:, :h, :w]) ** 2).sum())
    k = int(np.searchsorted(dropped, budget, side="right")) - 1  # drop the k smallest, keep the rest
    kept = np.where(np.abs(c) >= mags[k], c, 0.0).astype(np.float16).astype(np.float64) if k < mags.size \
        else np.zeros_like(c)
    rec = idctn(kept, axes=(2, 4), norm="ortho").reshape(n, hb, wb)[:, :h, :w] + mean
    nnz = int((kept != 0).sum())
    total = c.size
    p = nnz / total
    h2 = 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    return rec, nnz * 2 + total * h2 / 8 + 8 * n


def pca_baseline(u_train: np.ndarray, u: np.ndarray, target: float) -> tuple[np.ndarray, float, int, int]:
    """Truncated SVD of normalised log frames (the optimal linear autoencoder), smallest k
    reaching ``target``. Returns (reconstruction, bytes (k float16 + 8 per frame), k, basis bytes)."""
    def norm(a):
        a = a.reshape(len(a), -1).astype(np.float64)
        m, s = a.mean(axis=1, keepdims=True), a.std(axis=1, keepdims=True) + 1e-12
        return (a - m) / s, m, s

    zt, _, _ = norm(u_train)
    _, _, vt = np.linalg.svd(zt, full_matrices=False)
    z, m, s = norm(u)
    coef = z @ vt.T
    denom = np.linalg.norm(z * s)  # the papers' aggregate metric weighs frames by their spread

    def err(k):
        rec = coef[:, :k].astype(np.float16).astype(np.float64) @ vt[:k]
        return np.linalg.norm((rec - z) * s) / denom

    lo, hi = 1, vt.shape[0]  # smallest k with err(k) <= target (err falls with k)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if err(mid) <= target else (mid + 1, hi)
    k_best = lo
    rec = coef[:, :k_best].astype(np.float16).astype(np.float64) @ vt[:k_best]
    out = (rec * s + m).reshape(u.shape)
    return out, len(u) * (2 * k_best + 8), k_best, 2 * k_best * vt.shape[1]

"""Integer residual planes: Lorenzo differencing and range coding under per-plane Laplace models.

The error-bounded mode turns each 2D plane into integers (quantised residuals). They
are coded either as they are or after the 2D Lorenzo difference
``d[i,j] = q[i,j] - q[i-1,j] - q[i,j-1] + q[i-1,j-1]``, which is exact on integers and
undone by two cumulative sums. Each plane gets its own Laplace scale (the model fitted
per chunk and stored); all planes of a chunk form one range-coded message. Symbols of
magnitude >= ``ESCAPE`` are coded as +-ESCAPE and their values stored as int32.
"""

from __future__ import annotations

import constriction
import numpy as np

from ..errors import PayloadError
from . import entropy

ESCAPE = 1 << 12
MIN_SCALE = 0.01
MAX_SCALE = float(1 << 20)
# Largest |q| for which the Lorenzo difference (at most 4 |q|) still fits in int32.
MAX_Q = (1 << 29) - 1
_LN2 = np.log(2.0)


def lorenzo(q: np.ndarray) -> np.ndarray:
    """(P, H, W) integers -> their 2D Lorenzo differences (zero outside the plane)."""
    d = q.copy()
    d[:, 1:, :] -= q[:, :-1, :]
    out = d.copy()
    out[:, :, 1:] -= d[:, :, :-1]
    return out


def unlorenzo(d: np.ndarray) -> np.ndarray:
    return np.cumsum(np.cumsum(d, axis=1), axis=2)


def fit_scale(s: np.ndarray) -> np.ndarray:
    """Per-plane Laplace scale (P,) float32 for symbols (P, N): the mean absolute value."""
    if s.shape[1] == 0:
        return np.full(s.shape[0], MIN_SCALE, np.float32)
    b = np.abs(s).mean(axis=1, dtype=np.float64)
    return np.clip(b, MIN_SCALE, MAX_SCALE).astype(np.float32)


def cost_bits(s: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits per plane of coding symbols (P, N) under quantised Laplace(0, b): the mode choice.

    p(0) = 1 - exp(-1/(2b)), p(k) = exp(-|k|/b) sinh(1/(2b)); escapes and the range
    coder's leakage are ignored (they cost well under 1%).
    """
    b = b.astype(np.float64)
    a = np.abs(s)
    n0 = (a == 0).sum(axis=1)
    nz = a.shape[1] - n0
    total = a.sum(axis=1, dtype=np.float64)
    p0 = -np.expm1(-0.5 / b)
    log_sinh = 0.5 / b + np.log(-np.expm1(-1.0 / b)) - _LN2  # log(sinh(1/(2b)))
    return (-n0 * np.log(p0) + total / b - nz * log_sinh) / _LN2


def _family():
    return constriction.stream.model.QuantizedLaplace(-ESCAPE, ESCAPE)


def encode(s: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symbols (P, N) int64 with per-plane scales -> (u32 words, int32 escape values)."""
    p, n = s.shape
    flat = s.reshape(-1)
    big = np.abs(flat) >= ESCAPE
    escapes = flat[big].astype(np.int32)
    sym = np.clip(flat, -ESCAPE, ESCAPE).astype(np.int32)
    return entropy.encode(sym, _family(), np.zeros(sym.size), np.repeat(scales.astype(np.float64), n)), escapes


def decode(words: np.ndarray, scales: np.ndarray, n: int, escapes: np.ndarray) -> np.ndarray:
    p = len(scales)
    if p * n == 0:
        return np.zeros((p, n), np.int64)
    sym = entropy.decode(words, _family(), np.zeros(p * n), np.repeat(scales.astype(np.float64), n),
                         what="residual").astype(np.int64)
    big = np.abs(sym) >= ESCAPE
    if int(big.sum()) != len(escapes):
        raise PayloadError("corrupted payload: residual escapes do not match the stored values")
    if len(escapes):
        esc = escapes.astype(np.int64)
        if (np.abs(esc) < ESCAPE).any() or (np.sign(esc) != np.sign(sym[big])).any():
            raise PayloadError("corrupted payload: invalid residual escape value")
        sym[big] = esc
    return sym.reshape(p, n)


def check_scales(scales: np.ndarray) -> None:
    if not (np.isfinite(scales).all() and (scales >= MIN_SCALE).all() and (scales <= MAX_SCALE).all()):
        raise PayloadError("corrupted payload: invalid residual model scale")

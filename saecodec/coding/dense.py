"""Dense latents (k coefficients per frame, the rank reduction family).

Each coefficient is quantised uniformly with step ``coef_step * coef_std[d]`` around
``coef_mean[d]`` (per latent dimension d, statistics of the training set recorded in
the model file) and the integers are range coded under a quantised Gaussian of that
dimension's spread, all frames of a chunk as one message.
"""

from __future__ import annotations

import constriction
import numpy as np

from ..errors import SaecodecError
from . import entropy

LIMIT = 1 << 20


def _params(coding: dict, k: int):
    try:
        mean = np.asarray(coding["coef_mean"], dtype=np.float64)
        std = np.asarray(coding["coef_std"], dtype=np.float64)
        step = float(coding["coef_step"])
    except KeyError as e:
        raise SaecodecError(f"the model file lacks the dense coding parameter {e}") from None
    if mean.shape != (k,) or std.shape != (k,) or not step > 0:
        raise SaecodecError("the model file's dense coding parameters do not match its latent size")
    q = step * np.maximum(std, 1e-12)
    return mean, q, np.maximum(std / q, 0.5)


def _family():
    return constriction.stream.model.QuantizedGaussian(-LIMIT, LIMIT)


def quantize(coeffs: np.ndarray, coding: dict) -> tuple[np.ndarray, np.ndarray]:
    """coefficients (B, k) -> (integers, the values the decoder will reconstruct)."""
    mean, q, _ = _params(coding, coeffs.shape[1])
    ints = np.clip(np.rint((coeffs - mean) / q), -LIMIT, LIMIT).astype(np.int32)
    return ints, (ints * q + mean).astype(np.float32)


def encode(ints: np.ndarray, coding: dict) -> np.ndarray:
    b, k = ints.shape
    _, _, spread = _params(coding, k)
    return entropy.encode(ints.reshape(-1), _family(), np.zeros(b * k), np.tile(spread, b))


def decode(words: np.ndarray, b: int, k: int, coding: dict) -> np.ndarray:
    mean, q, spread = _params(coding, k)
    if b == 0:
        return np.zeros((0, k), np.float32)
    ints = entropy.decode(words, _family(), np.zeros(b * k), np.tile(spread, b), what="coefficient").reshape(b, k)
    return (ints * q + mean).astype(np.float32)

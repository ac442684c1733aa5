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
from .payload import LATENT_DENSE, Reader, put_side, put_words, read_side, read_words

LIMIT = 1 << 20


class DenseCoder:
    """Latent section: the coefficient message, then the side info."""

    kind, kind_code = "dense", LATENT_DENSE
    value_code = 0  # the coefficients' step is the model's, not a stored value type

    def __init__(self, model, value_code: int = 0):
        self.k = model.module.latent_size
        self.mean, self.step, self.spread = _params(model.coding, self.k)

    def write(self, latents: np.ndarray, side: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
        """coefficients (B, k) -> (section bytes, the coefficients and side info the decoder will read)."""
        ints = np.clip(np.rint((latents.astype(np.float64) - self.mean) / self.step), -LIMIT, LIMIT).astype(np.int32)
        out = bytearray()
        put_words(out, entropy.encode(ints.reshape(-1), _family(), *self._spreads(len(ints))))
        put_side(out, side)
        return bytes(out), self._values(ints), side

    def read(self, reader: Reader, frames: int, tile: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        words = read_words(reader)
        side = read_side(reader, frames)
        if frames == 0:
            return np.zeros((0, self.k), np.float32), side
        ints = entropy.decode(words, _family(), *self._spreads(frames), what="coefficient")
        return self._values(ints.reshape(frames, self.k)), side

    def _spreads(self, frames: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(frames * self.k), np.tile(self.spread, frames)

    def _values(self, ints: np.ndarray) -> np.ndarray:
        return (ints * self.step + self.mean).astype(np.float32)


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

"""Sparse latents as index gaps, arithmetic coded under the L1 paper's fixed model.

A frame's nonzero latent entries at indices i_1 < ... < i_K become the gaps
g_1 = i_1 + 1, g_k = i_k - i_{k-1} (all >= 1) followed by the terminator symbol 0.
Symbols 0..l share one categorical model: a discretised Gaussian with mu = 0 and
sigma (the paper's choice is l / 3) plus a uniform floor, normalised. All frames of a
chunk form one symbol stream, coded as one message with constriction's range coder;
the weights of the nonzeros are stored separately (see ``quant``).
"""

from __future__ import annotations

from functools import lru_cache

import constriction
import numpy as np

from ..errors import PayloadError
from . import entropy


@lru_cache(maxsize=32)  # one per model: built once, not per chunk
def gap_model(latent_size: int, sigma: float, floor: float):
    s = np.arange(latent_size + 1, dtype=np.float64)
    p = np.exp(-0.5 * (s / float(sigma)) ** 2) + float(floor)
    p /= p.sum()
    return constriction.stream.model.Categorical(p, perfect=False)


def latents_to_symbols(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """latents (B, l) -> (gap symbols with terminators, nonzero values in row order)."""
    b = latents.shape[0]
    rows, cols = np.nonzero(latents)
    values = latents[rows, cols]
    prev = np.empty_like(cols)
    prev[1:] = cols[:-1]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    prev[first] = -1
    gaps = cols - prev
    symbols = np.zeros(len(rows) + b, dtype=np.int32)
    symbols[np.arange(len(rows)) + rows] = gaps  # each earlier row adds one terminator
    return symbols, values


def symbols_to_positions(symbols: np.ndarray, n_frames: int, latent_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`latents_to_symbols`: (rows, cols) of the nonzeros."""
    symbols = np.asarray(symbols, dtype=np.int64)
    is_term = symbols == 0
    if int(is_term.sum()) != n_frames or (len(symbols) and not is_term[-1]):
        raise PayloadError("corrupted payload: the latent stream does not end one frame at a time")
    row_of = np.cumsum(is_term) - is_term
    gaps = symbols[~is_term]
    rows = row_of[~is_term]
    cs = np.cumsum(gaps)
    counts = np.bincount(rows, minlength=n_frames)
    ends = np.cumsum(counts)
    before = np.concatenate([[0], cs])[ends - counts]  # cumulative gap sum before each row
    cols = cs - np.repeat(before, counts) - 1
    if len(cols) and (cols.max() >= latent_size or cols.min() < 0):
        raise PayloadError("corrupted payload: latent index out of range")
    return rows, cols


def encode_symbols(symbols: np.ndarray, model) -> np.ndarray:
    return entropy.encode(symbols, model)


def decode_symbols(words: np.ndarray, count: int, model) -> np.ndarray:
    if count == 0:
        return np.zeros(0, dtype=np.int32)
    return entropy.decode(words, model, count, what="latent gap")

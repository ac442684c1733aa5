"""Sparse latents (the L1 family): index gaps arithmetic coded under the L1 paper's fixed model.

A frame's nonzero latent entries at indices i_1 < ... < i_K become the gaps
g_1 = i_1 + 1, g_k = i_k - i_{k-1} (all >= 1) followed by the terminator symbol 0.
Symbols 0..l share one categorical model: a discretised Gaussian with mu = 0 and
sigma (the paper's choice is l / 3) plus a uniform floor, normalised. All frames of a
chunk form one symbol stream, coded as one message with constriction's range coder;
the values of the nonzeros follow in the latent value type (``quant``).
"""

from __future__ import annotations

from functools import lru_cache

import constriction
import numpy as np

from ..errors import PayloadError
from . import entropy, quant
from .payload import LATENT_SPARSE, Reader, put_side, put_varint, put_words, read_side, read_words


class SparseCoder:
    """Latent section: varint S (symbols), the gap message, the side info, the S - B values."""

    kind, kind_code = "sparse", LATENT_SPARSE

    def __init__(self, model, value_code: int):
        if value_code not in quant.LATENT_DTYPES:
            raise PayloadError(f"corrupted payload: unknown latent value type code {value_code}")
        self.value_code = value_code
        self.size = model.module.latent_size
        self.gaps = gap_model(self.size, model.coding["gap_sigma"], model.coding["gap_floor"])

    def write(self, latents: np.ndarray, side: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
        """latents (B, l) -> (section bytes, the latents and side info the decoder will read)."""
        q = quant.quantize(np.maximum(latents, 0.0), self.value_code)
        symbols, values = latents_to_symbols(q)
        out = bytearray()
        put_varint(out, len(symbols))
        put_words(out, entropy.encode(symbols, self.gaps))
        put_side(out, side)
        out += quant.to_bytes(values, self.value_code)
        return bytes(out), q, side

    def read(self, reader: Reader, frames: int, tile: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        n_symbols = reader.varint(frames * (self.size + 1))
        words = read_words(reader)
        side = read_side(reader, frames)
        nnz = n_symbols - frames
        if nnz < 0:
            raise PayloadError("corrupted payload: fewer latent symbols than frames")
        values = quant.from_bytes(reader.take(nnz * quant.itemsize(self.value_code)), nnz, self.value_code)
        if not np.isfinite(values).all():
            raise PayloadError("corrupted payload: non-finite latent values")
        symbols = entropy.decode(words, self.gaps, n_symbols, what="latent gap") if n_symbols else np.zeros(0)
        rows, cols = symbols_to_positions(symbols, frames, self.size)
        latents = np.zeros((frames, self.size), dtype=np.float32)
        latents[rows, cols] = values
        return latents, side


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

"""Range coding with constriction: one message per section, errors as PayloadError.

Every coded section of a payload (sparse gaps, dense coefficients, residual planes) is
one constriction ``RangeEncoder`` message of u32 words. constriction raises plain
exceptions on invalid data; a corrupted payload must raise :class:`PayloadError`.
"""

from __future__ import annotations

import constriction
import numpy as np

from ..errors import PayloadError


def encode(symbols: np.ndarray, model, *params) -> np.ndarray:
    """int32 symbols under ``model`` (a fixed model, or a family with per-symbol ``params``)
    -> the message's u32 words."""
    enc = constriction.stream.queue.RangeEncoder()
    if len(symbols):
        enc.encode(np.ascontiguousarray(symbols, dtype=np.int32), model, *params)
    return enc.get_compressed()


def decode(words: np.ndarray, model, *args, what: str) -> np.ndarray:
    """Inverse of :func:`encode`: ``args`` is the symbol count for a fixed model, or the
    per-symbol parameters of a family."""
    try:
        dec = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(words, dtype=np.uint32))
        return dec.decode(model, *args)
    except Exception as e:  # constriction raises plain exceptions on invalid data
        raise PayloadError(f"corrupted payload: {what} decoding failed ({e})") from None

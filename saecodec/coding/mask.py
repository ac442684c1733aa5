"""Masked pixels (NaN, +-inf, beamstop, detector gaps) stored exactly.

Their positions are a bit plane over the chunk and their values the original
elements, each as one zlib block: masks are large connected regions or sparse
sentinels, both of which deflate to a few bytes.
"""

from __future__ import annotations

import numpy as np

from ..errors import PayloadError
from .payload import Reader, deflate, inflate, put_block, put_varint


def write(out: bytearray, arr: np.ndarray, special: np.ndarray) -> None:
    flat = special.reshape(-1)
    put_varint(out, int(flat.sum()))
    put_block(out, deflate(np.packbits(flat).tobytes()))
    put_block(out, deflate(arr.reshape(-1)[flat].astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()))


def read(reader: Reader, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """-> (boolean mask of ``shape``, the masked elements' values in C order)."""
    n = int(np.prod(shape, dtype=np.int64))
    count = reader.varint(n)
    bits = np.frombuffer(inflate(reader, (n + 7) // 8, "mask positions"), np.uint8)
    special = np.unpackbits(bits, count=n).astype(bool)
    if int(special.sum()) != count or (n % 8 and np.unpackbits(bits)[n:].any()):
        raise PayloadError("corrupted payload: mask positions do not match their count")
    le = np.dtype(dtype).newbyteorder("<")
    values = np.frombuffer(inflate(reader, count * le.itemsize, "masked values"), le)
    return special.reshape(shape), values

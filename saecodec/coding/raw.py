"""The lossless chunk: its elements as they are, deflated when that is smaller.

The encoder writes it instead of the lossy sections whenever those would be larger, so a
payload never exceeds the chunk's raw size plus the header, a method byte and a length.
"""

from __future__ import annotations

import numpy as np

from ..errors import PayloadError
from .payload import Reader, deflate, inflate, put_block

STORED, DEFLATED = 0, 1
OVERHEAD = 1 + 5  # method byte and block length, beyond the header and the elements


def write(out: bytearray, arr: np.ndarray) -> None:
    data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    packed = deflate(data)
    method, block = (DEFLATED, packed) if len(packed) < len(data) else (STORED, data)
    out.append(method)
    put_block(out, block)


def read(reader: Reader, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    le = np.dtype(dtype).newbyteorder("<")
    n = int(np.prod(shape, dtype=np.int64)) * le.itemsize
    method = reader.u8()
    if method == DEFLATED:
        data = inflate(reader, n, "raw chunk")
    elif method == STORED:
        data = reader.take(reader.varint(n))
        if len(data) != n:
            raise PayloadError("corrupted payload: raw chunk has the wrong size")
    else:
        raise PayloadError(f"corrupted payload: unknown raw chunk method {method}")
    return np.frombuffer(data, le).astype(le.newbyteorder("="), copy=True).reshape(shape)

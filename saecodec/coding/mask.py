"""Masked pixels (NaN, +-inf, sentinels such as detector gaps, a beamstop mask): stored exactly.

The network never sees them: each is replaced by its plane's median valid value before
the transform, and the original values come back after decoding. Their positions are a
bit plane over the chunk and their values the original elements, each one zlib block:
masks are large connected regions or sparse sentinels, both of which deflate to a few
bytes.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import PayloadError, SaecodecError
from .payload import Reader, deflate, inflate, put_block, put_varint


def find(arr: np.ndarray, options, mask=None) -> np.ndarray:
    """The masked pixels of a chunk: non-finite, equal to ``options.mask_value``, or set in
    the boolean ``mask`` (broadcast to the chunk)."""
    masked = ~np.isfinite(arr) if arr.dtype.kind == "f" else np.zeros(arr.shape, bool)
    if options.mask_value is not None:
        masked |= arr == options.mask_value
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != bool:
            raise SaecodecError(f"mask must be a boolean array, got dtype {m.dtype}")
        try:
            masked |= np.broadcast_to(m, arr.shape)
        except ValueError:
            raise SaecodecError(f"mask of shape {m.shape} does not broadcast to the chunk's {arr.shape}") from None
    return masked


def fill(planes: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """Planes (P, H, W) as float64 with masked pixels set to their plane's median valid value."""
    out = planes.astype(np.float64)
    if masked.any():
        with warnings.catch_warnings():  # an all-masked plane: "All-NaN slice", filled with 0 below
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.where(masked, np.nan, out).reshape(len(out), -1), axis=1)
        med = np.where(np.isfinite(med), med, 0.0)
        out = np.where(masked, med[:, None, None], out)
    return out


def write(out: bytearray, arr: np.ndarray, masked: np.ndarray) -> None:
    flat = masked.reshape(-1)
    put_varint(out, int(flat.sum()))
    put_block(out, deflate(np.packbits(flat).tobytes()))
    put_block(out, deflate(arr.reshape(-1)[flat].astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()))


def read(reader: Reader, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """-> (boolean mask of ``shape``, the masked elements' values in C order)."""
    n = int(np.prod(shape, dtype=np.int64))
    count = reader.varint(n)
    bits = np.frombuffer(inflate(reader, (n + 7) // 8, "mask positions"), np.uint8)
    masked = np.unpackbits(bits, count=n).astype(bool)
    if int(masked.sum()) != count or (n % 8 and np.unpackbits(bits)[n:].any()):
        raise PayloadError("corrupted payload: mask positions do not match their count")
    le = np.dtype(dtype).newbyteorder("<")
    values = np.frombuffer(inflate(reader, count * le.itemsize, "masked values"), le)
    return masked.reshape(shape), values

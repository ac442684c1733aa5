"""Masked pixels (NaN, +-inf, detector sentinels and thresholds, a boolean mask): stored exactly.

The network and the bounded coder never see them: the network's frames have each replaced
by its plane's median valid value, the bounded coder skips them, and the original values
come back after decoding. Their positions are a bit plane over the chunk (numpy.packbits
order) and their values the original elements, each one zlib block: masks are large
connected regions or sparse sentinels, both of which deflate to a few bytes. Finding,
gathering and scattering them runs in C (``coding.fast``), without boolean temporaries.

:class:`FrameMask` is a codec's own boolean mask (a detector's gaps and dead pixels), kept
packed, hashable and storable in configs and cd_values; it applies to every chunk it
broadcasts to (a 2D frame mask to chunks of whole frames).
"""

from __future__ import annotations

import base64
import math
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import PayloadError, SaecodecError
from . import fast
from .payload import Reader, deflate, inflate, inflate_exact, put_block, put_varint

MAX_MASK_VALUES = 16
# A codec's boolean mask: 64 Mi elements (8 MiB packed), four times the largest detector
# frame (Eiger2 16M). Its bits are inflated to exactly the size its shape states, so a
# config of ~1 MB cannot ask a reader for gigabytes (zlib reaches ~1000:1).
MAX_MASK_ELEMENTS = 1 << 26


@dataclass(frozen=True)
class FrameMask:
    """A boolean mask (True: masked), packed."""

    shape: tuple[int, ...]
    packed: bytes

    @classmethod
    def of(cls, value) -> "FrameMask | None":
        """From a boolean array (or nested lists), a FrameMask, or its config dict."""
        if value is None or isinstance(value, FrameMask):
            return value
        if isinstance(value, dict):
            try:
                dims, z = value["shape"], base64.b64decode(value["bits"], validate=True)
            except (KeyError, TypeError, ValueError):
                raise SaecodecError("invalid mask config; expected {'shape': [...], 'bits': base64 of zlib}") from None
            shape = _shape(dims)
            return cls._checked(shape, _inflate_bits(z, shape))
        m = np.asarray(value)
        if m.dtype != bool:
            raise SaecodecError(f"mask must be a boolean array, got dtype {m.dtype}")
        _shape(m.shape)
        return cls(tuple(int(d) for d in m.shape), np.packbits(m.reshape(-1)).tobytes())

    @classmethod
    def _checked(cls, shape, packed: bytes) -> "FrameMask":
        n = math.prod(shape)
        if not shape or min(shape) < 1 or len(packed) != (n + 7) // 8:
            raise SaecodecError(f"mask of shape {shape} does not match its {len(packed)} packed bytes")
        return cls(tuple(shape), bytes(packed))

    def array(self) -> np.ndarray:
        n = int(np.prod(self.shape, dtype=np.int64))
        return np.unpackbits(np.frombuffer(self.packed, np.uint8), count=n).astype(bool).reshape(self.shape)

    def to_config(self) -> dict:
        return {"shape": list(self.shape), "bits": base64.b64encode(zlib.compress(self.packed, 9)).decode("ascii")}

    def words(self) -> tuple[int, ...]:
        """cd_values words: count of words after this one, rank, dims, byte count, zlib bytes."""
        z = zlib.compress(self.packed, 9)
        padded = z + b"\0" * (-len(z) % 4)
        body = (len(self.shape), *self.shape, len(z), *(int.from_bytes(padded[i:i + 4], "big")
                                                       for i in range(0, len(padded), 4)))
        return (len(body), *body)

    @classmethod
    def from_words(cls, w) -> "FrameMask":
        try:
            rank = int(w[1])
            shape = _shape(w[2:2 + rank])
            nz = int(w[2 + rank])
            raw = b"".join(int(v).to_bytes(4, "big") for v in w[3 + rank:])[:nz]
        except (IndexError, ValueError, OverflowError, SaecodecError):
            raise SaecodecError("saecodec cd_values: invalid mask") from None
        return cls._checked(shape, _inflate_bits(raw, shape))


def _shape(dims) -> tuple[int, ...]:
    """A mask's shape: 1 to 16 dimensions, each at least 1, at most MAX_MASK_ELEMENTS in all."""
    try:
        shape = tuple(int(d) for d in dims)
    except (TypeError, ValueError, OverflowError):
        raise SaecodecError("a mask's shape must be a list of integers") from None
    if not 1 <= len(shape) <= 16 or min(shape) < 1:
        raise SaecodecError(f"mask must be a non-empty array of 1 to 16 dimensions, got shape {shape}")
    if math.prod(shape) > MAX_MASK_ELEMENTS:
        raise SaecodecError(f"mask of shape {shape} has more than {MAX_MASK_ELEMENTS} elements")
    return shape


def _inflate_bits(z: bytes, shape: tuple[int, ...]) -> bytes:
    """The packed bits of a mask of ``shape``, inflated to no more than their size."""
    return inflate_exact(z, (math.prod(shape) + 7) // 8, f"the mask of shape {shape}", SaecodecError)


def _user_bits(shape: tuple[int, ...], masks) -> np.ndarray | None:
    """Packed bits of the boolean masks (arrays or FrameMasks) broadcast to the chunk."""
    out = None
    for m in masks:
        if m is None:
            continue
        frame = isinstance(m, FrameMask)
        arr = m.array() if frame else np.asarray(m)
        if arr.dtype != bool:
            raise SaecodecError(f"mask must be a boolean array, got dtype {arr.dtype}")
        try:
            full = np.broadcast_to(arr, shape)
        except ValueError:
            hint = (f"; the codec's mask applies to every chunk, so chunks must hold whole frames of shape "
                    f"{arr.shape[-2:]} (e.g. chunks=(n, {', '.join(map(str, arr.shape[-2:]))}))" if frame else "")
            raise SaecodecError(f"mask of shape {arr.shape} does not broadcast to the chunk's {shape}{hint}") from None
        bits = np.packbits(full.reshape(-1))
        out = bits if out is None else out | bits
    return out


def find_bits(arr: np.ndarray, options, mask=None) -> tuple[np.ndarray | None, int]:
    """Packed bits of a chunk's masked elements and their count (None, 0 if none):
    non-finite, equal to one of ``options.mask_values``, below ``options.mask_below``, set
    in ``options.mask`` or in the boolean ``mask`` (both broadcast to the chunk)."""
    bits, count = fast.special(arr, options.mask_values, options.mask_below)
    user = _user_bits(arr.shape, (options.mask, mask))
    if user is None:
        return bits, count
    bits = user if bits is None else bits | user
    count = int(np.bitwise_count(bits).sum(dtype=np.int64))
    return (bits, count) if count else (None, 0)


def find(arr: np.ndarray, options, mask=None) -> np.ndarray:
    """The masked elements as a boolean array of the chunk's shape."""
    bits, _ = find_bits(arr, options, mask)
    if bits is None:
        return np.zeros(arr.shape, bool)
    return np.unpackbits(bits, count=arr.size).astype(bool).reshape(arr.shape)


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
    write_bits(out, arr, np.packbits(flat), int(flat.sum()))


def write_bits(out: bytearray, arr: np.ndarray, bits: np.ndarray, count: int) -> None:
    put_varint(out, count)
    put_block(out, deflate(bits.tobytes()))
    values = fast.gather(arr, bits, count)
    put_block(out, deflate(values.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()))


def read_bits(reader: Reader, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """-> (packed bits over the chunk, the masked elements' values in C order)."""
    n = math.prod(shape)
    count = reader.varint(n)
    bits = np.frombuffer(inflate(reader, (n + 7) // 8, "mask positions"), np.uint8)
    if int(np.bitwise_count(bits).sum(dtype=np.int64)) != count or (n % 8 and bits[-1] & (0xFF >> (n % 8))):
        raise PayloadError("corrupted payload: mask positions do not match their count")
    le = np.dtype(dtype).newbyteorder("<")
    values = np.frombuffer(inflate(reader, count * le.itemsize, "masked values"), le)
    return bits, values


def read(reader: Reader, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """-> (boolean mask of ``shape``, the masked elements' values in C order)."""
    bits, values = read_bits(reader, shape, dtype)
    n = math.prod(shape)
    return np.unpackbits(bits, count=n).astype(bool).reshape(shape), values


def restore(out: np.ndarray, bits: np.ndarray, values: np.ndarray) -> None:
    """Put the masked values back into the decoded chunk (C-contiguous, native order)."""
    fast.scatter(out, bits, values.astype(out.dtype, copy=False))

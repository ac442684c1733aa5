"""Quantisation of latent values to a storage dtype.

Latent values are stored raw, little-endian. ``bfloat16`` keeps float32's range with 8 bits
of mantissa (rounded to nearest even); ``float16`` is the L1 paper's choice.
"""

from __future__ import annotations

import numpy as np

from ..errors import SaecodecError

# code (stored in the payload and in cd_values) -> (name, bytes per value)
LATENT_DTYPES = {1: ("float16", 2), 2: ("bfloat16", 2), 3: ("float32", 4)}
_BY_NAME = {name: code for code, (name, _) in LATENT_DTYPES.items()}


def latent_code(name: str) -> int:
    try:
        return _BY_NAME[str(name)]
    except KeyError:
        raise SaecodecError(f"unknown latent_dtype (weight_dtype) {name!r}; expected one of {sorted(_BY_NAME)}") \
            from None


def itemsize(code: int) -> int:
    return LATENT_DTYPES[code][1]


def quantize(values: np.ndarray, code: int) -> np.ndarray:
    """values (float32) -> the float32 values the decoder will reconstruct."""
    v = np.asarray(values, dtype=np.float32)
    name = LATENT_DTYPES[code][0]
    if name == "float16":
        with np.errstate(over="ignore"):
            return v.astype(np.float16).astype(np.float32)
    if name == "bfloat16":
        return _from_bf16(_to_bf16(v))
    return v


def to_bytes(values: np.ndarray, code: int) -> bytes:
    name = LATENT_DTYPES[code][0]
    v = np.asarray(values, dtype=np.float32)
    if name == "float16":
        with np.errstate(over="ignore"):
            return v.astype("<f2").tobytes()
    if name == "bfloat16":
        return _to_bf16(v).astype("<u2").tobytes()
    return v.astype("<f4").tobytes()


def from_bytes(buf: bytes | memoryview, count: int, code: int) -> np.ndarray:
    name = LATENT_DTYPES[code][0]
    if name == "float16":
        return np.frombuffer(buf, dtype="<f2", count=count).astype(np.float32)
    if name == "bfloat16":
        return _from_bf16(np.frombuffer(buf, dtype="<u2", count=count))
    return np.frombuffer(buf, dtype="<f4", count=count).astype(np.float32)


def _to_bf16(v: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(v, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def _from_bf16(b: np.ndarray) -> np.ndarray:
    return (np.asarray(b, dtype=np.uint32) << 16).view(np.float32)

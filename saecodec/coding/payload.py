"""Payload format v1: a small fixed header, then the coded latents (docs/format.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PayloadError

MAGIC = b"SE"
VERSION = 1
MODEL_CHECK_BYTES = 4
MAX_NDIM = 16
# Decoding refuses payloads that claim more elements than this (about 8 GiB of float64),
# so that a corrupted header cannot make the decoder allocate without bound.
MAX_ELEMENTS = 1 << 30

LATENT_SPARSE, LATENT_DENSE = 0, 1
LATENT_KINDS = {"sparse": LATENT_SPARSE, "dense": LATENT_DENSE}
FLAG_RESIDUAL = 1 << 2  # reserved for the error-bounded residual stream
FLAG_MASK = 1 << 3  # reserved for losslessly coded masks
FLAG_FORTRAN = 1 << 4  # the chunk was Fortran-ordered; decode returns it so
_KNOWN_FLAGS = 0b11 | FLAG_RESIDUAL | FLAG_MASK | FLAG_FORTRAN

DTYPES = {1: "<f4", 2: "<f8", 3: "<f2", 4: "|u1", 5: "<u2", 6: "<u4", 7: "<u8",
          8: "|i1", 9: "<i2", 10: "<i4", 11: "<i8"}
_DTYPE_CODES = {np.dtype(v).newbyteorder("<") if np.dtype(v).itemsize > 1 else np.dtype(v): k
                for k, v in DTYPES.items()}


def dtype_code(dtype) -> int | None:
    dt = np.dtype(dtype)
    if dt.itemsize > 1:
        dt = dt.newbyteorder("<")
    return _DTYPE_CODES.get(dt)


def put_varint(out: bytearray, value: int) -> None:
    value = int(value)
    if value < 0:
        raise ValueError("varint must be non-negative")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


class Reader:
    """A cursor over a payload that raises PayloadError instead of reading past its end."""

    def __init__(self, buf):
        self.buf = memoryview(buf).cast("B")
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise PayloadError(f"truncated payload: needed {n} bytes at offset {self.pos}, have {len(self.buf) - self.pos}")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def varint(self, limit: int = 1 << 62) -> int:
        value, shift = 0, 0
        while True:
            byte = self.u8()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 63:
                raise PayloadError("corrupted payload: varint too long")
        if value > limit:
            raise PayloadError(f"corrupted payload: value {value} exceeds {limit}")
        return value

    def array(self, dtype: str, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.take(count * dt.itemsize), dtype=dt, count=count)

    def remaining(self) -> int:
        return len(self.buf) - self.pos


@dataclass(frozen=True)
class Header:
    flags: int
    model_check: bytes
    dtype: np.dtype
    latent_code: int
    shape: tuple[int, ...]
    tile: tuple[int, int]

    @property
    def latent_kind(self) -> int:
        return self.flags & 0b11

    def pack(self) -> bytearray:
        out = bytearray(MAGIC)
        out.append(VERSION)
        out.append(self.flags)
        out += self.model_check[:MODEL_CHECK_BYTES]
        code = dtype_code(self.dtype)
        if code is None:
            raise PayloadError(f"dtype {self.dtype} cannot be stored")
        out.append(code)
        out.append(self.latent_code)
        out.append(len(self.shape))
        for d in self.shape:
            put_varint(out, d)
        put_varint(out, self.tile[0])
        put_varint(out, self.tile[1])
        return out

    @classmethod
    def unpack(cls, reader: Reader) -> "Header":
        if bytes(reader.take(2)) != MAGIC:
            raise PayloadError("not a saecodec payload (bad magic bytes)")
        version = reader.u8()
        if version != VERSION:
            raise PayloadError(f"payload format version {version} is not supported by this saecodec (supports {VERSION})")
        flags = reader.u8()
        if flags & ~_KNOWN_FLAGS:
            raise PayloadError(f"corrupted payload: unknown flags {flags:#04x}")
        check = bytes(reader.take(MODEL_CHECK_BYTES))
        code = reader.u8()
        if code not in DTYPES:
            raise PayloadError(f"corrupted payload: unknown dtype code {code}")
        latent_code = reader.u8()
        ndim = reader.u8()
        if not 2 <= ndim <= MAX_NDIM:
            raise PayloadError(f"corrupted payload: {ndim} dimensions")
        shape = tuple(reader.varint(MAX_ELEMENTS) for _ in range(ndim))
        if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
            raise PayloadError(f"corrupted payload: shape {shape} exceeds the decoder's limit of {MAX_ELEMENTS} elements")
        tile = (reader.varint(1 << 16), reader.varint(1 << 16))
        if min(tile) < 1:
            raise PayloadError(f"corrupted payload: tile shape {tile}")
        return cls(flags, check, np.dtype(DTYPES[code]), latent_code, shape, tile)


def model_check(identity: str) -> bytes:
    return bytes.fromhex(identity)[:MODEL_CHECK_BYTES]


def pack_f32(values: np.ndarray) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


